package ikev2

import (
	"slices"
	"strings"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
	"github.com/ipsecgw/ipsecgw/transform"
)

// transformTypes are the types a proposal is matched on, in wire order.
var transformTypes = []transform.Type{transform.TypeENCR, transform.TypePRF, transform.TypeINTEG, transform.TypeKE, transform.TypeESN}

// toTransform converts a config transform to the transform package's form
// (the numbers are the same IANA values).
func toTransform(t config.Transform) transform.Transform {
	return transform.Transform{Type: transform.Type(t.Type), ID: transform.ID(t.ID), KeyLen: t.KeyLen}
}

// wireProposals renders our proposals for an SA payload, numbered from 1.
// stripKE drops key exchange transforms (the first CHILD SA, created in
// IKE_AUTH, has no KE: RFC 7296 §1.2). ESP proposals without an ESN
// transform get "no ESN", which RFC 7296 §3.3.3 makes mandatory for ESP.
func wireProposals(ps []config.Proposal, proto message.ProtocolID, spi []byte, stripKE bool) []message.Proposal {
	var out []message.Proposal
	for _, p := range ps {
		if message.ProtocolID(p.Protocol) != proto {
			continue
		}
		wp := message.Proposal{Number: uint8(len(out) + 1), Protocol: proto, SPI: spi}
		hasESN := false
		for _, t := range p.Transforms {
			tt := toTransform(t)
			if tt.Type > transform.TypeESN {
				continue // additional key exchanges are not negotiated
			}
			if tt.Type == transform.TypeKE && (stripKE || tt.ID == transform.KENone) {
				continue
			}
			if tt.Type == transform.TypeESN {
				hasESN = true
			}
			wp.Transforms = append(wp.Transforms, message.Transform{Transform: tt})
		}
		if proto == message.ProtoESP && !hasESN {
			wp.Transforms = append(wp.Transforms, message.Transform{Transform: transform.Transform{Type: transform.TypeESN, ID: transform.ESNNo}})
		}
		out = append(out, wp)
		if len(out) == 255 {
			break
		}
	}
	return out
}

// of lists a wire proposal's transforms of one type. Transforms carrying
// attributes other than Key Length are unacceptable (RFC 7296 §3.3.6) and
// left out.
func of(p message.Proposal, t transform.Type) []transform.Transform {
	var out []transform.Transform
	for _, x := range p.Transforms {
		if x.Type == t && len(x.Attrs) == 0 {
			out = append(out, x.Transform)
		}
	}
	return out
}

// normalized fills in the "absent means none" conventions so that two
// proposals can be compared type by type: no INTEG is INTEG none (AEAD), no
// KE is KE none (no PFS), no ESN is ESN no.
func normalized(list []transform.Transform, t transform.Type, proto message.ProtocolID) []transform.Transform {
	if len(list) > 0 {
		return list
	}
	switch t {
	case transform.TypeINTEG:
		return []transform.Transform{{Type: t, ID: transform.IntegNone}}
	case transform.TypeKE:
		if proto != message.ProtoIKE {
			return []transform.Transform{{Type: t, ID: transform.KENone}}
		}
	case transform.TypeESN:
		if proto != message.ProtoIKE {
			return []transform.Transform{{Type: t, ID: transform.ESNNo}}
		}
	}
	return nil
}

// selected is the outcome of proposal selection: one transform per type.
type selected struct {
	Number                    uint8
	Encr, PRF, Integ, KE, ESN transform.Transform
}

// wire renders the selected proposal for our SA payload.
func (s selected) wire(proto message.ProtocolID, spi []byte) message.Proposal {
	p := message.Proposal{Number: s.Number, Protocol: proto, SPI: spi}
	add := func(t transform.Transform) { p.Transforms = append(p.Transforms, message.Transform{Transform: t}) }
	add(s.Encr)
	if proto == message.ProtoIKE {
		add(s.PRF)
	}
	if s.Integ.ID != transform.IntegNone {
		add(s.Integ)
	}
	if s.KE.ID != transform.KENone {
		add(s.KE)
	}
	if proto != message.ProtoIKE {
		add(s.ESN)
	}
	return p
}

// String names the algorithms strongSwan-style: "aes128-sha256-prfsha256-modp3072".
func (s selected) String() string {
	var parts []string
	parts = append(parts, s.Encr.String())
	if s.Integ.ID != transform.IntegNone {
		parts = append(parts, s.Integ.String())
	}
	if s.PRF.Type != 0 {
		parts = append(parts, s.PRF.String())
	}
	if s.KE.ID != transform.KENone {
		parts = append(parts, s.KE.String())
	}
	if s.ESN.ID == transform.ESNYes {
		parts = append(parts, "esn")
	}
	return strings.Join(parts, "-")
}

