package header

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// serialize builds a packet with gopacket, lengths filled in. When the
// first layer is IPv4 or IPv6, the transport checksums are computed over
// its pseudo-header too; a transport layer on its own keeps checksum 0.
func serialize(t testing.TB, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	opts := gopacket.SerializeOptions{FixLengths: true}
	if nl, ok := ls[0].(gopacket.NetworkLayer); ok {
		opts.ComputeChecksums = true
		for _, l := range ls[1:] {
			if c, ok := l.(interface {
				SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
			}); ok {
				if err := c.SetNetworkLayerForChecksum(nl); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	sb := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(sb, opts, ls...); err != nil {
		t.Fatal(err)
	}
	return append([]byte(nil), sb.Bytes()...)
}

func payloadBytes(n int) gopacket.Payload {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + 3)
	}
	return p
}

// decodeIPv4 decodes b with gopacket; the test compares our accessors
// with what it finds.
func decodeIPv4(t *testing.T, b []byte) *layers.IPv4 {
	t.Helper()
	var ip layers.IPv4
	if err := ip.DecodeFromBytes(b, gopacket.NilDecodeFeedback); err != nil {
		t.Fatalf("gopacket: %v", err)
	}
	return &ip
}

func TestIPv4AgainstGopacket(t *testing.T) {
	src, dst := net.IP{198, 51, 100, 1}, net.IP{203, 0, 113, 77}
	cases := []struct {
		name string
		ip   layers.IPv4
		rest []gopacket.SerializableLayer
	}{
		{"udp DF", layers.IPv4{TOS: 0x2e, Id: 4242, Flags: layers.IPv4DontFragment, TTL: 64, Protocol: layers.IPProtocolUDP},
			[]gopacket.SerializableLayer{&layers.UDP{SrcPort: 4500, DstPort: 4500}, payloadBytes(100)}},
		{"tcp no flags", layers.IPv4{Id: 1, TTL: 1, Protocol: layers.IPProtocolTCP},
			[]gopacket.SerializableLayer{&layers.TCP{SrcPort: 40000, DstPort: 443, Seq: 7, Ack: 9, ACK: true, Window: 512}, payloadBytes(1)}},
		{"first fragment", layers.IPv4{Id: 0xffff, Flags: layers.IPv4MoreFragments, TTL: 255, Protocol: layers.IPProtocolICMPv4},
			[]gopacket.SerializableLayer{&layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(8, 0), Id: 3, Seq: 4}, payloadBytes(40)}},
		{"middle fragment", layers.IPv4{Flags: layers.IPv4MoreFragments, FragOffset: 185, TTL: 64, Protocol: layers.IPProtocolUDP},
			[]gopacket.SerializableLayer{payloadBytes(64)}},
		{"last fragment, evil bit", layers.IPv4{Flags: layers.IPv4EvilBit, FragOffset: 8191, TTL: 64, Protocol: layers.IPProtocolESP},
			[]gopacket.SerializableLayer{payloadBytes(24)}},
		{"options", layers.IPv4{TTL: 64, Protocol: layers.IPProtocolUDP, Options: []layers.IPv4Option{
			{OptionType: 0x94, OptionLength: 4, OptionData: []byte{0, 0}}, // router alert
			{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}}},
			[]gopacket.SerializableLayer{&layers.UDP{SrcPort: 1, DstPort: 2}, payloadBytes(3)}},
		{"header only", layers.IPv4{TTL: 64, Protocol: 253}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.ip.Version, c.ip.SrcIP, c.ip.DstIP = 4, src, dst
			b := serialize(t, append([]gopacket.SerializableLayer{&c.ip}, c.rest...)...)
			g := decodeIPv4(t, b)
			// Trailing bytes (padding of a short Ethernet frame) are not
			// part of the packet.
			buf := append(b[:len(b):len(b)], 0xee, 0xee, 0xee)
			ip := IPv4(buf)
			if !ip.Valid() {
				t.Fatal("not valid")
			}
			if ip.Version() != 4 || ip.HeaderLength() != int(g.IHL)*4 || ip.TOS() != g.TOS ||
				ip.TotalLength() != int(g.Length) || ip.ID() != g.Id || ip.TTL() != g.TTL ||
				ip.Protocol() != uint8(g.Protocol) || ip.Checksum() != g.Checksum {
				t.Fatalf("fixed fields differ from gopacket's %+v", g)
			}
			if ip.Flags() != uint16(g.Flags)<<13 || ip.FragmentOffset() != int(g.FragOffset)*8 ||
				ip.IsFragment() != (g.Flags&layers.IPv4MoreFragments != 0 || g.FragOffset != 0) {
				t.Fatalf("flags %#x offset %d, gopacket %v %d", ip.Flags(), ip.FragmentOffset(), g.Flags, g.FragOffset)
			}
			if ip.Flags()&IPv4DontFragment != 0 != (g.Flags&layers.IPv4DontFragment != 0) ||
				ip.Flags()&IPv4MoreFragments != 0 != (g.Flags&layers.IPv4MoreFragments != 0) {
				t.Fatalf("flag constants: %#x vs %v", ip.Flags(), g.Flags)
			}
			if !bytes.Equal(ip.Src(), g.SrcIP.To4()) || !bytes.Equal(ip.Dst(), g.DstIP.To4()) ||
				ip.SrcAddr() != netip.AddrFrom4([4]byte(src)) || ip.DstAddr() != netip.AddrFrom4([4]byte(dst)) {
				t.Fatalf("addresses %v %v", ip.SrcAddr(), ip.DstAddr())
			}
			if !bytes.Equal(ip.Payload(), g.Payload) {
				t.Fatalf("payload %d bytes, gopacket %d", len(ip.Payload()), len(g.Payload))
			}
			// The checksum gopacket computed verifies, and ours is the same.
			want := ip.Checksum()
			ip.UpdateChecksum()
			if ip.Checksum() != want {
				t.Fatalf("UpdateChecksum %#x, gopacket %#x", ip.Checksum(), want)
			}
		})
	}
}

