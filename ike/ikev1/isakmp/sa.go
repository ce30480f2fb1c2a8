package isakmp

import (
	"encoding/binary"
	"strconv"
)

// SA is the Security Association payload in the IPsec DOI (RFC 2408 §3.4,
// RFC 2407 §4.6.1).
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	! Next Payload  !   RESERVED    !         Payload Length        !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!              Domain of Interpretation (IPsec DOI)             !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!                           Situation                           !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                          <Proposals>                          ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The wire structure is kept: Proposals are the proposal payloads in
// order, and several of them with the same number form one proposal whose
// protocols are all required (AND, e.g. AH and ESP together), while
// different numbers and the transforms of one proposal payload are
// alternatives (OR). The mapping to the engines' common form is in
// offers.go. The HASH_I/HASH_R computations use the initiator's SA body
// exactly as sent (SAi_b), so handlers keep RawPayload.Body for that.
type SA struct {
	DOI       DOI
	Situation Situation
	Proposals []Proposal
}

// Proposal is a Proposal payload (RFC 2408 §3.5).
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	! Next Payload  !   RESERVED    !         Payload Length        !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!  Proposal #   !  Protocol-Id  !    SPI Size   !# of Transforms!
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!                        SPI (variable)                         !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                        <Transforms>                           ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Next Payload is 2 (another proposal follows) or 0 (last). The SPI is
// empty in phase 1 and the sender's inbound SPI in quick mode (4 bytes
// for ESP and AH); it aliases the parsed buffer.
type Proposal struct {
	Number     uint8
	Protocol   ProtocolID
	SPI        []byte
	Transforms []Transform
}

// Transform is a Transform payload (RFC 2408 §3.6).
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	! Next Payload  !   RESERVED    !         Payload Length        !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!  Transform #  !  Transform-Id !           RESERVED2           !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                        SA Attributes                          ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Next Payload is 3 (another transform follows) or 0 (last). In phase 1
// the transform ID is KEY_IKE and the attributes carry every algorithm;
// in quick mode the ID is the ESP cipher and the attributes the rest
// (RFC 2407 §4.5).
type Transform struct {
	Number uint8
	ID     TransformID
	Attrs  []Attribute
}

// Attribute is a data attribute (RFC 2408 §3.3).
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!A!       Attribute Type        !    AF=0  Attribute Length     !
//	!F!                             !    AF=1  Attribute Value      !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	.                   AF=0  Attribute Value                       .
//	.                   AF=1  Not Transmitted                       .
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// TV (AF=1, "basic") attributes carry Value; TLV (AF=0, "variable") ones
// carry Data, which aliases the parsed buffer. Lifetimes may come in
// either form and longer than two bytes (RFC 2409 Appendix A, RFC 2407
// §4.5): Uint reads both.
type Attribute struct {
	Type  AttrType
	TV    bool
	Value uint16
	Data  []byte
}

// BasicAttr is a TV attribute.
func BasicAttr(t AttrType, v uint16) Attribute { return Attribute{Type: t, TV: true, Value: v} }

// NumAttr is an attribute holding the number v: TV when v fits in 16
// bits, otherwise TLV with 4 or 8 bytes (as strongSwan encodes
// lifetimes).
func NumAttr(t AttrType, v uint64) Attribute {
	switch {
	case v <= 0xffff:
		return BasicAttr(t, uint16(v))
	case v <= 0xffffffff:
		return Attribute{Type: t, Data: binary.BigEndian.AppendUint32(nil, uint32(v))}
	}
	return Attribute{Type: t, Data: binary.BigEndian.AppendUint64(nil, v)}
}

// Uint returns the value of a TV attribute, or of a TLV attribute whose
// data is a big-endian number of at most 64 significant bits (leading
// zero bytes are allowed); ok is false for longer or empty data.
func (a Attribute) Uint() (v uint64, ok bool) {
	if a.TV {
		return uint64(a.Value), true
	}
	if len(a.Data) == 0 {
		return 0, false
	}
	d := a.Data
	for len(d) > 8 {
		if d[0] != 0 {
			return 0, false
		}
		d = d[1:]
	}
	for _, c := range d {
		v = v<<8 | uint64(c)
	}
	return v, true
}

// Len is the encoded length of a.
func (a Attribute) Len() int {
	if a.TV {
		return 4
	}
	return 4 + len(a.Data)
}

// AppendTo appends the encoded attribute.
func (a Attribute) AppendTo(b []byte) []byte {
	if a.TV {
		b = binary.BigEndian.AppendUint16(b, uint16(a.Type)|0x8000)
		return binary.BigEndian.AppendUint16(b, a.Value)
	}
	b = binary.BigEndian.AppendUint16(b, uint16(a.Type)&0x7fff)
	b = binary.BigEndian.AppendUint16(b, uint16(len(a.Data)))
	return append(b, a.Data...)
}

