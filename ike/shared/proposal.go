package shared

import (
	"slices"
	"strings"
	"sync"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/transform"
)

// Protocol is the protocol a proposal negotiates, with IKEv2's numbers
// (RFC 7296 §3.3.1); config.Protocol uses the same values.
type Protocol uint8

// Protocols.
const (
	ProtoIKE Protocol = 1
	ProtoAH  Protocol = 2
	ProtoESP Protocol = 3
)

// ChildName is how status and events name the protocol of a CHILD SA:
// "ah" or "esp". A constant, not a lower-cased copy per SA.
func (p Protocol) ChildName() string {
	if p == ProtoAH {
		return "ah"
	}
	return "esp"
}

// ChildProtocol is the protocol of a conn's CHILD SAs: AH when it has ah=
// proposals (config.Conn.ChildProposals), ESP otherwise.
func ChildProtocol(c config.Conn) Protocol {
	if len(c.AH) > 0 {
		return ProtoAH
	}
	return ProtoESP
}

// Proposal is one proposal in the engines' common form: IANA IKEv2
// transform types and IDs. The IKEv2 engine converts its SA payloads to
// and from it; an IKEv1 engine maps its transforms and attributes to it.
// Transforms with attributes other than a key length never get here (RFC
// 7296 §3.3.6 makes them unacceptable).
type Proposal struct {
	Number     uint8
	Protocol   Protocol
	SPI        []byte
	Transforms []transform.Transform
}

// transformTypes are the types a proposal is matched on, in wire order.
var transformTypes = []transform.Type{transform.TypeENCR, transform.TypePRF, transform.TypeINTEG, transform.TypeKE, transform.TypeESN}

// Offer renders configured proposals of one protocol as ours, numbered
// from 1, with our SPI. stripKE drops key exchange transforms (the first
// CHILD SA of IKEv2, created in IKE_AUTH, has no KE: RFC 7296 §1.2). ESP
// proposals without an ESN transform get "no ESN", which RFC 7296 §3.3.3
// makes mandatory for ESP and AH (§3.3.3).
func Offer(ps []config.Proposal, proto Protocol, spi []byte, stripKE bool) []Proposal {
	var out []Proposal
	for _, p := range ps {
		if Protocol(p.Protocol) != proto {
			continue
		}
		wp := Proposal{Number: uint8(len(out) + 1), Protocol: proto, SPI: spi}
		hasESN := false
		for _, t := range p.Transforms {
			tt := transform.Transform{Type: transform.Type(t.Type), ID: transform.ID(t.ID), KeyLen: t.KeyLen}
			if tt.Type > transform.TypeESN && stripKE {
				// No key exchange at all for IKE_AUTH's CHILD SA; CHILD
				// SAs of CREATE_CHILD_SA have additional ones in
				// IKE_FOLLOWUP_KE (RFC 9370 §2.2.4).
				continue
			}
			if tt.Type == transform.TypeKE && (stripKE || tt.ID == transform.KENone) {
				continue
			}
			if tt.Type == transform.TypeESN {
				hasESN = true
			}
			wp.Transforms = append(wp.Transforms, tt)
		}
		if (proto == ProtoESP || proto == ProtoAH) && !hasESN {
			wp.Transforms = append(wp.Transforms, transform.Transform{Type: transform.TypeESN, ID: transform.ESNNo})
		}
		out = append(out, wp)
		if len(out) == 255 {
			break
		}
	}
	return out
}

// Of lists a proposal's transforms of one type.
func (p Proposal) Of(t transform.Type) []transform.Transform {
	var out []transform.Transform
	for _, x := range p.Transforms {
		if x.Type == t {
			out = append(out, x)
		}
	}
	return out
}

// FirstGroup is the first key exchange group of a proposal, or 0.
func (p Proposal) FirstGroup() transform.ID {
	if kes := p.Of(transform.TypeKE); len(kes) > 0 {
		return kes[0].ID
	}
	return 0
}

