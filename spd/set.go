package spd

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// A Set is a rule set that changes one rule at a time and publishes each
// state as a Table. Compile builds a Table from scratch, which costs
// O(N log N) for N rules; a gateway that installs or removes one CHILD SA
// among thousands should not pay that for every change. A Set keeps the
// remote-address index of Compile (elementary intervals, each listing the
// rules that cover it in decision order) in chunks of at most maxChunk
// consecutive intervals. A change copies the chunks holding the intervals
// the rule's remote range covers, plus one neighbour on each side, and the
// small array of chunk pointers; every other chunk is shared with the
// Tables published before. A remote interval with many rules has a
// second index of the same kind over their local ranges (setCell), which
// a change copies the same way. Published Tables never change, so the packet
// path reads them as it reads a compiled Table: lock-free and without
// allocating.
//
// Decision order is Compile's: priority, then specificity, then, instead
// of the position in Compile's list, the Order the rule was added with.
// A Set is not safe for concurrent use; its Tables are.
type Set struct {
	v4, v6 *setIndex
	n      int
}

// Order breaks ties between rules of equal priority and specificity, as
// the position in the list does for Compile: lower first, compared by
// Major, then Name, then Minor.
type Order struct {
	Major uint64
	Name  string
	Minor uint64
}

func (o Order) compare(p Order) int {
	return cmp.Or(cmp.Compare(o.Major, p.Major), strings.Compare(o.Name, p.Name), cmp.Compare(o.Minor, p.Minor))
}

// setEntry is a rule in a Set: the compiled form the lookup tests (its
// rule index is -1: a Set's rules have no fixed position) and what
// ordering and removal need. The Rule itself is not kept: the entry holds
// all of it but the address family (that of the index it is in), and a
// hub's thousands of entries would carry it twice.
// Entries are immutable once added.
type setEntry struct {
	entry
	// bits, proto and port are the selector's specificity.
	bits        uint16
	proto, port uint8
	order       Order
}

// before is the decision order.
func (a *setEntry) before(b *setEntry) bool {
	return cmp.Or(
		cmp.Compare(a.entry.priority, b.entry.priority),
		cmp.Compare(b.bits, a.bits),
		cmp.Compare(b.proto, a.proto),
		cmp.Compare(b.port, a.port),
		a.order.compare(b.order),
	) < 0
}

// toRule returns the Rule the entry was made of; is4 is its family.
func (e *entry) toRule(is4 bool) Rule {
	return Rule{
		Selector: Selector{
			Local:       AddrRange{From: fromU128(e.lFrom, is4), To: fromU128(e.lTo, is4)},
			Remote:      AddrRange{From: fromU128(e.rFrom, is4), To: fromU128(e.rTo, is4)},
			Protocol:    e.proto,
			LocalPorts:  PortRange{From: e.lpFrom, To: e.lpTo},
			RemotePorts: PortRange{From: e.rpFrom, To: e.rpTo},
		},
		Action: e.action, PolicyID: e.policy, Priority: e.priority,
	}
}

// is tells whether the entry was made of rule r (of the entry's family)
// with order o. Validated selectors have no zones and no IPv4-mapped
// addresses, so the 128-bit forms decide address equality.
func (e *setEntry) is(r Rule, o Order) bool {
	s := r.Selector
	return e.lFrom == toU128(s.Local.From) && e.lTo == toU128(s.Local.To) &&
		e.rFrom == toU128(s.Remote.From) && e.rTo == toU128(s.Remote.To) &&
		e.entry.proto == s.Protocol && e.lpFrom == s.LocalPorts.From && e.lpTo == s.LocalPorts.To &&
		e.rpFrom == s.RemotePorts.From && e.rpTo == s.RemotePorts.To &&
		e.action == r.Action && e.policy == r.PolicyID && e.entry.priority == r.Priority && e.order == o
}

// maxChunk bounds the intervals of a chunk, and so what a change of a
// narrow rule copies; the array of chunk pointers it also copies has one
// element per maxChunk/2 to maxChunk intervals.
const maxChunk = 64

// setChunk is a run of consecutive elementary intervals: interval i
// starts at starts[i] and ends where the next one (of this chunk or the
// next) starts; cells[i] holds the rules covering it.
type setChunk struct {
	starts []u128
	cells  []setCell
}

