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

// A 10-sample window: the headroom is what the last 10 samples allocated,
// and at least twice the busiest of them.
var testPolicy = Policy{Period: time.Second, Window: 10 * time.Second, BurstSpan: 2 * time.Second, Min: 10, Max: 100}

// quietStart is a tuner past its first window with nothing allocated.
func quietStart(t *testing.T, p Policy, live uint64) (*Tuner, *uint64) {
	tu := New(p)
	var alloc uint64
	feed(tu, &alloc, live, repeat(0, 11)...)
	return tu, &alloc
}

func TestBusyKeepsGoDefault(t *testing.T) {
	tu := New(testPolicy)
	var alloc uint64
	// 100 MB live, 50 MB a second: 500 MB a window, far above the
	// default's 100 MB headroom.
	for i, d := range feed(tu, &alloc, 100*mb, repeat(50*mb, 30)...) {
		if d.Percent != 100 || d.Changed || d.Release {
			t.Fatalf("busy daemon, sample %d: %+v, want 100 %% unchanged", i, d)
		}
	}
}

func TestFirstWindowKeepsGoDefault(t *testing.T) {
	tu := New(testPolicy)
	var alloc uint64
	// Nothing allocated, but less than a window since the start.
	ds := feed(tu, &alloc, 100*mb, repeat(0, 10)...)
	for i, d := range ds {
		if d.Percent != 100 {
			t.Fatalf("sample %d of the first window: %d %%, want Go's default", i, d.Percent)
		}
	}
	if d := feed(tu, &alloc, 100*mb, 0)[0]; d.Percent != 10 || !d.Release {
		t.Fatalf("after the first window: %+v, want the floor with a release", d)
	}
}

func TestQuietLowersAsTheBurstLeavesTheWindow(t *testing.T) {
	tu := New(testPolicy)
	var alloc uint64
	feed(tu, &alloc, 100*mb, repeat(50*mb, 12)...)
	// The burst ends: 1 MB a second. While one 50 MB sample is in the
	// window, twice it is the headroom; then the window's 10 MB.
	ds := feed(tu, &alloc, 100*mb, repeat(1*mb, 12)...)
	for k, want := range map[int]int{1: 100, 9: 100, 10: 10, 12: 10} {
		if d := ds[k-1]; d.Percent != want {
			t.Errorf("%d quiet samples after the burst: %d %%, want %d", k, d.Percent, want)
		}
	}
	if d := ds[9]; !d.Changed || !d.Release {
		t.Errorf("10 %%: %+v, want a change with a release", d)
	}
	if d := ds[11]; d.Changed || d.Release {
		t.Errorf("still quiet: %+v, want nothing new", d)
	}
}

func TestHeadroomFollowsTheRate(t *testing.T) {
	tu, alloc := quietStart(t, testPolicy, 100*mb)
	// 3 MB a second over 10 s is 30 MB: 30 % of 100 MB live.
	ds := feed(tu, alloc, 100*mb, repeat(3*mb, 10)...)
	if d := ds[len(ds)-1]; d.Percent != 30 {
		t.Fatalf("3 MB/s with 100 MB live: %d %%, want 30", d.Percent)
	}
	// Periodic work counts at its average: 12 MB every 4 samples is
	// 36 MB in 10 samples at most (three of the bursts), 24 MB at least.
	for i := range 20 {
		b := uint64(0)
		if i%4 == 0 {
			b = 12 * mb
		}
		d := feed(tu, alloc, 100*mb, b)[0]
		if i >= 10 && (d.Percent < 24 || d.Percent > 36) {
			t.Fatalf("periodic 12 MB every 4 s, sample %d: %d %%, want 24–36", i, d.Percent)
		}
	}
	// Nothing allocated at all: the floor.
	ds = feed(tu, alloc, 100*mb, repeat(0, 10)...)
	if d := ds[len(ds)-1]; d.Percent != 10 {
		t.Fatalf("no allocation: %d %%, want the floor 10", d.Percent)
	}
}

func TestBurstRaisesAtOnce(t *testing.T) {
	tu, alloc := quietStart(t, testPolicy, 100*mb)
	// A 30 MB second after a quiet window: twice it, 60 %, at once; the
	// window's sum takes over as the burst goes on.
	ds := feed(tu, alloc, 100*mb, 30*mb, 30*mb, 30*mb, 30*mb)
	for i, want := range []int{60, 60, 90, 100} {
		if d := ds[i]; d.Percent != want || d.Release {
			t.Fatalf("sample %d of a 30 MB/s burst: %+v, want %d %% without a release", i+1, d, want)
		}
	}
	// After the burst and a quiet window, it releases again.
	ds = feed(tu, alloc, 100*mb, repeat(0, 10)...)
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
	// 4 MB/s: the window falls by 3 MB a sample, 67 … 40; it releases
	// once, at 49, the first value at most half of 100.
	var released []int
	for _, d := range feed(tu, &alloc, 100*mb, repeat(4*mb, 10)...) {
		if d.Release {
			released = append(released, d.Percent)
		}
	}
	if len(released) != 1 || released[0] != 49 {
		t.Fatalf("4 MB/s after 7: released at %v, want once at 49 %%", released)
	}
	// 3 MB/s → 30 %: more than half of 49, no release.
	for _, d := range feed(tu, &alloc, 100*mb, repeat(3*mb, 10)...) {
		if d.Release {
			t.Fatalf("3 MB/s after 4: %+v, want no release", d)
		}
	}
}

func TestMinHeadroom(t *testing.T) {
	p := testPolicy
	p.MinHeadroom = 4 * mb
	// A small daemon: 3 MB live, nothing allocated. 4 MB of headroom is
	// more than Go's default gives it.
	tu, alloc := quietStart(t, p, 3*mb)
	if d := feed(tu, alloc, 3*mb, 0)[0]; d.Percent != 100 || d.Changed {
		t.Fatalf("3 MB live, quiet: %+v, want 100 %% unchanged", d)
	}
	// 20 MB live: 4 MB is 20 %.
	if d := feed(tu, alloc, 20*mb, 0)[0]; d.Percent != 20 {
		t.Fatalf("20 MB live, quiet: %+v, want 20 %%", d)
	}
}

func TestMinRelease(t *testing.T) {
	p := testPolicy
	p.MinRelease = 32 * mb
	// 20 MB live going from 100 % to 10 % gives up 18 MB of headroom:
	// left to the background scavenger.
	tu := New(p)
	var alloc uint64
	ds := feed(tu, &alloc, 20*mb, repeat(0, 11)...)
	if d := ds[len(ds)-1]; d.Percent != 10 || !d.Changed || d.Release {
		t.Fatalf("20 MB live, quiet: %+v, want 10 %% without a forced release", d)
	}
	// 200 MB live gives up 180 MB: released at once.
	tu = New(p)
	ds = feed(tu, &alloc, 200*mb, repeat(0, 11)...)
	if d := ds[len(ds)-1]; d.Percent != 10 || !d.Release {
		t.Fatalf("200 MB live, quiet: %+v, want 10 %% with a release", d)
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
