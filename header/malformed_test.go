package header

import (
	"encoding/binary"
	"net"
	"testing"

	"github.com/gopacket/gopacket/layers"
)

// readIPv4 calls every IPv4 accessor; after Valid none may panic.
func readIPv4(ip IPv4) {
	_, _, _, _ = ip.Version(), ip.HeaderLength(), ip.TOS(), ip.TotalLength()
	_, _, _, _ = ip.ID(), ip.Flags(), ip.FragmentOffset(), ip.IsFragment()
	_, _, _ = ip.TTL(), ip.Protocol(), ip.Checksum()
	_, _, _, _ = ip.Src(), ip.Dst(), ip.SrcAddr(), ip.DstAddr()
	_ = ip.Payload()
	_ = ip.PseudoHeaderSum(ProtoUDP, len(ip.Payload()))
}

// readIPv6 calls every IPv6 accessor and walks the extension headers.
func readIPv6(ip IPv6) {
	_, _, _, _ = ip.Version(), ip.TrafficClass(), ip.FlowLabel(), ip.PayloadLength()
	_, _ = ip.NextHeader(), ip.HopLimit()
	_, _, _, _ = ip.Src(), ip.Dst(), ip.SrcAddr(), ip.DstAddr()
	_ = ip.PseudoHeaderSum(ProtoUDP, len(ip.Payload()))
	walk(ip)
}

func TestIPv4Malformed(t *testing.T) {
	good := serialize(t, &layers.IPv4{Version: 4, IHL: 6, TTL: 64, Protocol: layers.IPProtocolUDP,
		SrcIP: net.IP{10, 0, 0, 1}, DstIP: net.IP{10, 0, 0, 2},
		Options: []layers.IPv4Option{{OptionType: 1}, {OptionType: 1}, {OptionType: 1}, {OptionType: 0}}},
		payloadBytes(12))
	if !IPv4(good).Valid() || IPv4(good).HeaderLength() != 24 {
		t.Fatalf("the good packet is not: %x", good)
	}
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	setTotal := func(n int) []byte {
		return mut(func(b []byte) []byte { binary.BigEndian.PutUint16(b[2:], uint16(n)); return b })
	}
	for name, b := range map[string][]byte{
		"empty":              nil,
		"one byte":           {0x45},
		"19 bytes":           good[:19],
		"version 6":          mut(func(b []byte) []byte { b[0] = 0x66; return b }),
		"version 0":          mut(func(b []byte) []byte { b[0] = 0x06; return b }),
		"IHL 4":              mut(func(b []byte) []byte { b[0] = 0x44; return b }),
		"IHL 0":              mut(func(b []byte) []byte { b[0] = 0x40; return b }),
		"IHL beyond total":   mut(func(b []byte) []byte { b[0] = 0x4f; return b }), // 60 > 36
		"total beyond data":  setTotal(len(good) + 1),
		"total 65535":        setTotal(65535),
		"total below header": setTotal(23),
		"total 0":            setTotal(0),
		"total 19":           setTotal(19),
	} {
		if IPv4(b).Valid() {
			t.Errorf("%s: valid: %x", name, b)
		}
	}
	// Every cut short of the total length is refused; from there on, the
	// packet is valid and Payload ends at the total length.
	for n := range len(good) + 8 {
		b := append(append([]byte(nil), good...), make([]byte, 8)...)[:n]
		ip := IPv4(b)
		if ip.Valid() != (n >= len(good)) {
			t.Fatalf("%d of %d bytes: valid %v", n, len(good), ip.Valid())
		}
		if ip.Valid() {
			readIPv4(ip)
			if len(ip.Payload()) != len(good)-24 {
				t.Fatalf("%d bytes: payload %d", n, len(ip.Payload()))
			}
		}
	}
}

