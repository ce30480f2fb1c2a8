package config

import (
	"fmt"
	"slices"

	"github.com/ipsecgw/ipsecgw/spd"
)

// Two tunnels claim the same traffic when a local subnet of one overlaps a
// local subnet of the other and a remote subnet overlaps a remote subnet
// too (with compatible protocols and ports): a packet between them matches
// both conns' policies, and the tunnel that came up first carries it.
//
// Towards the same peer that is a mistake, and an error when both conns
// start (auto=start or route): the peer would get two CHILD SAs for one
// flow. Towards two peers it is how redundant tunnels are built (AWS's two
// tunnels per VPN connection, a primary and a backup site), which
// strongSwan loads, so it is a warning naming both conns. Only loaded
// conns (auto != ignore) are compared.
//
// The remote subnets of all conns are swept in address order, so that a
// gateway with thousands of conns is checked in O(n log n) plus the
// overlaps found, not by comparing every pair.

type overlapEntry struct {
	conn  int
	ts    spd.TS
	local []spd.TS
}

func (b *builder) checkConnOverlap() {
	var entries []overlapEntry
	for i, c := range b.conns {
		if c.Auto == AutoIgnore || c.Mode == ModePassthrough || c.Mode == ModeDrop {
			continue
		}
		for _, r := range c.Remote.Subnets {
			entries = append(entries, overlapEntry{conn: i, ts: r, local: c.Local.Subnets})
		}
	}
	slices.SortFunc(entries, func(x, y overlapEntry) int { return x.ts.Range.From.Compare(y.ts.Range.From) })
	// One diagnostic per conn (at its first overlap) keeps a file of many
	// copies of one conn from producing a diagnostic per pair.
	reported := map[int]bool{}
	var active []overlapEntry
	for _, e := range entries {
		// Drop the entries that end before this one starts.
		active = slices.DeleteFunc(active, func(a overlapEntry) bool { return a.ts.Range.To.Less(e.ts.Range.From) })
		for _, a := range active {
			later := max(a.conn, e.conn)
			if a.conn == e.conn || reported[later] || !tsOverlap(a.ts, e.ts) {
				continue
			}
			if x, y := b.conns[a.conn].Interface.ID, b.conns[e.conn].Interface.ID; x != 0 && y != 0 && x != y {
				// Route-based conns on devices of their own: the routing
				// table chooses, the selectors claim nothing.
				continue
			}
			l1, l2, ok := firstOverlap(a.local, e.local)
			if !ok {
				continue
			}
			reported[later] = true
			// Report at the conn that comes later in the files.
			first, second := b.conns[min(a.conn, e.conn)], b.conns[max(a.conn, e.conn)]
			if a.conn > e.conn {
				l1, l2 = l2, l1
				b.reportOverlap(first, second, e.ts, a.ts, l1, l2)
			} else {
				b.reportOverlap(first, second, a.ts, e.ts, l1, l2)
			}
		}
		active = append(active, e)
	}
}

func (b *builder) reportOverlap(first, second Conn, r1, r2, l1, l2 spd.TS) {
	starts := func(c Conn) bool { return c.Auto == AutoStart || c.Auto == AutoRoute }
	sev := SeverityWarning
	hint := "the tunnel that is up first carries it (fine for redundant tunnels to two peers)"
	if first.Remote.Host == second.Remote.Host && !first.Remote.IsAny() && starts(first) && starts(second) {
		sev = SeverityError
		hint = "they go to the same peer, which would get two CHILD SAs for that traffic; merge them or give each its own subnets"
	}
	kv, ok := b.subnetLines[second.Name]
	if !ok {
		kv = rawKV{File: second.File, Line: second.Line}
	}
	if r1.Is4() != r2.Is4() {
		return
	}
	where := fmt.Sprintf("line %d", first.Line)
	if first.File != kv.File {
		where = fmt.Sprintf("%s:%d", first.File, first.Line)
	}
	b.add(sev, kv, second.Name, fmt.Sprintf("its subnets %s === %s overlap %s === %s of conn %s (%s): both tunnels would claim that traffic; %s",
		l2, r2, l1, r1, first.Name, where, hint))
}

// firstOverlap finds a pair of overlapping selectors of a and b.
func firstOverlap(a, b []spd.TS) (spd.TS, spd.TS, bool) {
	for _, x := range a {
		for _, y := range b {
			if tsOverlap(x, y) {
				return x, y, true
			}
		}
	}
	return spd.TS{}, spd.TS{}, false
}

// tsOverlap reports whether some packet matches both selectors: the
// address ranges share an address, the protocols are equal or one is any,
// and the port ranges meet.
func tsOverlap(a, b spd.TS) bool {
	if !overlaps(a.Range, b.Range) {
		return false
	}
	if a.Protocol != 0 && b.Protocol != 0 && a.Protocol != b.Protocol {
		return false
	}
	return a.Ports.From <= b.Ports.To && b.Ports.From <= a.Ports.To
}
