package transform

// Type is an IKEv2 transform type (RFC 7296 §3.3.2, IANA "Transform Type
// Values").
type Type uint8

// Transform types.
const (
	TypeENCR  Type = 1 // Encryption Algorithm
	TypePRF   Type = 2 // Pseudo-random Function
	TypeINTEG Type = 3 // Integrity Algorithm
	TypeKE    Type = 4 // Key Exchange Method (formerly Diffie-Hellman Group)
	TypeESN   Type = 5 // Extended Sequence Numbers
	// TypeADDKE1 is Additional Key Exchange 1 (RFC 9370 §2.2.1); ADDKE n
	// is TypeADDKE1+n-1, up to ADDKE7 (type 12). Their IDs are those of
	// TypeKE.
	TypeADDKE1 Type = 6
	TypeADDKE7 Type = 12
)

// AttrKeyLength is the transform attribute type of the Key Length attribute
// (RFC 7296 §3.3.5); its value is the key length in bits.
const AttrKeyLength = 14

// ID is a transform ID within one Type (IANA "Transform Type N - ... Transform
// IDs"). The same number means different things under different types.
type ID uint16

// Encryption algorithm IDs (Transform Type 1).
const (
	Encr3DES             ID = 3  // RFC 2451; 192-bit key, 8-byte IV, no Key Length attribute
	EncrNull             ID = 11 // RFC 2410; ESP only, always combined with integrity
	EncrAESCBC           ID = 12 // RFC 3602; Key Length 128/192/256 required
	EncrAESCTR           ID = 13 // RFC 3686; Key Length required; +4 bytes nonce
	EncrAESGCM8          ID = 18 // RFC 4106/5282, 8-byte ICV; Key Length required; +4 bytes salt
	EncrAESGCM12         ID = 19 // RFC 4106/5282, 12-byte ICV
	EncrAESGCM16         ID = 20 // RFC 4106/5282, 16-byte ICV
	EncrChaCha20Poly1305 ID = 28 // RFC 7634; 256-bit key, no Key Length attribute; +4 bytes salt
)

// Pseudo-random function IDs (Transform Type 2).
const (
	PRFHMACMD5      ID = 1 // RFC 2104
	PRFHMACSHA1     ID = 2 // RFC 2104
	PRFAES128XCBC   ID = 4 // RFC 4434
	PRFHMACSHA2_256 ID = 5 // RFC 4868
	PRFHMACSHA2_384 ID = 6 // RFC 4868
	PRFHMACSHA2_512 ID = 7 // RFC 4868
	PRFAES128CMAC   ID = 8 // RFC 4615
)

// Integrity algorithm IDs (Transform Type 3).
const (
	IntegNone             ID = 0  // used with AEAD ciphers
	IntegHMACMD5_96       ID = 1  // RFC 2403
	IntegHMACSHA1_96      ID = 2  // RFC 2404
	IntegAESXCBC96        ID = 5  // RFC 3566
	IntegAESCMAC96        ID = 8  // RFC 4494
	IntegHMACSHA2_256_128 ID = 12 // RFC 4868
	IntegHMACSHA2_384_192 ID = 13 // RFC 4868
	IntegHMACSHA2_512_256 ID = 14 // RFC 4868
	// IntegHMACSHA2_256_96 is strongSwan's private-use ID for HMAC-SHA-256
	// truncated to 96 bits ("sha256_96"), the pre-RFC 4868 behaviour of old
	// Linux kernels (strongSwan src/libstrongswan/crypto/signers/signer.h,
	// AUTH_HMAC_SHA2_256_96 = 1026).
	IntegHMACSHA2_256_96 ID = 1026
)

// Key exchange method IDs (Transform Type 4).
const (
	KENone         ID = 0
	KEMODP768      ID = 1  // RFC 2409 group 1
	KEMODP1024     ID = 2  // RFC 2409 group 2
	KEMODP1536     ID = 5  // RFC 3526
	KEMODP2048     ID = 14 // RFC 3526
	KEMODP3072     ID = 15 // RFC 3526
	KEMODP4096     ID = 16 // RFC 3526
	KEMODP6144     ID = 17 // RFC 3526
	KEMODP8192     ID = 18 // RFC 3526
	KEECP256       ID = 19 // RFC 5903
	KEECP384       ID = 20 // RFC 5903
	KEECP521       ID = 21 // RFC 5903
	KEMODP1024S160 ID = 22 // RFC 5114 §2.1, 160-bit prime-order subgroup
	KEMODP2048S224 ID = 23 // RFC 5114 §2.2
	KEMODP2048S256 ID = 24 // RFC 5114 §2.3
	KECurve25519   ID = 31 // RFC 8031
	KECurve448     ID = 32 // RFC 8031; X448 from github.com/cloudflare/circl
)

// Extended sequence number IDs (Transform Type 5).
const (
	ESNNo  ID = 0
	ESNYes ID = 1
)

// Transform names one transform as carried in an IKEv2 proposal.
type Transform struct {
	Type Type
	ID   ID
	// KeyLen is the Key Length attribute in bits, 0 when the attribute is
	// absent. It is required for AES-based ciphers and must be absent (or
	// equal to the fixed key size) for the others.
	KeyLen uint16
}

// String returns the strongSwan-style name, as Name does.
func (t Transform) String() string { return Name(t.Type, t.ID, int(t.KeyLen)) }
