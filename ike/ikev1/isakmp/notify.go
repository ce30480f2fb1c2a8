package isakmp

import (
	"encoding/binary"
	"strconv"
)

// NotifyType is the Notify Message Type of a Notification payload (RFC
// 2408 §3.14.1, RFC 2407 §4.6.3, IANA "ISAKMP Notify Message Types").
// Types 1-16383 report errors (8192 and up for private use); 16384 and
// above carry status.
type NotifyType uint16

// Notification types: errors (RFC 2408 §3.14.1), then status types.
const (
	INVALID_PAYLOAD_TYPE      NotifyType = 1
	DOI_NOT_SUPPORTED         NotifyType = 2
	SITUATION_NOT_SUPPORTED   NotifyType = 3
	INVALID_COOKIE            NotifyType = 4
	INVALID_MAJOR_VERSION     NotifyType = 5
	INVALID_MINOR_VERSION     NotifyType = 6
	INVALID_EXCHANGE_TYPE     NotifyType = 7
	INVALID_FLAGS             NotifyType = 8
	INVALID_MESSAGE_ID        NotifyType = 9
	INVALID_PROTOCOL_ID       NotifyType = 10
	INVALID_SPI               NotifyType = 11
	INVALID_TRANSFORM_ID      NotifyType = 12
	ATTRIBUTES_NOT_SUPPORTED  NotifyType = 13
	NO_PROPOSAL_CHOSEN        NotifyType = 14
	BAD_PROPOSAL_SYNTAX       NotifyType = 15
	PAYLOAD_MALFORMED         NotifyType = 16
	INVALID_KEY_INFORMATION   NotifyType = 17
	INVALID_ID_INFORMATION    NotifyType = 18
	INVALID_CERT_ENCODING     NotifyType = 19
	INVALID_CERTIFICATE       NotifyType = 20
	CERT_TYPE_UNSUPPORTED     NotifyType = 21
	INVALID_CERT_AUTHORITY    NotifyType = 22
	INVALID_HASH_INFORMATION  NotifyType = 23
	AUTHENTICATION_FAILED     NotifyType = 24
	INVALID_SIGNATURE         NotifyType = 25
	ADDRESS_NOTIFICATION      NotifyType = 26
	NOTIFY_SA_LIFETIME        NotifyType = 27
	CERTIFICATE_UNAVAILABLE   NotifyType = 28
	UNSUPPORTED_EXCHANGE_TYPE NotifyType = 29
	UNEQUAL_PAYLOAD_LENGTHS   NotifyType = 30
	CONNECTED                 NotifyType = 16384 // RFC 2408 §3.14.1 status
	RESPONDER_LIFETIME        NotifyType = 24576 // RFC 2407 §4.6.3.1
	REPLAY_STATUS             NotifyType = 24577 // RFC 2407 §4.6.3.2
	INITIAL_CONTACT           NotifyType = 24578 // RFC 2407 §4.6.3.3
	R_U_THERE                 NotifyType = 36136 // RFC 3706 §5.1
	R_U_THERE_ACK             NotifyType = 36137 // RFC 3706 §5.1
)

