package conn

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync/atomic"
	"testing"
	"time"
)

var loopback = netip.MustParseAddr("127.0.0.1")

// counter is an ESP handler that checks and counts packets and signals
// progress on a channel without allocating.
type counter struct {
	n      atomic.Int64
	bad    atomic.Int64
	udp    atomic.Int64
	signal chan struct{}
}

func newCounter() *counter { return &counter{signal: make(chan struct{}, 1)} }

func (c *counter) handle(batch []ESPPacket) {
	for i := range batch {
		b := batch[i].Bytes()
		// Test packets carry SPI 0x1000, then a sequence number, then
		// payload bytes equal to the low byte of the sequence number.
		if len(b) < 8 || binary.BigEndian.Uint32(b) != 0x1000 {
			c.bad.Add(1)
			continue
		}
		seq := byte(binary.BigEndian.Uint32(b[4:]))
		for _, x := range b[8:] {
			if x != seq {
				c.bad.Add(1)
				break
			}
		}
		if batch[i].UDP {
			c.udp.Add(1)
		}
	}
	c.n.Add(int64(len(batch)))
	select {
	case c.signal <- struct{}{}:
	default:
	}
}

// waitFor blocks until cond holds, failing (not hanging) if it never does.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func espPacket(seq uint32, size int) []byte {
	b := make([]byte, size)
	binary.BigEndian.PutUint32(b, 0x1000)
	binary.BigEndian.PutUint32(b[4:], seq)
	for i := 8; i < size; i++ {
		b[i] = byte(seq)
	}
	return b
}

