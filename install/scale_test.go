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

// TestHubPeersOwnPolicies: CHILD SAs of one right=%any conn with different
// peers' selectors each carry their peer's traffic, whatever the order they
// came in; a rekey (same selectors) takes over its predecessor's policy and
// the old inbound SA lingers; the conn's first selector set keeps the reqid.
func TestHubPeersOwnPolicies(t *testing.T) {
	table := sad.NewTable(sad.Options{})
	defer table.Close()
	live := &spd.Live{}
	inst := New(table, live, Options{ReplayWindow: 1024})
	const peers = 5
	for k := range peers {
		if err := inst.Install(hubChild(k)); err != nil {
			t.Fatal(err)
		}
	}
	outSPI := func(k int) uint32 {
		t.Helper()
		dst := netip.AddrFrom4([4]byte{10, 64, 0, byte(k)})
		res := live.Load().Outbound(ipv4("10.1.0.2", dst.String()))
		if res.Action != spd.Protect {
			t.Fatalf("peer %d: verdict %+v", k, res)
		}
		sa := table.Outbound(res.PolicyID)
		if sa == nil {
			t.Fatalf("peer %d: no outbound SA for policy %d", k, res.PolicyID)
		}
		return sa.SPI()
	}
	for k := range peers {
		if got, want := outSPI(k), hubChild(k).OutSPI; got != want {
			t.Errorf("traffic to peer %d leaves through SA %08x, want its own %08x", k, got, want)
		}
	}
	if sa := table.Outbound(1); sa == nil || sa.SPI() != hubChild(0).OutSPI {
		t.Errorf("the first peer's policy is not the conn's reqid 1: %v", sa)
	}
	// Peer 2 rekeys: the new pair takes over, the old inbound SA lingers.
	old := hubChild(2)
	c := old
	c.InSPI, c.OutSPI = 0x300000, 0x400000
	if err := inst.Install(c); err != nil {
		t.Fatal(err)
	}
	if got := outSPI(2); got != c.OutSPI {
		t.Errorf("after the rekey peer 2's traffic leaves through %08x, want the new %08x", got, c.OutSPI)
	}
	if err := inst.Remove("hub", old.InSPI, old.OutSPI); err != nil {
		t.Fatal(err)
	}
	if table.Inbound(old.InSPI) == nil {
		t.Error("the rekeyed inbound SA did not linger")
	}
	// Peer 3 goes for good: nothing of it lingers, the others still work.
	if err := inst.Remove("hub", hubChild(3).InSPI, hubChild(3).OutSPI); err != nil {
		t.Fatal(err)
	}
	if table.Inbound(hubChild(3).InSPI) != nil {
		t.Error("a removed peer's inbound SA lingers although nothing replaced it")
	}
	for _, k := range []int{0, 1, 4} {
		if got, want := outSPI(k), hubChild(k).OutSPI; got != want {
			t.Errorf("peer %d: SA %08x, want %08x", k, got, want)
		}
	}
}