func TestIPv6Malformed(t *testing.T) {
	good := []byte(extChain(false, ProtoHopByHop, ProtoFragment, ProtoUDP))
	mut := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for name, b := range map[string][]byte{
		"empty":                    nil,
		"39 bytes":                 good[:39],
		"version 4":                mut(func(b []byte) []byte { b[0] = 0x45; return b }),
		"payload length lies":      mut(func(b []byte) []byte { binary.BigEndian.PutUint16(b[4:], uint16(len(b)-IPv6Len+1)); return b }),
		"payload length 65535":     mut(func(b []byte) []byte { binary.BigEndian.PutUint16(b[4:], 65535); return b }),
		"payload length, one byte": mut(func(b []byte) []byte { return b[:len(b)-1] }),
	} {
		if IPv6(b).Valid() {
			t.Errorf("%s: valid: %x", name, b)
		}
	}
	for n := range len(good) + 8 {
		ip := IPv6(append(append([]byte(nil), good...), make([]byte, 8)...)[:n])
		if ip.Valid() != (n >= len(good)) {
			t.Fatalf("%d of %d bytes: valid %v", n, len(good), ip.Valid())
		}
		if ip.Valid() {
			readIPv6(ip)
		}
	}
	// A chain cut short anywhere, with a payload length that agrees, is
	// valid IPv6 whose walk fails, without a panic, until the upper
	// layer is whole.
	upper := len(good) - 8
	for n := IPv6Len; n <= len(good); n++ {
		b := append([]byte(nil), good[:n]...)
		binary.BigEndian.PutUint16(b[4:], uint16(n-IPv6Len))
		ip := IPv6(b)
		if !ip.Valid() {
			t.Fatalf("cut at %d: not valid", n)
		}
		proto, l4, _, ok := walk(ip)
		if ok != (n >= upper) || ok && (proto != ProtoUDP || len(l4) != n-upper) {
			t.Fatalf("cut at %d: proto %d, %d bytes, ok %v", n, proto, len(l4), ok)
		}
	}
	// Length fields that point past the payload.
	for name, c := range map[string]struct {
		typ uint8
		b   []byte
	}{
		"short":                  {ProtoHopByHop, make([]byte, 7)},
		"hop-by-hop length":      {ProtoHopByHop, []byte{ProtoUDP, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		"routing length":         {ProtoRouting, []byte{ProtoUDP, 255, 0, 0, 0, 0, 0, 0}},
		"destination length":     {ProtoDestOpts, []byte{ProtoUDP, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
		"AH length":              {ProtoAH, ah(ProtoUDP, 6)[:23]},
		"AH of 8 bytes, says 12": {ProtoAH, []byte{ProtoUDP, 1, 0, 0, 0, 0, 0, 0}},
	} {
		if _, _, _, ok := IPv6Extension(c.b).Next(c.typ); ok {
			t.Errorf("%s: accepted", name)
		}
	}
	// The Fragment header is 8 bytes whatever its second byte says.
	if next, rest, first, ok := IPv6Extension([]byte{ProtoTCP, 0xff, 0, 0, 0, 0, 0, 1, 9}).Next(ProtoFragment); !ok || next != ProtoTCP || !first || len(rest) != 1 {
		t.Errorf("fragment header: %d %x %v %v", next, rest, first, ok)
	}
}

func TestTCPMalformed(t *testing.T) {
	good := serialize(t, &layers.TCP{SrcPort: 1, DstPort: 2, DataOffset: 6,
		Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{5, 0xb4}}}})
	if !TCP(good).Valid() || len(TCP(good).Options()) != 4 {
		t.Fatalf("the good segment is not: %x", good)
	}
	for n := range len(good) {
		if TCP(good[:n]).Valid() {
			t.Errorf("%d of %d bytes: valid", n, len(good))
		}
	}
	for off := range 16 {
		b := append([]byte(nil), good...)
		b[12] = byte(off) << 4
		if TCP(b).Valid() != (off == 5 || off == 6) {
			t.Errorf("data offset %d: valid %v", off, TCP(b).Valid())
		}
	}
}
