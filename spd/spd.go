// Package spd is the security policy database of the ESP dataplane: rules
// that map traffic selectors (RFC 4301 §4.4.1) to an action, compiled into an
// immutable Table that the packet path reads without locks or allocation.
//
// # Rules and their order
//
// A Rule has a Selector (local and remote address ranges of one family, an IP
// protocol, local and remote port ranges) and an Action: Protect (with the
// policy/reqid whose SA protects the traffic), Bypass, Drop or Trap ("no SA
// yet; ask IKE to negotiate"). The first rule in the following order whose
// selector matches decides:
//
//  1. Priority ascending (0 is the default and sorts first, so explicit
//     priorities are only needed to override specificity);
//  2. more specific first, as strongSwan computes kernel policy priorities:
//     more fixed address bits (local plus remote) first, then a rule naming a
//     protocol before one that does not, then restricted port ranges before
//     full ones;
//  3. the order in which rules were given.
//
// A packet no rule matches is dropped (Status NoMatch, Action Drop): a
// gateway that wants to pass unmatched traffic says so with a catch-all
// Bypass rule.
//
// # Protected traffic without an SA
//
// The SPD does not know SAs. A Protect verdict names a policy; the dataplane
// then looks the outbound SA up in package sad, and when there is none (not
// negotiated yet, or expired) the packet is dropped with reason "no SA" —
// never sent in clear. Trap is the same verdict plus a request to IKE to
// negotiate; the held packet is dropped if no SA arrives soon.
//
// # Ports, ICMP and fragments
//
// TCP, UDP, UDP-Lite, SCTP and DCCP carry ports. For ICMP and ICMPv6 the
// value type<<8|code (the encoding of RFC 7296 §3.13.1) stands in for both the
// local and the remote port. Other protocols, and non-first fragments, have
// no ports ("OPAQUE" in RFC 4301 §4.4.1.1): they match only rules whose port
// ranges are both full (0-65535).
//
// # Compiled form
//
// Rules are flattened, per address family, into one array of fixed-size
// records in decision order (128-bit address bounds, port bounds, protocol).
// A lookup parses the header once. With few rules it scans the array; from
// 16 rules of a family on, Compile also builds an index over the remote
// address (index.go): the remote ranges' boundaries cut the address space
// into intervals, each listing in decision order the rules that cover it, so
// a lookup is a binary search plus a scan of the few candidates. An
// interval with 16 candidates or more is indexed once more, the same way,
// over its candidates' local ranges: many policies to one remote network
// (a tunnel per local host to the same peer LAN) then cost a second binary
// search, not a test of each. When rules overlap so much that the lists
// would grow past 64 entries per rule, that index is not built and the
// scan remains. BenchmarkLookup and BenchmarkLookupSharedRemote measure
// these.
//
// A gateway whose policies change one CHILD SA at a time keeps them in a
// Set instead (set.go): the same two-level index, kept in small chunks
// that a change copies only where the rule's ranges fall, so publishing a
// Table costs about the same with ten or ten thousand rules.
package spd

import (
	"cmp"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync/atomic"
)

// Action is what the SPD decides for a packet.
type Action uint8

const (
	// Drop discards the packet. It is the zero value, so a forgotten action
	// fails closed.
	Drop Action = iota
	// Bypass passes the packet without IPsec.
	Bypass
	// Protect sends the packet through the outbound SA of the rule's policy
	// (or, inbound, requires that it arrived through one).
	Protect
	// Trap is Protect for a policy without an SA yet: the dataplane asks IKE
	// to negotiate one and drops (or briefly holds) the packet.
	Trap
)

var actionNames = [...]string{"drop", "bypass", "protect", "trap"}

func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return fmt.Sprintf("action(%d)", uint8(a))
}

// Status says how a lookup reached its verdict.
type Status uint8

const (
	// Matched: a rule matched; Result.Rule says which.
	Matched Status = iota
	// NoMatch: no rule matched; the packet is dropped.
	NoMatch
	// Malformed: the packet could not be parsed as far as the selectors
	// need; the packet is dropped.
	Malformed
)

var statusNames = [...]string{"matched", "no match", "malformed"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", uint8(s))
}

// AddrRange is an inclusive range of addresses of one family.
type AddrRange struct {
	From, To netip.Addr
}

