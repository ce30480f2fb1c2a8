package isakmp

import (
	"encoding/binary"
	"net/netip"
)

// Byte slices in decoded payloads alias the parsed buffer (see RawPayload).
// Every diagram below shows the whole payload; the Go types hold the body,
// the part after the generic header.

// KE is the Key Exchange payload (RFC 2408 §3.7): the sender's public
// Diffie-Hellman value, encoded as the group requires (transform.KeyExchange
// gives and takes that encoding). Unlike IKEv2 it does not name its group:
// that was negotiated in the SA payload.
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	! Next Payload  !   RESERVED    !         Payload Length        !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!                                                               !
//	~                       Key Exchange Data                       ~
//	!                                                               !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type KE struct {
	Data []byte
}

func (KE) PayloadType() PayloadType   { return PayloadKE }
func (x KE) Len() int                 { return len(x.Data) }
func (x KE) AppendTo(b []byte) []byte { return append(b, x.Data...) }

// ParseKE decodes a KE payload body; it must not be empty.
func ParseKE(b []byte) (KE, int, error) {
	if len(b) == 0 {
		return KE{}, 0, malformed(0, "empty KE payload")
	}
	return KE{Data: sub(b, 0, len(b))}, len(b), nil
}

// ID is the Identification payload in the IPsec DOI's form (RFC 2407
// §4.6.2). In phase 1 it names a peer (Protocol ID and Port zero, or
// UDP/500); in quick mode the optional IDci/IDcr pair carries the traffic
// selectors (client identities, RFC 2409 §5.5).
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!  Next Payload !   RESERVED    !        Payload Length         !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!   ID Type     !  Protocol ID  !             Port              !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                     Identification Data                       ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Data is the raw identification data: an address (4 or 16 bytes), an
// address and a mask (subnets) or two addresses (ranges), a name, a key
// ID, or a DER-encoded distinguished name (kept opaque). The HASH_I/HASH_R
// computation covers the body as received (RFC 2409 §5: IDii_b), so
// handlers pass RawPayload.Body, not a re-encoding.
type ID struct {
	Type     IDType
	Protocol uint8
	Port     uint16
	Data     []byte
}

func (ID) PayloadType() PayloadType { return PayloadID }
func (x ID) Len() int               { return 4 + len(x.Data) }
func (x ID) AppendTo(b []byte) []byte {
	b = append(b, byte(x.Type), x.Protocol)
	b = binary.BigEndian.AppendUint16(b, x.Port)
	return append(b, x.Data...)
}

// idDataLen is the exact data length of the address ID types.
var idDataLen = map[IDType]int{
	IDIPv4Addr: 4, IDIPv4AddrSubnet: 8, IDIPv4AddrRange: 8,
	IDIPv6Addr: 16, IDIPv6AddrSubnet: 32, IDIPv6AddrRange: 32,
}

// ParseID decodes an ID payload body. Address types must have their exact
// length (INVALID-ID-INFORMATION otherwise); other types are taken as
// they are.
func ParseID(b []byte) (ID, int, error) {
	if len(b) < 4 {
		return ID{}, 0, malformed(0, "ID payload too short")
	}
	x := ID{Type: IDType(b[0]), Protocol: b[1], Port: binary.BigEndian.Uint16(b[2:]), Data: sub(b, 4, len(b))}
	if n, ok := idDataLen[x.Type]; ok && len(x.Data) != n {
		return ID{}, 0, newErr(INVALID_ID_INFORMATION, 4, x.Type.String()+" data of "+itoa(len(x.Data))+" bytes, want "+itoa(n))
	}
	return x, len(b), nil
}

// Cert is the Certificate payload (RFC 2408 §3.9). Certificates are not
// used with PSK authentication; the payload is decoded so that handlers
// can report what a peer sent.
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	! Next Payload  !   RESERVED    !         Payload Length        !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	! Cert Encoding !                                               !
//	+-+-+-+-+-+-+-+-+                                               !
//	~                       Certificate Data                        ~
//	!                                                               !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type Cert struct {
	Encoding uint8 // 4 = X.509 signature certificate
	Data     []byte
}

func (Cert) PayloadType() PayloadType   { return PayloadCERT }
func (x Cert) Len() int                 { return 1 + len(x.Data) }
func (x Cert) AppendTo(b []byte) []byte { return append(append(b, x.Encoding), x.Data...) }

