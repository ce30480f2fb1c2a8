package replay

import (
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
)

// ref is the slow, obviously correct model: every number ever accepted plus
// the highest one.
type ref struct {
	seen map[uint64]bool
	top  uint64
	size uint64
}

func newRef(size int) *ref { return &ref{seen: map[uint64]bool{}, size: uint64(size)} }

func (r *ref) judge(seq uint64) Result {
	switch {
	case seq == 0:
		return Invalid
	case seq > r.top:
		return OK
	case r.top-seq >= r.size:
		return TooOld
	case r.seen[seq]:
		return Duplicate
	}
	return OK
}

func (r *ref) accept(seq uint64) Result {
	res := r.judge(seq)
	if res == OK {
		r.seen[seq] = true
		if seq > r.top {
			r.top = seq
		}
	}
	return res
}

func mustNew(t testing.TB, size int, esn bool) *Window {
	t.Helper()
	w, ok := New(size, esn)
	if !ok {
		t.Fatalf("New(%d, %v) refused", size, esn)
	}
	return w
}

// checkAccept runs the dataplane sequence: Check, then Accept if Check
// allowed it.
func checkAccept(w *Window, low uint32) (uint64, Result) {
	seq, r := w.Check(low)
	if r != OK {
		return seq, r
	}
	return seq, w.Accept(seq)
}

func TestNewSizes(t *testing.T) {
	for _, tc := range []struct {
		size, want, words int
	}{
		{0, DefaultSize, 4},
		{1, 1, 2},
		{32, 32, 2},
		{64, 64, 2},
		{65, 65, 4},
		{128, 128, 4},
		{1024, 1024, 32},
		{4096, 4096, 128},
		{MaxSize, MaxSize, 2048},
	} {
		w := mustNew(t, tc.size, false)
		if w.Size() != tc.want || w.words() != tc.words {
			t.Errorf("New(%d): size %d words %d, want %d and %d", tc.size, w.Size(), w.words(), tc.want, tc.words)
		}
	}
	for _, bad := range []int{-1, MaxSize + 1} {
		if _, ok := New(bad, false); ok {
			t.Errorf("New(%d) accepted", bad)
		}
	}
}

func TestInOrderDuplicateTooOld(t *testing.T) {
	w := mustNew(t, 64, false)
	if _, r := w.Check(0); r != Invalid {
		t.Fatalf("seq 0: %v, want invalid", r)
	}
	for i := uint32(1); i <= 1000; i++ {
		if seq, r := checkAccept(w, i); r != OK || seq != uint64(i) {
			t.Fatalf("seq %d: %v (%d)", i, r, seq)
		}
	}
	if _, r := checkAccept(w, 1000); r != Duplicate {
		t.Errorf("repeat of top: %v", r)
	}
	if _, r := checkAccept(w, 937); r != Duplicate {
		t.Errorf("repeat of oldest in window: %v", r)
	}
	if _, r := checkAccept(w, 936); r != TooOld {
		t.Errorf("just behind window: %v", r)
	}
	if _, r := checkAccept(w, 1); r != TooOld {
		t.Errorf("far behind window: %v", r)
	}
	if w.Top() != 1000 {
		t.Errorf("top %d", w.Top())
	}
}

func TestReorderedWithinWindow(t *testing.T) {
	for _, size := range []int{32, 64, 128, 1024, 4096} {
		w := mustNew(t, size, false)
		// Jump ahead, then fill in every number of the window backwards.
		top := uint32(10 * size)
		if _, r := checkAccept(w, top); r != OK {
			t.Fatalf("size %d: top: %v", size, r)
		}
		for s := top - 1; s > top-uint32(size); s-- {
			if _, r := checkAccept(w, s); r != OK {
				t.Fatalf("size %d: seq %d: %v", size, s, r)
			}
		}
		if _, r := checkAccept(w, top-uint32(size)); r != TooOld {
			t.Errorf("size %d: top-W: %v", size, r)
		}
		for s := top; s > top-uint32(size); s-- {
			if _, r := w.Check(s); r != Duplicate {
				t.Fatalf("size %d: second %d: %v", size, s, r)
			}
		}
		// A jump of exactly one window keeps nothing but the new top.
		if _, r := checkAccept(w, top+uint32(size)); r != OK {
			t.Fatalf("size %d: jump: %v", size, r)
		}
		for s := top + 1; s < top+uint32(size); s++ {
			if _, r := w.Check(s); r != OK {
				t.Fatalf("size %d: after jump %d: %v", size, s, r)
			}
		}
	}
}

