package ike

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/ipsecgw/ipsecgw/config"
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

// TestServedPeerIndex: HasPeerSA and servingSA find the SAs serving a
// conn's peer through the byPeer index: they follow ServePeer as it sets,
// changes and withdraws the conn, skip conns with another peer at the same
// address, and forget unregistered SAs.
func TestServedPeerIndex(t *testing.T) {
	r := newResponder(t, Options{})
	h := (*host)(r.m)
	peer := netip.MustParseAddr("192.0.2.9")
	var sas []shared.SA
	for range 3 {
		sa := &idsSA{}
		if _, err := h.Register(sa, true, peer); err != nil {
			t.Fatal(err)
		}
		sas = append(sas, sa)
	}
	t.Cleanup(func() {
		for _, sa := range sas {
			h.Unregister(sa)
		}
	})
	conn := func(remote string, id string) *config.Conn {
		c := &config.Conn{Name: "c-" + remote + id, Version: config.IKEv2}
		c.Remote.Addr = netip.MustParseAddr(remote)
		c.Remote.ID = config.Identity{Type: config.IDFQDN, Value: id}
		return c
	}
	a, aOther, b := conn("192.0.2.9", "a"), conn("192.0.2.9", "other"), conn("192.0.2.10", "b")
	if h.HasPeerSA(nil, *a) || r.m.servingSA(*a) != nil {
		t.Fatal("an SA serves a before any ServePeer")
	}
	h.ServePeer(sas[0], a)
	h.ServePeer(sas[1], aOther)
	if !h.HasPeerSA(nil, *a) || h.HasPeerSA(sas[0], *a) || r.m.servingSA(*a) != sas[0] {
		t.Fatalf("a served by sas[0]: HasPeerSA %v (excluding it %v), servingSA %v", h.HasPeerSA(nil, *a), h.HasPeerSA(sas[0], *a), r.m.servingSA(*a))
	}
	if r.m.servingSA(*aOther) != sas[1] || r.m.servingSA(*b) != nil {
		t.Fatal("the conn with another ID at the same address, or another address, found the wrong SA")
	}
	// sas[0] moves to b (a rekey hands over the peer), sas[2] takes a.
	h.ServePeer(sas[0], b)
	h.ServePeer(sas[2], a)
	if r.m.servingSA(*a) != sas[2] || r.m.servingSA(*b) != sas[0] {
		t.Fatal("ServePeer with another conn did not move the SA in the index")
	}
	h.ServePeer(sas[2], nil)
	if r.m.servingSA(*a) != nil || h.HasPeerSA(nil, *a) {
		t.Fatal("a withdrawn SA still serves a")
	}
	h.Unregister(sas[0])
	h.Unregister(sas[1])
	if r.m.servingSA(*b) != nil || r.m.servingSA(*aOther) != nil {
		t.Fatal("an unregistered SA still serves its peer")
	}
	if n := len(r.m.byPeer); n != 0 {
		t.Fatalf("byPeer holds %d keys with every SA gone or withdrawn", n)
	}
}

// TestServingFromIndex: the unknown-SPI reports find the SA serving the
// reporting address through servingFrom, which follows ServePeer and
// Unregister like byPeer.
func TestServingFromIndex(t *testing.T) {
	r := newResponder(t, Options{})
	h := (*host)(r.m)
	peer, other := netip.MustParseAddr("192.0.2.9"), netip.MustParseAddr("192.0.2.10")
	sa := &idsSA{}
	if _, err := h.Register(sa, true, peer); err != nil {
		t.Fatal(err)
	}
	defer h.Unregister(sa)
	c := &config.Conn{Name: "hub", Version: config.IKEv2} // right=%any: no configured address
	if n := len(r.m.servingFrom); n != 0 {
		t.Fatalf("servingFrom holds %d addresses before any ServePeer", n)
	}
	h.ServePeer(sa, c)
	if es := r.m.servingFrom[peer]; len(es) != 1 || es[0].sa != sa || len(r.m.servingFrom[other]) != 0 {
		t.Fatalf("servingFrom after ServePeer: %v", r.m.servingFrom)
	}
	h.ServePeer(sa, nil)
	if n := len(r.m.servingFrom); n != 0 {
		t.Fatalf("servingFrom holds %d addresses after the SA stopped serving", n)
	}
	h.ServePeer(sa, c)
	h.Unregister(sa)
	if n := len(r.m.servingFrom); n != 0 {
		t.Fatalf("servingFrom holds %d addresses after the SA ended", n)
	}
}
