package isakmp

import "strconv"

// PayloadType is the ISAKMP "Next Payload" value (RFC 2408 §3.1, IANA
// "ISAKMP Payload" registry; RFC 3947 for NAT-D and NAT-OA).
type PayloadType uint8

// Payload types. Proposal (2) and Transform (3) only occur inside an SA
// payload; as a payload of their own they are INVALID-PAYLOAD-TYPE.
const (
	PayloadNone      PayloadType = 0  // no next payload
	PayloadSA        PayloadType = 1  // Security Association (§3.4)
	PayloadProposal  PayloadType = 2  // Proposal (§3.5), inside SA only
	PayloadTransform PayloadType = 3  // Transform (§3.6), inside SA only
	PayloadKE        PayloadType = 4  // Key Exchange (§3.7)
	PayloadID        PayloadType = 5  // Identification (§3.8, RFC 2407 §4.6.2)
	PayloadCERT      PayloadType = 6  // Certificate (§3.9)
	PayloadCR        PayloadType = 7  // Certificate Request (§3.10)
	PayloadHash      PayloadType = 8  // Hash (§3.11)
	PayloadSIG       PayloadType = 9  // Signature (§3.12)
	PayloadNonce     PayloadType = 10 // Nonce (§3.13)
	PayloadN         PayloadType = 11 // Notification (§3.14)
	PayloadD         PayloadType = 12 // Delete (§3.15)
	PayloadVID       PayloadType = 13 // Vendor ID (§3.16)
	PayloadNATD      PayloadType = 20 // NAT Discovery (RFC 3947 §3.2)
	PayloadNATOA     PayloadType = 21 // NAT Original Address (RFC 3947 §5.2)
	// PayloadNATDDraft and PayloadNATOADraft are the private-use numbers
	// draft-ietf-ipsec-nat-t-ike-02/03 used for the same payloads; peers
	// that announce only those drafts' Vendor IDs send and expect them.
	PayloadNATDDraft  PayloadType = 130
	PayloadNATOADraft PayloadType = 131
)

var payloadNames = map[PayloadType]string{
	PayloadNone: "NONE", PayloadSA: "SA", PayloadProposal: "P", PayloadTransform: "T", PayloadKE: "KE",
	PayloadID: "ID", PayloadCERT: "CERT", PayloadCR: "CR", PayloadHash: "HASH", PayloadSIG: "SIG",
	PayloadNonce: "NONCE", PayloadN: "N", PayloadD: "D", PayloadVID: "VID", PayloadNATD: "NAT-D",
	PayloadNATOA: "NAT-OA", PayloadNATDDraft: "NAT-D(draft)", PayloadNATOADraft: "NAT-OA(draft)",
}

func (t PayloadType) String() string {
	if s, ok := payloadNames[t]; ok {
		return s
	}
	return "PAYLOAD(" + strconv.Itoa(int(t)) + ")"
}

// known reports whether t is a payload this package decodes as a payload
// of its own. Everything else is skipped when parsing: ISAKMP has no
// critical bit (RFC 2408 §3.2), and skipping is what deployed
// implementations do with private payload types they do not know.
func (t PayloadType) known() bool {
	_, ok := payloadNames[t]
	return ok && t != PayloadNone && t != PayloadProposal && t != PayloadTransform
}

// ExchangeType is the ISAKMP header's Exchange Type (RFC 2408 §3.1, §4;
// RFC 2409 §5; IANA "ISAKMP Exchange Types").
type ExchangeType uint8

