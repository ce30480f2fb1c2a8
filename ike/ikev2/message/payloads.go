package message

import (
	"encoding/binary"
	"net/netip"

	"github.com/ipsecgw/ipsecgw/transform"
)

// Byte slices in decoded payloads alias the parsed buffer (see RawPayload).

// KE is the Key Exchange payload (RFC 7296 §3.4).
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   Diffie-Hellman Group Num    |           RESERVED            |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                       Key Exchange Data                       ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type KE struct {
	Group transform.ID
	Data  []byte
}

func (KE) PayloadType() PayloadType   { return PayloadKE }
func (x KE) Len() int                 { return 4 + len(x.Data) }
func (x KE) AppendTo(b []byte) []byte { return AppendKE(b, x) }

// AppendKE appends the body of x.
func AppendKE(b []byte, x KE) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(x.Group))
	return append(append(b, 0, 0), x.Data...)
}

// ParseKE decodes a KE payload body.
func ParseKE(b []byte) (KE, int, error) {
	if len(b) < 4 {
		return KE{}, 0, syntaxErr(0, "KE payload too short")
	}
	return KE{Group: transform.ID(binary.BigEndian.Uint16(b)), Data: sub(b, 4, len(b))}, len(b), nil
}

// ID is the Identification payload, IDi or IDr (RFC 7296 §3.5).
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   ID Type     |                 RESERVED                      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                   Identification Data                         ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Responder selects which of IDi (false) and IDr (true) it is. The AUTH
// computation uses the body bytes as received (RawPayload.Body), not a
// re-encoding.
type ID struct {
	Responder bool
	Type      IDType
	Data      []byte
}

func (x ID) PayloadType() PayloadType {
	if x.Responder {
		return PayloadIDr
	}
	return PayloadIDi
}
func (x ID) Len() int                 { return 4 + len(x.Data) }
func (x ID) AppendTo(b []byte) []byte { return AppendID(b, x) }

// AppendID appends the body of x.
func AppendID(b []byte, x ID) []byte { return append(append(b, byte(x.Type), 0, 0, 0), x.Data...) }

// ParseID decodes an IDi/IDr payload body; the caller sets Responder from the
// payload type. Addresses must have their exact length.
func ParseID(b []byte) (ID, int, error) {
	if len(b) < 4 {
		return ID{}, 0, syntaxErr(0, "ID payload too short")
	}
	x := ID{Type: IDType(b[0]), Data: sub(b, 4, len(b))}
	if (x.Type == IDIPv4Addr && len(x.Data) != 4) || (x.Type == IDIPv6Addr && len(x.Data) != 16) {
		return ID{}, 0, syntaxErr(4, "ID address of wrong length")
	}
	return x, len(b), nil
}

// Cert is the Certificate payload (RFC 7296 §3.6).
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Cert Encoding |                                               |
//	+-+-+-+-+-+-+-+-+                                               |
//	~                       Certificate Data                        ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type Cert struct {
	Encoding CertEncoding
	Data     []byte
}

func (Cert) PayloadType() PayloadType   { return PayloadCERT }
func (x Cert) Len() int                 { return 1 + len(x.Data) }
func (x Cert) AppendTo(b []byte) []byte { return AppendCert(b, x) }

// AppendCert appends the body of x.
func AppendCert(b []byte, x Cert) []byte { return append(append(b, byte(x.Encoding)), x.Data...) }

// ParseCert decodes a CERT payload body.
func ParseCert(b []byte) (Cert, int, error) {
	if len(b) < 1 {
		return Cert{}, 0, syntaxErr(0, "CERT payload too short")
	}
	return Cert{Encoding: CertEncoding(b[0]), Data: sub(b, 1, len(b))}, len(b), nil
}

// CertReq is the Certificate Request payload (RFC 7296 §3.7). For X.509
// the data is a concatenation of 20-byte SHA-1 hashes of trusted CAs' public
// keys (CAs returns them).
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Cert Encoding |                                               |
//	+-+-+-+-+-+-+-+-+                                               |
//	~                    Certification Authority                    ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type CertReq struct {
	Encoding CertEncoding
	Data     []byte
}

func (CertReq) PayloadType() PayloadType   { return PayloadCERTREQ }
func (x CertReq) Len() int                 { return 1 + len(x.Data) }
func (x CertReq) AppendTo(b []byte) []byte { return AppendCertReq(b, x) }

