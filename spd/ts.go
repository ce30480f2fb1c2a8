package spd

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/ipsecgw/ipsecgw/header"
)

// TS is one traffic selector as IKE negotiates it (RFC 7296 §3.13.1, and
// IKEv1's ID payloads in quick mode): an address range, an IP protocol (0 =
// any) and a port range, for one side. It is the one selector type from
// the configuration through IKE to the dataplane: IKE narrows TSs, a CHILD
// SA carries the negotiated ones, and Pairs turns them into the Selectors
// the SPD matches packets against.
type TS struct {
	Range    AddrRange
	Protocol uint8
	Ports    PortRange
}

// PrefixTS is the selector for a subnet, all protocols and ports.
func PrefixTS(p netip.Prefix) TS { return TS{Range: PrefixRange(p), Ports: AllPorts} }

// HostTS is the selector for a single address, all protocols and ports.
func HostTS(a netip.Addr) TS {
	a = a.Unmap()
	return TS{Range: AddrRange{From: a, To: a}, Ports: AllPorts}
}

// Is4 reports whether the selector is for IPv4.
func (t TS) Is4() bool { return t.Range.From.Is4() }

// Intersect narrows two selectors to the traffic both allow (RFC 7296
// §2.9); ok is false when nothing is left. A protocol of 0 (any) yields to
// the other side's; OPAQUE ports (65535-0) only match OPAQUE ports.
func (t TS) Intersect(u TS) (x TS, ok bool) {
	if t.Range.From.Is4() != u.Range.From.Is4() {
		return TS{}, false
	}
	switch {
	case t.Protocol == u.Protocol || u.Protocol == 0:
		x.Protocol = t.Protocol
	case t.Protocol == 0:
		x.Protocol = u.Protocol
	default:
		return TS{}, false
	}
	x.Ports = PortRange{From: max(t.Ports.From, u.Ports.From), To: min(t.Ports.To, u.Ports.To)}
	if x.Ports.From > x.Ports.To {
		if t.Ports != opaquePorts || u.Ports != opaquePorts {
			return TS{}, false
		}
		x.Ports = opaquePorts
	}
	x.Range.From = t.Range.From
	if u.Range.From.Compare(x.Range.From) > 0 {
		x.Range.From = u.Range.From
	}
	x.Range.To = t.Range.To
	if u.Range.To.Compare(x.Range.To) < 0 {
		x.Range.To = u.Range.To
	}
	if x.Range.To.Less(x.Range.From) {
		return TS{}, false
	}
	return x, true
}

// opaquePorts is RFC 7296's OPAQUE port range (start 65535, end 0).
var opaquePorts = PortRange{From: 0xffff, To: 0}

// Contains reports whether t covers all of u.
func (t TS) Contains(u TS) bool {
	x, ok := t.Intersect(u)
	return ok && x == u
}

// Prefixes splits the address range into the fewest CIDR blocks that
// cover exactly it (routes and listings need prefixes; IKE ranges need not
// be one). Pathological ranges stop after 256 blocks.
func (r AddrRange) Prefixes() []netip.Prefix {
	var out []netip.Prefix
	start, end := r.From, r.To
	if !start.IsValid() || !end.IsValid() {
		return nil
	}
	bits := start.BitLen()
	for !end.Less(start) {
		n := bits
		// Grow the block while it stays aligned at start and inside end.
		for n > 0 {
			p := netip.PrefixFrom(start, n-1).Masked()
			if p.Addr() != start || end.Less(PrefixRange(p).To) {
				break
			}
			n--
		}
		p := netip.PrefixFrom(start, n)
		out = append(out, p)
		last := PrefixRange(p).To
		next := last.Next()
		if !next.IsValid() || next.Less(last) || len(out) > 256 {
			break
		}
		start = next
	}
	return out
}

// Split returns the selector as selectors whose ranges are single
// prefixes (see AddrRange.Prefixes), for the places that need subnets.
func (t TS) Split() []TS {
	var out []TS
	for _, p := range t.Range.Prefixes() {
		out = append(out, TS{Range: PrefixRange(p), Protocol: t.Protocol, Ports: t.Ports})
	}
	return out
}

// String renders the selector the way ipsec.conf writes subnets:
// "10.1.0.0/16", or "10.1.0.5..10.1.0.9" for a range that is not one
// prefix, with "[tcp/80]" when protocol or ports are restricted.
func (t TS) String() string {
	var s string
	if ps := t.Range.Prefixes(); len(ps) == 1 {
		s = ps[0].String()
	} else {
		s = t.Range.From.String() + ".." + t.Range.To.String()
	}
	if t.Protocol == 0 && t.Ports.full() {
		return s
	}
	port := "%any"
	switch {
	case t.Ports.From == t.Ports.To:
		port = strconv.Itoa(int(t.Ports.From))
	case !t.Ports.full():
		port = fmt.Sprintf("%d-%d", t.Ports.From, t.Ports.To)
	}
	return fmt.Sprintf("%s[%s/%s]", s, ProtocolName(t.Protocol), port)
}

// FormatTS renders a list of selectors comma-separated ("nothing" when
// empty), for logs and failure texts.
func FormatTS(ts []TS) string {
	if len(ts) == 0 {
		return "nothing"
	}
	parts := make([]string, len(ts))
	for i, t := range ts {
		parts[i] = t.String()
	}
	return strings.Join(parts, ",")
}

// ProtocolName names an IP protocol as ipsec.conf does ("%any" for 0, the
// number for protocols without a common name).
func ProtocolName(p uint8) string {
	switch p {
	case 0:
		return "%any"
	case header.ProtoICMP:
		return "icmp"
	case header.ProtoTCP:
		return "tcp"
	case header.ProtoUDP:
		return "udp"
	case header.ProtoGRE:
		return "gre"
	case header.ProtoESP:
		return "esp"
	case header.ProtoAH:
		return "ah"
	case header.ProtoICMPv6:
		return "ipv6-icmp"
	case header.ProtoSCTP:
		return "sctp"
	}
	return strconv.Itoa(int(p))
}

// Pairs turns the negotiated selector lists of a CHILD SA into the
// Selectors it protects: every local TS combined with every remote TS of
// the same address family (RFC 4301 §4.4.1: the SA covers the cross
// product). Protocols combine as their intersection: any with P gives P, P
// with a different Q gives nothing and the pair is skipped. The order
// follows local, then remote, so the result is deterministic.
func Pairs(local, remote []TS) []Selector {
	var out []Selector
	for _, l := range local {
		for _, r := range remote {
			if l.Range.From.Is4() != r.Range.From.Is4() {
				continue
			}
			proto := l.Protocol
			switch {
			case proto == 0:
				proto = r.Protocol
			case r.Protocol != 0 && r.Protocol != proto:
				continue
			}
			out = append(out, Selector{
				Local: l.Range, Remote: r.Range, Protocol: proto,
				LocalPorts: l.Ports, RemotePorts: r.Ports,
			})
		}
	}
	return out
}
