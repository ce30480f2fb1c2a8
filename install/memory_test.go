package install

import (
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/ike"
	"github.com/ipsecgw/ipsecgw/sad"
	"github.com/ipsecgw/ipsecgw/spd"
)

// heapProfile names a file TestHubMemory writes a heap profile to while
// the pairs are installed (use with -memprofilerate=1 for every object).
var heapProfile = flag.String("hubheapprofile", "", "write a heap profile of TestHubMemory's installed pairs to `file`")

// keyedHubChild is hubChild(k) with keys of its own, as real CHILD SAs
// have (the ciphers must not be able to share anything because two SAs
// happen to hold the same key).
func keyedHubChild(k int) ike.ChildSA {
	c := hubChild(k)
	c.Lifetime = time.Hour // the daemon's CHILD SAs have IKE's (hard) lifetime
	c.InEncrKey, c.OutEncrKey = make([]byte, 20), make([]byte, 20)
	binary.BigEndian.PutUint64(c.InEncrKey, uint64(2*k+1))
	binary.BigEndian.PutUint64(c.OutEncrKey, uint64(2*k+2))
	return c
}

// heapPerPair installs the n CHILD SA pairs child(0..n-1) with the
// daemon's default replay window into a fresh SAD, SPD and installer and
// returns the live heap they hold, in bytes per pair, after a full
// collection; with profile set, it writes the heap profile (-hubheapprofile).
func heapPerPair(tb testing.TB, n int, child func(k int) ike.ChildSA, profile bool) float64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	table := sad.NewTable(sad.Options{Linger: time.Millisecond})
	defer table.Close()
	inst := New(table, &spd.Live{}, Options{Router: &recRouter{}, ReplayWindow: 1024})
	for k := range n {
		if err := inst.Install(child(k)); err != nil {
			tb.Fatal(err)
		}
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	if profile && *heapProfile != "" {
		f, err := os.Create(*heapProfile)
		if err != nil {
			tb.Fatal(err)
		}
		defer f.Close()
		if err := pprof.WriteHeapProfile(f); err != nil {
			tb.Fatal(err)
		}
	}
	runtime.KeepAlive(inst)
	return float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
}

// TestHubMemory reports and bounds the heap a hub's idle CHILD SA pair
// costs in the SAD, SPD and installer with real AES-GCM ciphers. With
// -memprofilerate=1 -args -hubheapprofile FILE the profile's inuse_space
// shows where it goes.
func TestHubMemory(t *testing.T) {
	n := 10000
	if testing.Short() {
		n = 1000
	}
	per := heapPerPair(t, n, keyedHubChild, true)
	t.Logf("%d CHILD SA pairs: %.0f bytes of heap per pair", n, per)
	// 6.1 KB before the SAs shed their idle state (key schedules, replay
	// bitmaps, timers, outbound selector tables, key copies); 3.4 KB
	// before the installer's record, the SPD's entries and chunks, the SA
	// slots and the Protectors lost their copies, maps, pools and padding;
	// 2.1 KB since (2.2 KB with -short's 1,000 pairs).
	if per > 2400 {
		t.Errorf("an idle CHILD SA pair holds %.0f bytes of heap, want at most 2400", per)
	}
}

// TestConnsMemory is TestHubMemory for an initiator's shape: a conn of
// its own for each CHILD SA pair, so that the installer's records per
// conn (its place in the rule order, its usage, its policy key) count too.
// The conn names are the test's, as the daemon's are its configuration's.
func TestConnsMemory(t *testing.T) {
	n := 10000
	if testing.Short() {
		n = 1000
	}
	names := make([]string, n)
	for k := range names {
		names[k] = fmt.Sprintf("conn-%d", k)
	}
	per := heapPerPair(t, n, func(k int) ike.ChildSA {
		c := keyedHubChild(k)
		c.Conn, c.ReqID = names[k], uint32(k+1)
		return c
	}, false)
	t.Logf("%d conns with a CHILD SA pair each: %.0f bytes of heap per pair", n, per)
	// 2.5 KB when it was written: TestHubMemory's pair and about 350
	// bytes of the conn's own bookkeeping.
	if per > 2800 {
		t.Errorf("a conn's idle CHILD SA pair holds %.0f bytes of heap, want at most 2800", per)
	}
}
