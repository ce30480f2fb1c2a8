package header

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// FuzzParseIPv4 checks IPv4.Valid and the accessors on arbitrary bytes:
// nothing panics, Valid holds exactly when RFC 791's length rules do, and
// a valid header reads as gopacket reads it.
func FuzzParseIPv4(f *testing.F) {
	f.Add(serialize(f, &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, Flags: layers.IPv4MoreFragments,
		FragOffset: 3, SrcIP: net.IP{1, 2, 3, 4}, DstIP: net.IP{4, 3, 2, 1}}, payloadBytes(30)))
	f.Add(serialize(f, &layers.IPv4{Version: 4, IHL: 7, TTL: 64, SrcIP: net.IP{1, 2, 3, 4}, DstIP: net.IP{4, 3, 2, 1},
		Options: []layers.IPv4Option{{OptionType: 7, OptionLength: 7, OptionData: []byte{4, 0, 0, 0, 0}}, {OptionType: 0}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		ip := IPv4(b)
		want := len(b) >= 20 && b[0]>>4 == 4 && int(b[0]&15)*4 >= 20 &&
			int(b[0]&15)*4 <= int(binary.BigEndian.Uint16(b[2:])) && int(binary.BigEndian.Uint16(b[2:])) <= len(b)
		if ip.Valid() != want {
			t.Fatalf("Valid %v, want %v", ip.Valid(), want)
		}
		if !want {
			return
		}
		readIPv4(ip)
		var g layers.IPv4
		if g.DecodeFromBytes(b, gopacket.NilDecodeFeedback) != nil {
			return // gopacket refuses some options we do not read
		}
		if ip.HeaderLength() != int(g.IHL)*4 || ip.TotalLength() != int(g.Length) || ip.TOS() != g.TOS ||
			ip.ID() != g.Id || ip.Flags() != uint16(g.Flags)<<13 || ip.FragmentOffset() != int(g.FragOffset)*8 ||
			ip.TTL() != g.TTL || ip.Protocol() != uint8(g.Protocol) || ip.Checksum() != g.Checksum ||
			string(ip.Src()) != string(g.SrcIP) || string(ip.Dst()) != string(g.DstIP) ||
			string(ip.Payload()) != string(g.Payload) {
			t.Fatalf("differs from gopacket's %+v", g)
		}
	})
}

// FuzzParseIPv6 checks IPv6.Valid, the accessors and the extension
// header walk on arbitrary bytes: nothing panics, the fixed header reads
// as gopacket reads it, and every step of the walk moves forward within
// the payload.
func FuzzParseIPv6(f *testing.F) {
	f.Add([]byte(extChain(false, ProtoHopByHop, ProtoRouting, ProtoDestOpts, ProtoTCP)))
	f.Add([]byte(extChain(true, ProtoFragment, ProtoUDP)))
	withAH := extChain(false, ProtoAH, ProtoUDP)
	f.Add(append(append([]byte(nil), withAH[:IPv6Len]...), ah(ProtoUDP, 4)...))
	f.Fuzz(func(t *testing.T, b []byte) {
		ip := IPv6(b)
		want := len(b) >= IPv6Len && b[0]>>4 == 6 && IPv6Len+int(binary.BigEndian.Uint16(b[4:])) <= len(b)
		if ip.Valid() != want {
			t.Fatalf("Valid %v, want %v", ip.Valid(), want)
		}
		if !want {
			return
		}
		readIPv6(ip)
		var g layers.IPv6
		if g.DecodeFromBytes(b, gopacket.NilDecodeFeedback) == nil && g.HopByHop == nil {
			if ip.TrafficClass() != g.TrafficClass || ip.FlowLabel() != g.FlowLabel || ip.PayloadLength() != int(g.Length) ||
				ip.NextHeader() != uint8(g.NextHeader) || ip.HopLimit() != g.HopLimit ||
				string(ip.Src()) != string(g.SrcIP) || string(ip.Dst()) != string(g.DstIP) ||
				string(ip.Payload()) != string(g.Payload) {
				t.Fatalf("differs from gopacket's %+v", g)
			}
		}
		typ, rest := ip.NextHeader(), ip.Payload()
		for IsIPv6Extension(typ) {
			next, after, first, ok := IPv6Extension(rest).Next(typ)
			if !ok {
				return
			}
			if len(after) > len(rest)-8 || string(after) != string(rest[len(rest)-len(after):]) {
				t.Fatalf("step over type %d: %d bytes left of %d, not a tail of them", typ, len(after), len(rest))
			}
			if !first {
				return
			}
			typ, rest = next, after
		}
	})
}

// FuzzParseTransport checks the TCP, UDP and ICMP views against gopacket on
// arbitrary bytes.
func FuzzParseTransport(f *testing.F) {
	f.Add(serialize(f, &layers.TCP{SrcPort: 1, DstPort: 2, Seq: 3, Ack: 4, ACK: true, PSH: true, Window: 5, DataOffset: 6,
		Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{5, 0xb4}}}}, payloadBytes(9)))
	f.Add(serialize(f, &layers.UDP{SrcPort: 500, DstPort: 4500}, payloadBytes(20)))
	f.Fuzz(func(t *testing.T, b []byte) {
		tcp := TCP(b)
		var gt layers.TCP
		// gopacket also refuses a header whose options it cannot parse,
		// which is none of our business.
		if gt.DecodeFromBytes(b, gopacket.NilDecodeFeedback) == nil {
			if !tcp.Valid() {
				t.Fatalf("not valid for us, gopacket decodes %+v", gt)
			}
			flags := uint8(0)
			for i, set := range []bool{gt.FIN, gt.SYN, gt.RST, gt.PSH, gt.ACK, gt.URG, gt.ECE, gt.CWR} {
				if set {
					flags |= 1 << i
				}
			}
			if tcp.SrcPort() != uint16(gt.SrcPort) || tcp.DstPort() != uint16(gt.DstPort) || tcp.SeqNumber() != gt.Seq ||
				tcp.AckNumber() != gt.Ack || tcp.DataOffset() != int(gt.DataOffset)*4 || tcp.Flags() != flags ||
				tcp.Window() != gt.Window || tcp.Checksum() != gt.Checksum || tcp.UrgentPointer() != gt.Urgent ||
				string(tcp.Options()) != string(b[TCPMinLen:tcp.DataOffset()]) {
				t.Fatalf("TCP differs from gopacket's %+v", gt)
			}
		}
		if tcp.Valid() {
			_ = tcp.Options()
		}
		if len(b) >= UDPLen {
			udp := UDP(b)
			var gu layers.UDP
			if gu.DecodeFromBytes(b, gopacket.NilDecodeFeedback) == nil &&
				(udp.SrcPort() != uint16(gu.SrcPort) || udp.DstPort() != uint16(gu.DstPort) ||
					udp.Length() != int(gu.Length) || udp.Checksum() != gu.Checksum) {
				t.Fatalf("UDP differs from gopacket's %+v", gu)
			}
			if s, d := Ports(b); s != udp.SrcPort() || d != udp.DstPort() {
				t.Fatalf("Ports %d %d", s, d)
			}
		}
		if len(b) >= ICMPTypeCodeLen {
			m := ICMP(b)
			var gi layers.ICMPv4
			if gi.DecodeFromBytes(b, gopacket.NilDecodeFeedback) == nil &&
				(m.Type() != gi.TypeCode.Type() || m.Code() != gi.TypeCode.Code() || m.TypeCode() != uint16(gi.TypeCode)) {
				t.Fatalf("ICMP differs from gopacket's %v", gi.TypeCode)
			}
		}
	})
}