// PrefixRange returns the range covered by a prefix.
func PrefixRange(p netip.Prefix) AddrRange {
	p = p.Masked()
	from := p.Addr()
	to := fromU128(toU128(from).or(hostMask(from.BitLen()-p.Bits())), from.Is4())
	return AddrRange{From: from, To: to}
}

// MustPrefixRange is PrefixRange(netip.MustParsePrefix(s)), for tests and
// tables.
func MustPrefixRange(s string) AddrRange { return PrefixRange(netip.MustParsePrefix(s)) }

func (r AddrRange) String() string {
	if r.From == r.To {
		return r.From.String()
	}
	return r.From.String() + "-" + r.To.String()
}

// PortRange is an inclusive range of ports (or of ICMP type<<8|code).
type PortRange struct {
	From, To uint16
}

// AllPorts matches every port, and packets without ports.
var AllPorts = PortRange{0, 0xffff}

// Port returns the range holding one port.
func Port(p uint16) PortRange { return PortRange{p, p} }

func (r PortRange) full() bool { return r.From == 0 && r.To == 0xffff }

// Selector describes traffic as seen from this gateway: Local is the
// protected network on our side (the source of outbound packets), Remote the
// peer's side. Both ranges must be of the same family. Protocol 0 means any.
// Port ranges must be given (use AllPorts for any): there is no implicit
// wildcard, because 0-0 is a real ICMP selector (echo reply).
type Selector struct {
	Local, Remote           AddrRange
	Protocol                uint8
	LocalPorts, RemotePorts PortRange
}

func (s Selector) String() string {
	return fmt.Sprintf("%v[%d/%d-%d] <=> %v[%d/%d-%d]",
		s.Local, s.Protocol, s.LocalPorts.From, s.LocalPorts.To,
		s.Remote, s.Protocol, s.RemotePorts.From, s.RemotePorts.To)
}

// Validate reports whether the selector is usable.
func (s Selector) Validate() error {
	for _, r := range [2]AddrRange{s.Local, s.Remote} {
		if !r.From.IsValid() || !r.To.IsValid() {
			return errors.New("spd: selector address range is missing an address")
		}
		if r.From.Is4() != r.To.Is4() || r.From.Is4In6() || r.To.Is4In6() {
			return fmt.Errorf("spd: selector range %v mixes address families", r)
		}
		if r.From.Zone() != "" || r.To.Zone() != "" {
			return fmt.Errorf("spd: selector range %v has a zone", r)
		}
		if r.To.Less(r.From) {
			return fmt.Errorf("spd: selector range %v is reversed", r)
		}
	}
	if s.Local.From.Is4() != s.Remote.From.Is4() {
		return fmt.Errorf("spd: selector %v mixes address families", s)
	}
	for _, p := range [2]PortRange{s.LocalPorts, s.RemotePorts} {
		if p.To < p.From {
			return fmt.Errorf("spd: selector %v has a reversed port range", s)
		}
	}
	return nil
}

// Is4 reports whether the selector is for IPv4.
func (s Selector) Is4() bool { return s.Local.From.Is4() }

// specificity ranks selectors: a higher value is more specific.
func (s Selector) specificity() (addrBits, proto, ports int) {
	addrBits = fixedBits(s.Local) + fixedBits(s.Remote)
	if s.Protocol != 0 {
		proto = 1
	}
	if !s.LocalPorts.full() {
		ports++
	}
	if !s.RemotePorts.full() {
		ports++
	}
	return
}

// fixedBits is the number of leading address bits the range pins down:
// the family's bit length minus the bits needed to count its addresses.
func fixedBits(r AddrRange) int {
	size := toU128(r.To).sub(toU128(r.From)) // size-1
	return r.From.BitLen() - size.bitLen()
}

// Rule is one SPD entry.
type Rule struct {
	Selector Selector
	Action   Action
	// PolicyID names the policy (reqid) whose SAs protect the traffic, for
	// Protect and Trap.
	PolicyID uint32
	// Priority orders rules before specificity does; lower first.
	Priority uint32
}

// Result is the verdict of a lookup.
type Result struct {
	Action   Action
	PolicyID uint32
	// Rule is the index in Table.Rules() of the matching rule, or -1
	// (always -1 in a Table of a Set, whose rules have no fixed index).
	Rule   int32
	Status Status
}

var (
	noMatch   = Result{Action: Drop, Rule: -1, Status: NoMatch}
	malformed = Result{Action: Drop, Rule: -1, Status: Malformed}
)