// ParseCert decodes a CERT payload body.
func ParseCert(b []byte) (Cert, int, error) {
	if len(b) < 1 {
		return Cert{}, 0, malformed(0, "CERT payload too short")
	}
	return Cert{Encoding: b[0], Data: sub(b, 1, len(b))}, len(b), nil
}

// CertReq is the Certificate Request payload (RFC 2408 §3.10).
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	! Next Payload  !   RESERVED    !         Payload Length        !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!  Cert. Type   !                                               !
//	+-+-+-+-+-+-+-+-+                                               !
//	~                    Certificate Authority                      ~
//	!                                                               !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type CertReq struct {
	Type      uint8
	Authority []byte
}

func (CertReq) PayloadType() PayloadType   { return PayloadCR }
func (x CertReq) Len() int                 { return 1 + len(x.Authority) }
func (x CertReq) AppendTo(b []byte) []byte { return append(append(b, x.Type), x.Authority...) }

// ParseCertReq decodes a CR payload body.
func ParseCertReq(b []byte) (CertReq, int, error) {
	if len(b) < 1 {
		return CertReq{}, 0, malformed(0, "CR payload too short")
	}
	return CertReq{Type: b[0], Authority: sub(b, 1, len(b))}, len(b), nil
}

// Hash is the Hash payload (RFC 2408 §3.11): HASH_I/HASH_R in phase 1 with
// pre-shared keys, HASH(1)/(2)/(3) in quick mode and the HASH of protected
// informational messages (RFC 2409 §5).
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	! Next Payload  !   RESERVED    !         Payload Length        !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!                                                               !
//	~                           Hash Data                           ~
//	!                                                               !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type Hash struct {
	Data []byte
}

func (Hash) PayloadType() PayloadType   { return PayloadHash }
func (x Hash) Len() int                 { return len(x.Data) }
func (x Hash) AppendTo(b []byte) []byte { return append(b, x.Data...) }

// ParseHash decodes a HASH payload body; it must not be empty (its length
// is checked against the PRF by whoever verifies it).
func ParseHash(b []byte) (Hash, int, error) {
	if len(b) == 0 {
		return Hash{}, 0, malformed(0, "empty HASH payload")
	}
	return Hash{Data: sub(b, 0, len(b))}, len(b), nil
}

// Signature is the Signature payload (RFC 2408 §3.12), used by signature
// authentication only; decoded so handlers can report it.
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	! Next Payload  !   RESERVED    !         Payload Length        !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!                                                               !
//	~                         Signature Data                        ~
//	!                                                               !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type Signature struct {
	Data []byte
}

func (Signature) PayloadType() PayloadType   { return PayloadSIG }
func (x Signature) Len() int                 { return len(x.Data) }
func (x Signature) AppendTo(b []byte) []byte { return append(b, x.Data...) }

// ParseSignature decodes a SIG payload body.
func ParseSignature(b []byte) (Signature, int, error) {
	return Signature{Data: sub(b, 0, len(b))}, len(b), nil
}

// Nonce is the Nonce payload (RFC 2408 §3.13). RFC 2409 §5 bounds its
// data to 8..256 bytes; the HASH and key computations use the body as
// received (Ni_b, Nr_b).
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	! Next Payload  !   RESERVED    !         Payload Length        !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!                                                               !
//	~                            Nonce Data                         ~
//	!                                                               !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type Nonce struct {
	Data []byte
}

// Nonce length limits (RFC 2409 §5).
const (
	MinNonceLen = 8
	MaxNonceLen = 256
)

func (Nonce) PayloadType() PayloadType   { return PayloadNonce }
func (x Nonce) Len() int                 { return len(x.Data) }
func (x Nonce) AppendTo(b []byte) []byte { return append(b, x.Data...) }

// ParseNonce decodes a NONCE payload body, enforcing 8..256 bytes.
func ParseNonce(b []byte) (Nonce, int, error) {
	if len(b) < MinNonceLen || len(b) > MaxNonceLen {
		return Nonce{}, 0, malformed(0, "nonce of "+itoa(len(b))+" bytes, outside 8..256")
	}
	return Nonce{Data: sub(b, 0, len(b))}, len(b), nil
}

