package message

import "encoding/binary"

// GenericHeaderLen is the length of the generic payload header.
const GenericHeaderLen = 4

// Every payload starts with the generic payload header (RFC 7296 §3.2):
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Payload Length includes the four header bytes. C is the critical bit: a
// receiver that does not understand a payload type with C set rejects the
// whole message with UNSUPPORTED_CRITICAL_PAYLOAD; without C it skips it.

// Payload is a typed payload body that can be encoded: every payload type of
// this package, and RawPayload, implement it. Len is the body length without
// the generic header, AppendTo appends the body.
type Payload interface {
	PayloadType() PayloadType
	Len() int
	AppendTo(b []byte) []byte
}

// RawPayload is one payload as found on the wire: its type, its critical bit
// and its body (everything after the generic header).
//
// Body aliases the buffer that was parsed: it stays valid only as long as the
// caller keeps that buffer unchanged. Decode typed payloads from it with the
// ParseX functions, which alias it in turn. Copy what must outlive the
// buffer.
type RawPayload struct {
	Type     PayloadType
	Critical bool
	Body     []byte
}

func (p RawPayload) PayloadType() PayloadType { return p.Type }
func (p RawPayload) Len() int                 { return len(p.Body) }
func (p RawPayload) AppendTo(b []byte) []byte { return append(b, p.Body...) }

// parseChain walks a chain of payloads in b starting with type first, as
// found after an IKE header (outer payloads) or in a decrypted SK payload
// (inner payloads), appending to dst. base is the offset of b within the
// message, for error reports. It stops after a payload whose Next Payload is
// zero (then the payload must end exactly at len(b)) or at an SK/SKF payload,
// which RFC 7296 §3.14 requires to be last: its Payload Length must reach the
// end of b, and its Next Payload (the type of the first encrypted payload) is
// returned as innerNext. allowSK is false inside an SK payload.
//
// Unknown payload types are skipped (not appended) unless critical.
func parseChain(dst []RawPayload, b []byte, first PayloadType, base int, allowSK bool) (_ []RawPayload, innerNext PayloadType, err error) {
	next := first
	off := 0
	for next != PayloadNone {
		if len(b)-off < GenericHeaderLen {
			return dst, 0, syntaxErr(base+off, "truncated generic payload header")
		}
		typ := next
		next = PayloadType(b[off])
		crit := b[off+1]&0x80 != 0
		plen := int(binary.BigEndian.Uint16(b[off+2:]))
		if plen < GenericHeaderLen || plen > len(b)-off {
			return dst, 0, syntaxErr(base+off+2, "payload length out of range")
		}
		body := b[off+GenericHeaderLen : off+plen : off+plen]
		if typ == PayloadSK || typ == PayloadSKF {
			if !allowSK {
				return dst, 0, syntaxErr(base+off, "encrypted payload inside an encrypted payload")
			}
			if off+plen != len(b) {
				return dst, 0, syntaxErr(base+off, "encrypted payload is not the last payload")
			}
			dst = append(dst, RawPayload{Type: typ, Critical: crit, Body: body})
			return dst, next, nil
		}
		if !typ.known() {
			if crit {
				return dst, 0, &Error{Notify: UNSUPPORTED_CRITICAL_PAYLOAD, Data: []byte{byte(typ)},
					Reason: "unknown critical payload " + typ.String(), Offset: base + off}
			}
		} else {
			dst = append(dst, RawPayload{Type: typ, Critical: crit, Body: body})
		}
		off += plen
	}
	if off != len(b) {
		return dst, 0, syntaxErr(base+off, "bytes after the last payload")
	}
	return dst, PayloadNone, nil
}

// appendGeneric appends a generic payload header with a zero length and
// returns the offset of the header so that the length can be patched.
func appendGeneric(b []byte, next PayloadType, critical bool) ([]byte, int) {
	var c byte
	if critical {
		c = 0x80
	}
	return append(b, byte(next), c, 0, 0), len(b)
}

// patchLen writes the length of the structure starting at start (through the
// end of b) into the 16-bit field at start+2.
func patchLen(b []byte, start int) {
	binary.BigEndian.PutUint16(b[start+2:], uint16(len(b)-start))
}

// appendChain appends payloads with generic headers, each header naming the
// type of the following payload and the last one last.
func appendChain(b []byte, payloads []Payload, last PayloadType) []byte {
	for i, p := range payloads {
		next := last
		if i+1 < len(payloads) {
			next = payloads[i+1].PayloadType()
		}
		var start int
		b, start = appendGeneric(b, next, isCritical(p))
		b = p.AppendTo(b)
		patchLen(b, start)
	}
	return b
}

func isCritical(p Payload) bool {
	switch r := p.(type) {
	case RawPayload:
		return r.Critical
	case *RawPayload:
		return r.Critical
	}
	return false
}

func firstType(payloads []Payload, ifNone PayloadType) PayloadType {
	if len(payloads) == 0 {
		return ifNone
	}
	return payloads[0].PayloadType()
}
