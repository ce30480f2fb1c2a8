package spd

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/ipsecgw/ipsecgw/header"
)

func TestTSIntersect(t *testing.T) {
	p := func(s string) TS { return PrefixTS(netip.MustParsePrefix(s)) }
	host := netip.MustParseAddr("10.0.0.1")
	tcp := TS{Range: AddrRange{host, host}, Protocol: header.ProtoTCP, Ports: Port(443)}
	if x, ok := p("10.0.0.0/24").Intersect(tcp); !ok || x != tcp {
		t.Errorf("port narrowing: %v %v", x, ok)
	}
	if _, ok := p("10.0.0.0/24").Intersect(p("fd00::/64")); ok {
		t.Error("IPv4 and IPv6 selectors intersect")
	}
	udp := TS{Range: PrefixRange(netip.MustParsePrefix("10.0.0.0/24")), Protocol: header.ProtoUDP, Ports: AllPorts}
	if _, ok := udp.Intersect(tcp); ok {
		t.Error("TCP and UDP selectors intersect")
	}
	opaque := TS{Range: udp.Range, Protocol: header.ProtoUDP, Ports: PortRange{0xffff, 0}}
	if x, ok := opaque.Intersect(opaque); !ok || x != opaque {
		t.Errorf("OPAQUE ports: %v %v", x, ok)
	}
	if _, ok := opaque.Intersect(udp); ok {
		t.Error("OPAQUE ports intersect a port range")
	}
	if !p("10.0.0.0/8").Contains(p("10.1.0.0/16")) || p("10.1.0.0/16").Contains(p("10.0.0.0/8")) {
		t.Error("Contains")
	}
}

func TestAddrRangePrefixes(t *testing.T) {
	r := AddrRange{netip.MustParseAddr("10.0.0.3"), netip.MustParseAddr("10.0.0.17")}
	var s []string
	for _, p := range r.Prefixes() {
		s = append(s, p.String())
	}
	if got := strings.Join(s, ","); got != "10.0.0.3/32,10.0.0.4/30,10.0.0.8/29,10.0.0.16/31" {
		t.Errorf("range split: %s", got)
	}
	all6 := AddrRange{netip.MustParseAddr("::"), netip.MustParseAddr("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")}
	if ps := all6.Prefixes(); len(ps) != 1 || ps[0].String() != "::/0" {
		t.Errorf("::/0 split into %v", ps)
	}
	ts := TS{Range: r, Ports: AllPorts}
	if ts.String() != "10.0.0.3..10.0.0.17" || len(ts.Split()) != 4 {
		t.Errorf("String %q, Split %v", ts, ts.Split())
	}
}