func listen(t testing.TB, cfg Config) *Conn {
	t.Helper()
	if !cfg.Addr.IsValid() {
		cfg.Addr = loopback
	}
	c, err := Listen(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestLoopbackDemuxAndBatches(t *testing.T) {
	h := newCounter()
	rx := listen(t, Config{ESP: h.handle, BatchSize: 16})
	tx := listen(t, Config{})
	nattDst := netip.AddrPortFrom(loopback, rx.NATTPort())
	ikeDst := netip.AddrPortFrom(loopback, rx.IKEPort())

	// ESP through the batched sender, 200 packets in slices of 64 (so
	// the sender splits them into several sendmmsg calls of 16).
	s := tx.NewSender()
	const total = 200
	var out []OutPacket
	for i := range total {
		out = append(out, OutPacket{B: espPacket(uint32(i), 100+i), Dst: nattDst, UDP: true})
	}
	for len(out) > 0 {
		k := min(64, len(out))
		if n, err := s.Send(out[:k]); err != nil || n != k {
			t.Fatalf("Send = %d, %v", n, err)
		}
		out = out[k:]
	}

	// IKE on both ports, a keepalive and malformed datagrams.
	ike := bytes.Repeat([]byte{0x42}, 40)
	if err := tx.SendIKE(ike, ikeDst, false); err != nil {
		t.Fatal(err)
	}
	if err := tx.SendIKE(ike, nattDst, true); err != nil {
		t.Fatal(err)
	}
	if err := tx.SendKeepalive(nattDst); err != nil {
		t.Fatal(err)
	}
	raw, err := net.DialUDP("udp4", nil, net.UDPAddrFromAddrPort(nattDst))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for _, b := range [][]byte{{}, {1, 2}, make([]byte, 10), {0, 0, 1, 0, 5}} {
		if _, err := raw.Write(b); err != nil {
			t.Fatal(err)
		}
	}

	ports := map[uint16]bool{}
	for range 2 {
		select {
		case p := <-rx.IKE():
			if !bytes.Equal(p.Data, ike) {
				t.Fatalf("IKE data %x (marker not stripped?)", p.Data)
			}
			if p.Src.Port() != tx.IKEPort() && p.Src.Port() != tx.NATTPort() {
				t.Fatalf("IKE source %v", p.Src)
			}
			ports[p.LocalPort] = true
		case <-time.After(10 * time.Second):
			t.Fatal("IKE message not queued")
		}
	}
	if !ports[rx.IKEPort()] || !ports[rx.NATTPort()] {
		t.Fatalf("IKE arrived on local ports %v, want %d and %d", ports, rx.IKEPort(), rx.NATTPort())
	}
	waitFor(t, "all ESP and drops", func() bool {
		st := rx.Stats()
		return h.n.Load() == total && st.Keepalives == 1 &&
			st.Drops[DropEmpty]+st.Drops[DropShortMarker]+st.Drops[DropShortIKE]+st.Drops[DropShortESP] == 4
	})
	st := rx.Stats()
	if h.bad.Load() != 0 || h.udp.Load() != total {
		t.Fatalf("bad=%d udp=%d", h.bad.Load(), h.udp.Load())
	}
	if st.ESP != total || st.IKE != 2 || st.Drops[DropEmpty] != 1 || st.Drops[DropShortMarker] != 1 ||
		st.Drops[DropShortIKE] != 1 || st.Drops[DropShortESP] != 1 {
		t.Fatalf("stats %+v", st)
	}
	if st := tx.Stats(); st.SendErrors != 0 {
		t.Fatalf("sender stats %+v", st)
	}
}

func TestIKEFloodDoesNotStallESP(t *testing.T) {
	h := newCounter()
	rx := listen(t, Config{ESP: h.handle, IKEQueueLen: 4})
	tx := listen(t, Config{})
	nattDst := netip.AddrPortFrom(loopback, rx.NATTPort())
	s := tx.NewSender()
	ike := make([]byte, 40)
	const rounds = 100
	for i := range rounds {
		// Nobody reads the IKE queue.
		if err := tx.SendIKE(ike, nattDst, true); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Send([]OutPacket{{B: espPacket(uint32(i), 64), Dst: nattDst, UDP: true}}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "ESP to flow past the IKE flood", func() bool { return h.n.Load() == rounds })
	waitFor(t, "IKE drops counted", func() bool { return rx.Stats().IKEQueueDrops == rounds-4 })
	if st := rx.Stats(); st.IKE != 4 {
		t.Fatalf("stats %+v", st)
	}
	if h.bad.Load() != 0 {
		t.Fatal("corrupted ESP")
	}
}

func TestSendErrors(t *testing.T) {
	c := listen(t, Config{})
	s := c.NewSender()
	n, err := s.Send([]OutPacket{
		{B: espPacket(1, 20), Dst: netip.MustParseAddrPort("[::1]:4500"), UDP: true},
		{B: espPacket(1, 20), Dst: netip.MustParseAddrPort("127.0.0.1:9"), UDP: false},
	})
	if n != 0 || err == nil || c.Stats().SendErrors != 2 {
		t.Fatalf("Send = %d, %v; stats %+v", n, err, c.Stats())
	}
	if _, err := Listen(Config{Addr: loopback, BufSize: 8}); err == nil {
		t.Fatal("tiny buffer accepted")
	}
	if _, err := Listen(Config{Addr: loopback, IKEPort: 40500, NATTPort: 40500}); err == nil {
		t.Fatal("same port for IKE and NAT-T accepted")
	}
}

func TestRawESP(t *testing.T) {
	if os.Geteuid() != 0 {
		msg := "raw IP protocol 50 socket needs root or CAP_NET_RAW"
		if os.Getenv("IPSECGW_REQUIRE_INTEROP") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	for _, addr := range []netip.Addr{loopback, netip.IPv6Loopback()} {
		t.Run(addr.String(), func(t *testing.T) {
			h := newCounter()
			c := listen(t, Config{Addr: addr, RawESP: true, ESP: h.handle})
			s := c.NewSender()
			// Sent by the raw socket to loopback, the packet comes back to
			// the same raw socket; over IPv4 with an IP header the
			// receiver must strip, over IPv6 without.
			var out []OutPacket
			for i := range 10 {
				out = append(out, OutPacket{B: espPacket(uint32(i), 64+i), Dst: netip.AddrPortFrom(addr, 0)})
			}
			if n, err := s.Send(out); n != 10 || err != nil {
				t.Fatalf("Send = %d, %v", n, err)
			}
			waitFor(t, "raw ESP", func() bool { return h.n.Load() >= 10 })
			if h.bad.Load() != 0 || h.udp.Load() != 0 {
				t.Fatalf("bad=%d udp=%d", h.bad.Load(), h.udp.Load())
			}
		})
	}
}

// pipe sets up a sender and a counting receiver on loopback for the
// allocation test and the benchmark.
func pipe(t testing.TB, batch int, offload, wildcard bool) (*Sender, []OutPacket, *counter) {
	h := newCounter()
	bind := loopback
	if wildcard {
		bind = netip.IPv4Unspecified()
	}
	rx := listen(t, Config{Addr: bind, ESP: h.handle, BatchSize: 64, BufSize: 2048, UDPOffload: offload})
	tx := listen(t, Config{Addr: bind, BatchSize: 64, UDPOffload: offload})
	if offload {
		gso, _ := tx.Offload()
		_, gro := rx.Offload()
		if !gso || !gro {
			t.Skip("kernel without UDP GSO/GRO")
		}
	}
	dst := netip.AddrPortFrom(loopback, rx.NATTPort())
	out := make([]OutPacket, batch)
	for i := range out {
		out[i] = OutPacket{B: espPacket(uint32(i), 1400), Dst: dst, UDP: true}
	}
	return tx.NewSender(), out, h
}

func TestSendReceiveDoesNotAllocate(t *testing.T) {
	for _, offload := range []bool{false, true} {
		for _, wildcard := range []bool{false, true} {
			t.Run(fmt.Sprintf("offload=%v,wildcard=%v", offload, wildcard), func(t *testing.T) { testNoAllocs(t, offload, wildcard) })
		}
	}
}

func testNoAllocs(t *testing.T, offload, wildcard bool) {
	s, out, h := pipe(t, 64, offload, wildcard)
	var want int64
	round := func() {
		if _, err := s.Send(out); err != nil {
			t.Fatal(err)
		}
		want += int64(len(out))
		for h.n.Load() < want {
			<-h.signal
		}
	}
	for range 10 { // warm up: goroutines, netpoll, stacks
		round()
	}
	if a := testing.AllocsPerRun(100, round); a != 0 {
		t.Fatalf("%v allocations per batch of 64 sent and received", a)
	}
}

func benchmarkLoopback(b *testing.B, batch int, offload bool) {
	s, out, h := pipe(b, batch, offload, false)
	// Keep at most a few batches in flight so loopback never overflows
	// the receive buffer (a lost packet would stall the benchmark).
	const window = 256
	b.SetBytes(int64(len(out[0].B)))
	b.ResetTimer()
	var sent int64
	for sent < int64(b.N) {
		k := min(int64(len(out)), int64(b.N)-sent)
		for sent+k-h.n.Load() > window {
			<-h.signal
		}
		if _, err := s.Send(out[:k]); err != nil {
			b.Fatal(err)
		}
		sent += k
	}
	for h.n.Load() < sent {
		<-h.signal
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
}

func BenchmarkLoopbackBatch1(b *testing.B)        { benchmarkLoopback(b, 1, false) }
func BenchmarkLoopbackBatch64(b *testing.B)       { benchmarkLoopback(b, 64, false) }
func BenchmarkLoopbackBatch64GSOGRO(b *testing.B) { benchmarkLoopback(b, 64, true) }

// TestUDPOffload sends runs of equal-sized packets (which GSO gathers and
// GRO coalesces) mixed with odd sizes and checks that every packet comes
// out intact.
func TestUDPOffload(t *testing.T) {
	for _, addr := range []netip.Addr{loopback, netip.IPv6Loopback()} {
		t.Run(addr.String(), func(t *testing.T) { testUDPOffload(t, addr) })
	}
}

func testUDPOffload(t *testing.T, addr netip.Addr) {
	kept := make(chan []byte, 1024)
	rx := listen(t, Config{Addr: addr, BatchSize: 16, BufSize: 2048, UDPOffload: true, ESP: func(batch []ESPPacket) {
		for i := range batch {
			p := &batch[i]
			// Packets share the GRO buffer, which is reused after
			// the handler returns: keep a copy.
			kept <- bytes.Clone(p.Bytes())
		}
	}})
	tx := listen(t, Config{Addr: addr, BatchSize: 16, UDPOffload: true})
	if gso, _ := tx.Offload(); !gso {
		t.Skip("kernel without UDP GSO")
	}
	if _, gro := rx.Offload(); !gro {
		t.Skip("kernel without UDP GRO")
	}
	dst := netip.AddrPortFrom(addr, rx.NATTPort())
	var out []OutPacket
	want := map[uint32]int{}
	for i := range 300 {
		size := 1200
		switch {
		case i%50 == 49:
			size = 700 // a short tail ends a gathered message
		case i%97 == 0:
			size = 1300 // a longer one starts a new message
		}
		out = append(out, OutPacket{B: espPacket(uint32(i), size), Dst: dst, UDP: true})
		want[uint32(i)] = size
	}
	s := tx.NewSender()
	if n, err := s.Send(out); n != len(out) || err != nil {
		t.Fatalf("Send = %d, %v", n, err)
	}
	for range len(out) {
		var b []byte
		select {
		case b = <-kept:
		case <-time.After(10 * time.Second):
			t.Fatalf("%d packets missing", len(want))
		}
		seq := binary.BigEndian.Uint32(b[4:])
		if size, ok := want[seq]; !ok || !bytes.Equal(b, espPacket(seq, size)) {
			t.Fatalf("packet %d wrong or repeated (%d bytes)", seq, len(b))
		}
		delete(want, seq)
	}
	if st := rx.Stats(); st.ESP != uint64(len(out)) || st.Drops != ([numDropReasons]uint64{}) {
		t.Fatalf("stats %+v", st)
	}
	if st := rx.Stats(); st.Coalesced == 0 {
		t.Fatal("no datagram arrived coalesced: GSO/GRO path not exercised")
	}
	t.Logf("%d of %d packets arrived GRO-coalesced", rx.Stats().Coalesced, len(out))
}

func TestIPv6Loopback(t *testing.T) {
	v6 := netip.IPv6Loopback()
	h := newCounter()
	rx, err := Listen(Config{Addr: v6, ESP: h.handle})
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	t.Cleanup(func() { rx.Close() })
	tx := listen(t, Config{Addr: v6})
	dst := netip.AddrPortFrom(v6, rx.NATTPort())
	s := tx.NewSender()
	if n, err := s.Send([]OutPacket{{B: espPacket(1, 80), Dst: dst, UDP: true}, {B: espPacket(2, 90), Dst: dst, UDP: true}}); n != 2 || err != nil {
		t.Fatalf("Send = %d, %v", n, err)
	}
	// An IPv4 destination cannot go out of an IPv6 Conn.
	if _, err := s.Send([]OutPacket{{B: espPacket(3, 80), Dst: netip.MustParseAddrPort("127.0.0.1:4500"), UDP: true}}); err == nil {
		t.Fatal("IPv4 destination accepted on an IPv6 socket")
	}
	if err := tx.SendIKE(make([]byte, 30), dst, true); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-rx.IKE():
		if p.Src.Addr() != v6 || p.Src.Port() != tx.NATTPort() || len(p.Data) != 30 {
			t.Fatalf("IKE from %v, %d bytes", p.Src, len(p.Data))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("IKE over IPv6 not received")
	}
	waitFor(t, "ESP over IPv6", func() bool { return h.n.Load() == 2 })
	if h.bad.Load() != 0 {
		t.Fatal("corrupted ESP over IPv6")
	}
}

func TestCloseStopsReceivers(t *testing.T) {
	before := runtime.NumGoroutine()
	c, err := Listen(Config{Addr: loopback})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if _, ok := <-c.IKE(); ok {
		t.Fatal("IKE queue not closed")
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// Close waited for the receivers, so none may be left.
	if after := runtime.NumGoroutine(); after > before {
		t.Fatalf("%d goroutines before Listen, %d after Close", before, after)
	}
}

// TestWildcardLocalAddress binds both ends to 0.0.0.0 and checks that the
// receiver learns which of its addresses an IKE message was sent to, and
// that SendIKEFrom makes the message leave from the chosen source.
func TestWildcardLocalAddress(t *testing.T) {
	rx := listen(t, Config{Addr: netip.IPv4Unspecified()})
	tx := listen(t, Config{Addr: netip.IPv4Unspecified()})
	src := netip.MustParseAddr("127.0.0.2")
	dst := netip.MustParseAddr("127.0.0.3")
	for _, natt := range []bool{false, true} {
		txPort, rxPort := tx.IKEPort(), rx.IKEPort()
		if natt {
			txPort, rxPort = tx.NATTPort(), rx.NATTPort()
		}
		msg := bytes.Repeat([]byte{9}, 36)
		if err := tx.SendIKEFrom(msg, netip.AddrPortFrom(src, txPort), netip.AddrPortFrom(dst, rxPort)); err != nil {
			t.Fatal(err)
		}
		select {
		case p := <-rx.IKE():
			if p.Src != netip.AddrPortFrom(src, txPort) || p.Local != netip.AddrPortFrom(dst, rxPort) ||
				p.LocalPort != rxPort || !bytes.Equal(p.Data, msg) {
				t.Fatalf("natt=%v: got Src %v Local %v LocalPort %d data %x", natt, p.Src, p.Local, p.LocalPort, p.Data)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("IKE not received")
		}
	}
	if err := tx.SendIKEFrom([]byte("x"), netip.MustParseAddrPort("[::1]:1"), netip.AddrPortFrom(dst, 1)); err == nil {
		t.Fatal("IPv6 source accepted on an IPv4 Conn")
	}
}