// AppendCertReq appends the body of x.
func AppendCertReq(b []byte, x CertReq) []byte {
	return append(append(b, byte(x.Encoding)), x.Data...)
}

// ParseCertReq decodes a CERTREQ payload body.
func ParseCertReq(b []byte) (CertReq, int, error) {
	if len(b) < 1 {
		return CertReq{}, 0, syntaxErr(0, "CERTREQ payload too short")
	}
	return CertReq{Encoding: CertEncoding(b[0]), Data: sub(b, 1, len(b))}, len(b), nil
}

// CAs returns the number of 20-byte CA key hashes in an X.509 CERTREQ and
// reports whether the data is a whole number of them.
func (x CertReq) CAs() (n int, ok bool) { return len(x.Data) / 20, len(x.Data)%20 == 0 }

// Auth is the Authentication payload (RFC 7296 §3.8).
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Auth Method   |                RESERVED                       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                      Authentication Data                      ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type Auth struct {
	Method AuthMethod
	Data   []byte
}

func (Auth) PayloadType() PayloadType   { return PayloadAUTH }
func (x Auth) Len() int                 { return 4 + len(x.Data) }
func (x Auth) AppendTo(b []byte) []byte { return AppendAuth(b, x) }

// AppendAuth appends the body of x.
func AppendAuth(b []byte, x Auth) []byte {
	return append(append(b, byte(x.Method), 0, 0, 0), x.Data...)
}

// ParseAuth decodes an AUTH payload body.
func ParseAuth(b []byte) (Auth, int, error) {
	if len(b) < 4 {
		return Auth{}, 0, syntaxErr(0, "AUTH payload too short")
	}
	return Auth{Method: AuthMethod(b[0]), Data: sub(b, 4, len(b))}, len(b), nil
}

// Nonce is the Nonce payload, Ni or Nr (RFC 7296 §3.9).
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                            Nonce Data                         ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Nonce Data is 16 to 256 bytes (§2.10, §3.9).
type Nonce struct {
	Data []byte
}

// Nonce length limits (RFC 7296 §3.9).
const (
	MinNonceLen = 16
	MaxNonceLen = 256
)

func (Nonce) PayloadType() PayloadType   { return PayloadNonce }
func (x Nonce) Len() int                 { return len(x.Data) }
func (x Nonce) AppendTo(b []byte) []byte { return AppendNonce(b, x) }

// AppendNonce appends the body of x.
func AppendNonce(b []byte, x Nonce) []byte { return append(b, x.Data...) }

// ParseNonce decodes a Nonce payload body, enforcing the 16..256 byte range.
func ParseNonce(b []byte) (Nonce, int, error) {
	if len(b) < MinNonceLen || len(b) > MaxNonceLen {
		return Nonce{}, 0, syntaxErr(0, "nonce length outside 16..256")
	}
	return Nonce{Data: sub(b, 0, len(b))}, len(b), nil
}

// Notify is the Notify payload (RFC 7296 §3.10).
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Protocol ID  |   SPI Size    |      Notify Message Type      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                Security Parameter Index (SPI)                 ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                       Notification Data                       ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type Notify struct {
	Protocol ProtocolID
	Type     NotifyType
	SPI      []byte
	Data     []byte
}

func (Notify) PayloadType() PayloadType   { return PayloadN }
func (x Notify) Len() int                 { return 4 + len(x.SPI) + len(x.Data) }
func (x Notify) AppendTo(b []byte) []byte { return AppendNotify(b, x) }

// AppendNotify appends the body of x.
func AppendNotify(b []byte, x Notify) []byte {
	b = append(b, byte(x.Protocol), byte(len(x.SPI)))
	b = binary.BigEndian.AppendUint16(b, uint16(x.Type))
	return append(append(b, x.SPI...), x.Data...)
}

// ParseNotify decodes a Notify payload body.
func ParseNotify(b []byte) (Notify, int, error) {
	if len(b) < 4 {
		return Notify{}, 0, syntaxErr(0, "Notify payload too short")
	}
	spi := int(b[1])
	if 4+spi > len(b) {
		return Notify{}, 0, syntaxErr(1, "Notify SPI exceeds payload")
	}
	return Notify{
		Protocol: ProtocolID(b[0]),
		Type:     NotifyType(binary.BigEndian.Uint16(b[2:])),
		SPI:      sub(b, 4, 4+spi),
		Data:     sub(b, 4+spi, len(b)),
	}, len(b), nil
}