func (a Attribute) String() string {
	v, ok := a.Uint()
	if !ok {
		return "attribute " + itoa(int(a.Type)) + " (" + itoa(len(a.Data)) + " bytes)"
	}
	return "attribute " + itoa(int(a.Type)) + "=" + strconv.FormatUint(v, 10)
}

// Wire values of the Next Payload field inside an SA payload.
const (
	moreProposals  = byte(PayloadProposal)
	moreTransforms = byte(PayloadTransform)
)

func (SA) PayloadType() PayloadType { return PayloadSA }

// Len is the body length of x.
func (x SA) Len() int {
	n := 8
	for _, p := range x.Proposals {
		n += 8 + len(p.SPI)
		for _, t := range p.Transforms {
			n += t.len()
		}
	}
	return n
}

func (t Transform) len() int {
	n := 8
	for _, a := range t.Attrs {
		n += a.Len()
	}
	return n
}

// AppendTo appends the body of x. Proposal and transform counts must fit
// in a byte and lengths in 16 bits; Phase1SA and Phase2SA stay within
// that.
func (x SA) AppendTo(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(x.DOI))
	b = binary.BigEndian.AppendUint32(b, uint32(x.Situation))
	for i, p := range x.Proposals {
		next := moreProposals
		if i == len(x.Proposals)-1 {
			next = 0
		}
		start := len(b)
		b = append(b, next, 0, 0, 0, p.Number, byte(p.Protocol), byte(len(p.SPI)), byte(len(p.Transforms)))
		b = append(b, p.SPI...)
		for j, t := range p.Transforms {
			tnext := moreTransforms
			if j == len(p.Transforms)-1 {
				tnext = 0
			}
			ts := len(b)
			b = append(b, tnext, 0, 0, 0, t.Number, byte(t.ID), 0, 0)
			for _, a := range t.Attrs {
				b = a.AppendTo(b)
			}
			binary.BigEndian.PutUint16(b[ts+2:], uint16(len(b)-ts))
		}
		binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	}
	return b
}

func badSyntax(off int, reason string) error { return newErr(BAD_PROPOSAL_SYNTAX, off, reason) }

