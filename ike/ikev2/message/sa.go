package message

import (
	"encoding/binary"

	"github.com/ipsecgw/ipsecgw/transform"
)

// SA is the Security Association payload (RFC 7296 §3.3): one or more
// proposals.
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                          <Proposals>                          ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type SA struct {
	Proposals []Proposal
}

// Proposal is a proposal substructure (RFC 7296 §3.3.1).
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Last Substruc |   RESERVED    |         Proposal Length       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Proposal Num  |  Protocol ID  |    SPI Size   |Num  Transforms|
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                        SPI (variable)                         ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                        <Transforms>                           ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Last Substruc is 0 for the last proposal and 2 otherwise. The SPI is empty
// in the first IKE_SA_INIT, 8 bytes when rekeying an IKE SA, 4 for ESP/AH; it
// aliases the parsed buffer.
type Proposal struct {
	Number     uint8
	Protocol   ProtocolID
	SPI        []byte
	Transforms []Transform
}

// Transform is a transform substructure (RFC 7296 §3.3.2).
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Last Substruc |   RESERVED    |        Transform Length       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Transform Type |   RESERVED    |          Transform ID         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                      Transform Attributes                     ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Last Substruc is 0 for the last transform and 3 otherwise. The embedded
// transform.Transform carries the Key Length attribute (§3.3.5) as KeyLen,
// zero when absent; it is encoded first. Attrs holds any other attributes in
// wire order (none are defined for IKEv2: a transform carrying one is
// unacceptable, RFC 7296 §3.3.6, but it is still decoded).
type Transform struct {
	transform.Transform
	Attrs []Attribute
}

// Attribute is a data attribute (RFC 7296 §3.3.5).
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|A|       Attribute Type        |    AF=0  Attribute Length     |
//	|F|                             |    AF=1  Attribute Value      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                   AF=0  Attribute Value                       |
//	|                   AF=1  Not Transmitted                       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// TV (AF=1) attributes carry Value; TLV (AF=0) ones carry Data.
type Attribute struct {
	Type  uint16 // 15 bits
	TV    bool
	Value uint16
	Data  []byte
}

const (
	lastProposal  = 0
	moreProposal  = 2
	lastTransform = 0
	moreTransform = 3
)

func (SA) PayloadType() PayloadType   { return PayloadSA }
func (x SA) Len() int                 { return SALen(x) }
func (x SA) AppendTo(b []byte) []byte { return AppendSA(b, x) }

// SALen is the body length of the SA payload x.
func SALen(x SA) int {
	n := 0
	for _, p := range x.Proposals {
		n += 8 + len(p.SPI)
		for _, t := range p.Transforms {
			n += transformLen(t)
		}
	}
	return n
}

func transformLen(t Transform) int {
	n := 8
	if t.KeyLen != 0 {
		n += 4
	}
	for _, a := range t.Attrs {
		n += 4
		if !a.TV {
			n += len(a.Data)
		}
	}
	return n
}

// AppendSA appends the body of the SA payload x.
func AppendSA(b []byte, x SA) []byte {
	for i, p := range x.Proposals {
		last := byte(moreProposal)
		if i == len(x.Proposals)-1 {
			last = lastProposal
		}
		start := len(b)
		b = append(b, last, 0, 0, 0, p.Number, byte(p.Protocol), byte(len(p.SPI)), byte(len(p.Transforms)))
		b = append(b, p.SPI...)
		for j, t := range p.Transforms {
			tl := byte(moreTransform)
			if j == len(p.Transforms)-1 {
				tl = lastTransform
			}
			ts := len(b)
			b = append(b, tl, 0, 0, 0, byte(t.Type), 0)
			b = binary.BigEndian.AppendUint16(b, uint16(t.ID))
			if t.KeyLen != 0 {
				b = appendAttr(b, Attribute{Type: transform.AttrKeyLength, TV: true, Value: t.KeyLen})
			}
			for _, a := range t.Attrs {
				b = appendAttr(b, a)
			}
			patchLen(b, ts)
		}
		patchLen(b, start)
	}
	return b
}

func appendAttr(b []byte, a Attribute) []byte {
	if a.TV {
		b = binary.BigEndian.AppendUint16(b, a.Type|0x8000)
		return binary.BigEndian.AppendUint16(b, a.Value)
	}
	b = binary.BigEndian.AppendUint16(b, a.Type&0x7fff)
	b = binary.BigEndian.AppendUint16(b, uint16(len(a.Data)))
	return append(b, a.Data...)
}