// Exchange types.
const (
	ExchangeBase ExchangeType = 1 // RFC 2408 §4.4; not used by IKE
	// ExchangeIdentityProtection is IKE's main mode (RFC 2409 §5).
	ExchangeIdentityProtection ExchangeType = 2
	ExchangeAuthOnly           ExchangeType = 3 // RFC 2408 §4.6; not used by IKE
	// ExchangeAggressive is IKE's aggressive mode (RFC 2409 §5).
	ExchangeAggressive    ExchangeType = 4
	ExchangeInformational ExchangeType = 5 // RFC 2408 §4.8, RFC 2409 §5.7
	// ExchangeTransaction carries XAUTH and mode config
	// (draft-ietf-ipsec-isakmp-mode-cfg); not used by site-to-site PSK.
	ExchangeTransaction ExchangeType = 6
	ExchangeQuickMode   ExchangeType = 32 // RFC 2409 §5.5
	ExchangeNewGroup    ExchangeType = 33 // RFC 2409 §5.6
)

func (e ExchangeType) String() string {
	switch e {
	case ExchangeBase:
		return "Base"
	case ExchangeIdentityProtection:
		return "Main Mode"
	case ExchangeAuthOnly:
		return "Authentication Only"
	case ExchangeAggressive:
		return "Aggressive Mode"
	case ExchangeInformational:
		return "Informational"
	case ExchangeTransaction:
		return "Transaction"
	case ExchangeQuickMode:
		return "Quick Mode"
	case ExchangeNewGroup:
		return "New Group Mode"
	}
	return "EXCHANGE(" + strconv.Itoa(int(e)) + ")"
}

// Header flags (RFC 2408 §3.1). The other five bits are reserved.
const (
	// FlagEncryption (E): everything after the header is encrypted.
	FlagEncryption uint8 = 0x01
	// FlagCommit (C): the sender wants a CONNECTED notification before
	// the SA is used (RFC 2408 §3.1, RFC 2409 §5.5).
	FlagCommit uint8 = 0x02
	// FlagAuthOnly (A): the message is authenticated by a HASH payload
	// but not encrypted (Authentication Only informational exchanges).
	FlagAuthOnly uint8 = 0x04

	flagsKnown = FlagEncryption | FlagCommit | FlagAuthOnly
)

// DOI is a Domain of Interpretation (RFC 2408 §2.1).
type DOI uint32

// Domains of interpretation.
const (
	DOIISAKMP DOI = 0 // generic ISAKMP, allowed in N and D payloads of phase 1
	DOIIPsec  DOI = 1 // RFC 2407
)

// Situation is the IPsec DOI situation bitmask of an SA payload (RFC 2407
// §4.2).
type Situation uint32

// Situations. Only SIT_IDENTITY_ONLY is used by IKE peers; the other two
// add labelled-security fields this package does not parse.
const (
	SitIdentityOnly Situation = 1
	SitSecrecy      Situation = 2
	SitIntegrity    Situation = 4
)

// ProtocolID identifies the protocol of a proposal, notification or
// delete (RFC 2407 §4.4.1, IANA "IPSEC Security Protocol Identifiers").
type ProtocolID uint8

// Protocol IDs.
const (
	ProtoISAKMP ProtocolID = 1
	ProtoAH     ProtocolID = 2
	ProtoESP    ProtocolID = 3
	ProtoIPComp ProtocolID = 4
)

func (p ProtocolID) String() string {
	switch p {
	case 0:
		return "none"
	case ProtoISAKMP:
		return "ISAKMP"
	case ProtoAH:
		return "AH"
	case ProtoESP:
		return "ESP"
	case ProtoIPComp:
		return "IPCOMP"
	}
	return "PROTO(" + strconv.Itoa(int(p)) + ")"
}

// TransformID is the Transform-Id of a transform payload; its meaning
// depends on the proposal's protocol (RFC 2407 §4.4.1-4.4.4).
type TransformID uint8

// Transform ID of phase 1 (PROTO_ISAKMP, RFC 2407 §4.4.2).
const KeyIKE TransformID = 1

