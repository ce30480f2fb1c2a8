// Package gctune sizes the Go heap's headroom to what the daemon allocates.
//
// By default (GOGC=100) the Go collector lets the heap grow to twice the
// live data before it runs, and the process keeps that memory. That
// headroom is what makes collection cheap while the daemon is busy (a
// restart storm sets up thousands of SAs a minute and allocates hundreds
// of megabytes doing it), but a hub holding ten thousand idle tunnels
// allocates little, and there the headroom doubles the resident memory for
// nothing: one collection a minute of the whole heap costs a fraction of a
// per mille of a core.
//
// The Tuner therefore sets the GC percentage from the allocation rate: the
// headroom it allows is what the daemon allocated during the last Window
// (a minute), as a percentage of the live heap, between Min and Max, so
// that a quiet daemon collects about once a Window. A burst raises it at
// once: the headroom is never less than BurstSpan at the rate of the
// busiest sample in the Window, so a setup storm after a quiet hour does
// not collect the whole heap every few megabytes while the window's sum
// catches up; it comes down as the burst leaves the Window. When it
// comes down a long way, the daemon hands the freed memory back to the
// kernel at once instead of leaving it to the runtime's background
// scavenger. Periodic work (a status walk over every SA every 20 s) counts
// at its average, not as a rate it keeps up for a whole minute.
package gctune

import (
	"math"
	"runtime/debug"
	"runtime/metrics"
	"time"
)

// Policy bounds the Tuner.
type Policy struct {
	// Period is the time between samples (the reaction time to a burst).
	Period time.Duration
	// Window is the time whose allocation the headroom covers, which is
	// about the time between collections while the daemon is quiet.
	Window time.Duration
	// Min and Max bound the GC percentage. Max is Go's default (100):
	// the Tuner never lets the heap grow more than the runtime would.
	Min, Max int
	// BurstSpan is how long the headroom lasts at least at the rate of
	// the busiest sample of the Window.
	BurstSpan time.Duration
	// MinHeadroom is the least headroom in bytes, whatever the rate:
	// a small daemon (a few tunnels, a few MB live) keeps Go's default,
	// and the first second of a burst after a quiet spell does not run
	// the collector every few hundred kilobytes.
	MinHeadroom uint64
	// MinRelease is the least memory worth handing back to the kernel at
	// once when the percentage falls (debug.FreeOSMemory: a whole
	// collection and a walk of the free pages, under the heap lock);
	// less is left to the runtime's background scavenger, which returns
	// it a little at a time. A small daemon then never pays for a forced
	// collection in the middle of its traffic.
	MinRelease uint64
}

// DefaultPolicy samples every second and keeps the last minute's
// allocation as headroom, at least 5 s at the busiest second's rate and
// at least 4 MB (the runtime's own smallest heap goal), between 5 % and
// Go's default 100 %; it hands memory back at once only when that is
// 32 MB or more (a hub's heap, not a site-to-site gateway's). The floor
// is what an idle hub's heap grows into between collections, however
// slowly it allocates: at 5 % of 100 MB live that is 5 MB.
var DefaultPolicy = Policy{Period: time.Second, Window: time.Minute, BurstSpan: 5 * time.Second, Min: 5, Max: 100,
	MinHeadroom: 4 << 20, MinRelease: 32 << 20}

// Sample is what the Tuner reads from the runtime.
type Sample struct {
	Allocated uint64 // bytes allocated on the heap since the process started
	Live      uint64 // bytes of heap objects the last collection found live
}

// Decision is what to apply after a sample.
type Decision struct {
	Percent int  // the GC percentage (debug.SetGCPercent)
	Changed bool // Percent differs from the previous decision
	// Release says that the percentage came down far enough that the
	// memory above the new heap goal should go back to the kernel now.
	Release bool
}

// Tuner turns samples into GC percentages. The zero value is not usable;
// call New.
type Tuner struct {
	policy  Policy
	perTick []uint64 // bytes allocated in each of the last Window/Period samples
	next    int      // slot of perTick the next sample writes
	filled  bool     // perTick holds a whole Window of samples
	last    uint64   // Allocated of the previous sample
	primed  bool     // a previous sample exists
	percent int      // the current decision
	// released is the percentage at the last Release: memory goes back to
	// the kernel when the percentage falls to half of it or less.
	released int
}

// New returns a Tuner that starts at the policy's Max (Go's default).
func New(p Policy) *Tuner {
	n := max(1, int(p.Window/p.Period))
	return &Tuner{policy: p, perTick: make([]uint64, n), percent: p.Max, released: p.Max}
}

// Next takes one sample and says which GC percentage to apply.
func (t *Tuner) Next(s Sample) Decision {
	if !t.primed {
		t.primed, t.last = true, s.Allocated
		return Decision{Percent: t.percent}
	}
	var delta uint64
	if s.Allocated > t.last {
		delta = s.Allocated - t.last
	}
	t.last = s.Allocated
	t.perTick[t.next] = delta
	t.next = (t.next + 1) % len(t.perTick)
	if t.next == 0 {
		t.filled = true
	}
	if !t.filled {
		// Less than a Window since the start: what was allocated so far
		// says nothing about a minute.
		return Decision{Percent: t.percent}
	}
	var window, peak uint64
	for _, b := range t.perTick {
		window += b
		peak = max(peak, b)
	}
	burst := peak * uint64(t.policy.BurstSpan/t.policy.Period)
	percent := t.policy.Max
	if s.Live > 0 {
		headroom := float64(max(window, burst, t.policy.MinHeadroom))
		percent = int(min(float64(t.policy.Max), math.Ceil(100*headroom/float64(s.Live))))
		percent = max(t.policy.Min, percent)
	}
	d := Decision{Percent: percent, Changed: percent != t.percent}
	t.percent = percent
	switch {
	case percent*2 <= t.released:
		// The headroom given up, as the collector will see it.
		if s.Live/100*uint64(t.released-percent) >= t.policy.MinRelease {
			d.Release = true
		}
		t.released = percent
	case percent > t.released:
		t.released = percent
	}
	return d
}

// Read samples the running process.
func Read() Sample {
	m := []metrics.Sample{{Name: "/gc/heap/allocs:bytes"}, {Name: "/gc/heap/live:bytes"}}
	metrics.Read(m)
	var s Sample
	if m[0].Value.Kind() == metrics.KindUint64 {
		s.Allocated = m[0].Value.Uint64()
	}
	if m[1].Value.Kind() == metrics.KindUint64 {
		s.Live = m[1].Value.Uint64()
	}
	return s
}

// Run applies the policy to the running process until stop closes, and
// puts Go's default back then. report, if not nil, is told every change.
func Run(p Policy, stop <-chan struct{}, report func(Decision)) {
	t := New(p)
	tick := time.NewTicker(p.Period)
	defer tick.Stop()
	defer debug.SetGCPercent(p.Max)
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		d := t.Next(Read())
		if !d.Changed {
			continue
		}
		debug.SetGCPercent(d.Percent)
		if d.Release {
			debug.FreeOSMemory()
		}
		if report != nil {
			report(d)
		}
	}
}
