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

// localIndexThreshold is the number of candidates of one remote interval
// from which the interval gets a second index, over the local address
// (Compile's index and a Set's alike). A gateway whose many policies share
// one remote network — an initiator with a tunnel per local host to the
// same peer LAN — would otherwise test all of them for every packet to
// that LAN. A variable so tests can force either path.
var localIndexThreshold = 16

// index cuts the address space of one side (the remote address at the
// top level) into elementary intervals at every rule's range boundary.
// Each interval lists, in decision order, the rules whose range covers it,
// so a lookup binary-searches the interval of the packet's address and
// tests only those rules — the first that matches is the first in
// decision order, as in the full scan. An interval with many candidates
// has a second index of the same form over their local ranges (sub), so
// that rules sharing a remote range are told apart by a second binary
// search instead of one by one.
type index struct {
	starts []u128   // interval i is [starts[i], starts[i+1]-1]; starts[0] = 0
	off    []int32  // candidates of interval i: cand[off[i]:off[i+1]]
	cand   []int32  // indices into the family's entries
	sub    []*index // nil, or per interval nil or its local-address index
}

func buildIndex(es []entry) *index {
	if len(es) < indexThreshold {
		return nil
	}
	ids := make([]int32, len(es))
	for i := range ids {
		ids[i] = int32(i)
	}
	ix := buildRangeIndex(es, ids, remoteRange)
	if ix == nil {
		return nil
	}
	for i := range len(ix.starts) {
		cs := ix.cand[ix.off[i]:ix.off[i+1]]
		if len(cs) == 0 || len(cs) < localIndexThreshold {
			continue
		}
		// Past its budget a local index is not built and the interval's
		// candidates are scanned, as without one.
		if sub := buildRangeIndex(es, cs, localRange); sub != nil {
			if ix.sub == nil {
				ix.sub = make([]*index, len(ix.starts))
			}
			ix.sub[i] = sub
		}
	}
	return ix
}

func remoteRange(e *entry) (u128, u128) { return e.rFrom, e.rTo }
func localRange(e *entry) (u128, u128)  { return e.lFrom, e.lTo }

// buildRangeIndex indexes the entries ids (in decision order) by the range
// side returns; nil when the candidate lists would exceed the budget.
func buildRangeIndex(es []entry, ids []int32, side func(*entry) (u128, u128)) *index {
	starts := []u128{{}}
	maxAddr := u128{^uint64(0), ^uint64(0)}
	for _, id := range ids {
		from, to := side(&es[id])
		starts = append(starts, from)
		if to != maxAddr {
			starts = append(starts, to.add1())
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
		from, to := side(e)
		first := search(starts, from)
		last := len(starts) - 1
		if to != maxAddr {
			last = search(starts, to.add1()) - 1
		}
		return first, last
	}
	count := make([]int32, len(starts)+1)
	total := 0
	for _, id := range ids {
		a, b := span(&es[id])
		for j := a; j <= b; j++ {
			count[j+1]++
		}
		total += b - a + 1
		if total > maxIndexEntries*len(ids) {
			return nil
		}
	}
	for j := 1; j < len(count); j++ {
		count[j] += count[j-1]
	}
	ix := &index{starts: starts, off: count, cand: make([]int32, total)}
	fill := slices.Clone(count[:len(starts)])
	for _, id := range ids {
		a, b := span(&es[id])
		for j := a; j <= b; j++ {
			ix.cand[fill[j]] = id
			fill[j]++
		}
	}
	return ix
}

// candidates returns, in decision order, the entries whose remote range
// holds remote and, where the interval has a local index, whose local
// range holds local: the only rules that can match.
func (ix *index) candidates(remote, local u128) []int32 {
	i := search(ix.starts, remote)
	if ix.sub != nil {
		if s := ix.sub[i]; s != nil {
			j := search(s.starts, local)
			return s.cand[s.off[j]:s.off[j+1]]
		}
	}
	return ix.cand[ix.off[i]:ix.off[i+1]]
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