// selectProposal picks the proposal the way strongSwan's responder does by
// default: the first of OUR proposals that one of the peer's proposals
// supports, and in it, for each transform type, the first of our algorithms
// the peer also offers. stripKE ignores KE transforms (IKE_AUTH); preferKE,
// when non-zero and acceptable to both, is chosen as the group (the group of
// the KE payload the peer already sent).
func selectProposal(ours, theirs []message.Proposal, proto message.ProtocolID, stripKE bool, preferKE transform.ID) (selected, bool) {
	for _, op := range ours {
		for _, tp := range theirs {
			if tp.Protocol != proto {
				continue
			}
			if s, ok := matchProposal(op, tp, proto, stripKE, preferKE); ok {
				s.Number = tp.Number
				return s, true
			}
		}
	}
	return selected{}, false
}

func matchProposal(op, tp message.Proposal, proto message.ProtocolID, stripKE bool, preferKE transform.ID) (selected, bool) {
	var s selected
	for _, t := range transformTypes {
		if t == transform.TypeKE && stripKE {
			s.KE = transform.Transform{Type: t, ID: transform.KENone}
			continue
		}
		if proto == message.ProtoIKE && t == transform.TypeESN {
			continue
		}
		if proto != message.ProtoIKE && t == transform.TypePRF {
			if len(of(tp, t)) > 0 {
				return s, false
			}
			continue
		}
		a, b := normalized(of(op, t), t, proto), normalized(of(tp, t), t, proto)
		if len(a) == 0 || len(b) == 0 {
			return s, false
		}
		var pick transform.Transform
		found := false
		if t == transform.TypeKE && preferKE != 0 && slices.Contains(a, transform.Transform{Type: t, ID: preferKE}) && slices.Contains(b, transform.Transform{Type: t, ID: preferKE}) {
			pick, found = transform.Transform{Type: t, ID: preferKE}, true
		}
		for _, x := range a {
			if found {
				break
			}
			if slices.Contains(b, x) {
				pick, found = x, true
			}
		}
		if !found {
			return s, false
		}
		switch t {
		case transform.TypeENCR:
			s.Encr = pick
		case transform.TypePRF:
			s.PRF = pick
		case transform.TypeINTEG:
			s.Integ = pick
		case transform.TypeKE:
			s.KE = pick
		case transform.TypeESN:
			s.ESN = pick
		}
	}
	// An AEAD cipher must not be combined with an integrity algorithm, a
	// classic one must have one (RFC 5282 §8, RFC 7296 §3.3).
	info, err := transform.Lookup(s.Encr)
	if err != nil {
		return s, false
	}
	if info.AEAD != (s.Integ.ID == transform.IntegNone) {
		return s, false
	}
	return s, true
}

// acceptResponse checks the single proposal a responder returned against
// what we offered (RFC 7296 §2.7: it must be one of ours, with one
// transform of each type) and returns it as a selection.
func acceptResponse(offered []message.Proposal, got message.SA, proto message.ProtocolID, stripKE bool) (selected, bool) {
	if len(got.Proposals) != 1 {
		return selected{}, false
	}
	rp := got.Proposals[0]
	if rp.Protocol != proto {
		return selected{}, false
	}
	for _, t := range transformTypes {
		if len(of(rp, t)) > 1 {
			return selected{}, false
		}
	}
	for _, op := range offered {
		if op.Number != rp.Number {
			continue
		}
		s, ok := matchProposal(op, rp, proto, stripKE, 0)
		if !ok {
			return selected{}, false
		}
		s.Number = rp.Number
		return s, true
	}
	return selected{}, false
}

// proposalsString renders wire proposals strongSwan-style, comma-separated.
func proposalsString(ps []message.Proposal) string {
	var out []string
	for _, p := range ps {
		var names []string
		for _, t := range p.Transforms {
			if t.Type == transform.TypeESN && t.ID == transform.ESNNo {
				continue
			}
			if t.Type == transform.TypeINTEG && t.ID == transform.IntegNone {
				continue
			}
			names = append(names, t.Transform.String())
		}
		out = append(out, compactNames(names))
	}
	if len(out) == 0 {
		return "nothing"
	}
	return strings.Join(out, ", ")
}

// configProposalsString renders config proposals of one protocol.
func configProposalsString(ps []config.Proposal, proto config.Protocol) string {
	var out []string
	for _, p := range ps {
		if p.Protocol == proto {
			out = append(out, compactNames(p.Names()))
		}
	}
	if len(out) == 0 {
		return "nothing"
	}
	return strings.Join(out, ", ")
}

// compactNames joins algorithm names the way ipsec.conf proposals are
// written: a PRF implied by an integrity algorithm of the same hash
// ("sha256" and "prfsha256") is left out, so a proposal reads as the user
// wrote it ("aes128-sha256-modp3072").
func compactNames(names []string) string {
	var out []string
	for _, n := range names {
		if h, ok := strings.CutPrefix(n, "prf"); ok && slices.Contains(names, h) {
			continue
		}
		out = append(out, n)
	}
	return strings.Join(out, "-")
}