var notifyNames = map[NotifyType]string{
	INVALID_PAYLOAD_TYPE: "INVALID-PAYLOAD-TYPE", DOI_NOT_SUPPORTED: "DOI-NOT-SUPPORTED",
	SITUATION_NOT_SUPPORTED: "SITUATION-NOT-SUPPORTED", INVALID_COOKIE: "INVALID-COOKIE",
	INVALID_MAJOR_VERSION: "INVALID-MAJOR-VERSION", INVALID_MINOR_VERSION: "INVALID-MINOR-VERSION",
	INVALID_EXCHANGE_TYPE: "INVALID-EXCHANGE-TYPE", INVALID_FLAGS: "INVALID-FLAGS",
	INVALID_MESSAGE_ID: "INVALID-MESSAGE-ID", INVALID_PROTOCOL_ID: "INVALID-PROTOCOL-ID",
	INVALID_SPI: "INVALID-SPI", INVALID_TRANSFORM_ID: "INVALID-TRANSFORM-ID",
	ATTRIBUTES_NOT_SUPPORTED: "ATTRIBUTES-NOT-SUPPORTED", NO_PROPOSAL_CHOSEN: "NO-PROPOSAL-CHOSEN",
	BAD_PROPOSAL_SYNTAX: "BAD-PROPOSAL-SYNTAX", PAYLOAD_MALFORMED: "PAYLOAD-MALFORMED",
	INVALID_KEY_INFORMATION: "INVALID-KEY-INFORMATION", INVALID_ID_INFORMATION: "INVALID-ID-INFORMATION",
	INVALID_CERT_ENCODING: "INVALID-CERT-ENCODING", INVALID_CERTIFICATE: "INVALID-CERTIFICATE",
	CERT_TYPE_UNSUPPORTED: "CERT-TYPE-UNSUPPORTED", INVALID_CERT_AUTHORITY: "INVALID-CERT-AUTHORITY",
	INVALID_HASH_INFORMATION: "INVALID-HASH-INFORMATION", AUTHENTICATION_FAILED: "AUTHENTICATION-FAILED",
	INVALID_SIGNATURE: "INVALID-SIGNATURE", ADDRESS_NOTIFICATION: "ADDRESS-NOTIFICATION",
	NOTIFY_SA_LIFETIME: "NOTIFY-SA-LIFETIME", CERTIFICATE_UNAVAILABLE: "CERTIFICATE-UNAVAILABLE",
	UNSUPPORTED_EXCHANGE_TYPE: "UNSUPPORTED-EXCHANGE-TYPE", UNEQUAL_PAYLOAD_LENGTHS: "UNEQUAL-PAYLOAD-LENGTHS",
	CONNECTED: "CONNECTED", RESPONDER_LIFETIME: "RESPONDER-LIFETIME", REPLAY_STATUS: "REPLAY-STATUS",
	INITIAL_CONTACT: "INITIAL-CONTACT", R_U_THERE: "R-U-THERE", R_U_THERE_ACK: "R-U-THERE-ACK",
}

func (t NotifyType) String() string {
	if s, ok := notifyNames[t]; ok {
		return s
	}
	return "NOTIFY(" + strconv.Itoa(int(t)) + ")"
}

// IsError reports whether t is an error type (RFC 2408 §3.14.1: 1-16383,
// 8192-16383 being private-use errors).
func (t NotifyType) IsError() bool { return t != 0 && t < CONNECTED }

// Notify is the Notification payload (RFC 2408 §3.14).
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	! Next Payload  !   RESERVED    !         Payload Length        !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!              Domain of Interpretation  (DOI)                  !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!  Protocol-ID  !   SPI Size    !      Notify Message Type      !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!                                                               !
//	~                Security Parameter Index (SPI)                 ~
//	!                                                               !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!                                                               !
//	~                       Notification Data                       ~
//	!                                                               !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// For the ISAKMP SA the SPI is both cookies, 16 bytes (CKY-I | CKY-R);
// for ESP and AH the 4-byte SPI.
type Notify struct {
	DOI      DOI
	Protocol ProtocolID
	Type     NotifyType
	SPI      []byte
	Data     []byte
}

func (Notify) PayloadType() PayloadType { return PayloadN }
func (x Notify) Len() int               { return 8 + len(x.SPI) + len(x.Data) }
func (x Notify) AppendTo(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(x.DOI))
	b = append(b, byte(x.Protocol), byte(len(x.SPI)))
	b = binary.BigEndian.AppendUint16(b, uint16(x.Type))
	return append(append(b, x.SPI...), x.Data...)
}

// checkDOI accepts the IPsec DOI and, in N and D payloads, the generic
// ISAKMP DOI 0 that some implementations use for phase 1 notifications.
func checkDOI(d DOI, off int) error {
	if d != DOIIPsec && d != DOIISAKMP {
		return &Error{Notify: DOI_NOT_SUPPORTED, Data: binary.BigEndian.AppendUint32(nil, uint32(d)),
			Reason: "DOI " + strconv.FormatUint(uint64(d), 10), Offset: off}
	}
	return nil
}

