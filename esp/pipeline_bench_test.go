package esp

import (
	"fmt"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ipsecgw/ipsecgw/sad"
	"github.com/ipsecgw/ipsecgw/spd"
	"github.com/ipsecgw/ipsecgw/tun"
)

// genTUN is a Device for benchmarks: Read hands out copies of one packet
// until `left` is used up (then blocks until Close), Write counts packets
// and closes done when `want` have arrived. Neither allocates.
type genTUN struct {
	pkt    []byte
	batch  int
	left   atomic.Int64
	got    atomic.Int64
	want   int64
	done   chan struct{}
	closed chan struct{}
	once   sync.Once
	// doneOnce guards done: a batch can carry the count past want.
	doneOnce sync.Once
}

func newGenTUN(pkt []byte, batch int) *genTUN {
	return &genTUN{pkt: pkt, batch: batch, done: make(chan struct{}), closed: make(chan struct{})}
}

func (g *genTUN) Read(bufs [][]byte, sizes []int, off int) (int, error) {
	n := 0
	for n < len(bufs) && g.left.Add(-1) >= 0 {
		sizes[n] = copy(bufs[n][off:], g.pkt)
		n++
	}
	if n == 0 {
		<-g.closed
		return 0, os.ErrClosed
	}
	return n, nil
}

func (g *genTUN) Write(bufs [][]byte, off int) (int, error) {
	if g.got.Add(int64(len(bufs))) >= g.want {
		g.doneOnce.Do(func() { close(g.done) })
	}
	return len(bufs), nil
}

func (g *genTUN) BatchSize() int { return g.batch }
func (g *genTUN) MTU() int       { return 1500 }
func (g *genTUN) Name() string   { return "gen" }
func (g *genTUN) Close() error   { g.once.Do(func() { close(g.closed) }); return nil }

// BenchmarkPipeline pushes packets through two in-process dataplanes (TUN
// read, SPD, SAD, seal, in-memory "socket", open, replay, selectors, TUN
// write) with 1 and 2 crypto workers, to see whether parallel crypto pays
// on this machine, and with 0 or 100 idle tunnels (policies listed before
// the busy one, with their own SAs in both SADs), to see whether the SPD
// and SAD lookups slow down as tunnels are added. SetBytes is the inner
// packet.
//
//	go test -run XXX -bench Pipeline -benchtime 200000x ./esp/
func BenchmarkPipeline(b *testing.B) {
	s := benchSuite(b, "aes128gcm16")
	for _, size := range []int{64, 1400} {
		for _, workers := range []int{1, 2} {
			for _, idle := range []int{0, 100} {
				benchPipeline(b, s, size, workers, idle)
			}
		}
	}
}

func benchPipeline(b *testing.B, s suite, size, workers, idle int) {
	b.Run(fmt.Sprintf("%d/workers=%d/idle=%d", size, workers, idle), func(b *testing.B) {
		src := newGenTUN(ipv4Packet(size, "10.1.0.2", "10.2.0.2", 1), 128)
		dst := newGenTUN(nil, 128)
		var rx *Dataplane
		mk := func(dev tun.Device, local, remote string, addr, peer *Dataplane) (*Dataplane, *sad.Table) {
			st := sad.NewTable(sad.Options{})
			l := &spd.Live{}
			var rules []spd.Rule
			for k := range idle {
				l, r := idleNets(k)
				if local > remote { // the receiving side
					l, r = r, l
				}
				rules = append(rules, spd.Rule{Selector: selector(l, r), Action: spd.Protect, PolicyID: uint32(k + 2)})
			}
			rules = append(rules, spd.Rule{Selector: selector(local, remote), Action: spd.Protect, PolicyID: 1})
			tab, err := spd.Compile(rules)
			if err != nil {
				b.Fatal(err)
			}
			l.Store(tab)
			d, err := New(Config{TUN: dev, SAD: st, SPD: l, Workers: workers,
				NewSender: func() Sender { return newMemSender(func() *Dataplane { return rx }, gw1Addr, 128) }})
			if err != nil {
				b.Fatal(err)
			}
			return d, st
		}
		tx, txSAD := mk(src, "10.1.0.0/16", "10.2.0.0/16", nil, nil)
		var rxSAD *sad.Table
		rx, rxSAD = mk(dst, "10.2.0.0/16", "10.1.0.0/16", nil, nil)
		out, in := saPair(b, s, 0x1111, true)
		if err := txSAD.InstallOutbound(out); err != nil {
			b.Fatal(err)
		}
		if err := rxSAD.InstallInbound(in); err != nil {
			b.Fatal(err)
		}
		for k := range idle {
			o, i := idlePair(b, s, k)
			if err := txSAD.InstallOutbound(o); err != nil {
				b.Fatal(err)
			}
			if err := rxSAD.InstallInbound(i); err != nil {
				b.Fatal(err)
			}
		}
		b.SetBytes(int64(size))
		b.ReportAllocs()
		dst.want = int64(b.N)
		src.left.Store(int64(b.N))
		b.ResetTimer()
		rx.Start()
		tx.Start()
		<-dst.done
		b.StopTimer()
		tx.Close()
		rx.Close()
		if st := rx.Stats(); st.RxPackets != uint64(b.N) {
			b.Fatalf("received %d of %d (drops %v)", st.RxPackets, b.N, st.Drops)
		}
	})
}

// idleNets are the LANs of idle tunnel k: 172.16.k.0/24 ↔ 172.17.k.0/24.
func idleNets(k int) (string, string) {
	return fmt.Sprintf("172.16.%d.0/24", k), fmt.Sprintf("172.17.%d.0/24", k)
}

// idlePair is the outbound and inbound SA of idle tunnel k (policy k+2),
// with SPIs that cannot collide with the busy tunnel's.
func idlePair(b *testing.B, s suite, k int) (out, in *sad.SA) {
	b.Helper()
	l, r := idleNets(k)
	lp, rp := netip.MustParseAddrPort("198.51.100.1:4500"), netip.MustParseAddrPort("198.51.100.2:4500")
	spi := uint32(0x20000 + k)
	var err error
	out, err = sad.New(sad.Config{SPI: spi, Dir: sad.Outbound, Local: lp, Remote: rp, UDPEncap: true,
		Selectors: []spd.Selector{selector(l, r)}, Cipher: s.protector(b), ESN: true, PolicyID: uint32(k + 2)})
	if err != nil {
		b.Fatal(err)
	}
	in, err = sad.New(sad.Config{SPI: spi, Dir: sad.Inbound, Local: rp, Remote: lp, UDPEncap: true,
		Selectors: []spd.Selector{selector(r, l)}, Cipher: s.protector(b), ESN: true, PolicyID: uint32(k + 2)})
	if err != nil {
		b.Fatal(err)
	}
	return out, in
}