// normalized fills in the "absent means none" conventions so that two
// proposals can be compared type by type: no INTEG is INTEG none (AEAD), no
// KE is KE none (no PFS), no ESN is ESN no.
func normalized(list []transform.Transform, t transform.Type, proto Protocol) []transform.Transform {
	if len(list) > 0 {
		return list
	}
	switch t {
	case transform.TypeINTEG:
		return []transform.Transform{{Type: t, ID: transform.IntegNone}}
	case transform.TypeKE:
		if proto != ProtoIKE {
			return []transform.Transform{{Type: t, ID: transform.KENone}}
		}
	case transform.TypeESN:
		if proto != ProtoIKE {
			return []transform.Transform{{Type: t, ID: transform.ESNNo}}
		}
	}
	return nil
}

// Selection is the outcome of proposal selection: one transform per type,
// and the number of the peer's proposal it came from.
type Selection struct {
	Number                    uint8
	Encr, PRF, Integ, KE, ESN transform.Transform
	// AddKE are the additional key exchanges ADDKE1..7 of an IKE SA (RFC
	// 9370), ID KENone (and Type 0) where none was chosen.
	AddKE [7]transform.Transform
}

// AdditionalKEs lists the chosen additional key exchanges in the order
// they run (ADDKE1 first), without the NONE ones.
func (s Selection) AdditionalKEs() []transform.Transform {
	var out []transform.Transform
	for _, t := range s.AddKE {
		if t.ID != transform.KENone {
			out = append(out, t)
		}
	}
	return out
}

// Proposal renders the selection as the single proposal of an answer.
func (s Selection) Proposal(proto Protocol, spi []byte) Proposal {
	p := Proposal{Number: s.Number, Protocol: proto, SPI: spi}
	add := func(t transform.Transform) { p.Transforms = append(p.Transforms, t) }
	if proto != ProtoAH {
		add(s.Encr)
	}
	if proto == ProtoIKE {
		add(s.PRF)
	}
	if s.Integ.ID != transform.IntegNone {
		add(s.Integ)
	}
	if s.KE.ID != transform.KENone {
		add(s.KE)
	}
	if proto != ProtoIKE {
		add(s.ESN)
	}
	for _, t := range s.AdditionalKEs() {
		add(t)
	}
	return p
}

// String names the algorithms strongSwan-style: "aes128-sha256-prfsha256-modp3072".
// Every SA's status and events carry its name: the names are made once per
// combination of algorithms (Number, which the name leaves out, aside) and
// shared, rather than built anew, and kept, for each of thousands of SAs.
func (s Selection) String() string {
	s.Number = 0
	selectionNames.mu.Lock()
	name, ok := selectionNames.m[s]
	selectionNames.mu.Unlock()
	if ok {
		return name
	}
	name = s.name()
	selectionNames.mu.Lock()
	if selectionNames.m == nil {
		selectionNames.m = map[Selection]string{}
	}
	selectionNames.m[s] = name
	selectionNames.mu.Unlock()
	return name
}

// selectionNames are the names Selection.String made. Negotiated
// selections only hold algorithms of our own proposals, so there are as
// many as the configuration's combinations of them, at most.
var selectionNames struct {
	mu sync.Mutex
	m  map[Selection]string
}

func (s Selection) name() string {
	var parts []string
	if s.Encr.Type != 0 {
		parts = append(parts, s.Encr.String())
	}
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
	for _, t := range s.AdditionalKEs() {
		parts = append(parts, t.String())
	}
	return strings.Join(parts, "-")
}

// Select picks the proposal the way strongSwan's responder does by
// default: the first of OUR proposals that one of the peer's proposals
// supports, and in it, for each transform type, the first of our
// algorithms the peer also offers. stripKE ignores KE transforms (IKEv2's
// IKE_AUTH); preferKE, when non-zero and acceptable to both, is chosen as
// the group (the group of the KE payload the peer already sent).
func Select(ours, theirs []Proposal, proto Protocol, stripKE bool, preferKE transform.ID) (Selection, bool) {
	for _, op := range ours {
		for _, tp := range theirs {
			if tp.Protocol != proto {
				continue
			}
			if s, ok := match(op, tp, proto, stripKE, preferKE); ok {
				s.Number = tp.Number
				return s, true
			}
		}
	}
	return Selection{}, false
}