// setCell is what an interval holds: the rules covering it, as list, in
// decision order, or — in an interval of the remote-address index with at
// least localIndexThreshold rules — as local, an index of the same kind
// over the local ranges of exactly those rules (whose cells are lists),
// kept up to date change by change like the remote one, and n, their
// number. Such a cell keeps no list of its own: copying a list of all its
// rules would make each change cost in proportion to them.
type setCell struct {
	list  []*setEntry
	local *setIndex
	n     int
}

// size is the number of rules covering the interval.
func (c *setCell) size() int {
	if c.local != nil {
		return c.n
	}
	return len(c.list)
}

// all returns the rules covering the interval in decision order.
func (c *setCell) all() []*setEntry {
	if c.local == nil {
		return c.list
	}
	es := c.local.rules()
	slices.SortFunc(es, func(a, b *setEntry) int {
		if a.before(b) {
			return -1
		}
		return 1
	})
	return es
}

// sameRules reports whether two cells hold the same rules. Cells that
// hold many rules are compared in full only when their numbers agree,
// which at the edges of a change (where modify asks) is rare.
func sameRules(a, b *setCell) bool {
	switch {
	case a.size() != b.size():
		return false
	case a.local == nil && b.local == nil:
		return slices.Equal(a.list, b.list)
	case a.local == b.local:
		return true
	}
	return slices.Equal(a.all(), b.all())
}

// setIndex is one family's index over the remote address, or one remote
// interval's over the local address. firsts[i] is chunks[i].starts[0];
// firsts[0] is 0, so every address falls into some interval. Immutable
// once a Table holds it.
type setIndex struct {
	firsts []u128
	chunks []*setChunk
}

var emptySetIndex = &setIndex{firsts: []u128{{}}, chunks: []*setChunk{{starts: []u128{{}}, cells: []setCell{{}}}}}

// lookup returns the cell of the interval holding a.
func (x *setIndex) lookup(a u128) *setCell {
	c := x.chunks[search(x.firsts, a)]
	return &c.cells[search(c.starts, a)]
}

// candidates returns, in decision order, the rules whose remote range
// holds remote and, where the interval has a local index, whose local
// range holds local: the only rules that can match.
func (x *setIndex) candidates(remote, local u128) []*setEntry {
	return x.lookup(remote).entries(local)
}

// entries returns the rules of the cell whose local range holds local,
// and maybe others, in decision order.
func (c *setCell) entries(local u128) []*setEntry {
	if c.local != nil {
		return c.local.lookup(local).list
	}
	return c.list
}

// NewSet returns an empty Set.
func NewSet() *Set { return &Set{v4: emptySetIndex, v6: emptySetIndex} }

// Len returns the number of rules.
func (s *Set) Len() int { return s.n }

// Table returns the current state as an immutable Table. It is cheap
// (one small allocation); call it after each batch of changes to publish.
func (s *Set) Table() *Table { return &Table{sx4: s.v4, sx6: s.v6, n: s.n} }

func (s *Set) family(is4 bool) **setIndex {
	if is4 {
		return &s.v4
	}
	return &s.v6
}

// Add adds a rule. A rule equal to one in the Set with the same Order is
// refused; equal rules with different Orders may coexist (the first in
// decision order decides, and it decides the same).
func (s *Set) Add(r Rule, o Order) error {
	if err := r.Selector.Validate(); err != nil {
		return err
	}
	if r.Action > Trap {
		return fmt.Errorf("spd: unknown action %d", r.Action)
	}
	e := newSetEntry(r, o)
	x := s.family(r.Selector.Is4())
	if (*x).find(r, o) != nil {
		return fmt.Errorf("spd: rule %v with order %v is already in the set", r.Selector, o)
	}
	*x = (*x).modify(e.rFrom, e.rTo, func(c setCell) setCell {
		return c.change(e, insertEntry(e), +1)
	})
	s.n++
	return nil
}

