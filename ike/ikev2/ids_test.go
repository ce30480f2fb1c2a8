package ikev2

import (
	"net/netip"
	"testing"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
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
		proto        message.ProtocolID
		want         string
	}{
		{"aes256-sha256-modp2048,aes128-sha256-modp2048", "aes128-sha256-modp2048,aes256-sha256-modp2048", false, message.ProtoIKE, "aes256-sha256-prfsha256-modp2048"},
		{"aes128-aes256-sha256-sha1-modp3072-modp2048", "aes256-aes128-sha1-sha256-modp2048-modp3072", false, message.ProtoIKE, "aes128-sha256-prfsha256-modp3072"},
		{"aes128gcm16-prfsha256-ecp256", "aes128-sha256-ecp256,aes128gcm16-prfsha256-ecp256", false, message.ProtoIKE, "aes128gcm16-prfsha256-ecp256"},
		{"aes128-sha256-modp2048", "aes128-sha256", true, message.ProtoESP, "aes128-sha256"},
		{"aes128gcm16-ecp384", "aes128gcm16", true, message.ProtoESP, "aes128gcm16"},
		{"aes128gcm16-ecp384", "aes128gcm16", false, message.ProtoESP, ""},
		{"aes128-sha256", "aes128-sha256-modp2048", false, message.ProtoESP, ""},
		{"aes128-sha256-esn", "aes128-sha256-noesn", false, message.ProtoESP, ""},
		{"aes256-sha256-modp3072", "aes128-sha256-modp3072", false, message.ProtoIKE, ""},
	}
	for _, tc := range cases {
		proto := config.ProtoIKE
		if tc.proto == message.ProtoESP {
			proto = config.ProtoESP
		}
		ours := wireProposals(mustProposals(t, proto, tc.ours+"!"), tc.proto, nil, tc.stripKE)
		theirs := wireProposals(mustProposals(t, proto, tc.theirs+"!"), tc.proto, []byte{1, 2, 3, 4}, false)
		sel, ok := selectProposal(ours, theirs, tc.proto, tc.stripKE, 0)
		got := ""
		if ok {
			got = sel.String()
		}
		if got != tc.want {
			t.Errorf("ours %s, theirs %s: got %q, want %q", tc.ours, tc.theirs, got, tc.want)
		}
		if ok {
			// What we answer must be accepted by the peer as one of its own.
			if _, ok := acceptResponse(theirs, message.SA{Proposals: []message.Proposal{sel.wire(tc.proto, nil)}}, tc.proto, tc.stripKE); !ok {
				t.Errorf("ours %s, theirs %s: the peer would not accept our answer %s", tc.ours, tc.theirs, sel)
			}
		}
	}
}

func TestNarrowAndPrefixes(t *testing.T) {
	p := func(s string) tsRange {
		return fromConfigTS(config.TrafficSelector{Prefix: netip.MustParsePrefix(s), PortHi: 65535})
	}
	got := narrow([]tsRange{p("10.0.0.0/8")}, []tsRange{p("10.1.2.0/24"), p("192.168.0.0/16")})
	if rangesString(got) != "10.1.2.0/24" {
		t.Errorf("narrow: %s", rangesString(got))
	}
	tcp := tsRange{proto: 6, portLo: 443, portHi: 443, start: netip.MustParseAddr("10.0.0.1"), end: netip.MustParseAddr("10.0.0.1")}
	if x, ok := intersect(p("10.0.0.0/24"), tcp); !ok || x != tcp {
		t.Errorf("port narrowing: %v %v", x, ok)
	}
	if _, ok := intersect(p("10.0.0.0/24"), p("fd00::/64")); ok {
		t.Errorf("IPv4 and IPv6 selectors intersect")
	}
	r := tsRange{portHi: 65535, start: netip.MustParseAddr("10.0.0.3"), end: netip.MustParseAddr("10.0.0.17")}
	var s []string
	for _, c := range r.toConfig() {
		s = append(s, c.Prefix.String())
	}
	if got := fmtList(s); got != "10.0.0.3/32,10.0.0.4/30,10.0.0.8/29,10.0.0.16/31" {
		t.Errorf("range split: %s", got)
	}
	all6 := tsRange{portHi: 65535, start: netip.MustParseAddr("::"), end: netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")}
	if c := all6.toConfig(); len(c) != 1 || c[0].Prefix.String() != "::/0" {
		t.Errorf("::/0 split into %v", c)
	}
}

func fmtList(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ","
		}
		out += x
	}
	return out
}

func TestIDRoundTrip(t *testing.T) {
	for _, s := range []string{"198.51.100.1", "2001:db8::1", "@gw.example", "alice@example.org", "@#0a0b0c"} {
		id, err := config.ParseIdentity(s)
		if err != nil {
			t.Fatal(err)
		}
		w, ok := wireID(id, false)
		if !ok {
			t.Fatalf("%s: not encodable", s)
		}
		parsed, _, err := message.ParseID(message.AppendID(nil, w))
		if err != nil {
			t.Fatal(err)
		}
		back, ok := configID(parsed)
		if !ok || !back.Equal(id) {
			t.Errorf("%s → %v → %v", s, w, back)
		}
	}
	if !idMatches(config.Identity{Type: config.IDFQDN, Value: "*.example.com"}, config.Identity{Type: config.IDFQDN, Value: "GW1.Example.com"}) {
		t.Errorf("wildcard FQDN does not match")
	}
}