// ParseNotify decodes an N payload body.
func ParseNotify(b []byte) (Notify, int, error) {
	if len(b) < 8 {
		return Notify{}, 0, malformed(0, "N payload too short")
	}
	x := Notify{DOI: DOI(binary.BigEndian.Uint32(b)), Protocol: ProtocolID(b[4]), Type: NotifyType(binary.BigEndian.Uint16(b[6:]))}
	if err := checkDOI(x.DOI, 0); err != nil {
		return Notify{}, 0, err
	}
	spi := int(b[5])
	if 8+spi > len(b) {
		return Notify{}, 0, malformed(5, "N payload SPI exceeds payload")
	}
	x.SPI = sub(b, 8, 8+spi)
	x.Data = sub(b, 8+spi, len(b))
	return x, len(b), nil
}

// Cookies returns the ISAKMP SA's cookies from an ISAKMP-level SPI (N and
// D payloads of protocol ISAKMP carry CKY-I | CKY-R).
func Cookies(spi []byte) (ckyI, ckyR uint64, ok bool) {
	if len(spi) != 16 {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(spi), binary.BigEndian.Uint64(spi[8:]), true
}

// CookieSPI is the 16-byte SPI that names an ISAKMP SA in N and D
// payloads.
func CookieSPI(ckyI, ckyR uint64) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 16), ckyI)
	return binary.BigEndian.AppendUint64(b, ckyR)
}

// DPD returns an RFC 3706 dead peer detection notification: R-U-THERE,
// or R-U-THERE-ACK when ack is set, for the ISAKMP SA with the given
// cookies, carrying the 32-bit sequence number. It is sent in a protected
// informational exchange with a fresh message ID.
func DPD(ack bool, ckyI, ckyR uint64, seq uint32) Notify {
	t := R_U_THERE
	if ack {
		t = R_U_THERE_ACK
	}
	return Notify{DOI: DOIIPsec, Protocol: ProtoISAKMP, Type: t, SPI: CookieSPI(ckyI, ckyR),
		Data: binary.BigEndian.AppendUint32(nil, seq)}
}

// DPDSequence returns the sequence number of an R-U-THERE or
// R-U-THERE-ACK notification (RFC 3706 §5.1: 4 bytes of data).
func (x Notify) DPDSequence() (uint32, bool) {
	if (x.Type != R_U_THERE && x.Type != R_U_THERE_ACK) || len(x.Data) != 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(x.Data), true
}

// InitialContact returns the INITIAL-CONTACT notification (RFC 2407
// §4.6.3.3) for the ISAKMP SA with the given cookies: the receiver may
// delete every other SA it has with the sender. strongSwan sends it
// encrypted in main mode message 5 (or aggressive mode message 3).
func InitialContact(ckyI, ckyR uint64) Notify {
	return Notify{DOI: DOIIPsec, Protocol: ProtoISAKMP, Type: INITIAL_CONTACT, SPI: CookieSPI(ckyI, ckyR)}
}

// ResponderLifetime returns the RESPONDER-LIFETIME notification (RFC 2407
// §4.6.3.1) a quick mode responder adds when it accepts a proposal with a
// longer lifetime than it allows: protocol and SPI of the SA (the
// responder's inbound SPI for ESP) and, as data, life type and duration
// attributes for each limit that is set.
func ResponderLifetime(proto ProtocolID, spi []byte, life Lifetime) Notify {
	var data []byte
	for _, a := range life.attributes(proto == ProtoISAKMP) {
		data = a.AppendTo(data)
	}
	return Notify{DOI: DOIIPsec, Protocol: proto, Type: RESPONDER_LIFETIME, SPI: spi, Data: data}
}

// ResponderLifetime decodes the lifetime of a RESPONDER-LIFETIME
// notification.
func (x Notify) ResponderLifetime() (Lifetime, error) {
	if x.Type != RESPONDER_LIFETIME {
		return Lifetime{}, malformed(-1, "not a RESPONDER-LIFETIME notification")
	}
	attrs, err := parseAttrs(x.Data)
	if err != nil {
		return Lifetime{}, err
	}
	lt, lifeDur := P2LifeType, P2LifeDuration
	if x.Protocol == ProtoISAKMP {
		lt, lifeDur = P1LifeType, P1LifeDuration
	}
	var life Lifetime
	var pending LifeType
	for _, a := range attrs {
		if err := life.take(a, lt, lifeDur, &pending); err != nil {
			return Lifetime{}, err
		}
	}
	if pending != 0 {
		return Lifetime{}, newErr(BAD_PROPOSAL_SYNTAX, -1, "life type without a life duration")
	}
	return life, nil
}