// Delete is the Delete payload (RFC 7296 §3.11).
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Protocol ID   |   SPI Size    |          Num of SPIs          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~               Security Parameter Index(es) (SPI)              ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// For IKE the SPI size is 0 and there are no SPIs (the IKE SA of the
// message is meant); for ESP and AH SPIs are 4 bytes, held here as numbers.
type Delete struct {
	Protocol ProtocolID
	SPIs     []uint32
}

func (Delete) PayloadType() PayloadType   { return PayloadD }
func (x Delete) Len() int                 { return 4 + 4*len(x.SPIs) }
func (x Delete) AppendTo(b []byte) []byte { return AppendDelete(b, x) }

// AppendDelete appends the body of x. The SPI size is 0 for IKE and 4
// otherwise.
func AppendDelete(b []byte, x Delete) []byte {
	size := byte(4)
	if x.Protocol == ProtoIKE {
		size = 0
	}
	b = append(b, byte(x.Protocol), size)
	b = binary.BigEndian.AppendUint16(b, uint16(len(x.SPIs)))
	for _, s := range x.SPIs {
		b = binary.BigEndian.AppendUint32(b, s)
	}
	return b
}

// ParseDelete decodes a Delete payload body. IKE deletes must have SPI size
// 0 and no SPIs, ESP/AH deletes SPI size 4, and the count must match the
// length exactly.
func ParseDelete(b []byte) (Delete, int, error) {
	if len(b) < 4 {
		return Delete{}, 0, syntaxErr(0, "Delete payload too short")
	}
	x := Delete{Protocol: ProtocolID(b[0])}
	size, n := int(b[1]), int(binary.BigEndian.Uint16(b[2:]))
	switch x.Protocol {
	case ProtoIKE:
		if size != 0 || n != 0 || len(b) != 4 {
			return Delete{}, 0, syntaxErr(1, "IKE Delete with SPIs")
		}
		return x, len(b), nil
	case ProtoAH, ProtoESP:
		if size != 4 {
			return Delete{}, 0, syntaxErr(1, "ESP/AH Delete SPI size is not 4")
		}
	default:
		return Delete{}, 0, syntaxErr(0, "Delete for unknown protocol")
	}
	if len(b) != 4+4*n {
		return Delete{}, 0, syntaxErr(2, "Delete SPI count disagrees with length")
	}
	if n > 0 {
		x.SPIs = make([]uint32, n)
		for i := range x.SPIs {
			x.SPIs[i] = binary.BigEndian.Uint32(b[4+4*i:])
		}
	}
	return x, len(b), nil
}

// VendorID is the Vendor ID payload (RFC 7296 §3.12).
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                        Vendor ID (VID)                        ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type VendorID struct {
	Data []byte
}

func (VendorID) PayloadType() PayloadType   { return PayloadV }
func (x VendorID) Len() int                 { return len(x.Data) }
func (x VendorID) AppendTo(b []byte) []byte { return AppendVendorID(b, x) }

// AppendVendorID appends the body of x.
func AppendVendorID(b []byte, x VendorID) []byte { return append(b, x.Data...) }

// ParseVendorID decodes a Vendor ID payload body (any length, even empty).
func ParseVendorID(b []byte) (VendorID, int, error) {
	return VendorID{Data: sub(b, 0, len(b))}, len(b), nil
}

// TrafficSelectors is the TSi or TSr payload (RFC 7296 §3.13).
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Number of TSs |                 RESERVED                      |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                       <Traffic Selectors>                     ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Responder selects TSr (true) or TSi (false).
type TrafficSelectors struct {
	Responder bool
	TS        []TrafficSelector
}

