package esp

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/esp/conn"
	"github.com/ipsecgw/ipsecgw/sad"
	"github.com/ipsecgw/ipsecgw/spd"
	"github.com/ipsecgw/ipsecgw/tun"
)

// memSender delivers ESP packets straight to another dataplane's
// HandleESP, as a UDP socket pair would, from preallocated buffers (no
// allocation per packet). Packets leave in the order Send got them.
type memSender struct {
	peer  func() *Dataplane
	batch []conn.ESPPacket
	src   netip.AddrPort
	// tap, if set, sees every packet (tests that capture).
	tap func(b []byte, dst netip.AddrPort, udp bool)
}

func newMemSender(peer func() *Dataplane, src netip.AddrPort, n int) *memSender {
	s := &memSender{peer: peer, src: src, batch: make([]conn.ESPPacket, n)}
	for i := range s.batch {
		s.batch[i].Buf = make([]byte, conn.ReadOffset+tun.MaxPacketSize)
	}
	return s
}

func (s *memSender) Send(pkts []conn.OutPacket) (int, error) {
	sent := 0
	for len(pkts) > 0 {
		k := min(len(pkts), len(s.batch))
		for i, p := range pkts[:k] {
			if s.tap != nil {
				s.tap(p.B, p.Dst, p.UDP)
			}
			e := &s.batch[i]
			b := p.B
			if p.AH && len(b) > 0 && b[0]>>4 == 6 {
				b = b[40:] // an IPv6 raw socket delivers AH without the fixed header
			}
			e.Off, e.Len, e.Src, e.UDP, e.AH = conn.ReadOffset, copy(e.Buf[conn.ReadOffset:], b), s.src, p.UDP, p.AH
			if p.AH {
				e.Src = netip.AddrPortFrom(s.src.Addr(), 0)
			}
		}
		s.peer().HandleESP(s.batch[:k])
		sent += k
		pkts = pkts[k:]
	}
	return sent, nil
}

var (
	gw1Addr = netip.MustParseAddrPort("198.51.100.1:4500")
	gw2Addr = netip.MustParseAddrPort("198.51.100.2:4500")
)

func anyPorts(s spd.Selector) spd.Selector {
	s.LocalPorts, s.RemotePorts = spd.PortRange{From: 0, To: 0xffff}, spd.PortRange{From: 0, To: 0xffff}
	return s
}

// gateway is one side of an in-process tunnel.
type gateway struct {
	dp   *Dataplane
	tun  *tun.Fake
	sad  *sad.Table
	spd  *spd.Live
	sel  spd.Selector // local -> remote
	addr netip.AddrPort
	peer netip.AddrPort
}

func newGateway(t testing.TB, name, local, remote string, addr, peer netip.AddrPort, other **gateway, workers int) *gateway {
	t.Helper()
	g := &gateway{tun: tun.NewFake(name, 1400, 32, 1<<16), sad: sad.NewTable(sad.Options{Linger: time.Hour}), spd: &spd.Live{}, addr: addr, peer: peer}
	g.sel = anyPorts(spd.Selector{Local: spd.MustPrefixRange(local), Remote: spd.MustPrefixRange(remote)})
	tab, err := spd.Compile([]spd.Rule{{Selector: g.sel, Action: spd.Protect, PolicyID: 1}})
	if err != nil {
		t.Fatal(err)
	}
	g.spd.Store(tab)
	dp, err := New(Config{TUN: g.tun, SAD: g.sad, SPD: g.spd, Workers: workers,
		NewSender: func() Sender { return newMemSender(func() *Dataplane { return (*other).dp }, addr, 64) }})
	if err != nil {
		t.Fatal(err)
	}
	g.dp = dp
	return g
}