// entry is the compiled form of a rule: fixed size, no pointers.
type entry struct {
	lFrom, lTo, rFrom, rTo u128
	lpFrom, lpTo           uint16
	rpFrom, rpTo           uint16
	proto                  uint8
	portsAny               bool // both port ranges full: matches packets without ports
	action                 Action
	policy                 uint32
	rule                   int32
	// priority is the rule's (Rules rebuilds the rule from its entry).
	priority uint32
}

// Table is an immutable compiled SPD. It is safe for concurrent use; swap
// whole Tables (see Live) to change policy.
type Table struct {
	// v4 and v6 are the rules, compiled, in decision order; entry.rule
	// numbers them across both. Rules rebuilds the Rules from them, so
	// that a Table (one per inbound SA, for its selector check) does not
	// hold each rule twice.
	v4, v6   []entry
	ix4, ix6 *index // nil: scan the array
	// sx4 and sx6 are set instead of the above in a Table of a Set
	// (set.go), which has n rules.
	sx4, sx6 *setIndex
	n        int
}

// Compile validates and orders rules into a Table. The rules slice is not
// retained.
func Compile(rules []Rule) (*Table, error) {
	type keyed struct {
		r                 Rule
		idx               int
		bits, proto, port int
	}
	ks := make([]keyed, len(rules))
	for i, r := range rules {
		if err := r.Selector.Validate(); err != nil {
			return nil, fmt.Errorf("rule %d: %w", i, err)
		}
		if r.Action > Trap {
			return nil, fmt.Errorf("spd: rule %d: unknown action %d", i, r.Action)
		}
		b, p, pt := r.Selector.specificity()
		ks[i] = keyed{r, i, b, p, pt}
	}
	slices.SortStableFunc(ks, func(a, b keyed) int {
		return cmp.Or(
			cmp.Compare(a.r.Priority, b.r.Priority),
			cmp.Compare(b.bits, a.bits),
			cmp.Compare(b.proto, a.proto),
			cmp.Compare(b.port, a.port),
			cmp.Compare(a.idx, b.idx),
		)
	})
	t := &Table{}
	for i, k := range ks {
		s := k.r.Selector
		e := entry{
			lFrom: toU128(s.Local.From), lTo: toU128(s.Local.To),
			rFrom: toU128(s.Remote.From), rTo: toU128(s.Remote.To),
			lpFrom: s.LocalPorts.From, lpTo: s.LocalPorts.To,
			rpFrom: s.RemotePorts.From, rpTo: s.RemotePorts.To,
			proto:    s.Protocol,
			portsAny: s.LocalPorts.full() && s.RemotePorts.full(),
			action:   k.r.Action,
			policy:   k.r.PolicyID,
			rule:     int32(i),
			priority: k.r.Priority,
		}
		if s.Is4() {
			t.v4 = append(t.v4, e)
		} else {
			t.v6 = append(t.v6, e)
		}
	}
	t.ix4, t.ix6 = buildIndex(t.v4), buildIndex(t.v6)
	return t, nil
}

// Rules returns the rules in decision order. It builds the list on each
// call (it is for diagnostics and tests).
func (t *Table) Rules() []Rule {
	if t.sx4 == nil {
		out := make([]Rule, len(t.v4)+len(t.v6))
		for i := range t.v4 {
			out[t.v4[i].rule] = t.v4[i].toRule(true)
		}
		for i := range t.v6 {
			out[t.v6[i].rule] = t.v6[i].toRule(false)
		}
		return out
	}
	v4 := t.sx4.rules()
	es := append(v4, t.sx6.rules()...)
	is4 := make(map[*setEntry]bool, len(v4))
	for _, e := range v4 {
		is4[e] = true
	}
	slices.SortFunc(es, func(a, b *setEntry) int {
		if a.before(b) {
			return -1
		}
		return 1
	})
	out := make([]Rule, len(es))
	for i, e := range es {
		out[i] = e.toRule(is4[e])
	}
	return out
}

// Len returns the number of rules.
func (t *Table) Len() int {
	if t.sx4 != nil {
		return t.n
	}
	return len(t.v4) + len(t.v6)
}

// Outbound looks up a packet leaving through the tunnel (read from the TUN):
// its source is local, its destination remote.
func (t *Table) Outbound(pkt []byte) Result {
	var f Flow
	if !f.Parse(pkt) {
		return malformed
	}
	return t.match(&f, false)
}