// ParseSA decodes an SA payload body. It requires the IPsec DOI
// (DOI-NOT-SUPPORTED) with the identity-only situation
// (SITUATION-NOT-SUPPORTED: the secrecy and integrity situations carry
// labelled-domain fields no IKE peer sends), checks every length against
// its container (PAYLOAD-MALFORMED), and the Next Payload values inside
// the SA, the transform counts, that proposal numbers do not decrease and
// that transform numbers are unique within a proposal
// (BAD-PROPOSAL-SYNTAX). Attribute values are not interpreted here (see
// Phase1Offers and Phase2Offers). SPIs and TLV data alias b; all
// proposals, all transforms and all attributes share one allocation
// each.
func ParseSA(b []byte) (SA, int, error) {
	if len(b) < 8 {
		return SA{}, 0, malformed(0, "SA payload too short")
	}
	x := SA{DOI: DOI(binary.BigEndian.Uint32(b)), Situation: Situation(binary.BigEndian.Uint32(b[4:]))}
	if x.DOI != DOIIPsec {
		return SA{}, 0, &Error{Notify: DOI_NOT_SUPPORTED, Data: b[0:4:4],
			Reason: "SA payload DOI " + strconv.FormatUint(uint64(x.DOI), 10) + ", not IPsec", Offset: 0}
	}
	if x.Situation != SitIdentityOnly {
		return SA{}, 0, &Error{Notify: SITUATION_NOT_SUPPORTED, Data: b[4:8:8],
			Reason: "situation " + strconv.FormatUint(uint64(x.Situation), 10) + ", only SIT_IDENTITY_ONLY is supported", Offset: 4}
	}
	// First pass: check the framing and count, so that the second pass
	// can fill slices of the right size.
	np, nt, na := 0, 0, 0
	for off := 8; off < len(b); {
		if len(b)-off < 8 {
			return SA{}, 0, malformed(off, "truncated proposal payload")
		}
		plen := int(binary.BigEndian.Uint16(b[off+2:]))
		if plen < 8 || plen > len(b)-off {
			return SA{}, 0, malformed(off+2, "proposal length out of range")
		}
		spi := int(b[off+6])
		if 8+spi > plen {
			return SA{}, 0, malformed(off+6, "SPI exceeds proposal")
		}
		for toff := off + 8 + spi; toff < off+plen; {
			if off+plen-toff < 8 {
				return SA{}, 0, malformed(toff, "truncated transform payload")
			}
			tlen := int(binary.BigEndian.Uint16(b[toff+2:]))
			if tlen < 8 || tlen > off+plen-toff {
				return SA{}, 0, malformed(toff+2, "transform length out of range")
			}
			for aoff := toff + 8; aoff < toff+tlen; {
				n, err := attrLen(b[aoff : toff+tlen])
				if err != nil {
					return SA{}, 0, shift(err, aoff)
				}
				na++
				aoff += n
			}
			nt++
			toff += tlen
		}
		np++
		off += plen
	}
	if np == 0 {
		return SA{}, 0, badSyntax(8, "SA payload without proposals")
	}
	props := make([]Proposal, 0, np)
	trans := make([]Transform, 0, nt)
	attrs := make([]Attribute, 0, na)
	for off := 8; off < len(b); {
		plen := int(binary.BigEndian.Uint16(b[off+2:]))
		last := off+plen == len(b)
		if (last && b[off] != 0) || (!last && b[off] != moreProposals) {
			return SA{}, 0, badSyntax(off, "proposal Next Payload is neither 2 nor 0 (last)")
		}
		p := Proposal{Number: b[off+4], Protocol: ProtocolID(b[off+5])}
		if len(props) > 0 && p.Number < props[len(props)-1].Number {
			return SA{}, 0, badSyntax(off+4, "proposal numbers decrease")
		}
		spi := int(b[off+6])
		p.SPI = sub(b, off+8, off+8+spi)
		first := len(trans)
		var numbers [256]bool
		for toff := off + 8 + spi; toff < off+plen; {
			tlen := int(binary.BigEndian.Uint16(b[toff+2:]))
			tlast := toff+tlen == off+plen
			if (tlast && b[toff] != 0) || (!tlast && b[toff] != moreTransforms) {
				return SA{}, 0, badSyntax(toff, "transform Next Payload is neither 3 nor 0 (last)")
			}
			t := Transform{Number: b[toff+4], ID: TransformID(b[toff+5])}
			if numbers[t.Number] {
				// RFC 2408 §3.6: the transforms of a proposal have
				// unique numbers; the answer names one by it.
				return SA{}, 0, badSyntax(toff+4, "transform number "+itoa(int(t.Number))+" used twice in one proposal")
			}
			numbers[t.Number] = true
			firstAttr := len(attrs)
			for aoff := toff + 8; aoff < toff+tlen; {
				a, n := parseAttr(b[aoff : toff+tlen])
				attrs = append(attrs, a)
				aoff += n
			}
			if len(attrs) > firstAttr {
				t.Attrs = attrs[firstAttr:len(attrs):len(attrs)]
			}
			trans = append(trans, t)
			toff += tlen
		}
		if got := len(trans) - first; got != int(b[off+7]) || got == 0 {
			return SA{}, 0, badSyntax(off+7, "proposal announces "+itoa(int(b[off+7]))+" transforms and has "+itoa(got))
		}
		p.Transforms = trans[first:len(trans):len(trans)]
		props = append(props, p)
		off += plen
	}
	x.Proposals = props
	return x, len(b), nil
}

// attrLen returns the length of the attribute at the start of b.
func attrLen(b []byte) (int, error) {
	if len(b) < 4 {
		return 0, malformed(0, "truncated attribute")
	}
	if b[0]&0x80 != 0 {
		return 4, nil
	}
	l := int(binary.BigEndian.Uint16(b[2:]))
	if l > len(b)-4 {
		return 0, malformed(2, "attribute length out of range")
	}
	return 4 + l, nil
}

// parseAttr decodes the attribute at the start of b, whose length
// attrLen has checked.
func parseAttr(b []byte) (Attribute, int) {
	typ := AttrType(binary.BigEndian.Uint16(b) & 0x7fff)
	v := binary.BigEndian.Uint16(b[2:])
	if b[0]&0x80 != 0 {
		return Attribute{Type: typ, TV: true, Value: v}, 4
	}
	return Attribute{Type: typ, Data: sub(b, 4, 4+int(v))}, 4 + int(v)
}

// parseAttrs decodes a list of attributes that fills b (the data of a
// RESPONDER-LIFETIME notification).
func parseAttrs(b []byte) ([]Attribute, error) {
	var out []Attribute
	for off := 0; off < len(b); {
		n, err := attrLen(b[off:])
		if err != nil {
			return nil, shift(err, off)
		}
		a, _ := parseAttr(b[off:])
		out = append(out, a)
		off += n
	}
	return out, nil
}
