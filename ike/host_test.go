package ike

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/ipsecgw/ipsecgw/ike/shared"
)

// idsSA is a registered SA handle for the Host's bookkeeping; the
// Authenticated index never calls it.
type idsSA struct{ shared.SA }

// TestAuthenticatedIndex: Host.Authenticated returns exactly the other
// registered SAs authenticated under the same ID pair, follows an SA that
// authenticates again under another pair, and forgets unregistered SAs.
func TestAuthenticatedIndex(t *testing.T) {
	r := newResponder(t, Options{})
	h := (*host)(r.m)
	peer := netip.MustParseAddr("192.0.2.9")
	var sas []shared.SA
	for range 4 {
		sa := &idsSA{}
		if _, err := h.Register(sa, false, peer); err != nil {
			t.Fatal(err)
		}
		sas = append(sas, sa)
	}
	t.Cleanup(func() {
		for _, sa := range sas {
			h.Unregister(sa)
		}
	})
	same := func(got []shared.SA, want ...shared.SA) bool {
		return len(got) == len(want) && !slices.ContainsFunc(want, func(w shared.SA) bool { return !slices.Contains(got, w) })
	}
	if got := h.Authenticated(sas[0], "a|b"); len(got) != 0 {
		t.Fatalf("first of its pair: others %v", got)
	}
	h.Authenticated(sas[1], "a|b")
	h.Authenticated(sas[2], "a|c")
	if got := h.Authenticated(sas[3], "a|b"); !same(got, sas[0], sas[1]) {
		t.Fatalf("third with a|b: others %v, want the first two", got)
	}
	// Asking again under the same pair changes nothing.
	if got := h.Authenticated(sas[3], "a|b"); !same(got, sas[0], sas[1]) {
		t.Fatalf("asked again: others %v", got)
	}
	// sas[1] authenticates under a|c now: it leaves a|b.
	if got := h.Authenticated(sas[1], "a|c"); !same(got, sas[2]) {
		t.Fatalf("moved to a|c: others %v", got)
	}
	h.Unregister(sas[0])
	if got := h.Authenticated(sas[3], "a|b"); len(got) != 0 {
		t.Fatalf("after the first ended: others %v", got)
	}
	h.Unregister(sas[2])
	h.Unregister(sas[1])
	if n := len(r.m.byIDs["a|c"]); n != 0 {
		t.Fatalf("a|c still indexes %d SAs after both ended", n)
	}
	if _, ok := r.m.byIDs["a|c"]; ok {
		t.Fatal("empty ID pair left in the index")
	}
}
