package shared

import (
	"testing"
	"unsafe"

	"github.com/ipsecgw/ipsecgw/config"
)

func mustProposals(t *testing.T, proto config.Protocol, s string) []config.Proposal {
	t.Helper()
	ps, _, err := config.ParseProposals(proto, s)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// TestSelectProposalResponderPreference: strongSwan's responder takes the
// first of its OWN proposals that the peer supports, and within it its own
// algorithm order.
func TestSelectProposalResponderPreference(t *testing.T) {
	cases := []struct {
		ours, theirs string
		stripKE      bool
		proto        Protocol
		want         string
	}{
		{"aes256-sha256-modp2048,aes128-sha256-modp2048", "aes128-sha256-modp2048,aes256-sha256-modp2048", false, ProtoIKE, "aes256-sha256-prfsha256-modp2048"},
		{"aes128-aes256-sha256-sha1-modp3072-modp2048", "aes256-aes128-sha1-sha256-modp2048-modp3072", false, ProtoIKE, "aes128-sha256-prfsha256-modp3072"},
		{"aes128gcm16-prfsha256-ecp256", "aes128-sha256-ecp256,aes128gcm16-prfsha256-ecp256", false, ProtoIKE, "aes128gcm16-prfsha256-ecp256"},
		{"aes128-sha256-modp2048", "aes128-sha256", true, ProtoESP, "aes128-sha256"},
		{"aes128gcm16-ecp384", "aes128gcm16", true, ProtoESP, "aes128gcm16"},
		{"aes128gcm16-ecp384", "aes128gcm16", false, ProtoESP, ""},
		{"aes128-sha256", "aes128-sha256-modp2048", false, ProtoESP, ""},
		{"aes128-sha256-esn", "aes128-sha256-noesn", false, ProtoESP, ""},
		{"aes256-sha256-modp3072", "aes128-sha256-modp3072", false, ProtoIKE, ""},
	}
	for _, tc := range cases {
		proto := config.ProtoIKE
		if tc.proto == ProtoESP {
			proto = config.ProtoESP
		}
		ours := Offer(mustProposals(t, proto, tc.ours+"!"), tc.proto, nil, tc.stripKE)
		theirs := Offer(mustProposals(t, proto, tc.theirs+"!"), tc.proto, []byte{1, 2, 3, 4}, false)
		sel, ok := Select(ours, theirs, tc.proto, tc.stripKE, 0)
		got := ""
		if ok {
			got = sel.String()
		}
		if got != tc.want {
			t.Errorf("ours %s, theirs %s: got %q, want %q", tc.ours, tc.theirs, got, tc.want)
		}
		if ok {
			// What we answer must be accepted by the peer as one of its own.
			if _, ok := Accept(theirs, []Proposal{sel.Proposal(tc.proto, nil)}, tc.proto, tc.stripKE); !ok {
				t.Errorf("ours %s, theirs %s: the peer would not accept our answer %s", tc.ours, tc.theirs, sel)
			}
		}
	}
}

// The name of a selection is made once and shared: the selections of
// different SAs (different proposal numbers) get the same string, without
// allocating, and different algorithms still get their own names.
func TestSelectionStringShared(t *testing.T) {
	sel := func(spec string, number uint8) Selection {
		ps := Offer(mustProposals(t, config.ProtoIKE, spec+"!"), ProtoIKE, nil, false)
		s, ok := Select(ps, ps, ProtoIKE, false, 0)
		if !ok {
			t.Fatalf("%s: nothing selected", spec)
		}
		s.Number = number
		return s
	}
	a, b := sel("aes128gcm16-prfsha256-x25519", 1), sel("aes128gcm16-prfsha256-x25519", 7)
	first := a.String()
	if first != "aes128gcm16-prfsha256-x25519" || b.String() != first {
		t.Fatalf("names %q and %q", first, b.String())
	}
	if unsafe.StringData(b.String()) != unsafe.StringData(first) {
		t.Errorf("the same algorithms got two strings")
	}
	if n := testing.AllocsPerRun(100, func() { _ = b.String() }); n != 0 {
		t.Errorf("naming a known selection allocates %.0f times", n)
	}
	if got := sel("aes256-sha256-modp3072", 1).String(); got != "aes256-sha256-prfsha256-modp3072" {
		t.Errorf("other algorithms named %q", got)
	}
}

func TestProtocolChildName(t *testing.T) {
	if ProtoESP.ChildName() != "esp" || ProtoAH.ChildName() != "ah" {
		t.Errorf("ESP %q, AH %q", ProtoESP.ChildName(), ProtoAH.ChildName())
	}
}
