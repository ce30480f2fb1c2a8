package isakmp

import "encoding/binary"

// GenericHeaderLen is the length of the generic payload header.
const GenericHeaderLen = 4

// Every payload starts with the generic payload header (RFC 2408 §3.2):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	! Next Payload  !   RESERVED    !         Payload Length        !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Payload Length includes the four header bytes. Unlike IKEv2 there is no
// critical bit: a payload type the receiver does not know is skipped.

// Payload is a typed payload body that can be encoded: every payload type
// of this package, and RawPayload, implement it. Len is the body length
// without the generic header, AppendTo appends the body.
type Payload interface {
	PayloadType() PayloadType
	Len() int
	AppendTo(b []byte) []byte
}

// RawPayload is one payload as found on the wire: its type and its body
// (everything after the generic header).
//
// Body aliases the buffer that was parsed: it stays valid only as long as
// the caller keeps that buffer unchanged. Decode typed payloads from it
// with the ParseX functions, which alias it in turn. The HASH and
// signature computations of RFC 2409 use these bodies as received (SAi_b
// is the SA payload's Body, IDii_b the ID payload's), never a re-encoding.
type RawPayload struct {
	Type PayloadType
	Body []byte
}

func (p RawPayload) PayloadType() PayloadType { return p.Type }
func (p RawPayload) Len() int                 { return len(p.Body) }
func (p RawPayload) AppendTo(b []byte) []byte { return append(b, p.Body...) }

// ParsePayloads decodes the payload chain at the start of b whose first
// payload has type first: the payloads after an ISAKMP header, or the
// decrypted body of an encrypted message. It returns the payloads this
// package knows, in wire order, and the length of the chain: the chain
// ends with the payload whose Next Payload is zero, and what follows it
// in b is padding (block cipher padding in decrypted messages, and some
// implementations pad unencrypted messages to four bytes), which the
// caller may ignore. Unknown payload types are skipped; Proposal and
// Transform payloads outside an SA payload are INVALID-PAYLOAD-TYPE.
// Bodies alias b.
func ParsePayloads(first PayloadType, b []byte) ([]RawPayload, int, error) {
	return appendPayloads(nil, first, b, 0)
}

// appendPayloads is ParsePayloads appending to dst; base is the offset of
// b in the message, for error reports.
func appendPayloads(dst []RawPayload, first PayloadType, b []byte, base int) ([]RawPayload, int, error) {
	next := first
	off := 0
	for next != PayloadNone {
		if len(b)-off < GenericHeaderLen {
			return dst, 0, malformed(base+off, "truncated generic payload header")
		}
		typ := next
		next = PayloadType(b[off])
		plen := int(binary.BigEndian.Uint16(b[off+2:]))
		if plen < GenericHeaderLen || plen > len(b)-off {
			return dst, 0, malformed(base+off+2, "payload length out of range")
		}
		if typ == PayloadProposal || typ == PayloadTransform {
			return dst, 0, &Error{Notify: INVALID_PAYLOAD_TYPE, Data: []byte{byte(typ)},
				Reason: typ.String() + " payload outside an SA payload", Offset: base + off}
		}
		if typ.known() {
			body := b[off+GenericHeaderLen : off+plen : off+plen]
			dst = append(dst, RawPayload{Type: typ, Body: body})
		}
		off += plen
	}
	return dst, off, nil
}

// AppendPayloads appends payloads with generic headers, each header naming
// the type of the following payload and the last one NONE. The result is
// exactly the bytes the payloads occupy in a message, so it is also what
// the quick mode and informational HASH payloads cover (RFC 2409 §5.5,
// §5.7) when the payloads follow the HASH payload.
//
// Each payload body must be shorter than 65532 bytes (the 16-bit Payload
// Length); no IKEv1 payload comes near that (the largest are MODP-8192 KE
// payloads of 1024 bytes), so this is the caller's contract.
func AppendPayloads(b []byte, payloads ...Payload) []byte {
	for i, p := range payloads {
		next := PayloadNone
		if i+1 < len(payloads) {
			next = payloads[i+1].PayloadType()
		}
		start := len(b)
		b = append(b, byte(next), 0, 0, 0)
		b = p.AppendTo(b)
		binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
	}
	return b
}

// PayloadsLen is the encoded length of AppendPayloads(nil, payloads...).
func PayloadsLen(payloads ...Payload) int {
	n := 0
	for _, p := range payloads {
		n += GenericHeaderLen + p.Len()
	}
	return n
}

func firstType(payloads []Payload) PayloadType {
	if len(payloads) == 0 {
		return PayloadNone
	}
	return payloads[0].PayloadType()
}

// sub returns b[i:j] with its capacity capped, so that appending to it
// never overwrites the rest of the buffer, and nil when it is empty, so
// that decoded values compare equal to freshly built ones.
func sub(b []byte, i, j int) []byte {
	if i == j {
		return nil
	}
	return b[i:j:j]
}