// TestCheckDoesNotRecord pins that only Accept changes state, and that Accept
// re-checks (two packets with the same number both pass Check).
func TestCheckDoesNotRecord(t *testing.T) {
	w := mustNew(t, 128, false)
	s1, r1 := w.Check(5)
	s2, r2 := w.Check(5)
	if r1 != OK || r2 != OK {
		t.Fatalf("checks: %v %v", r1, r2)
	}
	if r := w.Accept(s1); r != OK {
		t.Fatalf("first accept: %v", r)
	}
	if r := w.Accept(s2); r != Duplicate {
		t.Fatalf("second accept: %v", r)
	}
	if r := w.Accept(0); r != Invalid {
		t.Fatalf("accept 0: %v", r)
	}
}

func TestESNInference(t *testing.T) {
	const W = 128
	w := mustNew(t, W, true)
	// Start near the top of the first 2^32 subspace.
	start := uint64(1<<32 - 100)
	w.top.Store(start) // as if everything before had been received
	// Case A (window within one subspace): a low value below the bottom of
	// the window belongs to the next subspace.
	if seq, r := w.Check(5); r != OK || seq != 1<<32|5 {
		t.Fatalf("case A wrap: %#x %v", seq, r)
	}
	if seq, r := w.Check(uint32(start - 10)); r != OK || seq != start-10 {
		t.Fatalf("case A same: %#x %v", seq, r)
	}
	// Walk the sender across the boundary, accepting every number.
	for s := start + 1; s < 1<<32+300; s++ {
		seq, r := checkAccept(w, uint32(s))
		if r != OK || seq != s {
			t.Fatalf("walk %#x: got %#x %v", s, seq, r)
		}
	}
	if w.Top() != 1<<32+299 {
		t.Fatalf("top %#x", w.Top())
	}
	// Now a packet from just before the wrap (late) is inferred into the old
	// subspace and is a duplicate; one older than the window is too old as it
	// lands in the old subspace only while within the window (case B).
	w2 := mustNew(t, W, true)
	w2.top.Store(1<<32 + 10) // case B: Tl = 10 < W-1
	if seq, r := w2.Check(uint32(1<<32 - 20)); r != OK || seq != 1<<32-20 {
		t.Fatalf("case B previous subspace: %#x %v", seq, r)
	}
	if seq, r := w2.Check(3); r != OK || seq != 1<<32+3 {
		t.Fatalf("case B current subspace, below top: %#x %v", seq, r)
	}
	if seq, r := w2.Check(500); r != OK || seq != 1<<32+500 {
		t.Fatalf("case B ahead: %#x %v", seq, r)
	}
	if r := w2.Accept(1<<32 - 20); r != OK {
		t.Fatalf("accept previous subspace: %v", r)
	}
	if _, r := w2.Check(uint32(1<<32 - 20)); r != Duplicate {
		t.Fatalf("duplicate across boundary: %v", r)
	}
	// Low value just below the window bottom (1<<32+10-127 = 1<<32-117):
	// inferred as the far future of the current subspace, not too old.
	if seq, r := w2.Check(uint32(1<<32 - 118)); r != OK || seq != 1<<32+(1<<32-118) {
		t.Fatalf("case B below bottom: %#x %v", seq, r)
	}
}

func TestESNInvalidEdges(t *testing.T) {
	w := mustNew(t, 64, true)
	// Fresh window: numbers that would need high bits -1 are invalid.
	if _, r := w.Check(^uint32(0)); r != Invalid {
		t.Errorf("fresh, 0xffffffff: %v", r)
	}
	if _, r := w.Check(0); r != Invalid {
		t.Errorf("fresh, 0: %v", r)
	}
	if seq, r := w.Check(1); r != OK || seq != 1 {
		t.Errorf("fresh, 1: %#x %v", seq, r)
	}
	// Last subspace: wrapping to high = 2^32 is impossible.
	w.top.Store(1<<64 - 10)
	if _, r := w.Check(3); r != Invalid {
		t.Errorf("last subspace wrap: %v", r)
	}
	// In ESN, low 0 is fine once high > 0.
	w.top.Store(1<<32 - 1)
	if seq, r := w.Check(0); r != OK || seq != 1<<32 {
		t.Errorf("low 0 after wrap: %#x %v", seq, r)
	}
}