// insertEntry returns the function that inserts e into a candidate list
// at its place in decision order.
func insertEntry(e *setEntry) func([]*setEntry) []*setEntry {
	return func(list []*setEntry) []*setEntry {
		i, _ := slices.BinarySearchFunc(list, e, func(a, b *setEntry) int {
			if a.before(b) {
				return -1
			}
			return 1
		})
		return slices.Insert(slices.Clip(list), i, e)
	}
}

// removeEntry returns the function that removes e from a candidate list.
func removeEntry(e *setEntry) func([]*setEntry) []*setEntry {
	return func(list []*setEntry) []*setEntry {
		out := make([]*setEntry, 0, len(list)-1)
		for _, c := range list {
			if c != e {
				out = append(out, c)
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	}
}

// change returns the remote interval's cell with rule e added or removed
// by f (delta is +1 or -1): a local index is changed where e's local range
// falls; it is built from the list when the rules reach
// localIndexThreshold and turned back into a list when they fall below.
func (c setCell) change(e *setEntry, f func([]*setEntry) []*setEntry, delta int) setCell {
	if c.local != nil {
		n := c.n + delta
		if n > 0 && n >= localIndexThreshold {
			return setCell{local: c.local.modify(e.lFrom, e.lTo, func(l setCell) setCell { return setCell{list: f(l.list)} }), n: n}
		}
		c = setCell{list: c.all()}
	}
	list := f(c.list)
	if len(list) == 0 || len(list) < localIndexThreshold {
		return setCell{list: list}
	}
	local := emptySetIndex
	for _, r := range list {
		local = local.modify(r.lFrom, r.lTo, func(l setCell) setCell { return setCell{list: insertEntry(r)(l.list)} })
	}
	return setCell{local: local, n: len(list)}
}

// Remove removes the rule added with that Order; it reports whether there
// was one.
func (s *Set) Remove(r Rule, o Order) bool {
	if r.Selector.Validate() != nil {
		return false
	}
	x := s.family(r.Selector.Is4())
	e := (*x).find(r, o)
	if e == nil {
		return false
	}
	*x = (*x).modify(e.rFrom, e.rTo, func(c setCell) setCell {
		return c.change(e, removeEntry(e), -1)
	})
	s.n--
	return true
}

func newSetEntry(r Rule, o Order) *setEntry {
	s := r.Selector
	b, p, pt := s.specificity()
	return &setEntry{
		entry: entry{
			lFrom: toU128(s.Local.From), lTo: toU128(s.Local.To),
			rFrom: toU128(s.Remote.From), rTo: toU128(s.Remote.To),
			lpFrom: s.LocalPorts.From, lpTo: s.LocalPorts.To,
			rpFrom: s.RemotePorts.From, rpTo: s.RemotePorts.To,
			proto:    s.Protocol,
			portsAny: s.LocalPorts.full() && s.RemotePorts.full(),
			action:   r.Action,
			policy:   r.PolicyID,
			rule:     -1,
			priority: r.Priority,
		},
		order: o, bits: uint16(b), proto: uint8(p), port: uint8(pt),
	}
}

// find returns the entry of rule r added with order o, or nil. Every
// interval the rule covers holds it; the one holding its first remote
// address (and there, where it has a local index, the local interval of
// its first local address) is searched.
func (x *setIndex) find(r Rule, o Order) *setEntry {
	for _, c := range x.lookup(toU128(r.Selector.Remote.From)).entries(toU128(r.Selector.Local.From)) {
		if c.is(r, o) {
			return c
		}
	}
	return nil
}

// modify returns a copy of x in which every interval within [from, to]
// has the cell f returns for its old one (f must not change the old
// cell). Intervals are split at from and to+1 first, and merged there
// afterwards when a boundary no longer separates different lists
// (inside the range no two neighbours can become equal: they differed
// before, and f adds or removes the same rule in both). Only the chunks
// that hold the affected intervals and one neighbour on each side are
// copied, and re-cut into chunks of at most maxChunk intervals.
func (x *setIndex) modify(from, to u128, f func(setCell) setCell) *setIndex {
	maxAddr := u128{^uint64(0), ^uint64(0)}
	lo := max(search(x.firsts, from)-1, 0)
	hi := search(x.firsts, to)
	if to != maxAddr {
		hi = search(x.firsts, to.add1())
	}
	hi = min(hi+1, len(x.chunks)-1)

	// The run is flattened into scratch arrays with room for the two
	// intervals split may add (reused from change to change); each new
	// chunk gets a copy of its part (below).
	size := 2
	for _, c := range x.chunks[lo : hi+1] {
		size += len(c.starts)
	}
	rs := runPool.Get().(*runScratch)
	defer rs.put()
	if cap(rs.starts) < size {
		rs.starts, rs.cells = make([]u128, 0, size), make([]setCell, 0, size)
	}
	starts, cells := rs.starts[:0], rs.cells[:0]
	defer func() { rs.starts, rs.cells = starts, cells }()
	for _, c := range x.chunks[lo : hi+1] {
		starts = append(starts, c.starts...)
		cells = append(cells, c.cells...)
	}
	// split makes a an interval start (the flattened run always holds the
	// interval containing a: it starts at or before firsts[lo] <= a, and
	// ends with the last interval or one beyond a).
	split := func(a u128) int {
		i := search(starts, a)
		if starts[i] == a {
			return i
		}
		starts = slices.Insert(starts, i+1, a)
		cells = slices.Insert(cells, i+1, cells[i])
		return i + 1
	}
	first := split(from)
	end := len(starts) // one past the last interval inside [from, to]
	if to != maxAddr {
		end = split(to.add1())
	}
	for i := first; i < end; i++ {
		cells[i] = f(cells[i])
	}
	// Merge at to+1 first so that the index first stays valid. Cells
	// with the same rules have equivalent local indexes (of the same
	// rules' local ranges), so either serves the merged interval.
	if to != maxAddr && end > 0 && end < len(starts) && sameRules(&cells[end], &cells[end-1]) {
		starts = slices.Delete(starts, end, end+1)
		cells = slices.Delete(cells, end, end+1)
	}
	if first > 0 && sameRules(&cells[first], &cells[first-1]) {
		starts = slices.Delete(starts, first, first+1)
		cells = slices.Delete(cells, first, first+1)
	}

	pieces := (len(starts) + maxChunk - 1) / maxChunk
	n := &setIndex{
		firsts: make([]u128, 0, len(x.firsts)-(hi+1-lo)+pieces),
		chunks: make([]*setChunk, 0, len(x.chunks)-(hi+1-lo)+pieces),
	}
	n.firsts = append(n.firsts, x.firsts[:lo]...)
	n.chunks = append(n.chunks, x.chunks[:lo]...)
	for p := range pieces {
		a, b := p*len(starts)/pieces, (p+1)*len(starts)/pieces
		n.firsts = append(n.firsts, starts[a])
		// Arrays of the chunk's own: pieces of the run's arrays would
		// keep the whole run alive for as long as any one chunk cut from
		// it lives, long after its other chunks were replaced.
		n.chunks = append(n.chunks, &setChunk{starts: slices.Clone(starts[a:b]), cells: slices.Clone(cells[a:b])})
	}
	n.firsts = append(n.firsts, x.firsts[hi+1:]...)
	n.chunks = append(n.chunks, x.chunks[hi+1:]...)
	return n
}

// runScratch holds the flattened run of a modify. The run has room for
// the intervals split inserts, so it never grows; put clears the cells
// (which point at entries and local indexes: the pool must not keep them
// alive) before the scratch goes back to runPool. Cells beyond the run's
// final length were zeroed by slices.Delete.
type runScratch struct {
	starts []u128
	cells  []setCell
}

var runPool = sync.Pool{New: func() any { return new(runScratch) }}

func (rs *runScratch) put() {
	clear(rs.cells)
	rs.starts, rs.cells = rs.starts[:0], rs.cells[:0]
	runPool.Put(rs)
}

// rules returns the distinct rules of the index, in no particular order.
func (x *setIndex) rules() []*setEntry {
	seen := map[*setEntry]bool{}
	var out []*setEntry
	var walk func(x *setIndex)
	walk = func(x *setIndex) {
		for _, c := range x.chunks {
			for i := range c.cells {
				if l := &c.cells[i]; l.local != nil {
					walk(l.local)
					continue
				}
				for _, e := range c.cells[i].list {
					if !seen[e] {
						seen[e] = true
						out = append(out, e)
					}
				}
			}
		}
	}
	walk(x)
	return out
}