// TrafficSelector is one traffic selector (RFC 7296 §3.13.1).
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   TS Type     |IP Protocol ID*|       Selector Length         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|           Start Port*         |           End Port*           |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                         Starting Address*                     ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                         Ending Address*                       ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// For TS_IPV4_ADDR_RANGE and TS_IPV6_ADDR_RANGE, Start and End are 4- or
// 16-byte addresses and Protocol 0 means any. Other selector types (e.g.
// TS_SECLABEL, RFC 9478) keep everything after the 4-byte header in Other,
// with Protocol holding the second octet.
type TrafficSelector struct {
	Type               TSType
	Protocol           uint8
	StartPort, EndPort uint16
	Start, End         netip.Addr
	Other              []byte
}

func (x TrafficSelectors) PayloadType() PayloadType {
	if x.Responder {
		return PayloadTSr
	}
	return PayloadTSi
}
func (x TrafficSelectors) Len() int {
	n := 4
	for _, t := range x.TS {
		n += tsLen(t)
	}
	return n
}
func (x TrafficSelectors) AppendTo(b []byte) []byte { return AppendTrafficSelectors(b, x) }

func tsLen(t TrafficSelector) int {
	switch t.Type {
	case TSIPv4AddrRange:
		return 16
	case TSIPv6AddrRange:
		return 40
	}
	return 4 + len(t.Other)
}

// AppendTrafficSelectors appends the body of x. Addresses are written in the
// size the selector type demands (an IPv4 address in an IPv6 selector is
// written 4-in-6 mapped, an IPv6 address in an IPv4 selector as 0.0.0.0).
func AppendTrafficSelectors(b []byte, x TrafficSelectors) []byte {
	b = append(b, byte(len(x.TS)), 0, 0, 0)
	for _, t := range x.TS {
		b = append(b, byte(t.Type), t.Protocol)
		b = binary.BigEndian.AppendUint16(b, uint16(tsLen(t)))
		switch t.Type {
		case TSIPv4AddrRange:
			b = binary.BigEndian.AppendUint16(b, t.StartPort)
			b = binary.BigEndian.AppendUint16(b, t.EndPort)
			s, e := as4(t.Start), as4(t.End)
			b = append(append(b, s[:]...), e[:]...)
		case TSIPv6AddrRange:
			b = binary.BigEndian.AppendUint16(b, t.StartPort)
			b = binary.BigEndian.AppendUint16(b, t.EndPort)
			s, e := t.Start.As16(), t.End.As16()
			b = append(append(b, s[:]...), e[:]...)
		default:
			b = append(b, t.Other...)
		}
	}
	return b
}

// as4 is Addr.As4 without its panic: an address that is not IPv4 (a caller's
// mistake) encodes as 0.0.0.0 rather than crashing the daemon.
func as4(a netip.Addr) [4]byte {
	if a.Is4() || a.Is4In6() {
		return a.As4()
	}
	return [4]byte{}
}

// ParseTrafficSelectors decodes a TSi/TSr body; the caller sets Responder
// from the payload type. The selector count must match the data exactly.
func ParseTrafficSelectors(b []byte) (TrafficSelectors, int, error) {
	if len(b) < 4 {
		return TrafficSelectors{}, 0, syntaxErr(0, "TS payload too short")
	}
	n := int(b[0])
	if n == 0 {
		return TrafficSelectors{}, 0, syntaxErr(0, "TS payload without selectors")
	}
	// Each selector is at least 4 bytes, so n bounds the allocation by the
	// input size.
	if 4+4*n > len(b) {
		return TrafficSelectors{}, 0, syntaxErr(0, "more selectors announced than fit")
	}
	x := TrafficSelectors{TS: make([]TrafficSelector, 0, n)}
	off := 4
	for range n {
		t, used, err := parseTS(b[off:])
		if err != nil {
			return TrafficSelectors{}, 0, shift(err, off)
		}
		x.TS = append(x.TS, t)
		off += used
	}
	if off != len(b) {
		return TrafficSelectors{}, 0, syntaxErr(off, "bytes after the last traffic selector")
	}
	return x, len(b), nil
}