// ESP transform IDs (RFC 2407 §4.4.4, IANA "IPSEC ESP Transform
// Identifiers"). The numbers we support equal the IKEv2 ENCR IDs.
const (
	ESPDES      TransformID = 2  // refused: single DES
	ESP3DES     TransformID = 3  // RFC 2451
	ESPNull     TransformID = 11 // RFC 2410
	ESPAES      TransformID = 12 // RFC 3602, Key Length attribute 128/192/256
	ESPAESCTR   TransformID = 13 // RFC 3686
	ESPAESCCM8  TransformID = 14 // RFC 4309
	ESPAESCCM12 TransformID = 15
	ESPAESCCM16 TransformID = 16
	ESPAESGCM8  TransformID = 18 // RFC 4106, Key Length attribute required
	ESPAESGCM12 TransformID = 19
	ESPAESGCM16 TransformID = 20
	ESPNullGMAC TransformID = 23 // RFC 4543
)

// AH transform IDs (RFC 2407 §4.4.3, IANA "IPSEC AH Transform
// Identifiers"). Each names its integrity algorithm; the Authentication
// Algorithm attribute is mandatory in AH transforms and must agree
// (§4.5).
const (
	AHMD5    TransformID = 2
	AHSHA    TransformID = 3
	AHDES    TransformID = 4 // refused
	AHSHA256 TransformID = 5
	AHSHA384 TransformID = 6
	AHSHA512 TransformID = 7
	AHXCBC   TransformID = 9 // AH_AES-XCBC-MAC (RFC 3566)
)

// IDType is the ID Type of an ID payload in the IPsec DOI (RFC 2407
// §4.6.2.1).
type IDType uint8

// Identification types.
const (
	IDIPv4Addr       IDType = 1
	IDFQDN           IDType = 2
	IDUserFQDN       IDType = 3
	IDIPv4AddrSubnet IDType = 4
	IDIPv6Addr       IDType = 5
	IDIPv6AddrSubnet IDType = 6
	IDIPv4AddrRange  IDType = 7
	IDIPv6AddrRange  IDType = 8
	IDDERASN1DN      IDType = 9
	IDDERASN1GN      IDType = 10
	IDKeyID          IDType = 11
)

var idTypeNames = map[IDType]string{
	IDIPv4Addr: "ID_IPV4_ADDR", IDFQDN: "ID_FQDN", IDUserFQDN: "ID_USER_FQDN",
	IDIPv4AddrSubnet: "ID_IPV4_ADDR_SUBNET", IDIPv6Addr: "ID_IPV6_ADDR", IDIPv6AddrSubnet: "ID_IPV6_ADDR_SUBNET",
	IDIPv4AddrRange: "ID_IPV4_ADDR_RANGE", IDIPv6AddrRange: "ID_IPV6_ADDR_RANGE", IDDERASN1DN: "ID_DER_ASN1_DN",
	IDDERASN1GN: "ID_DER_ASN1_GN", IDKeyID: "ID_KEY_ID",
}

func (t IDType) String() string {
	if s, ok := idTypeNames[t]; ok {
		return s
	}
	return "ID(" + strconv.Itoa(int(t)) + ")"
}

// AttrType is the type (class) of an SA attribute, 15 bits. Phase 1
// (PROTO_ISAKMP) and phase 2 (IPsec DOI) attributes have separate number
// spaces, hence the P1 and P2 prefixes.
type AttrType uint16

// Phase 1 attribute classes (RFC 2409 Appendix A). B: basic (TV) only;
// V: variable, TLV or TV when the value fits in 16 bits.
const (
	P1Encryption   AttrType = 1  // B, EncrAlg
	P1Hash         AttrType = 2  // B, HashAlg
	P1AuthMethod   AttrType = 3  // B, AuthMethod
	P1Group        AttrType = 4  // B, group description (IANA group number)
	P1GroupType    AttrType = 5  // B, only with private groups
	P1GroupPrime   AttrType = 6  // V
	P1GroupGen1    AttrType = 7  // V
	P1GroupGen2    AttrType = 8  // V
	P1GroupCurveA  AttrType = 9  // V
	P1GroupCurveB  AttrType = 10 // V
	P1LifeType     AttrType = 11 // B, LifeType
	P1LifeDuration AttrType = 12 // V
	P1PRF          AttrType = 13 // B, none defined
	P1KeyLength    AttrType = 14 // B, bits
	P1FieldSize    AttrType = 15 // B
	P1GroupOrder   AttrType = 16 // V
)