// Delete is the Delete payload (RFC 2408 §3.15).
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	! Next Payload  !   RESERVED    !         Payload Length        !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!              Domain of Interpretation  (DOI)                  !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!  Protocol-Id  !   SPI Size    !           # of SPIs           !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!                                                               !
//	~               Security Parameter Index(es) (SPI)              ~
//	!                                                               !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The ISAKMP SA is deleted with protocol ISAKMP and one 16-byte SPI (the
// cookies, DeleteISAKMP); ESP SAs with 4-byte SPIs (DeleteESP), which are
// the deleting side's inbound SPIs. Every SPI has SPISize bytes.
type Delete struct {
	DOI      DOI
	Protocol ProtocolID
	SPISize  uint8
	SPIs     [][]byte
}

func (Delete) PayloadType() PayloadType { return PayloadD }
func (x Delete) Len() int               { return 8 + int(x.SPISize)*len(x.SPIs) }

// AppendTo appends the body of x. Every SPI must be SPISize bytes long.
func (x Delete) AppendTo(b []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(x.DOI))
	b = append(b, byte(x.Protocol), x.SPISize)
	b = binary.BigEndian.AppendUint16(b, uint16(len(x.SPIs)))
	for _, s := range x.SPIs {
		b = append(b, s...)
	}
	return b
}

// ParseDelete decodes a D payload body. The SPI count times the SPI size
// must fill the payload exactly, and SPIs need a size.
func ParseDelete(b []byte) (Delete, int, error) {
	if len(b) < 8 {
		return Delete{}, 0, malformed(0, "D payload too short")
	}
	x := Delete{DOI: DOI(binary.BigEndian.Uint32(b)), Protocol: ProtocolID(b[4]), SPISize: b[5]}
	if err := checkDOI(x.DOI, 0); err != nil {
		return Delete{}, 0, err
	}
	n := int(binary.BigEndian.Uint16(b[6:]))
	size := int(x.SPISize)
	if n > 0 && size == 0 {
		return Delete{}, 0, newErr(INVALID_SPI, 5, "D payload with SPIs of size 0")
	}
	if len(b)-8 != n*size {
		return Delete{}, 0, malformed(6, "D payload SPI count disagrees with its length")
	}
	if n > 0 {
		x.SPIs = make([][]byte, n)
		for i := range x.SPIs {
			x.SPIs[i] = sub(b, 8+i*size, 8+(i+1)*size)
		}
	}
	return x, len(b), nil
}

// DeleteISAKMP returns the Delete payload for the ISAKMP SA with the given
// cookies.
func DeleteISAKMP(ckyI, ckyR uint64) Delete {
	return Delete{DOI: DOIIPsec, Protocol: ProtoISAKMP, SPISize: 16, SPIs: [][]byte{CookieSPI(ckyI, ckyR)}}
}

// DeleteESP returns the Delete payload for ESP SAs; spis are the sender's
// inbound SPIs.
func DeleteESP(spis ...uint32) Delete { return DeleteIPsec(ProtoESP, spis...) }

// DeleteIPsec returns the Delete payload for ESP or AH SAs (proto); spis
// are the sender's inbound SPIs.
func DeleteIPsec(proto ProtocolID, spis ...uint32) Delete {
	x := Delete{DOI: DOIIPsec, Protocol: proto, SPISize: 4}
	for _, s := range spis {
		x.SPIs = append(x.SPIs, binary.BigEndian.AppendUint32(nil, s))
	}
	return x
}

// ESPSPIs returns the SPIs of an ESP or AH delete as numbers.
func (x Delete) ESPSPIs() ([]uint32, bool) {
	if (x.Protocol != ProtoESP && x.Protocol != ProtoAH) || x.SPISize != 4 {
		return nil, false
	}
	out := make([]uint32, len(x.SPIs))
	for i, s := range x.SPIs {
		out[i] = binary.BigEndian.Uint32(s)
	}
	return out, true
}
