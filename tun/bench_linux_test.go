package tun

import (
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/sys/unix"
)

func TestTUNCloseLeavesNoGoroutines(t *testing.T) {
	requireRoot(t)
	ns := newNS(t)
	before := runtime.NumGoroutine()
	dev, err := Create(Config{Name: "ipgwt%d", NetNS: "/run/netns/" + ns})
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.Close(); err != nil {
		t.Fatal(err)
	}
	// The wireguard listener goroutines finish their deferred cleanup
	// just after Close returns; give them a bounded moment.
	for i := 0; runtime.NumGoroutine() > before; i++ {
		if i == 500 {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before Create, %d after Close:\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// benchmarkTUNWrite writes batches of 1400-byte UDP datagrams of one flow
// into the TUN and counts them at a socket in the namespace: the cost of
// the inbound (decrypted) direction up to the kernel.
func benchmarkTUNWrite(b *testing.B, batch int) {
	requireRoot(b)
	ns := newNS(b)
	dev, err := Create(Config{Name: "ipgwt%d", NetNS: "/run/netns/" + ns})
	if err != nil {
		b.Fatal(err)
	}
	defer dev.Close()
	for _, f := range []func() error{
		func() error { return dev.AddAddress(netip.MustParsePrefix("10.99.0.1/32")) },
		func() error { return dev.AddRoute(netip.MustParsePrefix("10.98.0.0/24")) },
	} {
		if err := f(); err != nil {
			b.Fatal(err)
		}
	}
	var c *net.UDPConn
	if err := inNSErr(ns, func() {
		c, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP("10.99.0.1"), Port: 6666})
	}); err != nil || c == nil {
		b.Fatal(err)
	}
	defer c.Close()
	_ = c.SetReadBuffer(8 << 20)
	// With UDP_GRO the socket takes a coalesced super-datagram whole, so
	// the receiver costs one syscall per Write instead of one per datagram
	// and the benchmark measures the TUN rather than the socket.
	if rc, err := c.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { _ = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO, 1) })
	}
	var got atomic.Int64
	go func() {
		buf := make([]byte, 65536)
		for {
			n, _, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			got.Add(int64((n + 1399) / 1400))
		}
	}()

	bufs := make([][]byte, batch)
	pkts := make([][]byte, batch)
	for i := range pkts {
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: net.ParseIP("10.98.0.5"), DstIP: net.ParseIP("10.99.0.1")}
		udp := &layers.UDP{SrcPort: 5555, DstPort: 6666}
		_ = udp.SetNetworkLayerForChecksum(ip)
		sb := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(sb, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ip, udp, gopacket.Payload(make([]byte, 1400))); err != nil {
			b.Fatal(err)
		}
		pkts[i] = append([]byte(nil), sb.Bytes()...)
		bufs[i] = make([]byte, Headroom+MaxPacketSize+Tailroom)
	}
	b.SetBytes(1400)
	b.ResetTimer()
	sent := 0
	for sent < b.N {
		k := min(batch, b.N-sent)
		waitProgress(b, func() bool { return sent+k-int(got.Load()) <= 512 })
		// Write coalesces in place, so the buffers are refilled each time
		// (this copy is what the decrypting side would have done anyway).
		out := bufs[:k]
		for i := range out {
			out[i] = out[i][:cap(out[i])]
			out[i] = out[i][:Headroom+copy(out[i][Headroom:], pkts[i])]
		}
		if _, err := dev.Write(out, Headroom); err != nil {
			b.Fatal(err)
		}
		sent += k
	}
	waitProgress(b, func() bool { return int(got.Load()) >= sent })
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
}

func BenchmarkTUNWriteBatch1(b *testing.B)  { benchmarkTUNWrite(b, 1) }
func BenchmarkTUNWriteBatch64(b *testing.B) { benchmarkTUNWrite(b, 64) }

// waitProgress spins until cond holds; a datagram lost on the way would
// otherwise hang the benchmark, so it gives up after a while.
func waitProgress(b *testing.B, cond func() bool) {
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatal("datagrams lost: receiver stopped making progress")
		}
		runtime.Gosched()
	}
}

// benchmarkTUNRead has an application in the namespace send 1400-byte UDP
// datagrams into the TUN as fast as it can, with UDP GSO (45 datagrams per
// send, handed to the TUN as one super-packet that Read splits) or
// without, and measures how many packets per second Read returns: the
// outbound (to-be-encrypted) direction.
func benchmarkTUNRead(b *testing.B, gso bool) {
	requireRoot(b)
	ns := newNS(b)
	dev, err := Create(Config{Name: "ipgwt%d", NetNS: "/run/netns/" + ns})
	if err != nil {
		b.Fatal(err)
	}
	defer dev.Close()
	if err := dev.AddAddress(netip.MustParsePrefix("10.99.0.1/32")); err != nil {
		b.Fatal(err)
	}
	if err := dev.AddRoute(netip.MustParsePrefix("10.98.0.0/24")); err != nil {
		b.Fatal(err)
	}
	var c *net.UDPConn
	if err := inNSErr(ns, func() {
		c, err = net.DialUDP("udp4", &net.UDPAddr{IP: net.ParseIP("10.99.0.1")}, &net.UDPAddr{IP: net.ParseIP("10.98.0.5"), Port: 7777})
	}); err != nil || c == nil {
		b.Fatal(err)
	}
	defer c.Close()
	payload := make([]byte, 1400)
	if gso {
		rc, err := c.SyscallConn()
		if err != nil {
			b.Fatal(err)
		}
		var serr error
		_ = rc.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT, 1400) })
		if serr != nil {
			b.Skipf("UDP_SEGMENT: %v", serr)
		}
		payload = make([]byte, 45*1400)
	}
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			_, _ = c.Write(payload) // ENOBUFS when the TUN queue is full: just retry
		}
	}()
	bufs := make([][]byte, dev.BatchSize())
	for i := range bufs {
		bufs[i] = make([]byte, Headroom+dev.MTU()+Tailroom)
	}
	sizes := make([]int, len(bufs))
	b.SetBytes(1400)
	b.ResetTimer()
	for got := 0; got < b.N; {
		n, err := dev.Read(bufs, sizes, Headroom)
		if err != nil {
			b.Fatal(err)
		}
		got += n
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
}

func BenchmarkTUNReadNoGSO(b *testing.B) { benchmarkTUNRead(b, false) }
func BenchmarkTUNReadGSO(b *testing.B)   { benchmarkTUNRead(b, true) }
