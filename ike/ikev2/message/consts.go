package message

import "strconv"

// PayloadType is the IKEv2 "Next Payload" value (RFC 7296 §3.2, IANA "IKEv2
// Payload Types").
type PayloadType uint8

// Payload types. Values 1-32 are reserved and 128-255 private use.
const (
	PayloadNone    PayloadType = 0  // No Next Payload
	PayloadSA      PayloadType = 33 // Security Association (§3.3)
	PayloadKE      PayloadType = 34 // Key Exchange (§3.4)
	PayloadIDi     PayloadType = 35 // Identification - Initiator (§3.5)
	PayloadIDr     PayloadType = 36 // Identification - Responder (§3.5)
	PayloadCERT    PayloadType = 37 // Certificate (§3.6)
	PayloadCERTREQ PayloadType = 38 // Certificate Request (§3.7)
	PayloadAUTH    PayloadType = 39 // Authentication (§3.8)
	PayloadNonce   PayloadType = 40 // Nonce Ni / Nr (§3.9)
	PayloadN       PayloadType = 41 // Notify (§3.10)
	PayloadD       PayloadType = 42 // Delete (§3.11)
	PayloadV       PayloadType = 43 // Vendor ID (§3.12)
	PayloadTSi     PayloadType = 44 // Traffic Selector - Initiator (§3.13)
	PayloadTSr     PayloadType = 45 // Traffic Selector - Responder (§3.13)
	PayloadSK      PayloadType = 46 // Encrypted and Authenticated (§3.14)
	PayloadCP      PayloadType = 47 // Configuration (§3.15)
	PayloadEAP     PayloadType = 48 // Extensible Authentication (§3.16)
	PayloadGSPM    PayloadType = 49 // Generic Secure Password Methods (RFC 6467)
	PayloadSKF     PayloadType = 53 // Encrypted and Authenticated Fragment (RFC 7383)
)

var payloadNames = map[PayloadType]string{
	PayloadNone: "NONE", PayloadSA: "SA", PayloadKE: "KE", PayloadIDi: "IDi", PayloadIDr: "IDr",
	PayloadCERT: "CERT", PayloadCERTREQ: "CERTREQ", PayloadAUTH: "AUTH", PayloadNonce: "No",
	PayloadN: "N", PayloadD: "D", PayloadV: "V", PayloadTSi: "TSi", PayloadTSr: "TSr",
	PayloadSK: "SK", PayloadCP: "CP", PayloadEAP: "EAP", PayloadGSPM: "GSPM", PayloadSKF: "SKF",
}

func (t PayloadType) String() string {
	if s, ok := payloadNames[t]; ok {
		return s
	}
	return "PAYLOAD(" + strconv.Itoa(int(t)) + ")"
}

// known reports whether this package understands payload type t. Unknown
// payloads are skipped unless their critical bit is set (RFC 7296 §2.5).
func (t PayloadType) known() bool {
	_, ok := payloadNames[t]
	return ok && t != PayloadNone
}

// ExchangeType is the IKE header's Exchange Type (RFC 7296 §3.1).
type ExchangeType uint8

// Exchange types (IANA "IKEv2 Exchange Types").
const (
	IKE_SA_INIT        ExchangeType = 34
	IKE_AUTH           ExchangeType = 35
	CREATE_CHILD_SA    ExchangeType = 36
	INFORMATIONAL      ExchangeType = 37
	IKE_SESSION_RESUME ExchangeType = 38 // RFC 5723
	IKE_INTERMEDIATE   ExchangeType = 43 // RFC 9242
	IKE_FOLLOWUP_KE    ExchangeType = 44 // RFC 9370
)

func (e ExchangeType) String() string {
	switch e {
	case IKE_SA_INIT:
		return "IKE_SA_INIT"
	case IKE_AUTH:
		return "IKE_AUTH"
	case CREATE_CHILD_SA:
		return "CREATE_CHILD_SA"
	case INFORMATIONAL:
		return "INFORMATIONAL"
	case IKE_SESSION_RESUME:
		return "IKE_SESSION_RESUME"
	case IKE_INTERMEDIATE:
		return "IKE_INTERMEDIATE"
	case IKE_FOLLOWUP_KE:
		return "IKE_FOLLOWUP_KE"
	}
	return "EXCHANGE(" + strconv.Itoa(int(e)) + ")"
}

// Header flags (RFC 7296 §3.1).
const (
	FlagInitiator uint8 = 0x08 // I: sent by the original initiator of the IKE SA
	FlagVersion   uint8 = 0x10 // V: sender can speak a higher major version
	FlagResponse  uint8 = 0x20 // R: this message is a response
)

// ProtocolID identifies the protocol of an SA, Notify or Delete payload
// (RFC 7296 §3.3.1, IANA "IKEv2 Security Protocol Identifiers").
type ProtocolID uint8