func parseTS(b []byte) (TrafficSelector, int, error) {
	if len(b) < 4 {
		return TrafficSelector{}, 0, syntaxErr(0, "truncated traffic selector")
	}
	t := TrafficSelector{Type: TSType(b[0]), Protocol: b[1]}
	l := int(binary.BigEndian.Uint16(b[2:]))
	if l < 4 || l > len(b) {
		return TrafficSelector{}, 0, syntaxErr(2, "selector length out of range")
	}
	var alen int
	switch t.Type {
	case TSIPv4AddrRange:
		alen = 4
	case TSIPv6AddrRange:
		alen = 16
	default:
		t.Other = sub(b, 4, l)
		return t, l, nil
	}
	if l != 8+2*alen {
		return TrafficSelector{}, 0, syntaxErr(2, "selector length wrong for its type")
	}
	t.StartPort = binary.BigEndian.Uint16(b[4:])
	t.EndPort = binary.BigEndian.Uint16(b[6:])
	t.Start, _ = netip.AddrFromSlice(b[8 : 8+alen])
	t.End, _ = netip.AddrFromSlice(b[8+alen : 8+2*alen])
	return t, l, nil
}

// Configuration is the Configuration payload (RFC 7296 §3.15).
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C| RESERVED    |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|   CFG Type    |                    RESERVED                   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                   Configuration Attributes                    ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type Configuration struct {
	Type  CPType
	Attrs []CPAttribute
}

// CPAttribute is a configuration attribute (RFC 7296 §3.15.1). An empty
// Value in a CFG_REQUEST asks for any value.
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|R|         Attribute Type      |            Length             |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                                                               |
//	~                             Value                             ~
//	|                                                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type CPAttribute struct {
	Type  CPAttrType // 15 bits
	Value []byte
}

func (Configuration) PayloadType() PayloadType { return PayloadCP }
func (x Configuration) Len() int {
	n := 4
	for _, a := range x.Attrs {
		n += 4 + len(a.Value)
	}
	return n
}
func (x Configuration) AppendTo(b []byte) []byte { return AppendConfiguration(b, x) }

// AppendConfiguration appends the body of x.
func AppendConfiguration(b []byte, x Configuration) []byte {
	b = append(b, byte(x.Type), 0, 0, 0)
	for _, a := range x.Attrs {
		b = binary.BigEndian.AppendUint16(b, uint16(a.Type)&0x7fff)
		b = binary.BigEndian.AppendUint16(b, uint16(len(a.Value)))
		b = append(b, a.Value...)
	}
	return b
}

// ParseConfiguration decodes a CP payload body.
func ParseConfiguration(b []byte) (Configuration, int, error) {
	if len(b) < 4 {
		return Configuration{}, 0, syntaxErr(0, "CP payload too short")
	}
	x := Configuration{Type: CPType(b[0])}
	n := 0
	for off := 4; off < len(b); n++ {
		if len(b)-off < 4 {
			return Configuration{}, 0, syntaxErr(off, "truncated configuration attribute")
		}
		l := int(binary.BigEndian.Uint16(b[off+2:]))
		if l > len(b)-off-4 {
			return Configuration{}, 0, syntaxErr(off+2, "configuration attribute length out of range")
		}
		off += 4 + l
	}
	if n > 0 {
		x.Attrs = make([]CPAttribute, 0, n)
	}
	for off := 4; off < len(b); {
		l := int(binary.BigEndian.Uint16(b[off+2:]))
		x.Attrs = append(x.Attrs, CPAttribute{
			Type:  CPAttrType(binary.BigEndian.Uint16(b[off:]) & 0x7fff),
			Value: sub(b, off+4, off+4+l),
		})
		off += 4 + l
	}
	return x, len(b), nil
}

// EAP is the EAP payload (RFC 7296 §3.16); the body is one EAP message
// (RFC 3748), kept opaque here.
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                       EAP Message                             ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type EAP struct {
	Data []byte
}

func (EAP) PayloadType() PayloadType   { return PayloadEAP }
func (x EAP) Len() int                 { return len(x.Data) }
func (x EAP) AppendTo(b []byte) []byte { return AppendEAP(b, x) }

// AppendEAP appends the body of x.
func AppendEAP(b []byte, x EAP) []byte { return append(b, x.Data...) }

// ParseEAP decodes an EAP payload body, checking the EAP header's own
// length (RFC 3748 §4: Code, Identifier, Length).
func ParseEAP(b []byte) (EAP, int, error) {
	if len(b) < 4 || int(binary.BigEndian.Uint16(b[2:])) != len(b) {
		return EAP{}, 0, syntaxErr(0, "EAP message length disagrees with payload")
	}
	return EAP{Data: sub(b, 0, len(b))}, len(b), nil
}