func TestIPv4EncodeAndSetters(t *testing.T) {
	f := IPv4Fields{TOS: 0xb8, TotalLength: 60, ID: 0xbeef, Flags: IPv4DontFragment, TTL: 17, Protocol: ProtoESP,
		Src: [4]byte{10, 1, 2, 3}, Dst: [4]byte{10, 9, 8, 7}}
	b := make([]byte, 60)
	for i := range b {
		b[i] = 0xa5 // Encode must not depend on what was there
	}
	ip := IPv4(b)
	ip.Encode(&f)
	want := serialize(t, &layers.IPv4{Version: 4, TOS: 0xb8, Id: 0xbeef, Flags: layers.IPv4DontFragment, TTL: 17,
		Protocol: layers.IPProtocolESP, SrcIP: net.IP(f.Src[:]), DstIP: net.IP(f.Dst[:])}, payloadBytes(40))
	if !bytes.Equal(b[:IPv4MinLen], want[:IPv4MinLen]) {
		t.Fatalf("Encode:\n got %x\nwant %x", b[:IPv4MinLen], want[:IPv4MinLen])
	}
	ip.SetTotalLength(1500)
	ip.SetID(7)
	if ip.TotalLength() != 1500 || ip.ID() != 7 {
		t.Fatalf("setters: %d %d", ip.TotalLength(), ip.ID())
	}
	ip.UpdateChecksum()
	g := decodeIPv4(t, append(append([]byte(nil), b...), make([]byte, 1440)...))
	if g.Length != 1500 || g.Id != 7 || ip.Checksum() != checksumOf(b[:IPv4MinLen], ipv4Checksum) {
		t.Fatalf("after setters: %+v, checksum %#x", g, ip.Checksum())
	}
	ip.SetChecksum(0x1234)
	if ip.Checksum() != 0x1234 {
		t.Fatal("SetChecksum")
	}
}

