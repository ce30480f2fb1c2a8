package ikev2

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
)

// tsRange is a traffic selector as an address range, the form narrowing
// works on (RFC 7296 §2.9).
type tsRange struct {
	proto      uint8
	portLo     uint16
	portHi     uint16
	start, end netip.Addr
}

func prefixEnd(p netip.Prefix) netip.Addr {
	p = p.Masked()
	a := p.Addr().AsSlice()
	bits := p.Bits()
	for i := range a {
		for b := 0; b < 8; b++ {
			if i*8+b >= bits {
				a[i] |= 0x80 >> b
			}
		}
	}
	end, _ := netip.AddrFromSlice(a)
	return end
}

func fromConfigTS(t config.TrafficSelector) tsRange {
	p := t.Prefix.Masked()
	return tsRange{proto: t.Proto, portLo: t.PortLo, portHi: t.PortHi, start: p.Addr(), end: prefixEnd(p)}
}

// hostTS is the selector for a single address, all protocols and ports.
func hostTS(a netip.Addr) tsRange {
	a = a.Unmap()
	return tsRange{portHi: 65535, start: a, end: a}
}

func fromWireTS(t message.TrafficSelector) (tsRange, bool) {
	if t.Type != message.TSIPv4AddrRange && t.Type != message.TSIPv6AddrRange {
		return tsRange{}, false
	}
	s, e := t.Start.Unmap(), t.End.Unmap()
	if !s.IsValid() || !e.IsValid() || s.Is4() != e.Is4() || e.Less(s) || t.EndPort < t.StartPort {
		return tsRange{}, false
	}
	return tsRange{proto: t.Protocol, portLo: t.StartPort, portHi: t.EndPort, start: s, end: e}, true
}

func (r tsRange) wire() message.TrafficSelector {
	typ := message.TSIPv4AddrRange
	if r.start.Is6() {
		typ = message.TSIPv6AddrRange
	}
	return message.TrafficSelector{Type: typ, Protocol: r.proto, StartPort: r.portLo, EndPort: r.portHi, Start: r.start, End: r.end}
}

// intersect narrows two selectors to what both allow (RFC 7296 §2.9).
func intersect(a, b tsRange) (tsRange, bool) {
	if a.start.Is4() != b.start.Is4() {
		return tsRange{}, false
	}
	var r tsRange
	switch {
	case a.proto == b.proto || b.proto == 0:
		r.proto = a.proto
	case a.proto == 0:
		r.proto = b.proto
	default:
		return tsRange{}, false
	}
	r.portLo, r.portHi = max(a.portLo, b.portLo), min(a.portHi, b.portHi)
	if r.portLo > r.portHi {
		// OPAQUE ports (start 65535, end 0) only match themselves.
		if a.portLo == 65535 && a.portHi == 0 && b.portLo == 65535 && b.portHi == 0 {
			r.portLo, r.portHi = 65535, 0
		} else {
			return tsRange{}, false
		}
	}
	r.start = a.start
	if b.start.Compare(r.start) > 0 {
		r.start = b.start
	}
	r.end = a.end
	if b.end.Compare(r.end) < 0 {
		r.end = b.end
	}
	if r.end.Less(r.start) {
		return tsRange{}, false
	}
	return r, true
}

// contains reports whether r covers all of s.
func (r tsRange) contains(s tsRange) bool {
	x, ok := intersect(r, s)
	return ok && x == s
}

// narrow intersects each selector the peer proposed with each of ours,
// keeping every non-empty result once.
func narrow(ours []tsRange, theirs []tsRange) []tsRange {
	var out []tsRange
	for _, t := range theirs {
		for _, o := range ours {
			if x, ok := intersect(o, t); ok && !containsRange(out, x) {
				out = append(out, x)
			}
		}
	}
	return out
}

func containsRange(rs []tsRange, x tsRange) bool {
	for _, r := range rs {
		if r == x {
			return true
		}
	}
	return false
}

// toConfig converts a range into the prefix form the dataplane uses,
// splitting it into the smallest set of prefixes covering exactly it.
func (r tsRange) toConfig() []config.TrafficSelector {
	var out []config.TrafficSelector
	for _, p := range rangePrefixes(r.start, r.end) {
		out = append(out, config.TrafficSelector{Prefix: p, Proto: r.proto, PortLo: r.portLo, PortHi: r.portHi})
	}
	return out
}

// rangePrefixes splits [start, end] into CIDR blocks.
func rangePrefixes(start, end netip.Addr) []netip.Prefix {
	var out []netip.Prefix
	bits := start.BitLen()
	for !end.Less(start) {
		n := bits
		// Grow the block while it stays aligned at start and inside end.
		for n > 0 {
			p := netip.PrefixFrom(start, n-1).Masked()
			if p.Addr() != start || end.Less(prefixEnd(p)) {
				break
			}
			n--
		}
		p := netip.PrefixFrom(start, n)
		out = append(out, p)
		last := prefixEnd(p)
		next := last.Next()
		if !next.IsValid() || next.Less(last) {
			break
		}
		start = next
		if len(out) > 256 {
			break // a pathological range; the policy stays a superset-free subset
		}
	}
	return out
}

func rangesToConfig(rs []tsRange) []config.TrafficSelector {
	var out []config.TrafficSelector
	for _, r := range rs {
		out = append(out, r.toConfig()...)
	}
	return out
}

func rangesToWire(rs []tsRange, responder bool) message.TrafficSelectors {
	x := message.TrafficSelectors{Responder: responder}
	for _, r := range rs {
		x.TS = append(x.TS, r.wire())
	}
	return x
}

func (r tsRange) String() string {
	var s string
	if p := rangePrefixes(r.start, r.end); len(p) == 1 {
		s = p[0].String()
	} else {
		s = r.start.String() + ".." + r.end.String()
	}
	if r.proto == 0 && r.portLo == 0 && r.portHi == 65535 {
		return s
	}
	port := "any"
	if r.portLo == r.portHi {
		port = fmt.Sprint(r.portLo)
	} else if !(r.portLo == 0 && r.portHi == 65535) {
		port = fmt.Sprintf("%d-%d", r.portLo, r.portHi)
	}
	return fmt.Sprintf("%s[%d/%s]", s, r.proto, port)
}

func rangesString(rs []tsRange) string {
	if len(rs) == 0 {
		return "nothing"
	}
	var parts []string
	for _, r := range rs {
		parts = append(parts, r.String())
	}
	return strings.Join(parts, ",")
}

// confTS are a conn end's selectors; with no subnet configured, the end's
// own address (host-to-host).
func confTS(e config.End, addr netip.Addr) []tsRange {
	if len(e.Subnets) == 0 {
		return []tsRange{hostTS(addr)}
	}
	out := make([]tsRange, 0, len(e.Subnets))
	for _, s := range e.Subnets {
		out = append(out, fromConfigTS(s))
	}
	return out
}

func wireToRanges(x message.TrafficSelectors) []tsRange {
	var out []tsRange
	for _, t := range x.TS {
		if r, ok := fromWireTS(t); ok {
			out = append(out, r)
		}
	}
	return out
}
