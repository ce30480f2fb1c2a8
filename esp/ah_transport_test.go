package esp

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"sync"
	"testing"

	"github.com/ipsecgw/ipsecgw/header"
	"github.com/ipsecgw/ipsecgw/sad"
	"github.com/ipsecgw/ipsecgw/spd"
	"github.com/ipsecgw/ipsecgw/transform"
)

// TestAHTransportTwoGateways runs transport-mode AH host to host through
// two dataplanes, both ways, over IPv4 and IPv6: the packets between the
// two hosts' own addresses leave with their own IP header (protocol 51,
// the AH header's Next Header the original protocol), arrive as they were
// sent, and every packet on the wire has the ICV this test computes with
// crypto/hmac over the packet with its mutable fields and ICV zeroed.
func TestAHTransportTwoGateways(t *testing.T) {
	for _, under := range [][2]string{{"198.51.100.1", "198.51.100.2"}, {"2001:db8::1", "2001:db8::2"}} {
		t.Run(under[0], func(t *testing.T) {
			a1, a2 := netip.MustParseAddr(under[0]), netip.MustParseAddr(under[1])
			v6 := a1.Is6()
			ap1, ap2 := netip.AddrPortFrom(a1, 0), netip.AddrPortFrom(a2, 0)
			host := func(a netip.Addr) string { return netip.PrefixFrom(a, a.BitLen()).String() }
			var g1, g2 *gateway
			g1 = newGateway(t, "h1", host(a1), host(a2), ap1, ap2, &g2, 2)
			g2 = newGateway(t, "h2", host(a2), host(a1), ap2, ap1, &g1, 2)
			integ := transform.Transform{Type: transform.TypeINTEG, ID: transform.IntegHMACSHA2_256_128}
			mk := func(dir sad.Direction, spi uint32, g *gateway) *sad.SA {
				p, err := transform.NewAuthProtector(integ, ahKey(spi, 32))
				if err != nil {
					t.Fatal(err)
				}
				sa, err := sad.New(sad.Config{Proto: sad.AH, Transport: true, SPI: spi, Dir: dir, Local: g.addr, Remote: g.peer,
					Selectors: []spd.Selector{g.sel}, Cipher: p, ESN: true, PolicyID: 1})
				if err != nil {
					t.Fatal(err)
				}
				return sa
			}
			for _, p := range []struct {
				g, h *gateway
				spi  uint32
			}{{g1, g2, 0x3101}, {g2, g1, 0x3202}} {
				if err := p.h.sad.InstallInbound(mk(sad.Inbound, p.spi, p.h)); err != nil {
					t.Fatal(err)
				}
				if err := p.g.sad.InstallOutbound(mk(sad.Outbound, p.spi, p.g)); err != nil {
					t.Fatal(err)
				}
			}
			var mu sync.Mutex
			var wire [][]byte
			for _, g := range []*gateway{g1, g2} {
				other := g2
				if g == g2 {
					other = g1
				}
				g.dp.cfg.NewSender = func() Sender {
					s := newMemSender(func() *Dataplane { return other.dp }, g.addr, 64)
					s.tap = func(b []byte, _ netip.AddrPort, udp bool) {
						if udp {
							t.Error("transport-mode AH sent in UDP")
						}
						mu.Lock()
						wire = append(wire, bytes.Clone(b))
						mu.Unlock()
					}
					return s
				}
			}
			g1.dp.Start()
			g2.dp.Start()
			t.Cleanup(func() { g1.dp.Close(); g2.dp.Close() })

			const n = 200
			pkt := func(i int, src, dst netip.Addr) []byte {
				size := 64 + i%700
				if v6 {
					return ipv6Packet(size, src.String(), dst.String())
				}
				p := ipv4Packet(size, src.String(), dst.String(), uint16(i))
				header.IPv4(p).UpdateChecksum()
				return p
			}
			var wg sync.WaitGroup
			wg.Go(func() {
				for i := range n {
					inject(t, g1.tun, pkt(i, a1, a2))
				}
			})
			wg.Go(func() {
				for i := range n {
					inject(t, g2.tun, pkt(i, a2, a1))
				}
			})
			got2, got1 := receive(t, g2.tun, n), receive(t, g1.tun, n)
			wg.Wait()
			for i := range n {
				if !bytes.Equal(got2[i], pkt(i, a1, a2)) || !bytes.Equal(got1[i], pkt(i, a2, a1)) {
					t.Fatalf("packet %d arrived changed:\n% x\nwant\n% x", i, got2[i], pkt(i, a1, a2))
				}
			}
			for _, g := range []*gateway{g1, g2} {
				for r, c := range g.dp.Stats().Drops {
					if c != 0 {
						t.Fatalf("%s drops %v: %d", g.tun.Name(), sad.DropReason(r), c)
					}
				}
			}
			mu.Lock()
			defer mu.Unlock()
			if len(wire) != 2*n {
				t.Fatalf("%d AH packets on the wire, want %d", len(wire), 2*n)
			}
			for _, w := range wire {
				checkTransportAH(t, w, a1, a2)
			}
			t.Logf("%d transport-mode AH packets, each ICV recomputed with crypto/hmac", len(wire))
		})
	}
}

