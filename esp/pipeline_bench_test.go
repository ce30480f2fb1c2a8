package esp

import (
	"fmt"
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
// on this machine. SetBytes is the inner packet.
//
//	go test -run XXX -bench Pipeline -benchtime 200000x ./esp/
func BenchmarkPipeline(b *testing.B) {
	s := benchSuite(b, "aes128gcm16")
	for _, size := range []int{64, 1400} {
		for _, workers := range []int{1, 2} {
			b.Run(fmt.Sprintf("%d/workers=%d", size, workers), func(b *testing.B) {
				src := newGenTUN(ipv4Packet(size, "10.1.0.2", "10.2.0.2", 1), 128)
				dst := newGenTUN(nil, 128)
				var rx *Dataplane
				mk := func(dev tun.Device, local, remote string, addr, peer *Dataplane) (*Dataplane, *sad.Table) {
					st := sad.NewTable(sad.Options{})
					l := &spd.Live{}
					tab, err := spd.Compile([]spd.Rule{{Selector: selector(local, remote), Action: spd.Protect, PolicyID: 1}})
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
	}
}
