package gctune

import (
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

const mb = 1 << 20

// feed gives the tuner one sample per element of perTick (bytes allocated
// since the previous sample) with a constant live heap, and returns the
// decisions.
func feed(t *Tuner, alloc *uint64, live uint64, perTick ...uint64) []Decision {
	var out []Decision
	for _, b := range perTick {
		*alloc += b
		out = append(out, t.Next(Sample{Allocated: *alloc, Live: live}))
	}
	return out
}

func repeat(b uint64, n int) []uint64 {
	s := make([]uint64, n)
	for i := range s {
		s[i] = b
	}
	return s
}

// A 10-sample window: the headroom is 10 samples' allocation at the
// highest rate among the last 10.
var testPolicy = Policy{Period: time.Second, Window: 10 * time.Second, Min: 10, Max: 100}

func TestBusyKeepsGoDefault(t *testing.T) {
	tu := New(testPolicy)
	var alloc uint64
	// 100 MB live, 50 MB a second: a minute's... ten seconds' allocation
	// is 500 MB, far above the default's 100 MB headroom.
	for _, d := range feed(tu, &alloc, 100*mb, repeat(50*mb, 30)...) {
		if d.Percent != 100 || d.Changed || d.Release {
			t.Fatalf("busy daemon: %+v, want 100 %% unchanged", d)
		}
	}
}

func TestQuietLowersAfterAWholeWindow(t *testing.T) {
	tu := New(testPolicy)
	var alloc uint64
	feed(tu, &alloc, 100*mb, repeat(50*mb, 12)...)
	// The burst ends: 1 MB a second, 10 MB over the window = 10 % of
	// 100 MB live. The burst's samples stay in the window for 10 more
	// samples (the first sample after it still sees 9 of them).
	ds := feed(tu, &alloc, 100*mb, repeat(1*mb, 10)...)
	for i, d := range ds[:9] {
		if d.Percent != 100 {
			t.Fatalf("sample %d after the burst: %d %%, want 100 while the burst is in the window", i, d.Percent)
		}
	}
	last := ds[9]
	if last.Percent != 10 || !last.Changed || !last.Release {
		t.Fatalf("a whole quiet window after the burst: %+v, want 10 %%, changed, release", last)
	}
	// It stays there without releasing again.
	for _, d := range feed(tu, &alloc, 100*mb, repeat(1*mb, 5)...) {
		if d.Percent != 10 || d.Changed || d.Release {
			t.Fatalf("quiet daemon: %+v, want 10 %% unchanged", d)
		}
	}
}

func TestHeadroomFollowsTheRate(t *testing.T) {
	tu := New(testPolicy)
	var alloc uint64
	// 3 MB a second over 10 s is 30 MB: 30 % of 100 MB live (rounded up
	// from 30.0).
	ds := feed(tu, &alloc, 100*mb, repeat(3*mb, 11)...)
	if d := ds[len(ds)-1]; d.Percent != 30 {
		t.Fatalf("3 MB/s with 100 MB live: %d %%, want 30", d.Percent)
	}
	// Nothing allocated at all: the floor.
	ds = feed(tu, &alloc, 100*mb, repeat(0, 10)...)
	if d := ds[len(ds)-1]; d.Percent != 10 {
		t.Fatalf("no allocation: %d %%, want the floor 10", d.Percent)
	}
}

func TestBurstRaisesWithinOneSample(t *testing.T) {
	tu := New(testPolicy)
	var alloc uint64
	feed(tu, &alloc, 100*mb, repeat(0, 15)...)
	d := feed(tu, &alloc, 100*mb, 40*mb)[0]
	if d.Percent != 100 || !d.Changed || d.Release {
		t.Fatalf("first sample of a burst: %+v, want 100 %%, changed, no release", d)
	}
	// After the burst and a quiet window, it releases again.
	ds := feed(tu, &alloc, 100*mb, repeat(0, 10)...)
	if d := ds[len(ds)-1]; d.Percent != 10 || !d.Release {
		t.Fatalf("quiet again: %+v, want 10 %% with a release", d)
	}
}

func TestReleaseOnlyOnALargeDrop(t *testing.T) {
	tu := New(testPolicy)
	var alloc uint64
	// 7 MB/s → 70 %: not half of 100, no release.
	ds := feed(tu, &alloc, 100*mb, repeat(7*mb, 11)...)
	if d := ds[len(ds)-1]; d.Percent != 70 || d.Release {
		t.Fatalf("7 MB/s: %+v, want 70 %% without a release", d)
	}
	// 4 MB/s → 40 %, less than half of the 100 at the last release point.
	ds = feed(tu, &alloc, 100*mb, repeat(4*mb, 10)...)
	if d := ds[len(ds)-1]; d.Percent != 40 || !d.Release {
		t.Fatalf("4 MB/s: %+v, want 40 %% with a release", d)
	}
	// 3 MB/s → 30 %: more than half of 40, no release.
	ds = feed(tu, &alloc, 100*mb, repeat(3*mb, 10)...)
	if d := ds[len(ds)-1]; d.Percent != 30 || d.Release {
		t.Fatalf("3 MB/s: %+v, want 30 %% without a release", d)
	}
}

func TestMinHeadroom(t *testing.T) {
	p := testPolicy
	p.MinHeadroom = 4 * mb
	tu := New(p)
	var alloc uint64
	// A small daemon: 3 MB live, nothing allocated. 4 MB of headroom is
	// more than Go's default gives it.
	ds := feed(tu, &alloc, 3*mb, repeat(0, 11)...)
	if d := ds[len(ds)-1]; d.Percent != 100 || d.Changed {
		t.Fatalf("3 MB live, quiet: %+v, want 100 %% unchanged", d)
	}
	// 20 MB live: 4 MB is 20 %.
	ds = feed(tu, &alloc, 20*mb, repeat(0, 11)...)
	if d := ds[len(ds)-1]; d.Percent != 20 {
		t.Fatalf("20 MB live, quiet: %+v, want 20 %%", d)
	}
}

func TestNoLiveHeapYetKeepsDefault(t *testing.T) {
	tu := New(testPolicy)
	var alloc uint64
	for _, d := range feed(tu, &alloc, 0, repeat(0, 20)...) {
		if d.Percent != 100 {
			t.Fatalf("before the first collection: %d %%, want 100", d.Percent)
		}
	}
}

// TestRunOnTheProcess runs the tuner on this test process: a large live
// heap and no allocation bring the percentage to the floor, and stopping
// puts Go's default back.
func TestRunOnTheProcess(t *testing.T) {
	live := make([]byte, 64*mb)
	for i := range live {
		live[i] = byte(i)
	}
	runtime.GC()
	stop := make(chan struct{})
	done := make(chan struct{})
	decisions := make(chan Decision, 100)
	go func() {
		defer close(done)
		Run(Policy{Period: 10 * time.Millisecond, Window: 50 * time.Millisecond, Min: 10, Max: 100}, stop, func(d Decision) {
			select {
			case decisions <- d:
			default:
			}
		})
	}()
	var low bool
	deadline := time.After(30 * time.Second)
	for !low {
		select {
		case d := <-decisions:
			low = d.Percent == 10
		case <-deadline:
			close(stop)
			t.Fatal("the percentage never came down to the floor with 64 MB live and nothing allocated")
		}
	}
	close(stop)
	<-done
	if prev := debug.SetGCPercent(100); prev != 100 {
		t.Fatalf("after Run stopped the GC percentage is %d, want Go's default 100 back", prev)
	}
	runtime.KeepAlive(live)
}