// Phase 2 attribute classes of the IPsec DOI (RFC 2407 §4.5, RFC 4304
// for ESN).
const (
	P2LifeType      AttrType = 1  // B, LifeType
	P2LifeDuration  AttrType = 2  // V
	P2Group         AttrType = 3  // B, PFS group description
	P2EncapMode     AttrType = 4  // B, EncapMode
	P2AuthAlgorithm AttrType = 5  // B, AuthAlg
	P2KeyLength     AttrType = 6  // B, bits
	P2KeyRounds     AttrType = 7  // B
	P2CompDictSize  AttrType = 8  // B
	P2CompPrivAlg   AttrType = 9  // V
	P2ECNTunnel     AttrType = 10 // B, RFC 3168
	P2ESN           AttrType = 11 // B, RFC 4304: 1 = 64-bit sequence numbers
	P2AuthKeyLength AttrType = 12 // B, RFC 4359
	P2SigEncoding   AttrType = 13 // B, RFC 4359
)

// EncrAlg is the phase 1 Encryption Algorithm attribute value (RFC 2409
// Appendix A, RFC 3602 for AES).
type EncrAlg uint16

// Phase 1 encryption algorithms.
const (
	EncrDESCBC   EncrAlg = 1 // refused: single DES
	EncrIDEACBC  EncrAlg = 2
	EncrBlowfish EncrAlg = 3
	EncrRC5      EncrAlg = 4
	Encr3DESCBC  EncrAlg = 5
	EncrCASTCBC  EncrAlg = 6
	EncrAESCBC   EncrAlg = 7 // Key Length attribute 128/192/256
	EncrCamellia EncrAlg = 8
)

// HashAlg is the phase 1 Hash Algorithm attribute value (RFC 2409
// Appendix A; the SHA-2 values are IANA's "IKE Hash Algorithm" registry
// entries that strongSwan, Libreswan and Cisco use).
type HashAlg uint16

// Phase 1 hash algorithms.
const (
	HashMD5     HashAlg = 1
	HashSHA     HashAlg = 2
	HashTiger   HashAlg = 3
	HashSHA2256 HashAlg = 4
	HashSHA2384 HashAlg = 5
	HashSHA2512 HashAlg = 6
)

// AuthMethod is the phase 1 Authentication Method attribute value (RFC
// 2409 Appendix A; RFC 4754 for ECDSA; the XAUTH draft's private values).
type AuthMethod uint16

// Phase 1 authentication methods. Only AuthPSK is negotiated by ipsecgw;
// the rest are named so that refusals can say what the peer wanted.
const (
	AuthPSK             AuthMethod = 1
	AuthDSS             AuthMethod = 2
	AuthRSASig          AuthMethod = 3
	AuthRSAEnc          AuthMethod = 4
	AuthRSARevisedEnc   AuthMethod = 5
	AuthECDSA256        AuthMethod = 9
	AuthECDSA384        AuthMethod = 10
	AuthECDSA521        AuthMethod = 11
	AuthHybridInitRSA   AuthMethod = 64221
	AuthHybridRespRSA   AuthMethod = 64222
	AuthXAUTHInitPSK    AuthMethod = 65001
	AuthXAUTHRespPSK    AuthMethod = 65002
	AuthXAUTHInitRSASig AuthMethod = 65005
	AuthXAUTHRespRSASig AuthMethod = 65006
)

func (a AuthMethod) String() string {
	switch a {
	case AuthPSK:
		return "pre-shared key"
	case AuthDSS:
		return "DSS signatures"
	case AuthRSASig:
		return "RSA signatures"
	case AuthRSAEnc:
		return "RSA encryption"
	case AuthRSARevisedEnc:
		return "revised RSA encryption"
	case AuthECDSA256, AuthECDSA384, AuthECDSA521:
		return "ECDSA signatures"
	case AuthHybridInitRSA, AuthHybridRespRSA:
		return "hybrid RSA"
	case AuthXAUTHInitPSK, AuthXAUTHRespPSK:
		return "XAUTH with pre-shared key"
	case AuthXAUTHInitRSASig, AuthXAUTHRespRSASig:
		return "XAUTH with RSA signatures"
	}
	return "auth method " + strconv.Itoa(int(a))
}

