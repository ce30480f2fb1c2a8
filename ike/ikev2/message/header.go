package message

import "encoding/binary"

// HeaderLen is the length of the IKE header.
const HeaderLen = 28

// Header is the IKE header (RFC 7296 §3.1).
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       IKE SA Initiator's SPI                  |
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       IKE SA Responder's SPI                  |
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Next Payload | MjVer | MnVer | Exchange Type |     Flags     |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                          Message ID                           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                            Length                             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// NextPayload and Length are filled in by AppendMessage from the payloads
// that follow; ParseHeader reports what the wire says.
type Header struct {
	SPIi, SPIr   uint64
	NextPayload  PayloadType
	MajorVersion uint8 // 2 for IKEv2
	MinorVersion uint8 // 0; RFC 7296 §2.5: ignore on receipt
	Exchange     ExchangeType
	Flags        uint8
	MessageID    uint32
	Length       uint32
}

// IsResponse reports whether the R flag is set.
func (h Header) IsResponse() bool { return h.Flags&FlagResponse != 0 }

// IsInitiator reports whether the I flag is set (sender is the original
// initiator of the IKE SA).
func (h Header) IsInitiator() bool { return h.Flags&FlagInitiator != 0 }

// ParseHeader decodes the IKE header at the start of b. It checks that b holds
// at least HeaderLen bytes, that the major version is 2 (a higher one gives
// INVALID_MAJOR_VERSION with data 0x20, RFC 7296 §2.5; a lower one, i.e.
// IKEv1, INVALID_MAJOR_VERSION too, so the caller can route it elsewhere
// first) and that Length is between HeaderLen and len(b).
func ParseHeader(b []byte) (Header, int, error) {
	if len(b) < HeaderLen {
		return Header{}, 0, syntaxErr(0, "message shorter than the IKE header")
	}
	h := Header{
		SPIi:         binary.BigEndian.Uint64(b[0:]),
		SPIr:         binary.BigEndian.Uint64(b[8:]),
		NextPayload:  PayloadType(b[16]),
		MajorVersion: b[17] >> 4,
		MinorVersion: b[17] & 0x0f,
		Exchange:     ExchangeType(b[18]),
		Flags:        b[19],
		MessageID:    binary.BigEndian.Uint32(b[20:]),
		Length:       binary.BigEndian.Uint32(b[24:]),
	}
	if h.MajorVersion != 2 {
		return h, 0, &Error{Notify: INVALID_MAJOR_VERSION, Data: []byte{0x20}, Reason: "major version is not 2", Offset: 17}
	}
	if h.Length < HeaderLen || uint64(h.Length) > uint64(len(b)) {
		return h, 0, syntaxErr(24, "header length field disagrees with the datagram")
	}
	return h, HeaderLen, nil
}

// AppendHeader appends the 28-byte header h to b as given (including
// NextPayload and Length).
func AppendHeader(b []byte, h Header) []byte {
	b = binary.BigEndian.AppendUint64(b, h.SPIi)
	b = binary.BigEndian.AppendUint64(b, h.SPIr)
	b = append(b, byte(h.NextPayload), h.MajorVersion<<4|h.MinorVersion&0x0f, byte(h.Exchange), h.Flags)
	b = binary.BigEndian.AppendUint32(b, h.MessageID)
	return binary.BigEndian.AppendUint32(b, h.Length)
}