// ParseSA decodes an SA payload body. SPIs and TLV attribute data alias b. It
// checks every length against its container, the Last Substruc values,
// proposal numbering (first 1, then each equal to or one more than the
// previous, §3.3.1), SPI sizes (0, 4 or 8) and the transform counts.
func ParseSA(b []byte) (SA, int, error) {
	// Count first so that all proposals and all transforms share one
	// allocation each.
	np, nt := 0, 0
	for off := 0; off < len(b); {
		if len(b)-off < 8 {
			return SA{}, 0, syntaxErr(off, "truncated proposal")
		}
		plen := int(binary.BigEndian.Uint16(b[off+2:]))
		if plen < 8 || plen > len(b)-off {
			return SA{}, 0, syntaxErr(off+2, "proposal length out of range")
		}
		np++
		nt += int(b[off+7])
		off += plen
	}
	if np == 0 {
		return SA{}, 0, syntaxErr(0, "SA payload without proposals")
	}
	props := make([]Proposal, 0, np)
	trans := make([]Transform, 0, nt)
	for off := 0; off < len(b); {
		plen := int(binary.BigEndian.Uint16(b[off+2:]))
		pb := b[off : off+plen]
		last := pb[0]
		isLast := off+plen == len(b)
		if (isLast && last != lastProposal) || (!isLast && last != moreProposal) {
			return SA{}, 0, syntaxErr(off, "bad Last Substruc in proposal")
		}
		p := Proposal{Number: pb[4], Protocol: ProtocolID(pb[5])}
		// RFC 7296 §3.3.1: an offer numbers its proposals from 1; an answer
		// holds one proposal with the number of the one it accepted, which
		// is not 1 when the peer picked a later one of ours.
		if len(props) == 0 && p.Number != 1 && np > 1 {
			return SA{}, 0, syntaxErr(off+4, "first proposal number is not 1")
		}
		if len(props) > 0 {
			prev := props[len(props)-1].Number
			if p.Number != prev && p.Number != prev+1 {
				return SA{}, 0, syntaxErr(off+4, "proposal numbers not consecutive")
			}
		}
		spiSize := int(pb[6])
		if spiSize != 0 && spiSize != 4 && spiSize != 8 {
			return SA{}, 0, syntaxErr(off+6, "bad SPI size")
		}
		if 8+spiSize > plen {
			return SA{}, 0, syntaxErr(off+6, "SPI exceeds proposal")
		}
		if spiSize > 0 {
			p.SPI = sub(pb, 8, 8+spiSize)
		}
		count := int(pb[7])
		first := len(trans)
		toff := 8 + spiSize
		for toff < plen {
			t, n, err := parseTransform(pb[toff:])
			if err != nil {
				return SA{}, 0, shift(err, off+toff)
			}
			isLastT := toff+n == plen
			if (isLastT && pb[toff] != lastTransform) || (!isLastT && pb[toff] != moreTransform) {
				return SA{}, 0, syntaxErr(off+toff, "bad Last Substruc in transform")
			}
			if len(trans) == cap(trans) {
				return SA{}, 0, syntaxErr(off+toff, "more transforms than announced")
			}
			trans = append(trans, t)
			toff += n
		}
		if len(trans)-first != count {
			return SA{}, 0, syntaxErr(off+7, "transform count disagrees with proposal")
		}
		if len(trans) > first {
			p.Transforms = trans[first:len(trans):len(trans)]
		}
		props = append(props, p)
		off += plen
	}
	return SA{Proposals: props}, len(b), nil
}

func parseTransform(b []byte) (Transform, int, error) {
	if len(b) < 8 {
		return Transform{}, 0, syntaxErr(0, "truncated transform")
	}
	tlen := int(binary.BigEndian.Uint16(b[2:]))
	if tlen < 8 || tlen > len(b) {
		return Transform{}, 0, syntaxErr(2, "transform length out of range")
	}
	t := Transform{Transform: transform.Transform{Type: transform.Type(b[4]), ID: transform.ID(binary.BigEndian.Uint16(b[6:]))}}
	for off := 8; off < tlen; {
		a, n, err := parseAttr(b[off:tlen])
		if err != nil {
			return Transform{}, 0, shift(err, off)
		}
		if a.TV && a.Type == transform.AttrKeyLength && t.KeyLen == 0 && a.Value != 0 {
			t.KeyLen = a.Value
		} else {
			t.Attrs = append(t.Attrs, a)
		}
		off += n
	}
	return t, tlen, nil
}

func parseAttr(b []byte) (Attribute, int, error) {
	if len(b) < 4 {
		return Attribute{}, 0, syntaxErr(0, "truncated attribute")
	}
	typ := binary.BigEndian.Uint16(b)
	v := binary.BigEndian.Uint16(b[2:])
	if typ&0x8000 != 0 {
		return Attribute{Type: typ & 0x7fff, TV: true, Value: v}, 4, nil
	}
	if int(v) > len(b)-4 {
		return Attribute{}, 0, syntaxErr(2, "attribute length out of range")
	}
	return Attribute{Type: typ, Data: sub(b, 4, 4+int(v))}, 4 + int(v), nil
}

// shift adds off to the offset of a syntax error from a nested parser.
func shift(err error, off int) error {
	if e, ok := err.(*Error); ok && e.Offset >= 0 {
		c := *e
		c.Offset += off
		return &c
	}
	return err
}

// sub returns b[i:j] with its capacity capped, so that appending to it never
// overwrites the rest of the buffer, and nil when it is empty, so that
// decoded values compare equal to freshly built ones.
func sub(b []byte, i, j int) []byte {
	if i == j {
		return nil
	}
	return b[i:j:j]
}