// Inbound looks up a packet that arrived through the tunnel (an inner packet
// after decryption, or a packet in clear from the outside): its source is
// remote, its destination local.
func (t *Table) Inbound(pkt []byte) Result {
	var f Flow
	if !f.Parse(pkt) {
		return malformed
	}
	return t.match(&f, true)
}

// MatchFlow looks up an already parsed flow; inbound selects the direction
// as for Inbound.
func (t *Table) MatchFlow(f *Flow, inbound bool) Result { return t.match(f, inbound) }

func (t *Table) match(f *Flow, inbound bool) Result {
	local, remote := f.Src, f.Dst
	lport, rport := f.SrcPort, f.DstPort
	if inbound {
		local, remote = remote, local
		lport, rport = rport, lport
	}
	if t.sx4 != nil {
		if e := t.matchSet(f, local, remote, lport, rport); e != nil {
			return Result{Action: e.action, PolicyID: e.policy, Rule: e.rule, Status: Matched}
		}
		return noMatch
	}
	es, ix := t.v6, t.ix6
	if f.Is4 {
		es, ix = t.v4, t.ix4
	}
	if ix != nil {
		// Every candidate's remote range covers the interval, so only the
		// other fields need testing.
		for _, c := range ix.candidates(remote, local) {
			if e := &es[c]; e.matches(f, local, lport, rport) {
				return Result{Action: e.action, PolicyID: e.policy, Rule: e.rule, Status: Matched}
			}
		}
		return noMatch
	}
	for i := range es {
		e := &es[i]
		if remote.inRange(e.rFrom, e.rTo) && e.matches(f, local, lport, rport) {
			return Result{Action: e.action, PolicyID: e.policy, Rule: e.rule, Status: Matched}
		}
	}
	return noMatch
}

// matchSet is match for a Table of a Set: the first candidate of the
// remote address's interval that matches the rest.
func (t *Table) matchSet(f *Flow, local, remote u128, lport, rport uint16) *setEntry {
	x := t.sx6
	if f.Is4 {
		x = t.sx4
	}
	for _, c := range x.candidates(remote, local) {
		if c.matches(f, local, lport, rport) {
			return c
		}
	}
	return nil
}

// matches tests everything but the remote address.
func (e *entry) matches(f *Flow, local u128, lport, rport uint16) bool {
	if e.proto != 0 && e.proto != f.Proto {
		return false
	}
	if !local.inRange(e.lFrom, e.lTo) {
		return false
	}
	if f.HasPorts {
		return lport >= e.lpFrom && lport <= e.lpTo && rport >= e.rpFrom && rport <= e.rpTo
	}
	return e.portsAny
}

// Contains reports whether the selector matches the flow (inbound as for
// Table.Inbound). It is the slow path, for reference and diagnostics.
func (s Selector) Contains(f *Flow, inbound bool) bool {
	t := Table{}
	e := entry{
		lFrom: toU128(s.Local.From), lTo: toU128(s.Local.To),
		rFrom: toU128(s.Remote.From), rTo: toU128(s.Remote.To),
		lpFrom: s.LocalPorts.From, lpTo: s.LocalPorts.To,
		rpFrom: s.RemotePorts.From, rpTo: s.RemotePorts.To,
		proto:    s.Protocol,
		portsAny: s.LocalPorts.full() && s.RemotePorts.full(),
		action:   Protect,
	}
	if s.Is4() != f.Is4 {
		return false
	}
	ents := [1]entry{e}
	if f.Is4 {
		t.v4 = ents[:]
	} else {
		t.v6 = ents[:]
	}
	return t.match(f, inbound).Status == Matched
}

// Live holds the current Table for the packet path. Writers build a new
// Table with Compile and Store it; readers Load once per packet (or batch)
// and use that snapshot, so a lookup never sees a half-updated policy.
type Live struct {
	p atomic.Pointer[Table]
}

var emptyTable = &Table{}

// Load returns the current table; before the first Store, an empty table
// that drops everything.
func (l *Live) Load() *Table {
	if t := l.p.Load(); t != nil {
		return t
	}
	return emptyTable
}

// Store makes t the current table (nil means empty).
func (l *Live) Store(t *Table) {
	if t == nil {
		t = emptyTable
	}
	l.p.Store(t)
}
