// Package message is the IKEv2 wire codec (RFC 7296 §3, RFC 7383 fragments,
// RFC 5282 AEAD in SK payloads) and the IKEv2 key schedule (RFC 7296 §2.13-
// 2.18, §2.15 AUTH, §2.23 NAT detection).
//
// # Codec style
//
// Everything is a pure function over []byte. For each payload X:
//
//	ParseX(body []byte) (X, int, error)  // decode a payload body; n = bytes consumed
//	AppendX(b []byte, x X) []byte        // append the encoded body to b
//	x.Len() int                          // encoded body length
//
// and every X implements Payload, so AppendMessage and AppendEncrypted can
// add the generic payload headers and chain the Next Payload fields.
// ParseMessage decodes the header and the payload chain into RawPayloads
// without touching the bodies; handlers decode the payloads they need.
//
// Aliasing: decoding does not copy. RawPayload.Body and every []byte inside
// a decoded payload point into the buffer that was parsed, so decoding a
// message costs one slice of RawPayloads (none with ParseMessageInto and a
// reused Message) plus the slices a payload needs for its variable parts
// (proposals, transforms, selectors). Callers that keep a value beyond the
// life of the receive buffer copy it. Decrypt decrypts in place.
//
// Errors: malformed input gives an *Error naming the notification to answer
// with (INVALID_SYNTAX, UNSUPPORTED_CRITICAL_PAYLOAD, INVALID_MAJOR_VERSION)
// or NotifyNone for messages to drop silently (failed integrity check);
// errors.Is(err, ErrInvalidSyntax) and friends test for them. No input makes
// the codec panic or read outside its buffer; the fuzz targets in
// fuzz_test.go check this.
//
// Validate checks a message against one table of which payloads each
// exchange allows, before any handler sees it.
//
// # Protection
//
// AppendEncrypted builds an SK-protected message, AppendFragments the RFC
// 7383 fragments of one; Decrypt and DecryptFragment check the integrity
// first and only then decrypt (in place), and Reassembly collects fragments.
// The cipher work is transform.Protector's.
//
// # Key schedule
//
//	SKEYSEED(prf, Ni, Nr, g^ir)                       §2.14
//	DeriveIKEKeys(prf, encr, integ, SKEYSEED, ...)    §2.14 SK_d/ai/ar/ei/er/pi/pr
//	IKEKeys.Protectors(encr, integ, initiator)        SK payload protection per direction
//	IKEKeys.Protector(encr, integ, initiator, out)    the same for one direction
//	DeriveChildKeys(prf, SK_d, encr, integ, g^ir, Ni, Nr)  §2.17 (g^ir nil without PFS)
//	RekeySKEYSEED(oldPRF, oldSK_d, g^ir, Ni, Nr)      §2.18
//	PRFPlus(prf, key, n, seed...)                     §2.13
//	SignedOctets, PSKAuth, VerifyPSKAuth              §2.15
//	NATDetectionHash(SPIi, SPIr, addr:port)           §2.23
//
// Key sizes come from transform.KeymatLen and the PRF's KeySize. Key
// holders (IKEKeys, ChildKeys) print as "redacted" and have Zero methods.
package message
