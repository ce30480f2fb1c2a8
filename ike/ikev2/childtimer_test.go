package ikev2

import (
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/shared"
)

// handClock is a Clock whose timers fire only when the test says so.
type handClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*handTimer
}

type handTimer struct {
	c  *handClock
	at time.Time
	f  func()
}

func (c *handClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *handClock) AfterFunc(d time.Duration, f func()) shared.Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &handTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *handTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	n := len(t.c.timers)
	t.c.timers = slices.DeleteFunc(t.c.timers, func(x *handTimer) bool { return x == t })
	return len(t.c.timers) < n
}

// pending lists when the armed timers are due, relative to from.
func (c *handClock) pending(from time.Time) []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []time.Duration
	for _, t := range c.timers {
		out = append(out, t.at.Sub(from))
	}
	return out
}

// fire moves the clock to the earliest timer and runs it (taken off the
// list, as a runtime timer that fired).
func (c *handClock) fire() *handTimer {
	c.mu.Lock()
	slices.SortStableFunc(c.timers, func(a, b *handTimer) int { return a.at.Compare(b.at) })
	t := c.timers[0]
	c.timers = c.timers[1:]
	c.now = t.at
	c.mu.Unlock()
	t.f()
	return t
}

// A CHILD SA has one timer, armed for its rekey and then for its hard
// expiry. Here the rekey itself does nothing (the IKE SA is being deleted,
// or the peer's rekey of the CHILD SA is under way): what is checked is
// that the timer always goes on to the expiry, and that the event of a
// timer stopped after it fired changes nothing.
func TestChildTimerRekeyThenExpiry(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	conn := &config.Conn{Name: "net", Lifetime: 20 * time.Second, Margin: 5 * time.Second, Rekey: true}
	for _, peerRekeyed := range []bool{false, true} {
		clk := &handClock{now: t0}
		sa := &ikeSA{e: &Engine{clock: clk}, log: slog.New(slog.DiscardHandler), state: saDeleting}
		sa.loop.Init(EventQueueLimit, nil)
		settle := func() { sa.loop.Ask(func() bool { return true }) }
		ch := &child{conn: conn, established: t0}
		sa.children = []*child{ch}
		sa.armChildTimers(ch)
		if got := clk.pending(t0); !slices.Equal(got, []time.Duration{15 * time.Second}) {
			t.Fatalf("peer rekeyed %v: timers at %v, want one at the rekey (15s)", peerRekeyed, got)
		}
		ch.rekeyed = peerRekeyed
		clk.fire()
		settle()
		if got := clk.pending(t0); !slices.Equal(got, []time.Duration{20 * time.Second}) {
			t.Fatalf("peer rekeyed %v: after the rekey deadline, timers at %v, want one at the hard expiry (20s)", peerRekeyed, got)
		}
		// The expiry timer fires, but the CHILD SA moves to another IKE SA
		// (its timers stopped) before the event runs: nothing happens.
		clk.fire()
		ch.stopTimers()
		sa.children = nil
		settle()
		if got := clk.pending(t0); len(got) != 0 || ch.timer != nil {
			t.Fatalf("peer rekeyed %v: a stale event re-armed a timer: %v", peerRekeyed, got)
		}
		sa.loop.Close()
	}
}