func TestRandomAgainstReference(t *testing.T) {
	for _, size := range []int{1, 32, 64, 100, 128, 1024, 4096} {
		for _, esn := range []bool{false, true} {
			rng := rand.New(rand.NewPCG(uint64(size), 7))
			w := mustNew(t, size, esn)
			m := newRef(size)
			// ESN runs start just below a 2^32 boundary so the walk crosses it.
			base := uint64(0)
			if esn {
				base = 1<<32 - 20000
				w.top.Store(base)
				m.top = base
			}
			next := base
			for i := 0; i < 40000; i++ {
				// Mostly forward with jitter, sometimes old, sometimes a jump.
				var seq uint64
				switch k := rng.IntN(100); {
				case k < 60:
					next++
					seq = next
				case k < 85:
					back := uint64(rng.IntN(2*size + 2))
					if back >= m.top {
						back = m.top
					}
					seq = m.top - back
					if seq == 0 {
						seq = 1
					}
				case k < 95:
					next += uint64(rng.IntN(3 * size))
					seq = next
				default:
					seq = next + uint64(rng.IntN(50))
				}
				if !esn && seq > 1<<32-1 {
					t.Fatalf("test walked out of 32-bit space")
				}
				want := m.judge(seq)
				got, r := w.Check(uint32(seq))
				if esn && want == TooOld {
					// RFC 4303 A2.2: a number behind the window is taken
					// for one 2^32 ahead; its ICV then fails, so it is
					// never accepted.
					if r != OK || got != seq+1<<32 {
						t.Fatalf("size %d esn: old %#x inferred as %#x %v (top %#x)", size, seq, got, r, m.top)
					}
					continue
				}
				if esn && want != Invalid && got != seq {
					t.Fatalf("size %d esn: seq %#x inferred as %#x (top %#x)", size, seq, got, m.top)
				}
				if r != want {
					t.Fatalf("size %d esn %v: Check(%#x) = %v, reference %v (top %#x)", size, esn, seq, r, want, m.top)
				}
				if r == OK {
					if ra, rr := w.Accept(got), m.accept(seq); ra != rr {
						t.Fatalf("size %d: Accept(%#x) = %v, reference %v", size, seq, ra, rr)
					}
				}
				if w.Top() != m.top {
					t.Fatalf("size %d: top %#x, reference %#x", size, w.Top(), m.top)
				}
			}
		}
	}
}

// TestConcurrentAccept: many goroutines offer overlapping numbers; each
// number is accepted exactly once. Run with -race to check the lock-free
// Check.
func TestConcurrentAccept(t *testing.T) {
	const n = 20000
	w := mustNew(t, 4096, false)
	var accepted [n + 1]atomic.Int32
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 1; i <= n; i++ {
				if _, r := checkAccept(w, uint32(i)); r == OK {
					accepted[i].Add(1)
				}
			}
		}(g)
	}
	wg.Wait()
	for i := 1; i <= n; i++ {
		if c := accepted[i].Load(); c > 1 {
			t.Fatalf("seq %d accepted %d times", i, c)
		}
	}
	if w.Top() != n {
		t.Fatalf("top %d", w.Top())
	}
}

