package spd

import (
	"testing"

	"github.com/ipsecgw/ipsecgw/header"
)

// BenchmarkFlowParse measures the header parsing every lookup starts with,
// for the common shapes and the longest IPv6 walk the tests build.
func BenchmarkFlowParse(b *testing.B) {
	for _, c := range []struct {
		name string
		p    pktSpec
	}{
		{"v4-tcp", pktSpec{src: a4("10.1.0.1"), dst: a4("10.2.0.1"), proto: header.ProtoTCP, sport: 40000, dport: 443}},
		{"v4-icmp", pktSpec{src: a4("10.1.0.1"), dst: a4("10.2.0.1"), proto: header.ProtoICMP, sport: 0x0800}},
		{"v4-fragment", pktSpec{src: a4("10.1.0.1"), dst: a4("10.2.0.1"), proto: header.ProtoUDP, frag: true}},
		{"v6-udp", pktSpec{src: a4("fd00:1::1"), dst: a4("fd00:2::1"), proto: header.ProtoUDP, sport: 500, dport: 4500}},
		{"v6-ext", pktSpec{src: a4("fd00:1::1"), dst: a4("fd00:2::1"), proto: header.ProtoTCP, sport: 1, dport: 2,
			ext6: []byte{header.ProtoHopByHop, header.ProtoDestOpts, header.ProtoRouting, header.ProtoFragment, header.ProtoAH}}},
	} {
		pkt := c.p.bytes()
		b.Run(c.name, func(b *testing.B) {
			var f Flow
			if !f.Parse(pkt) {
				b.Fatal("bench packet does not parse")
			}
			b.ReportAllocs()
			for b.Loop() {
				f.Parse(pkt)
			}
		})
	}
}
