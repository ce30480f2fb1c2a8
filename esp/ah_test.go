package esp

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/esp/conn"
	"github.com/ipsecgw/ipsecgw/sad"
	"github.com/ipsecgw/ipsecgw/spd"
	"github.com/ipsecgw/ipsecgw/transform"
	"github.com/ipsecgw/ipsecgw/tun"
)

func ahProtector(t testing.TB, key byte) *transform.Protector {
	t.Helper()
	k := make([]byte, 32)
	for i := range k {
		k[i] = key
	}
	p, err := transform.NewAuthProtector(transform.Transform{Type: transform.TypeINTEG, ID: transform.IntegHMACSHA2_256_128}, k)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// ahSA builds an AH SA with HMAC-SHA2-256-128 and ESN.
func ahSA(t testing.TB, dir sad.Direction, spi uint32, local, remote netip.Addr, sel spd.Selector, key byte) *sad.SA {
	t.Helper()
	sa, err := sad.New(sad.Config{Proto: sad.AH, SPI: spi, Dir: dir, Local: netip.AddrPortFrom(local, 0), Remote: netip.AddrPortFrom(remote, 0),
		Selectors: []spd.Selector{sel}, Cipher: ahProtector(t, key), ESN: true, PolicyID: 1})
	if err != nil {
		t.Fatal(err)
	}
	return sa
}

// ahLink is two dataplanes joined in memory by AH SAs (IPv4 or IPv6
// underlay, one integrity algorithm), with every packet on the wire
// passed to tap (whole IP packets, as the raw AH socket sends them).
type ahLink struct {
	g1, g2 *gateway
}

// ahKey is the integrity key of the AH SA with the given SPI in the tests:
// recognisable, and different per direction.
func ahKey(spi uint32, n int) []byte {
	k := make([]byte, n)
	for i := range k {
		k[i] = byte(spi) + byte(i)
	}
	return k
}

func newAHLink(t *testing.T, a1, a2 netip.Addr, integ transform.ID, tap func(b []byte)) *ahLink {
	t.Helper()
	ap1, ap2 := netip.AddrPortFrom(a1, 0), netip.AddrPortFrom(a2, 0)
	var g1, g2 *gateway
	g1 = newGateway(t, "gw1", "10.1.0.0/16", "10.2.0.0/16", ap1, ap2, &g2, 2)
	g2 = newGateway(t, "gw2", "10.2.0.0/16", "10.1.0.0/16", ap2, ap1, &g1, 2)
	info, err := transform.Lookup(transform.Transform{Type: transform.TypeINTEG, ID: integ})
	if err != nil {
		t.Fatal(err)
	}
	mk := func(dir sad.Direction, spi uint32, g *gateway, sel spd.Selector) *sad.SA {
		p, err := transform.NewAuthProtector(transform.Transform{Type: transform.TypeINTEG, ID: integ}, ahKey(spi, info.KeySize))
		if err != nil {
			t.Fatal(err)
		}
		sa, err := sad.New(sad.Config{Proto: sad.AH, SPI: spi, Dir: dir, Local: g.addr, Remote: g.peer,
			Selectors: []spd.Selector{sel}, Cipher: p, ESN: true, PolicyID: 1})
		if err != nil {
			t.Fatal(err)
		}
		return sa
	}
	install := func(g, h *gateway, spi uint32) {
		if err := g.sad.InstallOutbound(mk(sad.Outbound, spi, g, g.sel)); err != nil {
			t.Fatal(err)
		}
		if err := h.sad.InstallInbound(mk(sad.Inbound, spi, h, h.sel)); err != nil {
			t.Fatal(err)
		}
	}
	install(g1, g2, 0x1001)
	install(g2, g1, 0x2002)
	var mu sync.Mutex
	for _, g := range []*gateway{g1, g2} {
		other := g2
		if g == g2 {
			other = g1
		}
		g.dp.cfg.NewSender = func() Sender {
			s := newMemSender(func() *Dataplane { return other.dp }, g.addr, 64)
			s.tap = func(b []byte, dst netip.AddrPort, udp bool) {
				if tap != nil {
					mu.Lock()
					tap(append([]byte(nil), b...))
					mu.Unlock()
				}
			}
			return s
		}
	}
	g1.dp.Start()
	g2.dp.Start()
	t.Cleanup(func() { g1.dp.Close(); g2.dp.Close() })
	return &ahLink{g1: g1, g2: g2}
}

// exchange sends n packets each way and checks that they arrive intact and
// in order, with no drop anywhere.
func (l *ahLink) exchange(t *testing.T, n int) {
	t.Helper()
	g1, g2 := l.g1, l.g2
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range n {
			inject(t, g1.tun, ipv4Packet(28+i%1300, "10.1.0.2", "10.2.0.2", uint16(i)))
		}
	})
	wg.Go(func() {
		for i := range n {
			inject(t, g2.tun, ipv4Packet(60+i%300, "10.2.0.2", "10.1.0.2", uint16(i)))
		}
	})
	got2 := receive(t, g2.tun, n)
	got1 := receive(t, g1.tun, n)
	wg.Wait()
	for i, p := range got2 {
		if string(p) != string(ipv4Packet(28+i%1300, "10.1.0.2", "10.2.0.2", uint16(i))) {
			t.Fatalf("gw2 packet %d differs (order or content)", i)
		}
	}
	for i, p := range got1 {
		if id := binary.BigEndian.Uint16(p[4:]); id != uint16(i) || len(p) != 60+i%300 {
			t.Fatalf("gw1 packet %d: id %d len %d", i, id, len(p))
		}
	}
	for _, g := range []*gateway{g1, g2} {
		for r, c := range g.dp.Stats().Drops {
			if c != 0 {
				t.Fatalf("%s drops %v: %d", g.tun.Name(), sad.DropReason(r), c)
			}
		}
	}
}

