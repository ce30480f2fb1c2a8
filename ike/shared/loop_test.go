package shared

import (
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func newLoop(limit int) *Loop {
	l := new(Loop)
	l.Init(limit, nil)
	return l
}

// idle reports whether no goroutine drains the loop.
func (l *Loop) idle() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return !l.running && len(l.queue) == 0
}

// Events from several posters run one at a time, each poster's in its
// order, and each event sees what the previous one wrote without any
// lock of its own (run with -race).
func TestLoopOrderAndExclusion(t *testing.T) {
	const posters, perPoster = 8, 2000
	l := newLoop(16)
	var (
		inside  atomic.Int32
		last    [posters]int // written only by events
		total   int          // likewise
		fail    atomic.Value
		wg      sync.WaitGroup
		allDone = make(chan struct{})
	)
	for p := range posters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 1; i <= perPoster; i++ {
				ev := func() {
					if inside.Add(1) != 1 {
						fail.Store("two events ran at once")
					}
					if last[p] != i-1 {
						fail.Store("events of one poster out of order")
					}
					last[p] = i
					total++
					if total == posters*perPoster {
						close(allDone)
					}
					inside.Add(-1)
				}
				// Mix the three kinds of post; TryPost and TryRun may
				// refuse when full, then the poster falls back to Post,
				// keeping its order.
				switch {
				case i%3 == 0:
					l.Post(ev)
				case i%3 == 1 && l.TryPost(ev):
				case i%3 == 2 && l.TryRun(ev):
				default:
					l.Post(ev)
				}
			}
		}()
	}
	wg.Wait()
	select {
	case <-allDone:
	case <-time.After(10 * time.Second):
		t.Fatal("not all events ran")
	}
	if f := fail.Load(); f != nil {
		t.Fatal(f)
	}
}

// TryPost accepts at most the limit of queued events; Post is never
// refused while the loop runs.
func TestLoopTryPostLimit(t *testing.T) {
	l := newLoop(3)
	release := make(chan struct{})
	started := make(chan struct{})
	l.Post(func() { close(started); <-release }) // holds the loop busy
	<-started
	for i := range 3 {
		if !l.TryPost(func() {}) {
			t.Fatalf("TryPost %d refused below the limit", i)
		}
	}
	if l.TryPost(func() {}) {
		t.Fatal("TryPost accepted a fourth queued event")
	}
	if !l.Post(func() {}) {
		t.Fatal("Post refused on a full queue")
	}
	close(release)
	done := make(chan struct{})
	l.Post(func() { close(done) })
	<-done
}

// TryRun runs the event in the caller when the loop is idle (no
// goroutine started), only queues it while a goroutine drains the loop,
// hands what is left after inlineEvents events to a goroutine, and
// refuses like TryPost.
func TestLoopTryRun(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLoop(2)
		base := runtime.NumGoroutine()
		ran := 0
		if !l.TryRun(func() {
			ran++
			if n := runtime.NumGoroutine(); n != base {
				t.Errorf("%d goroutines while the event runs, %d before", n, base)
			}
		}) {
			t.Fatal("TryRun refused on an idle loop")
		}
		if ran != 1 || !l.idle() {
			t.Fatalf("after TryRun: ran %d, idle %v", ran, l.idle())
		}

		// Busy: queued for the loop's goroutine, not run by the caller.
		release := make(chan struct{})
		l.Post(func() { <-release })
		synctest.Wait()
		if !l.TryRun(func() { ran++ }) || ran != 1 {
			t.Fatalf("TryRun on a busy loop: ran %d", ran)
		}
		if !l.TryRun(func() {}) || l.TryRun(func() {}) {
			t.Fatal("TryRun did not keep to the queue limit")
		}
		close(release)
		synctest.Wait()
		if ran != 2 || !l.idle() {
			t.Fatalf("after the busy loop drained: ran %d, idle %v", ran, l.idle())
		}

		// A stream of events posted from the first: the caller runs
		// inlineEvents of them and a goroutine the rest (held at gate
		// until the caller has returned).
		const more = 10
		var (
			count atomic.Int32
			order []int // written by the events only
			gate  = make(chan struct{})
		)
		l.TryRun(func() {
			order = append(order, 0)
			count.Add(1)
			for i := 1; i <= more; i++ {
				l.Post(func() {
					if i == inlineEvents {
						<-gate
					}
					order = append(order, i)
					count.Add(1)
				})
			}
		})
		if n := count.Load(); n != inlineEvents {
			t.Fatalf("TryRun ran %d events in the caller, want %d", n, inlineEvents)
		}
		close(gate)
		synctest.Wait()
		if !l.idle() || count.Load() != more+1 {
			t.Fatalf("%d of %d events ran", count.Load(), more+1)
		}
		for i, v := range order {
			if v != i {
				t.Fatalf("events out of order: %v", order)
			}
		}

		l.Close()
		if l.TryRun(func() { ran++ }) || ran != 2 {
			t.Fatal("TryRun accepted an event on a stopped loop")
		}
	})
}