// checkTransportAH checks one transport-mode AH packet (HMAC-SHA2-256-128,
// ESN with high bits 0, keys from ahKey) independently of package ah: IP
// header of the original packet between the two hosts with protocol 51,
// AH header right after it with Next Header UDP, and the ICV.
func checkTransportAH(t *testing.T, w []byte, a1, a2 netip.Addr) {
	t.Helper()
	var hl int
	var src, dst netip.Addr
	z := bytes.Clone(w)
	if a1.Is4() {
		hl = int(w[0]&0xf) * 4
		src, dst = netip.AddrFrom4([4]byte(w[12:16])), netip.AddrFrom4([4]byte(w[16:20]))
		if w[9] != 51 || int(binary.BigEndian.Uint16(w[2:])) != len(w) {
			t.Fatalf("IPv4 header % x: protocol %d, length %d of %d", w[:hl], w[9], binary.BigEndian.Uint16(w[2:]), len(w))
		}
		// TOS, flags and fragment offset, TTL, checksum (RFC 4302 §3.3.3.1.1.1).
		z[1], z[6], z[7], z[8], z[10], z[11] = 0, 0, 0, 0, 0, 0
	} else {
		hl = 40
		src, dst = netip.AddrFrom16([16]byte(w[8:24])), netip.AddrFrom16([16]byte(w[24:40]))
		if w[6] != 51 || int(binary.BigEndian.Uint16(w[4:]))+40 != len(w) {
			t.Fatalf("IPv6 header % x", w[:40])
		}
		// Traffic class, flow label, hop limit (§3.3.3.1.2.1).
		z[0], z[1], z[2], z[3], z[7] = 0x60, 0, 0, 0, 0
	}
	if !(src == a1 && dst == a2 || src == a2 && dst == a1) {
		t.Fatalf("AH packet from %v to %v, not between the hosts", src, dst)
	}
	a := w[hl:]
	// 12 bytes of header and 16 of ICV: 7 32-bit words, padded to 8 over
	// IPv6 (§2.6); Payload Len is the length in words minus 2.
	words := 7
	if a1.Is6() {
		words = 8
	}
	if a[0] != header.ProtoUDP || int(a[1]) != words-2 {
		t.Fatalf("AH header % x: next header %d, payload len %d", a[:12], a[0], a[1])
	}
	spi := binary.BigEndian.Uint32(a[4:])
	clear(z[hl+12 : hl+4*words])
	m := hmac.New(sha256.New, ahKey(spi, 32))
	m.Write(z)
	m.Write([]byte{0, 0, 0, 0}) // ESN high-order bits
	if want := m.Sum(nil)[:16]; !bytes.Equal(a[12:28], want) {
		t.Fatalf("SPI %08x seq %d: ICV % x, recomputed % x", spi, binary.BigEndian.Uint32(a[8:]), a[12:28], want)
	}
}

