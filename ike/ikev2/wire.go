package ikev2

import (
	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
	"github.com/ipsecgw/ipsecgw/ike/shared"
	"github.com/ipsecgw/ipsecgw/spd"
)

// Conversions between the IKEv2 payloads and the engines' common forms
// (shared.Proposal, spd.TS).

// proposals converts an SA payload's proposals. Transforms with
// attributes other than Key Length are unacceptable (RFC 7296 §3.3.6) and
// left out, so a proposal that needs one of them matches nothing.
func proposals(sa message.SA) []shared.Proposal {
	out := make([]shared.Proposal, 0, len(sa.Proposals))
	for _, p := range sa.Proposals {
		sp := shared.Proposal{Number: p.Number, Protocol: shared.Protocol(p.Protocol), SPI: p.SPI}
		for _, t := range p.Transforms {
			if len(t.Attrs) == 0 {
				sp.Transforms = append(sp.Transforms, t.Transform)
			}
		}
		out = append(out, sp)
	}
	return out
}

// wireProposal converts one proposal for an SA payload.
func wireProposal(p shared.Proposal) message.Proposal {
	wp := message.Proposal{Number: p.Number, Protocol: message.ProtocolID(p.Protocol), SPI: p.SPI}
	for _, t := range p.Transforms {
		wp.Transforms = append(wp.Transforms, message.Transform{Transform: t})
	}
	return wp
}

// wireProposals converts proposals for an SA payload.
func wireProposals(ps []shared.Proposal) []message.Proposal {
	out := make([]message.Proposal, len(ps))
	for i, p := range ps {
		out[i] = wireProposal(p)
	}
	return out
}

// fromWireTS converts one received selector; false for types other than
// address ranges and for inconsistent ones (mixed families, reversed).
func fromWireTS(t message.TrafficSelector) (spd.TS, bool) {
	if t.Type != message.TSIPv4AddrRange && t.Type != message.TSIPv6AddrRange {
		return spd.TS{}, false
	}
	s, e := t.Start.Unmap(), t.End.Unmap()
	if !s.IsValid() || !e.IsValid() || s.Is4() != e.Is4() || e.Less(s) || t.EndPort < t.StartPort {
		return spd.TS{}, false
	}
	return spd.TS{Range: spd.AddrRange{From: s, To: e}, Protocol: t.Protocol, Ports: spd.PortRange{From: t.StartPort, To: t.EndPort}}, true
}

// wireToTS converts a TSi or TSr payload, skipping selectors fromWireTS
// refuses.
func wireToTS(x message.TrafficSelectors) []spd.TS {
	var out []spd.TS
	for _, t := range x.TS {
		if r, ok := fromWireTS(t); ok {
			out = append(out, r)
		}
	}
	return out
}

// tsPayload renders selectors as a TSi (responder false) or TSr payload.
func tsPayload(ts []spd.TS, responder bool) message.TrafficSelectors {
	x := message.TrafficSelectors{Responder: responder}
	for _, r := range ts {
		typ := message.TSIPv4AddrRange
		if r.Range.From.Is6() {
			typ = message.TSIPv6AddrRange
		}
		x.TS = append(x.TS, message.TrafficSelector{Type: typ, Protocol: r.Protocol,
			StartPort: r.Ports.From, EndPort: r.Ports.To, Start: r.Range.From, End: r.Range.To})
	}
	return x
}