// checksumOf is the RFC 1071 checksum of b with the 16-bit field at
// field taken as zero, written the slow, obvious way.
func checksumOf(b []byte, field int) uint16 {
	var s uint32
	for i := 0; i < len(b); i += 2 {
		w := uint32(b[i]) << 8
		if i+1 < len(b) {
			w |= uint32(b[i+1])
		}
		if i != field {
			s += w
		}
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return ^uint16(s)
}

func TestIPv6AgainstGopacket(t *testing.T) {
	src, dst := net.ParseIP("2001:db8::1"), net.ParseIP("2001:db8:ffff::fe")
	cases := []struct {
		name string
		ip   layers.IPv6
		rest []gopacket.SerializableLayer
	}{
		{"udp", layers.IPv6{TrafficClass: 0xb8, FlowLabel: 0xabcde, HopLimit: 64, NextHeader: layers.IPProtocolUDP},
			[]gopacket.SerializableLayer{&layers.UDP{SrcPort: 500, DstPort: 500}, payloadBytes(33)}},
		{"tcp", layers.IPv6{FlowLabel: 1, HopLimit: 1, NextHeader: layers.IPProtocolTCP},
			[]gopacket.SerializableLayer{&layers.TCP{SrcPort: 1, DstPort: 2, SYN: true}}},
		{"no next header", layers.IPv6{TrafficClass: 0xff, FlowLabel: 0xfffff, HopLimit: 255, NextHeader: layers.IPProtocolNoNextHeader},
			[]gopacket.SerializableLayer{payloadBytes(8)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.ip.Version, c.ip.SrcIP, c.ip.DstIP = 6, src, dst
			b := serialize(t, append([]gopacket.SerializableLayer{&c.ip}, c.rest...)...)
			var g layers.IPv6
			if err := g.DecodeFromBytes(b, gopacket.NilDecodeFeedback); err != nil {
				t.Fatal(err)
			}
			ip := IPv6(append(b[:len(b):len(b)], 1, 2, 3))
			if !ip.Valid() {
				t.Fatal("not valid")
			}
			if ip.Version() != 6 || ip.TrafficClass() != g.TrafficClass || ip.FlowLabel() != g.FlowLabel ||
				ip.PayloadLength() != int(g.Length) || ip.NextHeader() != uint8(g.NextHeader) || ip.HopLimit() != g.HopLimit {
				t.Fatalf("fixed fields differ from gopacket's %+v", g)
			}
			if !bytes.Equal(ip.Src(), g.SrcIP) || !bytes.Equal(ip.Dst(), g.DstIP) ||
				ip.SrcAddr() != netip.MustParseAddr("2001:db8::1") || ip.DstAddr() != netip.MustParseAddr("2001:db8:ffff::fe") {
				t.Fatalf("addresses %v %v", ip.SrcAddr(), ip.DstAddr())
			}
			if !bytes.Equal(ip.Payload(), g.Payload) {
				t.Fatalf("payload %x, gopacket %x", ip.Payload(), g.Payload)
			}
			// Encode writes the same fixed header.
			var f IPv6Fields
			f.TrafficClass, f.FlowLabel, f.PayloadLength = c.ip.TrafficClass, c.ip.FlowLabel, uint16(g.Length)
			f.NextHeader, f.HopLimit = uint8(c.ip.NextHeader), c.ip.HopLimit
			copy(f.Src[:], src)
			copy(f.Dst[:], dst)
			enc := IPv6(bytes.Repeat([]byte{0x5a}, IPv6Len))
			enc.Encode(&f)
			if !bytes.Equal(enc, b[:IPv6Len]) {
				t.Fatalf("Encode:\n got %x\nwant %x", []byte(enc), b[:IPv6Len])
			}
		})
	}
}

// ah builds an Authentication Header of n 4-byte words (RFC 4302 §2.2).
func ah(next uint8, words int) []byte {
	b := make([]byte, words*4)
	b[0], b[1] = next, byte(words-2)
	binary.BigEndian.PutUint32(b[4:], 0x1000) // SPI
	binary.BigEndian.PutUint32(b[8:], 1)      // sequence number
	return b
}

// lastExtension decodes an IPv6 packet with gopacket and returns what
// follows its last extension header (gopacket stops at a Fragment header
// even of a first fragment) and the type that header names.
func lastExtension(t *testing.T, pkt []byte) ([]byte, uint8) {
	t.Helper()
	p := gopacket.NewPacket(pkt, layers.LayerTypeIPv6, gopacket.Default)
	if err := p.ErrorLayer(); err != nil {
		t.Fatal(err.Error())
	}
	var up []byte
	var next uint8
	for _, l := range p.Layers() {
		switch h := l.(type) {
		case *layers.IPv6HopByHop:
			up, next = h.LayerPayload(), uint8(h.NextHeader)
		case *layers.IPv6Routing:
			up, next = h.LayerPayload(), uint8(h.NextHeader)
		case *layers.IPv6Fragment:
			up, next = h.LayerPayload(), uint8(h.NextHeader)
		case *layers.IPv6Destination:
			up, next = h.LayerPayload(), uint8(h.NextHeader)
		case *layers.IPSecAH:
			up, next = h.LayerPayload(), uint8(h.NextHeader)
		}
	}
	if up == nil {
		t.Fatalf("gopacket found no extension header in %v", p)
	}
	return up, next
}

// walk follows the chain of extension headers as a caller of Next does.
func walk(ip IPv6) (proto uint8, l4 []byte, first, ok bool) {
	proto, l4 = ip.NextHeader(), ip.Payload()
	for n := 0; IsIPv6Extension(proto); n++ {
		next, rest, isFirst, ok := IPv6Extension(l4).Next(proto)
		if !ok {
			return 0, nil, false, false
		}
		proto, l4 = next, rest
		if !isFirst {
			return proto, l4, false, true
		}
		if n == MaxIPv6Extensions {
			return 0, nil, false, false
		}
	}
	return proto, l4, true, true
}

func TestIPv6ExtensionsAgainstGopacket(t *testing.T) {
	hbh := &layers.IPv6HopByHop{}
	hbh.Options = []*layers.IPv6HopByHopOption{
		{OptionType: 5, OptionLength: 2, OptionData: []byte{0, 0}}, // router alert
		{OptionType: 1, OptionLength: 0},                           // PadN to 8 bytes
	}
	routing := &layers.IPv6Routing{RoutingType: 4, SegmentsLeft: 0, Reserved: make([]byte, 4), Data: make([]byte, 16)}
	frag := &layers.IPv6Fragment{Identification: 99, MoreFragments: true}
	dest := &layers.IPv6Destination{Options: []*layers.IPv6DestinationOption{{OptionType: 1, OptionLength: 12, OptionData: make([]byte, 12)}}}
	udp := &layers.UDP{SrcPort: 5000, DstPort: 6000}
	src, dst := net.ParseIP("fd00::1"), net.ParseIP("fd00::2")
	chain := func(ls ...gopacket.SerializableLayer) []byte {
		// Each header's NextHeader is the type of the layer after it.
		types := make([]layers.IPProtocol, len(ls))
		for i, l := range ls {
			switch l.(type) {
			case *layers.IPv6HopByHop:
				types[i] = layers.IPProtocolIPv6HopByHop
			case *layers.IPv6Routing:
				types[i] = layers.IPProtocolIPv6Routing
			case *layers.IPv6Fragment:
				types[i] = layers.IPProtocolIPv6Fragment
			case *layers.IPv6Destination:
				types[i] = layers.IPProtocolIPv6Destination
			case *layers.UDP:
				types[i] = layers.IPProtocolUDP
			}
		}
		ip := &layers.IPv6{Version: 6, HopLimit: 64, SrcIP: src, DstIP: dst, NextHeader: types[0]}
		for i, l := range ls[:len(ls)-1] {
			switch h := l.(type) {
			case *layers.IPv6HopByHop:
				h.NextHeader = types[i+1]
			case *layers.IPv6Routing:
				h.NextHeader = types[i+1]
			case *layers.IPv6Fragment:
				h.NextHeader = types[i+1]
			case *layers.IPv6Destination:
				h.NextHeader = types[i+1]
			}
		}
		if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		return serialize(t, append([]gopacket.SerializableLayer{ip}, append(ls, payloadBytes(20))...)...)
	}
	for name, pkt := range map[string][]byte{
		"hop-by-hop":     chain(hbh, udp),
		"all four":       chain(hbh, dest, routing, frag, udp), // in the order of RFC 8200 §4.1
		"routing, dest":  chain(routing, dest, udp),
		"first fragment": chain(frag, udp),
	} {
		t.Run(name, func(t *testing.T) {
			up, next := lastExtension(t, pkt)
			ip := IPv6(pkt)
			proto, l4, first, ok := walk(ip)
			if !ip.Valid() || !ok || !first || proto != next || proto != ProtoUDP {
				t.Fatalf("walk: proto %d first %v ok %v; gopacket's next header %d", proto, first, ok, next)
			}
			if !bytes.Equal(l4, up) {
				t.Fatalf("upper layer %x, gopacket %x", l4, up)
			}
		})
	}

	// AH in the chain, which gopacket decodes but does not build.
	p := chain(hbh, udp)
	ahBytes := ah(ProtoUDP, 6)
	withAH := append(append(append([]byte(nil), p[:IPv6Len+8]...), ahBytes...), p[IPv6Len+8:]...)
	withAH[IPv6Len] = ProtoAH // hop-by-hop's next header
	binary.BigEndian.PutUint16(withAH[4:], uint16(len(withAH)-IPv6Len))
	up, next := lastExtension(t, withAH)
	proto, l4, first, ok := walk(IPv6(withAH))
	if !ok || !first || proto != next || proto != ProtoUDP || !bytes.Equal(l4, up) {
		t.Fatalf("walk over AH: proto %d first %v ok %v; gopacket's next header %d", proto, first, ok, next)
	}

	// A non-first fragment names its protocol but carries no header of it.
	later := &layers.IPv6Fragment{Identification: 99, FragmentOffset: 185, NextHeader: layers.IPProtocolTCP}
	ip := &layers.IPv6{Version: 6, HopLimit: 64, SrcIP: src, DstIP: dst, NextHeader: layers.IPProtocolIPv6Fragment}
	b := serialize(t, ip, later, payloadBytes(48))
	proto, l4, first, ok = walk(IPv6(b))
	if !ok || first || proto != ProtoTCP || !bytes.Equal(l4, payloadBytes(48)) {
		t.Fatalf("non-first fragment: proto %d first %v ok %v", proto, first, ok)
	}
}

// extChain builds an IPv6 packet whose headers have the given types: the
// fixed header names types[0], each 8-byte extension header the next, and
// 8 bytes of the last type follow. A Fragment header among them is one of
// a non-first fragment when nonFirst.
func extChain(nonFirst bool, types ...uint8) IPv6 {
	b := make([]byte, IPv6Len)
	b[0], b[6] = 0x60, types[0]
	for i, typ := range types[:len(types)-1] {
		e := make([]byte, 8)
		e[0] = types[i+1]
		if typ == ProtoFragment && nonFirst {
			binary.BigEndian.PutUint16(e[2:], 1<<3) // offset 8 bytes
		}
		b = append(b, e...)
	}
	b = append(b, make([]byte, 8)...)
	binary.BigEndian.PutUint16(b[4:], uint16(len(b)-IPv6Len))
	return IPv6(b)
}

func TestIPv6ExtensionLimit(t *testing.T) {
	destOpts := func(n int, last ...uint8) []uint8 {
		ts := make([]uint8, n, n+len(last))
		for i := range ts {
			ts[i] = ProtoDestOpts
		}
		return append(ts, last...)
	}
	if _, _, first, ok := walk(extChain(false, destOpts(MaxIPv6Extensions, ProtoUDP)...)); !ok || !first {
		t.Fatalf("%d extension headers refused", MaxIPv6Extensions)
	}
	if _, _, _, ok := walk(extChain(false, destOpts(MaxIPv6Extensions+1, ProtoUDP)...)); ok {
		t.Fatalf("%d extension headers accepted", MaxIPv6Extensions+1)
	}
	// One header past the limit still ends the walk if it is the Fragment
	// header of a non-first fragment: nothing after it is stepped over.
	ts := destOpts(MaxIPv6Extensions, ProtoFragment, ProtoTCP)
	if proto, _, first, ok := walk(extChain(true, ts...)); !ok || first || proto != ProtoTCP {
		t.Fatalf("non-first fragment as header %d: proto %d first %v ok %v", MaxIPv6Extensions+1, proto, first, ok)
	}
	if _, _, _, ok := walk(extChain(false, ts...)); ok {
		t.Fatalf("first fragment as header %d accepted", MaxIPv6Extensions+1)
	}
	for typ := range 256 {
		want := typ == ProtoHopByHop || typ == ProtoRouting || typ == ProtoFragment || typ == ProtoDestOpts || typ == ProtoAH
		if IsIPv6Extension(uint8(typ)) != want {
			t.Errorf("IsIPv6Extension(%d) = %v", typ, !want)
		}
	}
}

func TestTransportAgainstGopacket(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		var ip gopacket.NetworkLayer
		var ipLayer gopacket.SerializableLayer
		if v6 {
			l := &layers.IPv6{Version: 6, HopLimit: 64, SrcIP: net.ParseIP("2001:db8::a"), DstIP: net.ParseIP("2001:db8::b")}
			ip, ipLayer = l, l
		} else {
			l := &layers.IPv4{Version: 4, TTL: 64, SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2}}
			ip, ipLayer = l, l
		}
		setProto := func(p layers.IPProtocol) {
			if v6 {
				ipLayer.(*layers.IPv6).NextHeader = p
			} else {
				ipLayer.(*layers.IPv4).Protocol = p
			}
		}
		pseudo := func(b []byte, proto uint8) uint64 {
			if v6 {
				return IPv6(b).PseudoHeaderSum(proto, len(b)-IPv6Len)
			}
			return IPv4(b).PseudoHeaderSum(proto, len(b)-IPv4MinLen)
		}
		hl := IPv4MinLen
		if v6 {
			hl = IPv6Len
		}

		for _, n := range []int{0, 1, 999} {
			setProto(layers.IPProtocolUDP)
			u := &layers.UDP{SrcPort: 4500, DstPort: 65535}
			if err := u.SetNetworkLayerForChecksum(ip); err != nil {
				t.Fatal(err)
			}
			b := serialize(t, ipLayer, u, payloadBytes(n))
			udp := UDP(b[hl:])
			if udp.SrcPort() != 4500 || udp.DstPort() != 65535 || udp.Length() != UDPLen+n || udp.Checksum() != u.Checksum {
				t.Fatalf("v6=%v UDP %d: fields differ from gopacket's %+v", v6, n, u)
			}
			if s, d := Ports(udp); s != 4500 || d != 65535 {
				t.Fatalf("Ports %d %d", s, d)
			}
			want := udp.Checksum()
			udp.UpdateChecksum(pseudo(b, ProtoUDP))
			if udp.Checksum() != want {
				t.Fatalf("v6=%v UDP %d: UpdateChecksum %#x, gopacket %#x", v6, n, udp.Checksum(), want)
			}
			enc := UDP(bytes.Repeat([]byte{0xff}, UDPLen))
			enc.Encode(4500, 65535, uint16(UDPLen+n))
			if !bytes.Equal(enc[:6], b[hl:hl+6]) || enc.Checksum() != 0 {
				t.Fatalf("Encode %x", []byte(enc))
			}
		}

		setProto(layers.IPProtocolTCP)
		tc := &layers.TCP{SrcPort: 33000, DstPort: 22, Seq: 0xfedcba98, Ack: 0x01234567, DataOffset: 8,
			ECE: true, CWR: true, PSH: true, ACK: true, Window: 0x8001, Urgent: 0x1234, URG: true,
			Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: make([]byte, 8)},
				{OptionType: layers.TCPOptionKindNop}, {OptionType: layers.TCPOptionKindNop}}}
		if err := tc.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		b := serialize(t, ipLayer, tc, payloadBytes(77))
		var g layers.TCP
		if err := g.DecodeFromBytes(b[hl:], gopacket.NilDecodeFeedback); err != nil {
			t.Fatal(err)
		}
		tcp := TCP(b[hl:])
		var flags uint8
		for bit, set := range map[uint8]bool{TCPFlagFIN: g.FIN, TCPFlagSYN: g.SYN, TCPFlagRST: g.RST, TCPFlagPSH: g.PSH,
			TCPFlagACK: g.ACK, TCPFlagURG: g.URG, TCPFlagECE: g.ECE, TCPFlagCWR: g.CWR} {
			if set {
				flags |= bit
			}
		}
		if tcp.SrcPort() != uint16(g.SrcPort) || tcp.DstPort() != uint16(g.DstPort) || tcp.SeqNumber() != g.Seq ||
			tcp.AckNumber() != g.Ack || tcp.DataOffset() != int(g.DataOffset)*4 || tcp.Flags() != flags ||
			tcp.Reserved() != 0 || tcp.Window() != g.Window || tcp.Checksum() != g.Checksum || tcp.UrgentPointer() != g.Urgent {
			t.Fatalf("v6=%v TCP fields differ from gopacket's %+v", v6, g)
		}
		if !bytes.Equal(tcp.Options(), b[hl+TCPMinLen:hl+int(g.DataOffset)*4]) || len(tcp.Options()) != 12 {
			t.Fatalf("options %x", tcp.Options())
		}
		want := tcp.Checksum()
		tcp.UpdateChecksum(pseudo(b, ProtoTCP))
		if tcp.Checksum() != want {
			t.Fatalf("v6=%v TCP UpdateChecksum %#x, gopacket %#x", v6, tcp.Checksum(), want)
		}
		tcp.SetSeqNumber(1)
		tcp.SetFlags(TCPFlagFIN | TCPFlagACK)
		tcp.SetChecksum(0xabcd)
		if err := g.DecodeFromBytes(b[hl:], gopacket.NilDecodeFeedback); err != nil || g.Seq != 1 || !g.FIN || !g.ACK || g.PSH ||
			g.Checksum != 0xabcd || g.DataOffset != 8 {
			t.Fatalf("after setters: %+v %v", g, err)
		}
		b[hl+12] |= 0x01 // AccECN's AE bit
		if tcp.Reserved() != 1 || tcp.DataOffset() != 32 {
			t.Fatalf("reserved bits %#x", tcp.Reserved())
		}
	}
}