// LifeType says in which unit an SA Life Duration attribute counts (RFC
// 2409 Appendix A, RFC 2407 §4.5).
type LifeType uint16

// Life types.
const (
	LifeSeconds   LifeType = 1
	LifeKilobytes LifeType = 2
)

// EncapMode is the Encapsulation Mode attribute of a phase 2 transform
// (RFC 2407 §4.5; RFC 3947 §5.1 for the UDP-encapsulated modes).
type EncapMode uint16

// Encapsulation modes. Peers that speak only
// draft-ietf-ipsec-nat-t-ike-02/03 use the private-use numbers 61443 and
// 61444 for the UDP-encapsulated modes.
const (
	EncapTunnel            EncapMode = 1
	EncapTransport         EncapMode = 2
	EncapUDPTunnel         EncapMode = 3
	EncapUDPTransport      EncapMode = 4
	EncapUDPTunnelDraft    EncapMode = 61443
	EncapUDPTransportDraft EncapMode = 61444
)

// Tunnel reports whether m is one of the tunnel modes.
func (m EncapMode) Tunnel() bool {
	return m == EncapTunnel || m == EncapUDPTunnel || m == EncapUDPTunnelDraft
}

// UDP reports whether m is one of the UDP-encapsulated modes (RFC 3948).
func (m EncapMode) UDP() bool {
	return m == EncapUDPTunnel || m == EncapUDPTransport || m == EncapUDPTunnelDraft || m == EncapUDPTransportDraft
}

// Known reports whether m is one of the six modes above.
func (m EncapMode) Known() bool { return m.Tunnel() || m.UDP() || m == EncapTransport }

// EncapModeFor returns the mode to propose: tunnel or transport, in UDP
// when udp is set, with the numbers of the NAT-T version the peer speaks.
func EncapModeFor(tunnel, udp bool, v NATTVersion) EncapMode {
	switch {
	case !udp && tunnel:
		return EncapTunnel
	case !udp:
		return EncapTransport
	case v.draft() && tunnel:
		return EncapUDPTunnelDraft
	case v.draft():
		return EncapUDPTransportDraft
	case tunnel:
		return EncapUDPTunnel
	}
	return EncapUDPTransport
}

func (m EncapMode) String() string {
	switch m {
	case EncapTunnel:
		return "tunnel"
	case EncapTransport:
		return "transport"
	case EncapUDPTunnel:
		return "UDP-encapsulated tunnel"
	case EncapUDPTransport:
		return "UDP-encapsulated transport"
	case EncapUDPTunnelDraft:
		return "UDP-encapsulated tunnel (draft)"
	case EncapUDPTransportDraft:
		return "UDP-encapsulated transport (draft)"
	}
	return "encapsulation mode " + strconv.Itoa(int(m))
}

// AuthAlg is the Authentication Algorithm attribute of a phase 2
// transform (RFC 2407 §4.5, RFC 4868 §2.4 for SHA-2, RFC 3566 for
// AES-XCBC).
type AuthAlg uint16

// Phase 2 authentication algorithms.
const (
	AuthAlgHMACMD5     AuthAlg = 1
	AuthAlgHMACSHA1    AuthAlg = 2
	AuthAlgDESMAC      AuthAlg = 3
	AuthAlgKPDK        AuthAlg = 4
	AuthAlgHMACSHA2256 AuthAlg = 5
	AuthAlgHMACSHA2384 AuthAlg = 6
	AuthAlgHMACSHA2512 AuthAlg = 7
	AuthAlgHMACRIPEMD  AuthAlg = 8
	AuthAlgAESXCBC     AuthAlg = 9
)
