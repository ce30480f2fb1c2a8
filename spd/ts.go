package spd

import "fmt"

// TS is one traffic selector as IKEv2 negotiates it (RFC 7296 §3.13.1): an
// address range, an IP protocol (0 = any) and a port range, for one side.
type TS struct {
	Range    AddrRange
	Protocol uint8
	Ports    PortRange
}

func (t TS) String() string {
	return fmt.Sprintf("%v[%d/%d-%d]", t.Range, t.Protocol, t.Ports.From, t.Ports.To)
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