func TestZeroAllocs(t *testing.T) {
	w := mustNew(t, 1024, true)
	s := NewSequence(true)
	i := uint32(0)
	allocs := testing.AllocsPerRun(1000, func() {
		i++
		checkAccept(w, i)
		checkAccept(w, i-3)
		s.Next()
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per packet", allocs)
	}
}

func TestSequence(t *testing.T) {
	s := NewSequence(false)
	for want := uint64(1); want <= 3; want++ {
		if got, ok := s.Next(); !ok || got != want {
			t.Fatalf("Next = %d %v, want %d", got, ok, want)
		}
	}
	s.last.Store(1<<32 - 3)
	for _, want := range []uint64{1<<32 - 2, 1<<32 - 1} {
		if got, ok := s.Next(); !ok || got != want {
			t.Fatalf("Next = %#x %v, want %#x", got, ok, want)
		}
	}
	for i := 0; i < 3; i++ {
		if got, ok := s.Next(); ok {
			t.Fatalf("32-bit counter wrapped to %#x", got)
		}
	}
	if s.Remaining() != 0 || s.Last() != 1<<32-1 {
		t.Fatalf("remaining %d last %#x", s.Remaining(), s.Last())
	}

	if got, ok := NewSequenceAt(false, 1<<40).Next(); ok {
		t.Fatalf("NewSequenceAt beyond the limit handed out %#x", got)
	}
	if got, ok := NewSequenceAt(false, 41).Next(); !ok || got != 42 {
		t.Fatalf("NewSequenceAt(41).Next = %d %v", got, ok)
	}
	e := NewSequence(true)
	e.last.Store(1<<32 - 1)
	if got, ok := e.Next(); !ok || got != 1<<32 {
		t.Fatalf("ESN past 2^32: %#x %v", got, ok)
	}
	e.last.Store(1<<64 - 2)
	if got, ok := e.Next(); !ok || got != 1<<64-1 {
		t.Fatalf("ESN last: %#x %v", got, ok)
	}
	if got, ok := e.Next(); ok {
		t.Fatalf("ESN counter wrapped to %#x", got)
	}
}

func TestSequenceConcurrent(t *testing.T) {
	s := NewSequence(false)
	s.last.Store(1<<32 - 1 - 10000)
	var got atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if _, ok := s.Next(); !ok {
					return
				}
				got.Add(1)
			}
		}()
	}
	wg.Wait()
	if got.Load() != 10000 {
		t.Fatalf("handed out %d numbers, want 10000", got.Load())
	}
}

func BenchmarkCheckAccept(b *testing.B) {
	for _, size := range []int{64, 128, 1024, 4096} {
		b.Run(itoa(size), func(b *testing.B) {
			w := mustNew(b, size, true)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				// In order with a small reordering every 4th packet.
				seq := uint32(i + 1)
				if i&3 == 3 {
					seq -= 2
				}
				if s, r := w.Check(seq); r == OK {
					w.Accept(s)
				}
			}
		})
	}
}

func BenchmarkCheckAcceptParallel(b *testing.B) {
	w := mustNew(b, 4096, true)
	var ctr atomic.Uint32
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if s, r := w.Check(ctr.Add(1)); r == OK {
				w.Accept(s)
			}
		}
	})
}

func BenchmarkSequenceNext(b *testing.B) {
	s := NewSequence(true)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s.Next()
	}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// TestRingAllocatedOnFirstAccept: a window holds no bitmap until it accepts
// a number (checks alone allocate nothing), and then judges exactly as
// before: the first Accept of a fresh window, and Checks racing with it on
// other goroutines (run with -race), see a consistent ring.
func TestRingAllocatedOnFirstAccept(t *testing.T) {
	for _, esn := range []bool{false, true} {
		w := mustNew(t, 1024, esn)
		for _, low := range []uint32{0, 1, 5, 1 << 31} {
			w.Check(low)
		}
		if w.ring.Load() != nil {
			t.Fatalf("esn=%v: Check allocated the ring", esn)
		}
		if _, r := checkAccept(w, 3); r != OK {
			t.Fatalf("esn=%v: first accept: %v", esn, r)
		}
		if w.ring.Load() == nil {
			t.Fatalf("esn=%v: no ring after an Accept", esn)
		}
		if _, r := w.Check(3); r != Duplicate {
			t.Fatalf("esn=%v: accepted number checks %v", esn, r)
		}
		if _, r := checkAccept(w, 2); r != OK {
			t.Fatalf("esn=%v: older number in the window: %v", esn, r)
		}
	}
	// Fresh windows, each number sent twice by racing goroutines: each is
	// accepted exactly once whichever goroutine allocates the ring.
	for round := range 50 {
		w := mustNew(t, 128, round%2 == 1)
		var wg sync.WaitGroup
		var ok atomic.Int64
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := uint32(1); i <= 64; i++ {
					if _, r := checkAccept(w, i); r == OK {
						ok.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		if got := ok.Load(); got != 64 {
			t.Fatalf("round %d: %d numbers accepted, want 64", round, got)
		}
	}
}
