package isakmp

import (
	"encoding/binary"
	"strconv"
)

// HeaderLen is the length of the ISAKMP header.
const HeaderLen = 28

// Header is the ISAKMP header (RFC 2408 §3.1).
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!                          Initiator                            !
//	!                            Cookie                             !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!                          Responder                            !
//	!                            Cookie                             !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!  Next Payload ! MjVer ! MnVer ! Exchange Type !     Flags     !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!                          Message ID                           !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!                            Length                             !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The cookies are the SPIs of the ISAKMP SA (CKY-I and CKY-R in RFC 2409);
// the responder cookie is zero in the first message of phase 1. Message ID
// is zero in phase 1 and random per exchange after it. Version is 1.0:
// AppendMessage writes it, ParseHeader checks it. NextPayload and Length
// are filled in by AppendMessage; ParseHeader reports what the wire says.
type Header struct {
	CookieI, CookieR uint64
	NextPayload      PayloadType
	Exchange         ExchangeType
	Flags            uint8
	MessageID        uint32
	Length           uint32
}

// Encrypted reports whether the E flag is set: everything after the
// header is ciphertext.
func (h Header) Encrypted() bool { return h.Flags&FlagEncryption != 0 }

// version is MjVer 1, MnVer 0.
const version = 0x10

// ParseHeader decodes the ISAKMP header at the start of b. It checks, in
// the order of RFC 2408 §5.2: that the initiator cookie is not zero
// (INVALID-COOKIE; a responder cookie of zero is legal in the first
// message), the major version 1 (INVALID-MAJOR-VERSION: an IKEv2 message,
// major version 2, fails here and is the caller's to route elsewhere
// first), the minor version 0 (INVALID-MINOR-VERSION), that no reserved
// flag is set (INVALID-FLAGS) and that Length is between HeaderLen and
// len(b) (PAYLOAD-MALFORMED). Bytes after Length are not part of the
// message.
func ParseHeader(b []byte) (Header, int, error) {
	if len(b) < HeaderLen {
		return Header{}, 0, malformed(0, "message shorter than the ISAKMP header")
	}
	h := Header{
		CookieI:     binary.BigEndian.Uint64(b[0:]),
		CookieR:     binary.BigEndian.Uint64(b[8:]),
		NextPayload: PayloadType(b[16]),
		Exchange:    ExchangeType(b[18]),
		Flags:       b[19],
		MessageID:   binary.BigEndian.Uint32(b[20:]),
		Length:      binary.BigEndian.Uint32(b[24:]),
	}
	if h.CookieI == 0 {
		return h, 0, newErr(INVALID_COOKIE, 0, "initiator cookie is zero")
	}
	if major := b[17] >> 4; major != 1 {
		return h, 0, newErr(INVALID_MAJOR_VERSION, 17, "major version "+strconv.Itoa(int(major))+", not 1 (ISAKMP/IKEv1)")
	}
	if minor := b[17] & 0x0f; minor != 0 {
		return h, 0, newErr(INVALID_MINOR_VERSION, 17, "minor version "+strconv.Itoa(int(minor))+", not 0")
	}
	if h.Flags&^flagsKnown != 0 {
		return h, 0, newErr(INVALID_FLAGS, 19, "reserved flag bits set")
	}
	if h.Length < HeaderLen || uint64(h.Length) > uint64(len(b)) {
		return h, 0, malformed(24, "header length field disagrees with the datagram")
	}
	return h, HeaderLen, nil
}

// AppendHeader appends the 28-byte header h to b as given (including
// NextPayload and Length), with version 1.0.
func AppendHeader(b []byte, h Header) []byte {
	b = binary.BigEndian.AppendUint64(b, h.CookieI)
	b = binary.BigEndian.AppendUint64(b, h.CookieR)
	b = append(b, byte(h.NextPayload), version, byte(h.Exchange), h.Flags)
	b = binary.BigEndian.AppendUint32(b, h.MessageID)
	return binary.BigEndian.AppendUint32(b, h.Length)
}
