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

// usageRecord is the accounting of one conn.
type usageRecord struct {
	folded Usage // SAs gone for longer than UsageFoldDelay
	// sas are the SAs whose counters are read live, each with the time
	// its CHILD SA was removed (zero: installed). A map, not a list: a
	// hub's right=%any conn has thousands, and removing one CHILD SA
	// must not scan them all.
	sas map[*sad.SA]time.Time
	// lastIn is the inbound packet count LastInbound was taken at.
	lastIn uint64
}

// trackLocked starts counting a new CHILD SA's pair for its conn.
func (in *Installer) trackLocked(conn string, inSA, outSA *sad.SA) {
	r := in.usage[conn]
	if r == nil {
		r = &usageRecord{sas: map[*sad.SA]time.Time{}}
		in.usage[conn] = r
	}
	r.sas[inSA], r.sas[outSA] = time.Time{}, time.Time{}
}

// untrackLocked marks the pair of a removed CHILD SA: its counters are
// folded into the record UsageFoldDelay later.
func (in *Installer) untrackLocked(conn string, inSA, outSA *sad.SA, now time.Time) {
	r := in.usage[conn]
	if r == nil {
		return
	}
	for _, sa := range [2]*sad.SA{inSA, outSA} {
		if at, ok := r.sas[sa]; ok && at.IsZero() {
			r.sas[sa] = now
		}
	}
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
		for sa, removedAt := range r.sas {
			if !removedAt.IsZero() && now.Sub(removedAt) >= UsageFoldDelay {
				r.folded.add(sa)
				delete(r.sas, sa)
			}
		}
		u := r.folded
		for sa := range r.sas {
			u.add(sa)
		}
		if u.PacketsIn > r.lastIn {
			r.lastIn = u.PacketsIn
			r.folded.LastInbound = now
		}
		u.LastInbound = r.folded.LastInbound
		out[name] = u
	}
}