const (
	ProtoNone ProtocolID = 0
	ProtoIKE  ProtocolID = 1
	ProtoAH   ProtocolID = 2
	ProtoESP  ProtocolID = 3
)

// IDType is the ID Type of IDi/IDr (RFC 7296 §3.5).
type IDType uint8

const (
	IDIPv4Addr   IDType = 1  // ID_IPV4_ADDR
	IDFQDN       IDType = 2  // ID_FQDN
	IDRFC822Addr IDType = 3  // ID_RFC822_ADDR
	IDIPv6Addr   IDType = 5  // ID_IPV6_ADDR
	IDDERASN1DN  IDType = 9  // ID_DER_ASN1_DN
	IDDERASN1GN  IDType = 10 // ID_DER_ASN1_GN
	IDKeyID      IDType = 11 // ID_KEY_ID
	IDFCName     IDType = 12 // ID_FC_NAME (RFC 4595)
	IDNull       IDType = 13 // ID_NULL (RFC 7619)
)

// CertEncoding is the encoding of a CERT or CERTREQ payload (RFC 7296 §3.6).
type CertEncoding uint8

const (
	CertPKCS7             CertEncoding = 1
	CertPGP               CertEncoding = 2
	CertDNSSignedKey      CertEncoding = 3
	CertX509Signature     CertEncoding = 4
	CertKerberos          CertEncoding = 6
	CertCRL               CertEncoding = 7
	CertARL               CertEncoding = 8
	CertSPKI              CertEncoding = 9
	CertX509Attribute     CertEncoding = 10
	CertRawRSAKey         CertEncoding = 11 // deprecated by RFC 7296
	CertHashURLX509       CertEncoding = 12
	CertHashURLX509Bundle CertEncoding = 13
	CertOCSPContent       CertEncoding = 14 // RFC 4806
	CertRawPublicKey      CertEncoding = 15 // RFC 7670
)

// AuthMethod is the Auth Method of an AUTH payload (RFC 7296 §3.8, IANA
// "IKEv2 Authentication Method").
type AuthMethod uint8

const (
	AuthRSASig            AuthMethod = 1  // RSA Digital Signature
	AuthSharedKeyMIC      AuthMethod = 2  // Shared Key Message Integrity Code
	AuthDSSSig            AuthMethod = 3  // DSS Digital Signature
	AuthECDSAP256         AuthMethod = 9  // RFC 4754
	AuthECDSAP384         AuthMethod = 10 // RFC 4754
	AuthECDSAP521         AuthMethod = 11 // RFC 4754
	AuthGenericSecurePass AuthMethod = 12 // RFC 6467
	AuthNull              AuthMethod = 13 // RFC 7619
	AuthDigitalSignature  AuthMethod = 14 // RFC 7427
)

// TSType is a traffic selector type (RFC 7296 §3.13.1).
type TSType uint8

const (
	TSIPv4AddrRange TSType = 7
	TSIPv6AddrRange TSType = 8
)

// CPType is the CFG Type of a Configuration payload (RFC 7296 §3.15).
type CPType uint8

const (
	CFGRequest CPType = 1
	CFGReply   CPType = 2
	CFGSet     CPType = 3
	CFGAck     CPType = 4
)

// CPAttrType is a configuration attribute type (RFC 7296 §3.15.1, IANA
// "IKEv2 Configuration Payload Attribute Types").
type CPAttrType uint16

const (
	InternalIP4Address     CPAttrType = 1
	InternalIP4Netmask     CPAttrType = 2
	InternalIP4DNS         CPAttrType = 3
	InternalIP4NBNS        CPAttrType = 4
	InternalIP4DHCP        CPAttrType = 6
	ApplicationVersion     CPAttrType = 7
	InternalIP6Address     CPAttrType = 8
	InternalIP6DNS         CPAttrType = 10
	InternalIP6DHCP        CPAttrType = 12
	InternalIP4Subnet      CPAttrType = 13
	SupportedAttributes    CPAttrType = 14
	InternalIP6Subnet      CPAttrType = 15
	MIP6HomePrefix         CPAttrType = 16 // RFC 5026
	InternalIP6Link        CPAttrType = 17 // RFC 5739
	InternalIP6Prefix      CPAttrType = 18 // RFC 5739
	HomeAgentAddress       CPAttrType = 19 // RFC 5213
	PCSCFIP4Address        CPAttrType = 20 // RFC 7651
	PCSCFIP6Address        CPAttrType = 21 // RFC 7651
	FTTKAT                 CPAttrType = 22 // 3GPP TS 24.302
	ExternalSourceIP4NAT   CPAttrType = 23
	TimeoutLivenessCheck   CPAttrType = 24
	InternalDNSDomain      CPAttrType = 25 // RFC 8598
	InternalDNSSECTrustAnc CPAttrType = 26 // RFC 8598
)
