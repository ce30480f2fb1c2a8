package header

import (
	"net"
	"testing"

	"github.com/gopacket/gopacket/layers"
)

// TestAccessorsDoNotAllocate runs what the per-packet paths use (the SPD's
// flow parser, the TUN offloads, the ESP outer headers) and requires zero
// allocations.
func TestAccessorsDoNotAllocate(t *testing.T) {
	v4 := serialize(t, &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2}},
		&layers.TCP{SrcPort: 1, DstPort: 2, ACK: true, DataOffset: 8, Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: make([]byte, 8)}, {OptionType: 1}, {OptionType: 1}}},
		payloadBytes(1400))
	v6 := []byte(extChain(false, ProtoHopByHop, ProtoFragment, ProtoDestOpts, ProtoUDP))
	fields4 := IPv4Fields{TotalLength: 48, Flags: IPv4DontFragment, TTL: 64, Protocol: ProtoUDP}
	fields6 := IPv6Fields{PayloadLength: 28, NextHeader: ProtoUDP, HopLimit: 64}
	out := make([]byte, 128)
	var sink uint64
	a := testing.AllocsPerRun(200, func() {
		ip := IPv4(v4)
		if !ip.Valid() || ip.IsFragment() || ip.FragmentOffset() != 0 {
			t.Fatal("v4")
		}
		sink += uint64(ip.HeaderLength()+ip.TotalLength()+int(ip.TOS()+ip.TTL()+ip.Protocol())) + uint64(ip.ID()+ip.Flags()+ip.Checksum())
		src, dst := Addrs(v4, false)
		sink += ip.PseudoHeaderSum(ProtoTCP, len(ip.Payload())) + uint64(len(src)+len(dst))
		sink += uint64(ip.SrcAddr().As4()[3] + ip.DstAddr().As4()[3])
		tcp := TCP(ip.Payload())
		if !tcp.Valid() {
			t.Fatal("tcp")
		}
		sink += uint64(tcp.SeqNumber()+tcp.AckNumber()) + uint64(tcp.DataOffset()+len(tcp.Options())) +
			uint64(tcp.Flags()+tcp.Reserved()) + uint64(tcp.Window()+tcp.UrgentPointer()+tcp.Checksum())
		s, d := Ports(tcp)
		sink += uint64(s+d+tcp.SrcPort()+tcp.DstPort()) + uint64(ICMP(tcp).TypeCode())

		ip6 := IPv6(v6)
		if !ip6.Valid() {
			t.Fatal("v6")
		}
		sink += uint64(ip6.TrafficClass()+ip6.NextHeader()+ip6.HopLimit()) + uint64(ip6.FlowLabel()) + uint64(ip6.PayloadLength())
		sink += uint64(ip6.SrcAddr().As16()[15] + ip6.DstAddr().As16()[15])
		typ, rest := ip6.NextHeader(), ip6.Payload()
		for IsIPv6Extension(typ) {
			var ok bool
			if typ, rest, _, ok = IPv6Extension(rest).Next(typ); !ok {
				t.Fatal("walk")
			}
		}
		udp := UDP(rest)
		sink += uint64(udp.Length()) + uint64(udp.SrcPort()+udp.DstPort()+udp.Checksum())

		// Writing: what the segmenter, the coalescer and WriteOuter do.
		o4 := IPv4(out)
		o4.Encode(&fields4)
		o4.SetTotalLength(48)
		o4.SetID(1)
		o4.UpdateChecksum()
		u := UDP(o4[IPv4MinLen:48])
		u.Encode(4500, 4500, 28)
		u.SetLength(28)
		u.UpdateChecksum(o4.PseudoHeaderSum(ProtoUDP, 28))
		o6 := IPv6(out)
		o6.Encode(&fields6)
		o6.SetPayloadLength(28)
		u = UDP(o6.Payload())
		u.UpdateChecksum(o6.PseudoHeaderSum(ProtoUDP, 28))
		ot := TCP(out[IPv6Len:])
		ot.SetSeqNumber(5)
		ot.SetFlags(TCPFlagACK)
		ot.SetChecksum(0)
		ot.UpdateChecksum(o6.PseudoHeaderSum(ProtoTCP, len(ot)))
	})
	if a != 0 {
		t.Fatalf("%v allocations per run", a)
	}
	_ = sink
}