// VendorID is the Vendor ID payload (RFC 2408 §3.16); vendor.go names the
// ones that change behaviour.
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	! Next Payload  !   RESERVED    !         Payload Length        !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!                                                               !
//	~                        Vendor ID (VID)                        ~
//	!                                                               !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
type VendorID struct {
	Data []byte
}

func (VendorID) PayloadType() PayloadType   { return PayloadVID }
func (x VendorID) Len() int                 { return len(x.Data) }
func (x VendorID) AppendTo(b []byte) []byte { return append(b, x.Data...) }

// ParseVendorID decodes a VID payload body (any length).
func ParseVendorID(b []byte) (VendorID, int, error) {
	return VendorID{Data: sub(b, 0, len(b))}, len(b), nil
}

// NATD is the NAT Discovery payload (RFC 3947 §3.2): the hash of the
// cookies and one address and port, computed with the negotiated hash
// (keymat.NATDHash). Main mode carries two or more in messages 3 and 4:
// first the hash of the receiver's address (as the sender sees it), then
// the sender's own.
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	! Next Payload  !   RESERVED    !         Payload Length        !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                 HASH of the address and port                  ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Draft selects the payload type: 20 (RFC 3947) or 130, which peers that
// speak only draft-ietf-ipsec-nat-t-ike-02/03 use for the same payload.
// ParseNATD decodes both; the caller sets Draft from the RawPayload's
// type, and chooses it for sending with NATTVersion.NATDType.
type NATD struct {
	Draft bool
	Hash  []byte
}

func (x NATD) PayloadType() PayloadType {
	if x.Draft {
		return PayloadNATDDraft
	}
	return PayloadNATD
}
func (x NATD) Len() int                 { return len(x.Hash) }
func (x NATD) AppendTo(b []byte) []byte { return append(b, x.Hash...) }

// ParseNATD decodes a NAT-D payload body of either type; the hash must
// not be empty.
func ParseNATD(b []byte) (NATD, int, error) {
	if len(b) == 0 {
		return NATD{}, 0, malformed(0, "empty NAT-D payload")
	}
	return NATD{Hash: sub(b, 0, len(b))}, len(b), nil
}

// NATOA is the NAT Original Address payload (RFC 3947 §5.2): in quick
// mode of a transport mode SA, the original (pre-NAT) address of the
// sender (NAT-OAi) or of the responder as the initiator saw it
// (NAT-OAr), so that the receiver can fix TCP/UDP checksums.
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	! Next Payload  !   RESERVED    !         Payload Length        !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!   ID Type     !   RESERVED    !            RESERVED           !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	!           IPv4 (4 octets) or IPv6 address (16 octets)         !
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// The ID Type is ID_IPV4_ADDR or ID_IPV6_ADDR, implied by Addr (give an
// IPv4 address unmapped: an IPv4-mapped IPv6 address is sent as IPv6).
// Draft selects type 131 instead of 21, as for NATD.
type NATOA struct {
	Draft bool
	Addr  netip.Addr
}

func (x NATOA) PayloadType() PayloadType {
	if x.Draft {
		return PayloadNATOADraft
	}
	return PayloadNATOA
}
func (x NATOA) Len() int { return 4 + len(x.Addr.AsSlice()) }
func (x NATOA) AppendTo(b []byte) []byte {
	t := IDIPv6Addr
	if x.Addr.Is4() {
		t = IDIPv4Addr
	}
	return append(append(b, byte(t), 0, 0, 0), x.Addr.AsSlice()...)
}

// ParseNATOA decodes a NAT-OA payload body of either type.
func ParseNATOA(b []byte) (NATOA, int, error) {
	if len(b) < 4 {
		return NATOA{}, 0, malformed(0, "NAT-OA payload too short")
	}
	want := 0
	switch IDType(b[0]) {
	case IDIPv4Addr:
		want = 4
	case IDIPv6Addr:
		want = 16
	default:
		return NATOA{}, 0, newErr(INVALID_ID_INFORMATION, 0, "NAT-OA of type "+IDType(b[0]).String())
	}
	if len(b)-4 != want {
		return NATOA{}, 0, malformed(4, "NAT-OA address of wrong length")
	}
	a, _ := netip.AddrFromSlice(b[4:])
	return NATOA{Addr: a}, len(b), nil
}