// installPair installs the SA g -> h (outbound at g, inbound at h) with spi.
func installPair(t testing.TB, g, h *gateway, s suite, spi uint32, rekeyOld uint32) {
	t.Helper()
	out, err := sad.New(sad.Config{SPI: spi, Dir: sad.Outbound, Local: g.addr, Remote: g.peer, UDPEncap: true,
		Selectors: []spd.Selector{g.sel}, Cipher: s.protector(t), PolicyID: 1, ESN: true})
	if err != nil {
		t.Fatal(err)
	}
	in, err := sad.New(sad.Config{SPI: spi, Dir: sad.Inbound, Local: h.addr, Remote: h.peer, UDPEncap: true,
		Selectors: []spd.Selector{h.sel}, Cipher: s.protector(t), PolicyID: 1, ESN: true})
	if err != nil {
		t.Fatal(err)
	}
	if rekeyOld == 0 {
		if err := h.sad.InstallInbound(in); err != nil {
			t.Fatal(err)
		}
		if err := g.sad.InstallOutbound(out); err != nil {
			t.Fatal(err)
		}
		return
	}
	// Make-before-break as IKE does it: the receiver's new inbound SA
	// first, then the sender switches, the old inbound SA lingers.
	if err := h.sad.Rekey(in, nil, 0, 0); err != nil {
		t.Fatal(err)
	}
	if err := g.sad.Rekey(nil, out, 0, 0); err != nil {
		t.Fatal(err)
	}
	h.sad.RemoveAfter(h.sad.Inbound(rekeyOld), 50*time.Millisecond)
}

func twoGateways(t testing.TB, s suite, workers int) (g1, g2 *gateway) {
	g1 = newGateway(t, "gw1", "10.1.0.0/16", "10.2.0.0/16", gw1Addr, gw2Addr, &g2, workers)
	g2 = newGateway(t, "gw2", "10.2.0.0/16", "10.1.0.0/16", gw2Addr, gw1Addr, &g1, workers)
	installPair(t, g1, g2, s, 0x1001, 0)
	installPair(t, g2, g1, s, 0x2002, 0)
	g1.dp.Start()
	g2.dp.Start()
	t.Cleanup(func() {
		g1.dp.Close()
		g2.dp.Close()
	})
	return g1, g2
}

// inject plays the kernel: it retries while the fake's queue is full.
func inject(t testing.TB, f *tun.Fake, pkt []byte) {
	for {
		err := f.Inject(pkt)
		if err == nil {
			return
		}
		if !errors.Is(err, tun.ErrFakeFull) {
			t.Error(err)
			return
		}
		runtime.Gosched()
	}
}

// receive collects n packets from the fake's output, failing after a
// generous deadline (a hang guard, not a speed assertion).
func receive(t testing.TB, f *tun.Fake, n int) [][]byte {
	t.Helper()
	var got [][]byte
	deadline := time.After(20 * time.Second)
	for len(got) < n {
		select {
		case p := <-f.Written():
			got = append(got, p)
		case <-deadline:
			t.Fatalf("received %d of %d packets", len(got), n)
		}
	}
	return got
}

func TestTwoGatewaysBothWays(t *testing.T) {
	for _, s := range allSuites(t) {
		if s.name != "aes128gcm16" && s.name != "chacha20poly1305" && s.name != "aes128+sha256" && s.name != "aes128+sha1" && s.name != "null+sha256" {
			continue
		}
		t.Run(s.name, func(t *testing.T) {
			g1, g2 := twoGateways(t, s, 2)
			const n = 500
			var wg sync.WaitGroup
			wg.Go(func() {
				for i := range n {
					inject(t, g1.tun, ipv4Packet(28+i%1372, "10.1.0.2", "10.2.0.2", uint16(i)))
				}
			})
			wg.Go(func() {
				for i := range n {
					inject(t, g2.tun, ipv4Packet(60+i%300, "10.2.0.2", "10.1.0.2", uint16(i)))
				}
			})
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("gw1 %+v\ngw2 %+v", g1.dp.Stats(), g2.dp.Stats())
				}
			})
			got2 := receive(t, g2.tun, n)
			got1 := receive(t, g1.tun, n)
			wg.Wait()
			for i, p := range got2 {
				want := ipv4Packet(28+i%1372, "10.1.0.2", "10.2.0.2", uint16(i))
				if string(p) != string(want) {
					t.Fatalf("gw2 packet %d differs (order or content)", i)
				}
			}
			for i, p := range got1 {
				if id := binary.BigEndian.Uint16(p[4:]); id != uint16(i) || len(p) != 60+i%300 {
					t.Fatalf("gw1 packet %d: id %d len %d", i, id, len(p))
				}
			}
			st1, st2 := g1.dp.Stats(), g2.dp.Stats()
			if st1.TxPackets != n || st2.RxPackets != n || st2.TxPackets != n || st1.RxPackets != n {
				t.Fatalf("stats gw1 %+v gw2 %+v", st1, st2)
			}
			for r, c := range st1.Drops {
				if c != 0 || st2.Drops[r] != 0 {
					t.Fatalf("drops %v: %d/%d", sad.DropReason(r), c, st2.Drops[r])
				}
			}
		})
	}
}