// TestAHTwoGatewaysBothWays runs tunnel-mode AH through two dataplanes
// both ways, over an IPv4 and an IPv6 underlay (where the receiving
// socket strips the IPv6 header and the dataplane rebuilds it).
func TestAHTwoGatewaysBothWays(t *testing.T) {
	for _, under := range [][2]string{{"198.51.100.1", "198.51.100.2"}, {"2001:db8::1", "2001:db8::2"}} {
		t.Run(under[0], func(t *testing.T) {
			a1, a2 := netip.MustParseAddr(under[0]), netip.MustParseAddr(under[1])
			var first []byte
			l := newAHLink(t, a1, a2, transform.IntegHMACSHA2_256_128, func(b []byte) {
				if first == nil {
					first = b
				}
			})
			l.exchange(t, 300)
			// What went on the wire is AH in a whole IP packet between the
			// gateways' addresses, protocol 51.
			pkt := first
			if a1.Is4() {
				src, dst := netip.AddrFrom4([4]byte(pkt[12:16])), netip.AddrFrom4([4]byte(pkt[16:20]))
				if pkt[0] != 0x45 || pkt[9] != 51 || src == dst || (src != a1 && src != a2) || (dst != a1 && dst != a2) {
					t.Fatalf("outer IPv4 header % x", pkt[:20])
				}
			} else if pkt[0]>>4 != 6 || pkt[6] != 51 {
				t.Fatalf("outer IPv6 header % x", pkt[:40])
			}
		})
	}
}

