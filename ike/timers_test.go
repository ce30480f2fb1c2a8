package ike

import (
	"fmt"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
)

// upHub brings up n tunnels of hubConfs between a and h and waits until
// both sides installed every CHILD SA.
func upHub(t testing.TB, a, h *node, n int) {
	t.Helper()
	a.inst.events = make(chan struct{}, 2*n)
	h.inst.events = make(chan struct{}, 2*n)
	for k := range n {
		if err := a.m.Up(fmt.Sprintf("s%d", k)); err != nil {
			t.Fatal(err)
		}
	}
	for range n {
		<-a.inst.events
		<-h.inst.events
	}
}

// timersIn counts the fake clock's pending timers due between from+lo and
// from+hi (inclusive), per bucket of width step.
func timersIn(clk *fakeClock, from time.Time, lo, hi, step time.Duration) []int {
	clk.mu.Lock()
	defer clk.mu.Unlock()
	counts := make([]int, (hi-lo)/step+1)
	for _, t := range clk.timers {
		d := t.at.Sub(from)
		if d >= lo && d <= hi {
			counts[(d-lo)/step]++
		}
	}
	return counts
}

// rekeyWindows are where the rekey timers of hubConfs' conns fall:
// lifetime - margin - random(margin × rekeyfuzz), with the defaults
// (rekeyfuzz 100%) a window one margin wide. Only the initiator
// reauthenticates the IKE SA (reauth=yes); both sides rekey CHILD SAs.
var rekeyWindows = []struct {
	what      string
	lo, hi    time.Duration
	perTunnel int
}{
	{"CHILD rekey", config.DefaultLifetime - 2*config.DefaultMargin, config.DefaultLifetime - config.DefaultMargin, 2},
	{"IKE reauthentication", config.DefaultIKELifetime - 2*config.DefaultMargin, config.DefaultIKELifetime - config.DefaultMargin, 1},
}

// TestRekeyTimersSpreadAtScale brings up 1,000 tunnels at one instant of
// the fake clock, the worst case of a hub whose peers all come back at
// once, and checks that rekeyfuzz spreads their rekey timers over the
// margin instead of firing them together: no minute of the window holds
// more than twice its share. (BenchmarkHubMemory reports the same peak
// at 10,000 tunnels.) About 2 s.
func TestRekeyTimersSpreadAtScale(t *testing.T) {
	if testing.Short() {
		t.Skip("brings up 1,000 tunnels")
	}
	const n = 1000
	const psk = ": PSK \"hub and spokes\"\n"
	spokes, hub := hubConfs(n)
	a, h, _, clk := pair(t, spokes, psk, hub, psk, testOpts{})
	t0 := clk.Now()
	upHub(t, a, h, n)
	for _, w := range rekeyWindows {
		counts := timersIn(clk, t0, w.lo, w.hi, time.Minute)
		total, peak := 0, 0
		for _, c := range counts {
			total += c
			peak = max(peak, c)
		}
		t.Logf("%s timers per minute from +%v: %v", w.what, w.lo, counts)
		if total != w.perTunnel*n {
			t.Fatalf("%s: %d timers in the window, want %d", w.what, total, w.perTunnel*n)
		}
		// The last bucket is the single instant lifetime - margin, hit
		// only when the random fuzz is 0; the others share the rest.
		share := float64(total) / float64(len(counts)-1)
		if float64(peak) > 2*share {
			t.Fatalf("%s: %d timers in one minute, twice the share of %.0f: not spread", w.what, peak, share)
		}
	}
	closeAll(t, func() {}, a, h)
}