// TestRekeyUnderLoad replaces the SAs of both directions several times
// while traffic flows and counts every packet: none may be lost and order
// is kept.
func TestRekeyUnderLoad(t *testing.T) {
	s := allSuites(t)[0]
	g1, g2 := twoGateways(t, s, 2)
	const n = 20000
	// The injector rekeys every 1000 packets, so the replacements land
	// while earlier packets are still in the pipeline.
	done := make(chan struct{})
	rekeys := 0
	go func() {
		defer close(done)
		old := uint32(0x1001)
		for i := range n {
			if i > 0 && i%1000 == 0 {
				spi := 0x3000 + uint32(i/1000)
				installPair(t, g1, g2, s, spi, old)
				old = spi
				rekeys++
			}
			inject(t, g1.tun, ipv4Packet(100, "10.1.0.2", "10.2.0.2", uint16(i)))
		}
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("gw1 %+v\ngw2 %+v", g1.dp.Stats(), g2.dp.Stats())
		}
	})
	got := receive(t, g2.tun, n)
	<-done
	for i, p := range got {
		if id := binary.BigEndian.Uint16(p[4:]); id != uint16(i) {
			t.Fatalf("packet %d has id %d: lost or reordered", i, id)
		}
	}
	st := g2.dp.Stats()
	if st.RxPackets != n || g1.dp.Stats().TxPackets != n {
		t.Fatalf("sent %d received %d", g1.dp.Stats().TxPackets, st.RxPackets)
	}
	for r, c := range st.Drops {
		if c != 0 {
			t.Fatalf("drops %v: %d", sad.DropReason(r), c)
		}
	}
	in, out := g1.sad.Len()
	t.Logf("%d packets, %d rekeys; gw1 SAs in=%d out=%d", n, rekeys, in, out)
}

func mustAP(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

// TestCloseStopsGoroutines: after Close every goroutine the dataplanes
// started has ended (no leaks), also with traffic still queued.
func TestCloseStopsGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	s := allSuites(t)[0]
	var g1, g2 *gateway
	g1 = newGateway(t, "gw1", "10.1.0.0/16", "10.2.0.0/16", gw1Addr, gw2Addr, &g2, 2)
	g2 = newGateway(t, "gw2", "10.2.0.0/16", "10.1.0.0/16", gw2Addr, gw1Addr, &g1, 2)
	installPair(t, g1, g2, s, 0x1001, 0)
	g1.dp.Start()
	g2.dp.Start()
	for i := range 200 {
		inject(t, g1.tun, ipv4Packet(100, "10.1.0.2", "10.2.0.2", uint16(i)))
	}
	receive(t, g2.tun, 10)
	g1.dp.Close()
	g2.dp.Close()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before, %d after Close:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(time.Millisecond)
	}
}

// TestHandleESPLargePacketsSplitAcrossElements hands the dataplane
// batches whose packets fill an element's arena long before its packet
// count (up to the largest datagram there is): HandleESP must carry the
// rest over into further elements, losing none. The SPI is unknown, so
// every packet must come out as exactly one drop.
func TestHandleESPLargePacketsSplitAcrossElements(t *testing.T) {
	g1, _ := twoGateways(t, allSuites(t)[0], 2)
	sizes := []int{40000, 65535, 1400, 30000, 65535, 65535, 9000, 20, 65535}
	var batch []conn.ESPPacket
	for range 8 {
		for _, n := range sizes {
			buf := make([]byte, conn.ReadOffset+n)
			binary.BigEndian.PutUint32(buf[conn.ReadOffset:], 0xdeadbeef)
			batch = append(batch, conn.ESPPacket{Buf: buf, Off: conn.ReadOffset, Len: n, Src: gw2Addr, UDP: true})
		}
	}
	g1.dp.HandleESP(batch)
	deadline := time.Now().Add(20 * time.Second)
	for {
		var drops uint64
		for _, c := range g1.dp.Stats().Drops {
			drops += c
		}
		if drops == uint64(len(batch)) {
			return
		}
		if drops > uint64(len(batch)) || time.Now().After(deadline) {
			t.Fatalf("%d of %d packets accounted for as drops: %+v", drops, len(batch), g1.dp.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