// TestAHSAPath: OpenAH accepts a sealed packet once, drops its replay, a
// forgery, and a packet whose SPI belongs to an SA of the other protocol;
// and an ESP packet naming an AH SA's SPI is refused by Open.
func TestAHSAPath(t *testing.T) {
	l, r := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")
	sel := anyPorts(spd.Selector{Local: spd.MustPrefixRange("10.1.0.0/16"), Remote: spd.MustPrefixRange("10.2.0.0/16")})
	rsel := anyPorts(spd.Selector{Local: sel.Remote, Remote: sel.Local})
	out := ahSA(t, sad.Outbound, 0x4343, l, r, sel, 7)
	in := ahSA(t, sad.Inbound, 0x4343, r, l, rsel, 7)
	tab := sad.NewTable(sad.Options{})
	if err := tab.InstallInbound(in); err != nil {
		t.Fatal(err)
	}
	inner := ipv4Packet(100, "10.1.0.2", "10.2.0.2", 1)
	buf, off := newBuf(inner)
	_, pkt, dr := Seal(out, buf, off, len(inner))
	if dr != sad.NotDropped {
		t.Fatal(dr)
	}
	forged := append([]byte(nil), pkt...)
	forged[len(forged)-1] ^= 1
	if _, _, _, dr := OpenAH(tab, forged); dr != sad.DropAuthFailed {
		t.Errorf("forged: %v", dr)
	}
	sa, o, n, dr := OpenAH(tab, pkt)
	if dr != sad.NotDropped || sa != in || string(pkt[o:o+n]) != string(inner) {
		t.Fatalf("OpenAH: %v", dr)
	}
	if _, _, _, dr := OpenAH(tab, pkt); dr != sad.DropReplay {
		t.Errorf("replay: %v", dr)
	}
	// An ESP packet with the AH SA's SPI.
	esp := make([]byte, 64)
	binary.BigEndian.PutUint32(esp, 0x4343)
	binary.BigEndian.PutUint32(esp[4:], 9)
	if _, _, _, dr := Open(tab, esp); dr != sad.DropAuthFailed {
		t.Errorf("ESP packet naming an AH SA: %v", dr)
	}
	// An AH packet with an ESP SA's SPI.
	s := allSuites(t)[0]
	_, espIn := saPair(t, s, 0x5454, true)
	if err := tab.InstallInbound(espIn); err != nil {
		t.Fatal(err)
	}
	buf, off = newBuf(inner)
	other := ahSA(t, sad.Outbound, 0x5454, l, r, sel, 7)
	_, pkt, _ = Seal(other, buf, off, len(inner))
	if _, _, _, dr := OpenAH(tab, pkt); dr != sad.DropAuthFailed {
		t.Errorf("AH packet naming an ESP SA: %v", dr)
	}
}

// TestAHPipelineAllocs is TestTUNToSocketAllocs for AH SAs: the whole
// outbound path (TUN read to send) and inbound path (HandleESP to TUN
// write) allocate nothing per batch.
func TestAHPipelineAllocs(t *testing.T) {
	skipUnderRace(t)
	const batch, runs = 32, 20
	l, r := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")
	sel := anyPorts(spd.Selector{Local: spd.MustPrefixRange("10.1.0.0/16"), Remote: spd.MustPrefixRange("10.2.0.0/16")})
	rsel := anyPorts(spd.Selector{Local: sel.Remote, Remote: sel.Local})
	fake := tun.NewFake("alloc", 1400, batch, batch*(runs+2))
	live := &spd.Live{}
	tab, err := spd.Compile([]spd.Rule{{Selector: sel, Action: spd.Protect, PolicyID: 1}})
	if err != nil {
		t.Fatal(err)
	}
	live.Store(tab)
	out, in := ahSA(t, sad.Outbound, 0x6161, l, r, sel, 3), ahSA(t, sad.Inbound, 0x6161, r, l, rsel, 3)
	st := sad.NewTable(sad.Options{})
	if err := st.InstallOutbound(out); err != nil {
		t.Fatal(err)
	}
	snd := &countSender{}
	d, err := New(Config{TUN: fake, SAD: st, SPD: live, Workers: 1, NewSender: func() Sender { return snd }})
	if err != nil {
		t.Fatal(err)
	}
	for i := range batch * (runs + 1) {
		if err := fake.Inject(ipv4Packet(200+i%1000, "10.1.0.2", "10.2.0.2", uint16(i))); err != nil {
			t.Fatal(err)
		}
	}
	e := <-d.outFree
	if a := testing.AllocsPerRun(runs, func() {
		n, err := fake.Read(e.bufs, e.sizes, tun.Headroom)
		if err != nil || n != batch {
			t.Fatalf("read %d: %v", n, err)
		}
		d.classify(e, n, d.cfg.SPD)
		e.sealAll()
		d.sendBatch(e, snd)
	}); a != 0 {
		t.Fatalf("AH outbound: %v allocations per batch of %d", a, batch)
	}
	if snd.pkts != batch*(runs+1) {
		t.Fatalf("sent %d packets", snd.pkts)
	}
	rt := sad.NewTable(sad.Options{})
	if err := rt.InstallInbound(in); err != nil {
		t.Fatal(err)
	}
	nt := &nullTUN{Device: tun.NewFake("in", 1400, batch, 1)}
	rd, err := New(Config{TUN: nt, SAD: rt, SPD: &spd.Live{}, Workers: 1, InBatch: batch, NewSender: func() Sender { return snd }})
	if err != nil {
		t.Fatal(err)
	}
	rd.started.Store(true)
	pkts := make([]conn.ESPPacket, batch)
	for i := range pkts {
		pkts[i].Buf = make([]byte, conn.ReadOffset+2048)
		pkts[i].AH = true
		pkts[i].Src = netip.AddrPortFrom(l, 0)
	}
	work := make([]byte, tun.Headroom+2048)
	if a := testing.AllocsPerRun(runs, func() {
		for i := range pkts {
			copy(work[tun.Headroom:], ipv4HeaderOnly[:])
			_, p, r := Seal(out, work, tun.Headroom, len(ipv4HeaderOnly))
			if r != sad.NotDropped {
				t.Fatal(r)
			}
			pkts[i].Off, pkts[i].Len = conn.ReadOffset, copy(pkts[i].Buf[conn.ReadOffset:], p)
		}
		rd.HandleESP(pkts)
		runQueuedOpen(rd)
		ie := <-rd.inQ
		rd.writeBatch(ie)
		rd.inFree <- ie
	}); a != 0 {
		t.Fatalf("AH inbound: %v allocations per batch of %d", a, batch)
	}
	if nt.written != batch*(runs+1) {
		t.Fatalf("written %d packets, drops %v", nt.written, rd.Stats().Drops)
	}
}