// TestAHTransportSAPath: on transport-mode AH SAs, OpenAH delivers the
// packet as the host sent it, drops a replay and a forgery, refuses a
// tunnel-mode packet (Next Header 4) though its ICV is right, and the
// outbound and inbound SA paths allocate nothing.
func TestAHTransportSAPath(t *testing.T) {
	l, r := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")
	sel := anyPorts(spd.Selector{Local: spd.MustPrefixRange("198.51.100.1/32"), Remote: spd.MustPrefixRange("198.51.100.2/32")})
	rsel := anyPorts(spd.Selector{Local: sel.Remote, Remote: sel.Local})
	mk := func(dir sad.Direction, local, remote netip.Addr, s spd.Selector, transport bool) *sad.SA {
		sa, err := sad.New(sad.Config{Proto: sad.AH, Transport: transport, SPI: 0x7171, Dir: dir, Local: netip.AddrPortFrom(local, 0),
			Remote: netip.AddrPortFrom(remote, 0), Selectors: []spd.Selector{s}, Cipher: ahProtector(t, 5), ESN: true, PolicyID: 1})
		if err != nil {
			t.Fatal(err)
		}
		return sa
	}
	out, in := mk(sad.Outbound, l, r, sel, true), mk(sad.Inbound, r, l, rsel, true)
	tab := sad.NewTable(sad.Options{})
	if err := tab.InstallInbound(in); err != nil {
		t.Fatal(err)
	}
	plain := ipv4Packet(120, "198.51.100.1", "198.51.100.2", 42)
	header.IPv4(plain).UpdateChecksum()
	buf, off := newBuf(plain)
	_, pkt, dr := Seal(out, buf, off, len(plain))
	if dr != sad.NotDropped {
		t.Fatal(dr)
	}
	forged := bytes.Clone(pkt)
	forged[len(forged)-1] ^= 1
	if _, _, _, dr := OpenAH(tab, forged); dr != sad.DropAuthFailed {
		t.Errorf("forged: %v", dr)
	}
	replay := bytes.Clone(pkt) // OpenAH takes the AH header out in place
	sa, o, n, dr := OpenAH(tab, pkt)
	if dr != sad.NotDropped || sa != in || !bytes.Equal(pkt[o:o+n], plain) {
		t.Fatalf("OpenAH: %v, % x", dr, pkt[o:o+n])
	}
	if _, _, _, dr := OpenAH(tab, replay); dr != sad.DropReplay {
		t.Errorf("replay: %v", dr)
	}
	// A tunnel-mode packet under the same SPI and key, between the same
	// hosts: authentic, but not what the SA was negotiated for.
	tunnelOut := mk(sad.Outbound, l, r, sel, false)
	for range 2 { // the second has sequence number 2, not seen yet
		buf, off = newBuf(plain)
		if _, pkt, dr = Seal(tunnelOut, buf, off, len(plain)); dr != sad.NotDropped {
			t.Fatal(dr)
		}
	}
	if pkt[20] != 4 {
		t.Fatalf("tunnel-mode Next Header %d", pkt[20])
	}
	if _, _, _, dr := OpenAH(tab, pkt); dr != sad.DropMalformed {
		t.Errorf("tunnel-mode packet on a transport SA: %v, want malformed (authentic, not deliverable)", dr)
	}

	skipUnderRace(t)
	work := make([]byte, len(buf))
	copy(work[off:], plain)
	Seal(out, work, off, len(plain)) // takes sequence number 2, which the tunnel-mode packet used
	if a := testing.AllocsPerRun(100, func() {
		copy(work[off:], plain)
		_, p, dr := Seal(out, work, off, len(plain))
		if dr != sad.NotDropped {
			t.Fatal(dr)
		}
		if _, _, _, dr := OpenAH(tab, p); dr != sad.NotDropped {
			t.Fatal(dr)
		}
	}); a != 0 {
		t.Errorf("%v allocations per packet", a)
	}
}
