package ikev2

import (
	"testing"
	"time"
	"unsafe"

	"github.com/ipsecgw/ipsecgw/ike/shared"
)

// Instants stand for the times they were made from: the zero time is 0
// and back, a time at the Engine's creation is not 0, and durations
// between instants are those between the times, with the real clock's
// monotonic readings as with a fake clock's plain times.
func TestInstantRoundTrip(t *testing.T) {
	for _, clk := range []shared.Clock{shared.RealClock{}, &handClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}} {
		start := clk.Now()
		e := &Engine{clock: clk, epoch: start.Add(-epochLead)}
		if e.instant(time.Time{}) != 0 || !e.time(0).IsZero() {
			t.Fatalf("%T: the zero time is not instant 0", clk)
		}
		first := e.now()
		if first == 0 {
			t.Fatalf("%T: the time of the Engine's creation maps to 0 (none)", clk)
		}
		later := start.Add(90*time.Minute + 7*time.Nanosecond)
		i := e.instant(later)
		if got := e.time(i).Sub(start); got != 90*time.Minute+7*time.Nanosecond {
			t.Errorf("%T: %v after the start comes back as %v", clk, later.Sub(start), got)
		}
		if !e.time(i).Equal(later) {
			t.Errorf("%T: %v comes back as %v", clk, later, e.time(i))
		}
	}
}

// The structs an idle tunnel keeps stay in their allocation size classes:
// a field more takes every IKE SA to the next class (1,024 B, +128 B) or
// every CHILD SA to 320 B. An object over 512 B with pointers carries an
// 8-byte header in its slot: the ikeSA's 896 B class holds 888 B.
func TestIdleStructSizes(t *testing.T) {
	if n := unsafe.Sizeof(ikeSA{}); n > 888 {
		t.Errorf("ikeSA is %d B, over the 888 B its 896 B size class holds", n)
	}
	if n := unsafe.Sizeof(child{}); n > 288 {
		t.Errorf("child is %d B, over its 288 B size class", n)
	}
}
