package install

import (
	"time"

	"github.com/ipsecgw/ipsecgw/sad"
)

// Usage is a conn's traffic since the daemon started, summed over every
// CHILD SA it ever had: CHILD SA rekeys, IKE SA rekeys and reconnects do
// not reset it, which is what billing by bytes needs. Bytes are inner
// bytes, as in the SAs' own counters.
type Usage struct {
	BytesIn, PacketsIn   uint64
	BytesOut, PacketsOut uint64
	// Drops counts the packets of the conn's SAs dropped, by reason.
	Drops [sad.NumDropReasons]uint64
	// LastInbound is when the conn's inbound packet count was last seen
	// growing (zero: never). It is as fine as the calls to Usage are
	// frequent: the daemon samples once a second.
	LastInbound time.Time
}

// UsageFoldDelay is how long after its CHILD SA was removed an SA's
// counters are still read live before they are added up for good. The
// SAD keeps a rekeyed inbound SA for its linger time (sad.DefaultLinger,
// 5 s) and a packet already opened when an SA goes is still counted a
// moment later; reading the counters live until well after both means
// no byte is missed, and folding them then bounds the memory a conn's
// record holds to the SAs of the last two minutes.
const UsageFoldDelay = 2 * time.Minute

// usageRecord is the accounting of one conn. The SAs of its installed
// CHILD SAs are read live through the installer's children; a record
// holds nothing per installed pair, which a hub's right=%any conn has
// thousands of.
type usageRecord struct {
	folded Usage // SAs gone for longer than UsageFoldDelay
	// removed are the SAs of the conn's removed CHILD SAs whose counters
	// are still read live, each with the time it was removed. A map, not
	// a list: a hub's restart removes thousands at once.
	removed map[*sad.SA]time.Time
	// lastIn is the inbound packet count LastInbound was taken at.
	lastIn uint64
}

// trackLocked starts the accounting of conn, if it has none yet, for its
// first CHILD SA (whose SAs the children map then holds).
func (in *Installer) trackLocked(conn string) {
	if in.usage[conn] == nil {
		in.usage[conn] = &usageRecord{}
	}
}

// untrackLocked keeps the pair of a removed CHILD SA counted live: its
// counters are folded into the record UsageFoldDelay later.
func (in *Installer) untrackLocked(conn string, inSA, outSA *sad.SA, now time.Time) {
	r := in.usage[conn]
	if r == nil {
		return
	}
	if r.removed == nil {
		r.removed = map[*sad.SA]time.Time{}
	}
	r.removed[inSA], r.removed[outSA] = now, now
}

// add adds an SA's counters to u in its direction.
func (u *Usage) add(sa *sad.SA) {
	st := sa.Stats()
	if sa.Dir() == sad.Inbound {
		u.BytesIn += st.Bytes
		u.PacketsIn += st.Packets
	} else {
		u.BytesOut += st.Bytes
		u.PacketsOut += st.Packets
	}
	for i, n := range st.Drops {
		u.Drops[i] += n
	}
}

// Usage returns every conn's usage since the Installer was made (conns
// that never had a CHILD SA are absent), as of now: SAs removed more than
// UsageFoldDelay before now are folded into their record for good, and a
// conn whose inbound packets grew since the last call gets LastInbound
// now.
func (in *Installer) Usage(now time.Time) map[string]Usage {
	out := make(map[string]Usage)
	in.UsageInto(now, out)
	return out
}

// UsageInto is Usage into a map the caller reuses: out is emptied and
// filled. The daemon samples every conn once a second, and a new map of
// 10,000 records each time was most of what an idle hub allocated.
func (in *Installer) UsageInto(now time.Time, out map[string]Usage) {
	clear(out)
	in.mu.Lock()
	defer in.mu.Unlock()
	for name, r := range in.usage {
		for sa, removedAt := range r.removed {
			if now.Sub(removedAt) >= UsageFoldDelay {
				r.folded.add(sa)
				delete(r.removed, sa)
			}
		}
		if len(r.removed) == 0 {
			r.removed = nil // a storm's worth of removals leaves no table behind
		}
		u := r.folded
		for sa := range r.removed {
			u.add(sa)
		}
		out[name] = u
	}
	for _, ch := range in.children {
		u := out[ch.conn]
		u.add(ch.in)
		u.add(ch.out)
		out[ch.conn] = u
	}
	for name, r := range in.usage {
		u := out[name]
		if u.PacketsIn > r.lastIn {
			r.lastIn = u.PacketsIn
			r.folded.LastInbound = now
		}
		u.LastInbound = r.folded.LastInbound
		out[name] = u
	}
}
