// Package isakmp is the IKEv1 wire codec: the ISAKMP message format (RFC
// 2408) in the IPsec Domain of Interpretation (RFC 2407) as IKE uses it
// (RFC 2409), with NAT traversal (RFC 3947 and the drafts before it) and
// dead peer detection (RFC 3706), and the mapping between ISAKMP SA
// payloads and the engines' common proposal form (shared.Proposal with
// IANA IKEv2 transform IDs). The key schedule and the message protection
// are in package keymat.
//
// # Codec style
//
// As in ike/ikev2/message, everything is a pure function over []byte. For
// each payload X:
//
//	ParseX(body []byte) (X, int, error)  // decode a payload body; n = bytes consumed
//	x.AppendTo(b []byte) []byte          // append the encoded body to b
//	x.Len() int                          // encoded body length
//
// and every X implements Payload, so AppendMessage and AppendPayloads add
// the generic payload headers and chain the Next Payload fields.
// ParseMessage decodes the header and the payload chain into RawPayloads
// without touching the bodies; handlers decode the payloads they need.
// Payload types this package does not know are skipped (ISAKMP has no
// critical bit); bytes after the last payload are padding.
//
// Aliasing: decoding does not copy. RawPayload.Body and every []byte
// inside a decoded payload point into the buffer that was parsed; callers
// that keep a value beyond the life of the receive buffer copy it. The
// HASH computations of RFC 2409 use bodies exactly as received (SAi_b,
// IDii_b, Ni_b), which is one more reason to keep RawPayload.Body rather
// than re-encode.
//
// Errors: malformed or unacceptable input gives an *Error naming the
// ISAKMP notification to answer with (RFC 2408 §3.14.1: PAYLOAD-MALFORMED,
// INVALID-PAYLOAD-TYPE, INVALID-EXCHANGE-TYPE, INVALID-FLAGS,
// DOI-NOT-SUPPORTED, BAD-PROPOSAL-SYNTAX, ...) or NotifyNone for messages
// to drop silently; errors.Is(err, ErrPayloadMalformed) and friends test
// for them. No input makes the codec panic or read outside its buffer;
// the fuzz targets in fuzz_test.go check this and that decode(encode(x))
// == x.
//
// Validate checks a message against one table of which payloads each
// exchange type allows (main, aggressive, quick mode, informational),
// before any handler sees it.
//
// # Encrypted messages
//
// With the E flag set, everything after the header is CBC ciphertext
// without an IV or integrity check (RFC 2409 Appendix B; the HASH payloads
// authenticate). ParseMessage then returns the body untouched; the engine
// decrypts it with keymat.Keys.Decrypt, which calls Message.SetPlaintext
// to decode the payload chain, and runs Validate again. To send, the
// engine builds the plaintext with AppendMessage, or AppendHashedMessage
// for quick mode and informational messages whose first payload is a HASH
// over the rest, and encrypts it with keymat.Keys.Encrypt. The IV chain
// (which message's last block is whose IV) is keymat.IVChain's.
//
// # NAT traversal, RFC and drafts
//
// RFC 3947 numbers NAT-D 20 and NAT-OA 21 and the UDP-encapsulated modes 3
// and 4. Peers that only speak draft-ietf-ipsec-nat-t-ike-02 or -03 (older
// implementations) use the private numbers 130, 131, 61443 and 61444 for
// the same things. Both spellings parse into the
// same Go types (NATD, NATOA with a Draft flag, EncapMode); the engine
// picks what to send with the NATTVersion the Vendor IDs announced
// (NATTFromVendorIDs).
//
// # Proposals
//
// SA keeps the wire structure (proposal payloads with AND/OR numbering,
// transforms, attributes in TV and TLV form). Phase1Offers and
// Phase2Offers map received SA payloads to one shared.Proposal per
// transform for shared.Select, with what IKEv1 adds beside (authentication
// method, lifetimes, encapsulation mode, the numbers to answer with);
// SA.Answer builds the responder's answer and Phase1Answer/Phase2Answer
// check it on the initiator's side. Phase1SA and Phase2SA render
// configured proposals as the SA payloads we send. ids.go converts ID
// payloads to and from spd.TS (quick mode selectors) and config.Identity
// (phase 1 identities).
package isakmp
