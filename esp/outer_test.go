package esp

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// outerCases are the four outer framings: IPv4 or IPv6, raw ESP or ESP in
// UDP (RFC 3948).
var outerCases = []struct {
	name     string
	src, dst netip.AddrPort
	udp      bool
}{
	{"v4", netip.MustParseAddrPort("198.51.100.1:4500"), netip.MustParseAddrPort("203.0.113.7:4500"), false},
	{"v4-udp", netip.MustParseAddrPort("198.51.100.1:4500"), netip.MustParseAddrPort("203.0.113.7:33000"), true},
	{"v6", netip.MustParseAddrPort("[2001:db8::1]:4500"), netip.MustParseAddrPort("[2001:db8:1::7]:4500"), false},
	{"v6-udp", netip.MustParseAddrPort("[2001:db8::1]:4501"), netip.MustParseAddrPort("[2001:db8:1::7]:4500"), true},
}

// outerESP is an ESP packet as WriteOuter gets it: SPI, sequence number
// and some ciphertext.
func outerESP(n int) []byte {
	p := make([]byte, n)
	copy(p, []byte{0x00, 0x00, 0x12, 0x34, 0, 0, 0, 9})
	for i := 8; i < n; i++ {
		p[i] = byte(i * 13)
	}
	return p
}

// gopacketOuter builds with gopacket what WriteOuter should produce: IPv4
// with DF, TTL 64 and ID 0, or IPv6 with hop limit 64; the UDP checksum is
// zero over IPv4 (RFC 3948 section 2.1) and computed over IPv6.
func gopacketOuter(t *testing.T, src, dst netip.AddrPort, udp bool, esp []byte) []byte {
	t.Helper()
	var ls []gopacket.SerializableLayer
	var nl gopacket.NetworkLayer
	proto := layers.IPProtocolESP
	if udp {
		proto = layers.IPProtocolUDP
	}
	if src.Addr().Is4() {
		ip := &layers.IPv4{Version: 4, TTL: 64, Flags: layers.IPv4DontFragment, Protocol: proto,
			SrcIP: net.IP(src.Addr().AsSlice()), DstIP: net.IP(dst.Addr().AsSlice())}
		ls, nl = append(ls, ip), ip
	} else {
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: proto,
			SrcIP: net.IP(src.Addr().AsSlice()), DstIP: net.IP(dst.Addr().AsSlice())}
		ls, nl = append(ls, ip), ip
	}
	if udp {
		u := &layers.UDP{SrcPort: layers.UDPPort(src.Port()), DstPort: layers.UDPPort(dst.Port())}
		if err := u.SetNetworkLayerForChecksum(nl); err != nil {
			t.Fatal(err)
		}
		ls = append(ls, u)
	}
	ls = append(ls, gopacket.Payload(esp))
	sb := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	p := append([]byte(nil), sb.Bytes()...)
	if udp && src.Addr().Is4() {
		p[26], p[27] = 0, 0
	}
	return p
}

func TestWriteOuterMatchesGopacketAndParses(t *testing.T) {
	for _, c := range outerCases {
		for _, n := range []int{8, 77, 1400} {
			t.Run(fmt.Sprintf("%s/%d", c.name, n), func(t *testing.T) {
				esp := outerESP(n)
				buf := make([]byte, 100+n)
				copy(buf[64:], esp)
				s, err := WriteOuter(buf, 64, 64+n, c.src, c.dst, c.udp)
				if err != nil {
					t.Fatal(err)
				}
				got := buf[s : 64+n]
				if want := gopacketOuter(t, c.src, c.dst, c.udp, esp); !bytes.Equal(got, want) {
					t.Fatalf("WriteOuter:\n got %x\nwant %x", got[:64-s], want[:64-s])
				}
				if s != 64-OuterLen(!c.src.Addr().Is4(), c.udp) {
					t.Fatalf("start %d, OuterLen %d", s, OuterLen(!c.src.Addr().Is4(), c.udp))
				}
				off, from, udp, err := ParseOuter(got)
				if err != nil || off != 64-s || udp != c.udp || from.Addr() != c.src.Addr() {
					t.Fatalf("ParseOuter: off %d from %v udp %v err %v", off, from, udp, err)
				}
				wantPort := uint16(0) // raw ESP has no port
				if c.udp {
					wantPort = c.src.Port()
				}
				if from.Port() != wantPort {
					t.Fatalf("ParseOuter: port %d, want %d", from.Port(), wantPort)
				}
			})
		}
	}
}

func TestWriteOuterErrors(t *testing.T) {
	v4, v6 := netip.MustParseAddrPort("198.51.100.1:4500"), netip.MustParseAddrPort("[2001:db8::1]:4500")
	buf := make([]byte, 200)
	for name, f := range map[string]func() (int, error){
		"mixed families":  func() (int, error) { return WriteOuter(buf, 100, 150, v4, v6, false) },
		"invalid address": func() (int, error) { return WriteOuter(buf, 100, 150, netip.AddrPort{}, netip.AddrPort{}, false) },
		"no headroom":     func() (int, error) { return WriteOuter(buf, 27, 150, v4, v4, true) },
		"end before start": func() (int, error) {
			return WriteOuter(buf, 100, 99, v4, v4, false)
		},
		"end beyond buffer": func() (int, error) { return WriteOuter(buf, 100, 201, v6, v6, false) },
		"v4 too long":       func() (int, error) { return WriteOuter(make([]byte, 70000), 28, 65536, v4, v4, true) },
		"v6 too long":       func() (int, error) { return WriteOuter(make([]byte, 70000), 48, 65536+48, v6, v6, true) },
	} {
		if _, err := f(); err != ErrOuter {
			t.Errorf("%s: %v, want ErrOuter", name, err)
		}
	}
}

func TestParseOuterRejects(t *testing.T) {
	good := func(udp bool) []byte {
		buf := make([]byte, 64+40)
		s, err := WriteOuter(buf, 64, len(buf), netip.MustParseAddrPort("198.51.100.1:4500"), netip.MustParseAddrPort("203.0.113.7:4500"), udp)
		if err != nil {
			t.Fatal(err)
		}
		return buf[s:]
	}
	mut := func(b []byte, f func([]byte) []byte) []byte { return f(append([]byte(nil), b...)) }
	for name, p := range map[string][]byte{
		"empty":         nil,
		"version 5":     mut(good(false), func(b []byte) []byte { b[0] = 0x55; return b }),
		"v4 short":      good(false)[:19],
		"v6 short":      {0x60, 0, 0},
		"not ESP":       mut(good(false), func(b []byte) []byte { b[9] = 6; return b }),
		"ESP too short": good(false)[:20+HeaderLen-1],
		"UDP too short": good(true)[:20+8+HeaderLen-1],
		"IKE marker":    mut(good(true), func(b []byte) []byte { clear(b[28:32]); return b }),
	} {
		if _, _, _, err := ParseOuter(p); err != ErrOuter {
			t.Errorf("%s: %v, want ErrOuter", name, err)
		}
	}
}

func BenchmarkWriteOuter(b *testing.B) {
	for _, c := range outerCases {
		b.Run(c.name, func(b *testing.B) {
			buf := make([]byte, 64+1400)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := WriteOuter(buf, 64, len(buf), c.src, c.dst, c.udp); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkParseOuter(b *testing.B) {
	for _, c := range outerCases {
		b.Run(c.name, func(b *testing.B) {
			buf := make([]byte, 64+1400)
			copy(buf[64:], outerESP(1400))
			s, err := WriteOuter(buf, 64, len(buf), c.src, c.dst, c.udp)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, _, _, err := ParseOuter(buf[s:]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