func TestICMPAgainstGopacket(t *testing.T) {
	ip6 := &layers.IPv6{Version: 6, HopLimit: 1, NextHeader: layers.IPProtocolICMPv6, SrcIP: net.ParseIP("::1"), DstIP: net.ParseIP("::2")}
	b4 := serialize(t, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(3, 4), Seq: 1})
	b6 := serialize(t, ip6, &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(1, 3)})[IPv6Len:]
	for _, c := range []struct {
		b          []byte
		typ, code  uint8
		typeCode16 uint16
	}{{b4, 3, 4, 0x0304}, {b6, 1, 3, 0x0103}} {
		m := ICMP(c.b)
		if m.Type() != c.typ || m.Code() != c.code || m.TypeCode() != c.typeCode16 {
			t.Errorf("ICMP %x: type %d code %d typecode %#x", c.b, m.Type(), m.Code(), m.TypeCode())
		}
	}
}

func TestUDPChecksumZeroIsSentAsOnes(t *testing.T) {
	// A datagram whose last payload word is its own checksum (computed
	// with that word zero) sums to all ones: its computed checksum is 0,
	// which UDP sends as 0xffff (RFC 768).
	b := serialize(t, &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolUDP,
		SrcIP: net.ParseIP("2001:db8::1"), DstIP: net.ParseIP("2001:db8::2")},
		&layers.UDP{SrcPort: 4500, DstPort: 4500}, payloadBytes(10), gopacket.Payload{0, 0})
	ip := IPv6(b)
	udp := UDP(ip.Payload())
	pseudo := ip.PseudoHeaderSum(ProtoUDP, len(udp))
	udp.UpdateChecksum(pseudo)
	copy(udp[len(udp)-2:], []byte{byte(udp.Checksum() >> 8), byte(udp.Checksum())})
	udp.UpdateChecksum(pseudo)
	if udp.Checksum() != 0xffff {
		t.Fatalf("checksum %#x, want 0xffff", udp.Checksum())
	}
	if checksumOf(append(srcDstPseudo(ip, ProtoUDP, len(udp)), udp...), -1) != 0 {
		t.Fatal("the datagram does not verify")
	}
}