// A loop has a goroutine only while it has events: the goroutine ends
// when the queue is empty, and the next post starts another.
func TestLoopNoGoroutineWhenIdle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLoop(4)
		base := runtime.NumGoroutine()
		ran := 0
		for round := range 3 {
			for range 5 {
				l.Post(func() { ran++ })
			}
			synctest.Wait()
			if !l.idle() {
				t.Fatalf("round %d: loop still has a goroutine or events", round)
			}
			if n := runtime.NumGoroutine(); n != base {
				t.Fatalf("round %d: %d goroutines, %d before", round, n, base)
			}
		}
		if ran != 15 {
			t.Fatalf("%d events ran, want 15", ran)
		}
	})
}

// Stop from an event drops what is queued after it and refuses later
// posts; Done is closed; afterEach runs after each event, the stopping
// one included.
func TestLoopStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := new(Loop)
		var ran []string
		l.Init(8, func() { ran = append(ran, "after") })
		release := make(chan struct{})
		l.Post(func() { <-release; ran = append(ran, "first") })
		l.Post(func() { ran = append(ran, "stop"); l.Stop() })
		l.Post(func() { ran = append(ran, "dropped") })
		close(release)
		synctest.Wait()
		select {
		case <-l.Done():
		default:
			t.Fatal("Done not closed after Stop")
		}
		if l.Post(func() { ran = append(ran, "late") }) || l.TryPost(func() {}) {
			t.Fatal("a stopped loop took an event")
		}
		synctest.Wait()
		want := []string{"first", "after", "stop", "after"}
		if len(ran) != len(want) {
			t.Fatalf("ran %v, want %v", ran, want)
		}
		for i := range want {
			if ran[i] != want[i] {
				t.Fatalf("ran %v, want %v", ran, want)
			}
		}
		if !l.idle() {
			t.Fatal("a stopped loop kept its goroutine or events")
		}
	})
}

// Close waits for the running event and drops the rest.
func TestLoopCloseWaitsForRunningEvent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLoop(8)
		var finished, dropped bool
		l.Post(func() { time.Sleep(time.Second); finished = true })
		l.Post(func() { dropped = true })
		synctest.Wait() // the first event sleeps
		l.Close()
		if !finished {
			t.Fatal("Close returned before the running event finished")
		}
		synctest.Wait()
		if dropped {
			t.Fatal("an event queued before Close ran")
		}
		l.Close() // a second Close returns at once
		if !l.idle() {
			t.Fatal("a closed loop kept its goroutine or events")
		}
	})
}

// A timer that fires after the loop stopped runs nothing and leaves no
// goroutine behind; one that fires before runs in the loop.
func TestLoopTimers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLoop(8)
		var early, late bool
		l.After(RealClock{}, time.Second, func() { early = true })
		l.After(RealClock{}, 3*time.Second, func() { late = true })
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if !early {
			t.Fatal("the timer due before Stop did not run")
		}
		l.Post(l.Stop)
		synctest.Wait()
		time.Sleep(2 * time.Second)
		synctest.Wait()
		if late {
			t.Fatal("a timer ran its event after Stop")
		}
		if !l.idle() {
			t.Fatal("a stopped loop kept its goroutine or events")
		}
	})
}

// A loop that never gets idle reuses its buffer instead of growing it.
func TestLoopBufferBounded(t *testing.T) {
	l := newLoop(4)
	release := make(chan struct{})
	l.Post(func() { <-release })
	for range 3 {
		l.Post(func() {})
	}
	var steps atomic.Int32
	var next func()
	next = func() {
		if steps.Add(1) < 10000 {
			l.Post(next) // always one more queued: never idle
		}
	}
	l.Post(next)
	close(release)
	for steps.Load() < 10000 {
		time.Sleep(time.Millisecond)
	}
	l.mu.Lock()
	c := cap(l.queue)
	l.mu.Unlock()
	if c > 64 {
		t.Fatalf("buffer grew to %d events with at most 5 queued", c)
	}
}

// Ask returns the answer of its function, also when that function stops
// the loop, and false when the loop is stopped already.
func TestLoopAsk(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLoop(4)
		if !l.Ask(func() bool { return true }) || l.Ask(func() bool { return false }) {
			t.Fatal("Ask did not return the answer")
		}
		if !l.Ask(func() bool { l.Stop(); return true }) {
			t.Fatal("Ask lost the answer of a function that stopped the loop")
		}
		ran := false
		if l.Ask(func() bool { ran = true; return true }) || ran {
			t.Fatal("Ask ran on a stopped loop")
		}
	})
}