// TestAHLarvalHeld: AH packets that arrive for an SPI whose negotiation
// reserved it, before the inbound SA is installed, are held and delivered
// once it is (as ESP's are), over an IPv4 and an IPv6 underlay.
func TestAHLarvalHeld(t *testing.T) {
	for _, under := range [][2]string{{"198.51.100.1", "198.51.100.2"}, {"2001:db8::1", "2001:db8::2"}} {
		t.Run(under[0], func(t *testing.T) {
			a1, a2 := netip.AddrPortFrom(netip.MustParseAddr(under[0]), 0), netip.AddrPortFrom(netip.MustParseAddr(under[1]), 0)
			var g1, g2 *gateway
			g1 = newGateway(t, "gw1", "10.1.0.0/16", "10.2.0.0/16", a1, a2, &g2, 2)
			g2 = newGateway(t, "gw2", "10.2.0.0/16", "10.1.0.0/16", a2, a1, &g1, 2)
			spi, err := g2.sad.AllocateSPI()
			if err != nil {
				t.Fatal(err)
			}
			if err := g1.sad.InstallOutbound(ahSA(t, sad.Outbound, spi, a1.Addr(), a2.Addr(), g1.sel, 9)); err != nil {
				t.Fatal(err)
			}
			held := make(chan int, 4)
			g2.dp.cfg.OnLarval = func(s uint32, n int, installed bool) {
				if s == spi && installed {
					held <- n
				}
			}
			g1.dp.Start()
			g2.dp.Start()
			t.Cleanup(func() { g1.dp.Close(); g2.dp.Close() })
			for i := range 3 {
				inject(t, g1.tun, ipv4Packet(100, "10.1.0.2", "10.2.0.2", uint16(i)))
			}
			// Wait until gw2 holds all three (it would drop them after
			// larvalWait).
			queued := func() int {
				h := g2.dp.larval
				h.mu.Lock()
				defer h.mu.Unlock()
				if q := h.q[spi]; q != nil {
					return len(q.pkts)
				}
				return 0
			}
			deadline := time.Now().Add(5 * time.Second)
			for queued() < 3 {
				if time.Now().After(deadline) {
					t.Fatalf("gw2 holds %d packets; gw1 %+v, gw2 %+v", queued(), g1.dp.Stats(), g2.dp.Stats())
				}
				time.Sleep(time.Millisecond)
			}
			if err := g2.sad.InstallInbound(ahSA(t, sad.Inbound, spi, a2.Addr(), a1.Addr(), g2.sel, 9)); err != nil {
				t.Fatal(err)
			}
			got := receive(t, g2.tun, 3)
			for i, p := range got {
				if id := binary.BigEndian.Uint16(p[4:]); id != uint16(i) {
					t.Errorf("packet %d has id %d", i, id)
				}
			}
			if n := <-held; n != 3 {
				t.Errorf("%d packets held, want 3", n)
			}
		})
	}
}