// srcDstPseudo is the IPv6 pseudo-header (RFC 8200 §8.1) as bytes.
func srcDstPseudo(ip IPv6, proto uint8, n int) []byte {
	p := append(append([]byte(nil), ip.Src()...), ip.Dst()...)
	return append(p, 0, 0, byte(n>>8), byte(n), 0, 0, 0, proto)
}

func TestIPVersionAndAddrs(t *testing.T) {
	if IPVersion(nil) != 0 || IPVersion([]byte{0x45}) != 4 || IPVersion([]byte{0x60}) != 6 || IPVersion([]byte{0xf0}) != 15 {
		t.Fatal("IPVersion")
	}
	v4 := serialize(t, &layers.IPv4{Version: 4, TTL: 1, SrcIP: net.IP{1, 2, 3, 4}, DstIP: net.IP{5, 6, 7, 8}})
	if s, d := Addrs(v4, false); !bytes.Equal(s, []byte{1, 2, 3, 4}) || !bytes.Equal(d, []byte{5, 6, 7, 8}) {
		t.Fatalf("Addrs v4 %v %v", s, d)
	}
	v6 := serialize(t, &layers.IPv6{Version: 6, SrcIP: net.ParseIP("::1"), DstIP: net.ParseIP("ff02::2")})
	if s, d := Addrs(v6, true); !bytes.Equal(s, net.ParseIP("::1")) || !bytes.Equal(d, net.ParseIP("ff02::2")) {
		t.Fatalf("Addrs v6 %v %v", s, d)
	}
}