func match(op, tp Proposal, proto Protocol, stripKE bool, preferKE transform.ID) (Selection, bool) {
	var s Selection
	for _, t := range transformTypes {
		if t == transform.TypeKE && stripKE {
			s.KE = transform.Transform{Type: t, ID: transform.KENone}
			continue
		}
		if proto == ProtoIKE && t == transform.TypeESN {
			continue
		}
		if proto != ProtoIKE && t == transform.TypePRF || proto == ProtoAH && t == transform.TypeENCR {
			// AH has no encryption transform and no child SA has a PRF
			// (RFC 7296 §3.3.3): a proposal with one is not acceptable.
			if len(tp.Of(t)) > 0 || len(op.Of(t)) > 0 {
				return s, false
			}
			continue
		}
		a, b := normalized(op.Of(t), t, proto), normalized(tp.Of(t), t, proto)
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
	if !stripKE {
		// RFC 9370 §2.2.1: each additional key exchange type is matched
		// like the others; one that a proposal leaves out is NONE. CHILD
		// SAs have them in CREATE_CHILD_SA (§2.2.4), not in IKE_AUTH.
		for t := transform.TypeADDKE1; t <= transform.TypeADDKE7; t++ {
			none := []transform.Transform{{Type: t, ID: transform.KENone}}
			a, b := op.Of(t), tp.Of(t)
			if len(a) == 0 {
				a = none
			}
			if len(b) == 0 {
				b = none
			}
			i := slices.IndexFunc(a, func(x transform.Transform) bool { return slices.Contains(b, x) })
			if i < 0 {
				return s, false
			}
			if a[i].ID != transform.KENone {
				s.AddKE[t-transform.TypeADDKE1] = a[i]
			}
		}
	}
	if proto == ProtoAH {
		// Integrity is AH's only transform (RFC 4302 §2.6).
		return s, s.Integ.ID != transform.IntegNone
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

// Accept checks the single proposal a responder returned against what we
// offered (RFC 7296 §2.7: it must be one of ours, with one transform of
// each type) and returns it as a selection.
func Accept(offered []Proposal, got []Proposal, proto Protocol, stripKE bool) (Selection, bool) {
	if len(got) != 1 {
		return Selection{}, false
	}
	rp := got[0]
	if rp.Protocol != proto {
		return Selection{}, false
	}
	for _, t := range transformTypes {
		if len(rp.Of(t)) > 1 {
			return Selection{}, false
		}
	}
	for t := transform.TypeADDKE1; t <= transform.TypeADDKE7; t++ {
		if len(rp.Of(t)) > 1 {
			return Selection{}, false
		}
	}
	for _, op := range offered {
		if op.Number != rp.Number {
			continue
		}
		s, ok := match(op, rp, proto, stripKE, 0)
		if !ok {
			return Selection{}, false
		}
		s.Number = rp.Number
		return s, true
	}
	return Selection{}, false
}

// WithoutAddKE returns the proposals without additional key exchange
// transforms (RFC 9370), which then stand for NONE.
func WithoutAddKE(ps []Proposal) []Proposal {
	out := make([]Proposal, len(ps))
	for i, p := range ps {
		q := p
		q.Transforms = slices.DeleteFunc(slices.Clone(p.Transforms), func(t transform.Transform) bool { return t.Type >= transform.TypeADDKE1 })
		out[i] = q
	}
	return out
}

// OffersGroup reports whether any of the proposals offers group g.
func OffersGroup(ps []Proposal, g transform.ID) bool {
	for _, p := range ps {
		if slices.Contains(p.Of(transform.TypeKE), transform.Transform{Type: transform.TypeKE, ID: g}) {
			return true
		}
	}
	return false
}

// StripKEs returns the proposals without their key exchange transforms
// when strip is set (for messages about IKE_AUTH's CHILD SA).
func StripKEs(ps []Proposal, strip bool) []Proposal {
	if !strip {
		return ps
	}
	out := make([]Proposal, len(ps))
	for i, p := range ps {
		q := p
		q.Transforms = slices.DeleteFunc(slices.Clone(p.Transforms), func(t transform.Transform) bool { return t.Type == transform.TypeKE })
		out[i] = q
	}
	return out
}

// ProposalsString renders proposals strongSwan-style, comma-separated.
func ProposalsString(ps []Proposal) string {
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
			names = append(names, t.String())
		}
		out = append(out, compactNames(names))
	}
	if len(out) == 0 {
		return "nothing"
	}
	return strings.Join(out, ", ")
}

// ConfigProposalsString renders configured proposals of one protocol.
func ConfigProposalsString(ps []config.Proposal, proto config.Protocol) string {
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
