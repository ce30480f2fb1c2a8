package spd

import (
	"net/netip"
	"testing"

	"github.com/ipsecgw/ipsecgw/header"
)

// FuzzLookup feeds arbitrary bytes to the parser and both lookups: they must
// never panic, a parsed flow must lie within the packet's own claims, and
// the indexed and scanned tables must agree.
//
//	go test -run '^$' -fuzz FuzzLookup -fuzztime 30s ./spd/
func FuzzLookup(f *testing.F) {
	for _, p := range []pktSpec{
		{src: netip.MustParseAddr("10.1.0.1"), dst: netip.MustParseAddr("10.2.0.1"), proto: header.ProtoTCP, sport: 1, dport: 22},
		{src: netip.MustParseAddr("10.1.0.1"), dst: netip.MustParseAddr("10.2.0.1"), proto: header.ProtoICMP, sport: 0x0800},
		{src: netip.MustParseAddr("fd00:1::1"), dst: netip.MustParseAddr("fd00:2::1"), proto: header.ProtoUDP, ext6: []byte{header.ProtoHopByHop, header.ProtoFragment}},
		{src: netip.MustParseAddr("fd00:1::1"), dst: netip.MustParseAddr("fd00:2::1"), proto: header.ProtoTCP, frag: true},
	} {
		f.Add(p.bytes())
	}
	var rules []Rule
	for i := 0; i < 40; i++ {
		l, r := "10.1.0.0/16", "10.2.0.0/16"
		if i%2 == 1 {
			l, r = "fd00:1::/64", "fd00:2::/64"
		}
		s := Selector{Local: MustPrefixRange(l), Remote: MustPrefixRange(r), LocalPorts: AllPorts, RemotePorts: Port(uint16(i))}
		if i%5 == 0 {
			s.RemotePorts = AllPorts
			s.Protocol = uint8(i)
		}
		rules = append(rules, Rule{Selector: s, Action: Action(i % 4), PolicyID: uint32(i)})
	}
	defer func(old int) { indexThreshold = old }(indexThreshold)
	indexThreshold = 0
	indexed, err := Compile(rules)
	if err != nil {
		f.Fatal(err)
	}
	indexThreshold = 1 << 30
	scanned, err := Compile(rules)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var fl Flow
		if fl.Parse(b) {
			if fl.Is4 != (b[0]>>4 == 4) {
				t.Fatalf("family %v for version %d", fl.Is4, b[0]>>4)
			}
		}
		for _, in := range []bool{false, true} {
			var a, s Result
			if in {
				a, s = indexed.Inbound(b), scanned.Inbound(b)
			} else {
				a, s = indexed.Outbound(b), scanned.Outbound(b)
			}
			if a != s {
				t.Fatalf("indexed %+v, scanned %+v", a, s)
			}
		}
	})
}
