package shared

import (
	"net/netip"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/spd"
)

// ConfTS are a conn end's selectors; with no subnet configured, the end's
// own address (host-to-host).
func ConfTS(e config.End, addr netip.Addr) []spd.TS {
	if len(e.Subnets) == 0 {
		return []spd.TS{spd.HostTS(addr)}
	}
	return e.Subnets
}

// Narrow intersects each selector the peer proposed with each of ours,
// keeping every non-empty result once (RFC 7296 §2.9).
func Narrow(ours, theirs []spd.TS) []spd.TS {
	var out []spd.TS
	for _, t := range theirs {
		for _, o := range ours {
			if x, ok := o.Intersect(t); ok && !containsTS(out, x) {
				out = append(out, x)
			}
		}
	}
	return out
}

// AllInside reports whether every selector of got lies inside one of ours
// (an initiator checks the responder's narrowing with it).
func AllInside(got, ours []spd.TS) bool {
	for _, g := range got {
		inside := false
		for _, o := range ours {
			if o.Contains(g) {
				inside = true
				break
			}
		}
		if !inside {
			return false
		}
	}
	return true
}

// NATHosts is the remote selector of a host-to-host conn whose peer is
// behind a NAT: the peer proposes its own (private) address, which we
// cannot know, so single-address selectors it proposes are accepted in
// place of its public address, as strongSwan does for dynamic selectors.
func NATHosts(proposed, ours []spd.TS) []spd.TS {
	out := append([]spd.TS(nil), ours...)
	for _, p := range proposed {
		if p.Range.From == p.Range.To {
			h := spd.HostTS(p.Range.From)
			if !containsTS(out, h) {
				out = append(out, h)
			}
		}
	}
	return out
}

func containsTS(ts []spd.TS, x spd.TS) bool {
	for _, t := range ts {
		if t == x {
			return true
		}
	}
	return false
}
