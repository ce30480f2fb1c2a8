package shared

import (
	"net/netip"
	"testing"

	"github.com/ipsecgw/ipsecgw/config"
)

func TestIDMatches(t *testing.T) {
	fqdn := func(v string) config.Identity { return config.Identity{Type: config.IDFQDN, Value: v} }
	mail := func(v string) config.Identity { return config.Identity{Type: config.IDRFC822, Value: v} }
	for _, tc := range []struct {
		configured, got config.Identity
		want            bool
	}{
		{config.Identity{}, fqdn("anything"), true},
		{fqdn("gw.example.com"), fqdn("gw.example.com"), true},
		{fqdn("*.example.com"), fqdn("GW1.Example.com"), true},
		{fqdn("*.example.com"), fqdn("example.com"), false},
		{fqdn("*.example.com"), mail("a.example.com"), false},
		{mail("*@example.org"), mail("alice@EXAMPLE.org"), true},
		{mail("*@example.org"), mail("alice@example.net"), false},
		// ASCII folding only: the Kelvin sign is not a "k".
		{fqdn("*.example.com"), fqdn("gw.example.co\u212a"), false},
	} {
		if got := IDMatches(tc.configured, tc.got); got != tc.want {
			t.Errorf("IDMatches(%v, %v) = %v, want %v", tc.configured, tc.got, got, tc.want)
		}
	}
	if id := EffectiveID(config.Identity{}, netip.MustParseAddr("::ffff:198.51.100.1")); id.Type != config.IDIPv4 || id.Addr.String() != "198.51.100.1" {
		t.Errorf("EffectiveID of a mapped address: %v", id)
	}
}

func TestNameSet(t *testing.T) {
	var s NameSet
	s.Add("a")
	s.Add("b")
	s.Add("a")
	if len(s) != 2 || !s.Has("a") || !s.Has("b") || s.Has("c") {
		t.Fatalf("after adding a, b, a: %v", s)
	}
	s.Remove("a")
	s.Remove("c")
	if len(s) != 1 || s.Has("a") || !s.Has("b") {
		t.Fatalf("after removing a and c: %v", s)
	}
}
