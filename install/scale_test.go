package install

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/ike"
	"github.com/ipsecgw/ipsecgw/sad"
	"github.com/ipsecgw/ipsecgw/spd"
)

// hubChild is CHILD SA k of a hub's right=%any conn: the hub's LAN to
// spoke k's own /32, all under the conn's one policy ID (the shape of the
// IKE benchmark's responder, bench/ikebench).
func hubChild(k int) ike.ChildSA {
	a := netip.AddrFrom4([4]byte{10, 64 + byte(k>>16), byte(k >> 8), byte(k)})
	c := gcmChild("hub", 1, uint32(0x100000+k), uint32(0x200000+k))
	c.RemoteTS = []spd.TS{spd.PrefixTS(netip.PrefixFrom(a, 32))}
	return c
}

// fillHub installs n CHILD SAs of the hub conn.
func fillHub(tb testing.TB, inst *Installer, n int) {
	for k := range n {
		c := hubChild(k)
		if err := inst.Install(c); err != nil {
			tb.Fatal(err)
		}
	}
}

// hubs caches the filled installers of BenchmarkInstallHub by size, so
// that -count and a -bench filter fill only the sizes that run, once per
// process (each iteration leaves the installer as it found it).
var hubs = map[int]*Installer{}

// benchSPI numbers the benchmark's extra CHILD SAs: each iteration's must
// be new, because the SAD keeps a removed inbound SA for its linger time
// while other CHILD SAs of the same policy remain.
var benchSPI uint32

// BenchmarkInstallHub is one more CHILD SA installed and removed in an
// installer that holds n: what each tunnel of a hub's restart storm costs
// once n are up.
func BenchmarkInstallHub(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprintf("children=%d", n), func(b *testing.B) {
			inst := hubs[n]
			if inst == nil {
				// A short linger keeps the removed SAs from piling up.
				table := sad.NewTable(sad.Options{Linger: time.Millisecond})
				inst = New(table, &spd.Live{}, Options{Router: &recRouter{}, ReplayWindow: 1024})
				fillHub(b, inst, n)
				hubs[n] = inst
				b.ResetTimer()
			}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				benchSPI++
				c := hubChild(n)
				c.InSPI, c.OutSPI = 0x10000000+benchSPI, 0x20000000+benchSPI
				if err := inst.Install(c); err != nil {
					b.Fatal(err)
				}
				if err := inst.Remove("hub", c.InSPI, c.OutSPI); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
