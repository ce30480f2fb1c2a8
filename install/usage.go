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
	sas    []trackedSA
	// lastIn is the inbound packet count LastInbound was taken at.
	lastIn uint64
}

// trackedSA is one SA whose counters are read live.
type trackedSA struct {
	sa        *sad.SA
	removedAt time.Time // when its CHILD SA was removed (zero: installed)
}

// trackLocked starts counting a new CHILD SA's pair for its conn.
func (in *Installer) trackLocked(conn string, inSA, outSA *sad.SA) {
	r := in.usage[conn]
	if r == nil {
		r = &usageRecord{}
		in.usage[conn] = r
	}
	r.sas = append(r.sas, trackedSA{sa: inSA}, trackedSA{sa: outSA})
}

// untrackLocked marks the pair of a removed CHILD SA: its counters are
// folded into the record UsageFoldDelay later.
func (in *Installer) untrackLocked(conn string, inSA, outSA *sad.SA, now time.Time) {
	r := in.usage[conn]
	if r == nil {
		return
	}
	for i := range r.sas {
		if s := r.sas[i].sa; (s == inSA || s == outSA) && r.sas[i].removedAt.IsZero() {
			r.sas[i].removedAt = now
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
	in.mu.Lock()
	defer in.mu.Unlock()
	out := make(map[string]Usage, len(in.usage))
	for name, r := range in.usage {
		keep := r.sas[:0]
		for _, t := range r.sas {
			if !t.removedAt.IsZero() && now.Sub(t.removedAt) >= UsageFoldDelay {
				r.folded.add(t.sa)
				continue
			}
			keep = append(keep, t)
		}
		clear(r.sas[len(keep):])
		r.sas = keep
		u := r.folded
		for _, t := range r.sas {
			u.add(t.sa)
		}
		if u.PacketsIn > r.lastIn {
			r.lastIn = u.PacketsIn
			r.folded.LastInbound = now
		}
		u.LastInbound = r.folded.LastInbound
		out[name] = u
	}
	return out
}
