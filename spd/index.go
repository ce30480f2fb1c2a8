package spd

import "slices"

// indexThreshold is the number of rules of one family from which Compile
// builds a remote-address index; below it a plain scan of the array is as
// fast (see BenchmarkLookup). A variable so tests can force either path.
var indexThreshold = 16

// maxIndexEntries bounds the index's candidate lists relative to the rule
// count. Rules whose remote ranges nest or overlap heavily (every rule for
// 0.0.0.0/0, say) would make the lists quadratic; past this budget the
// table keeps the linear scan, which is then no slower anyway because every
// rule would be a candidate.
const maxIndexEntries = 64

// index cuts the remote address space into elementary intervals at every
// rule's remote range boundary. Each interval lists, in decision order, the
// rules whose remote range covers it, so a lookup binary-searches the
// interval of the packet's remote address and tests only those rules — the
// first that matches is the first in decision order, as in the full scan.
type index struct {
	starts []u128  // interval i is [starts[i], starts[i+1]-1]; starts[0] = 0
	off    []int32 // candidates of interval i: cand[off[i]:off[i+1]]
	cand   []int32 // indices into the family's entries
}

func buildIndex(es []entry) *index {
	if len(es) < indexThreshold {
		return nil
	}
	starts := []u128{{}}
	maxAddr := u128{^uint64(0), ^uint64(0)}
	for i := range es {
		starts = append(starts, es[i].rFrom)
		if es[i].rTo != maxAddr {
			starts = append(starts, es[i].rTo.add1())
		}
	}
	slices.SortFunc(starts, func(a, b u128) int {
		switch {
		case a.less(b):
			return -1
		case b.less(a):
			return 1
		}
		return 0
	})
	starts = slices.Compact(starts)
	// span returns the first and last interval a rule covers.
	span := func(e *entry) (int, int) {
		first := search(starts, e.rFrom)
		last := len(starts) - 1
		if e.rTo != maxAddr {
			last = search(starts, e.rTo.add1()) - 1
		}
		return first, last
	}
	count := make([]int32, len(starts)+1)
	total := 0
	for i := range es {
		a, b := span(&es[i])
		for j := a; j <= b; j++ {
			count[j+1]++
		}
		total += b - a + 1
		if total > maxIndexEntries*len(es) {
			return nil
		}
	}
	for j := 1; j < len(count); j++ {
		count[j] += count[j-1]
	}
	ix := &index{starts: starts, off: count, cand: make([]int32, total)}
	fill := slices.Clone(count[:len(starts)])
	for i := range es {
		a, b := span(&es[i])
		for j := a; j <= b; j++ {
			ix.cand[fill[j]] = int32(i)
			fill[j]++
		}
	}
	return ix
}

// search returns the index of the last start <= a (starts[0] is 0, so
// there is always one).
func search(starts []u128, a u128) int {
	lo, hi := 0, len(starts) // invariant: starts[lo] <= a, starts[hi] > a (hi may be len)
	for hi-lo > 1 {
		mid := int(uint(lo+hi) >> 1)
		if a.less(starts[mid]) {
			hi = mid
		} else {
			lo = mid
		}
	}
	return lo
}

func (u u128) add1() u128 {
	if u.lo == ^uint64(0) {
		return u128{u.hi + 1, 0}
	}
	return u128{u.hi, u.lo + 1}
}
