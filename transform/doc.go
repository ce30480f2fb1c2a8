// Package transform turns negotiated IKEv2 transforms (RFC 7296 §3.3.2, IANA
// "Internet Key Exchange Version 2 (IKEv2) Parameters", Transform Types 1-5)
// into working cryptography for both the IKE control plane and the ESP
// dataplane.
//
// A transform is named by Transform{Type, ID, KeyLen}: the IANA type, the IANA
// transform ID of that type, and the value of the Key Length attribute (RFC
// 7296 §3.3.5) in bits, zero when the attribute is absent. Everything is looked
// up in one registry (registry.go); Lookup reports what is known about a
// transform, Name gives strongSwan's proposal keyword for it ("aes128gcm16",
// "sha256", "prfsha256", "modp2048", "ecp384", "x25519").
//
// Four families are built from it:
//
//   - Protector (NewProtector): one direction of an ESP SA or of an IKE SA's SK
//     payload protection, keyed once with the encryption key (including any
//     salt) and, for non-AEAD ciphers, the integrity key. Seal and Open work in
//     place on the caller's packet buffer without allocating and are safe for
//     concurrent use. The buffer layout covers both ESP (RFC 4303) and the IKE
//     SK payload (RFC 7296 §3.14, RFC 5282); see Protector.Seal.
//   - PRF (NewPRF): the IKE pseudo-random function; New(key) returns a keyed
//     hash.Hash on which prf+ (RFC 7296 §2.13) is built by the caller.
//   - KeyExchange (NewKeyExchange): one Diffie-Hellman exchange; our public
//     value in IKE KE payload encoding, then SharedSecret(peer).
//   - KeymatLen: how many bytes of keying material a transform consumes, so
//     that the key derivation callers slice KEYMAT (RFC 7296 §2.14, §2.17)
//     correctly. For AEAD and counter-mode ciphers the salt/nonce is the last 4
//     bytes of the encryption key material (RFC 3686 §5.1, RFC 4106 §8.1, RFC
//     5282 §7.1, RFC 7634 §2/§4).
//
// Errors are typed: every failure is an *Error naming the operation and the
// transform, and wraps one of the sentinels ErrUnsupported, ErrKeyLength,
// ErrInvalidPublic, ErrAuthFailed, ErrLayout or ErrClosed, so callers test
// them with errors.Is. Errors never contain key material.
//
// Key wiping: Protector.Close, KeyExchange.Close and the Zero method of keyed
// PRFs overwrite every copy of key material this package holds, including
// internal/aesgcm's key schedule. The key schedules kept inside crypto/aes, crypto/des, crypto/hmac and x/crypto are
// unexported and cannot be wiped from outside the standard library; after
// Close this package drops every reference to them so the garbage collector
// can reclaim them.
//
// Ciphers come from the Go standard library and golang.org/x/crypto (AES,
// 3DES, SHA-*, MD5, HMAC, ChaCha20-Poly1305, the elliptic curves), X448 from
// github.com/cloudflare/circl, with one exception: AES-GCM on x86-64
// processors with VAES and VPCLMULQDQ runs internal/aesgcm, our vector
// implementation (two blocks per instruction; the standard library's does
// one), because the ESP dataplane spends most of its CPU time there; its
// output is tested identical to crypto/cipher's. Built here on crypto/aes's
// block cipher are only the modes the libraries lack in a reusable,
// allocation-free form: the CTR keystream of RFC 3686 (and of GCM-8, see
// gcm8.go), AES-XCBC (RFC 3566, RFC 4434) and AES-CMAC (RFC 4493, RFC
// 4615). CBC is crypto/cipher's, with its IV reset per packet instead of a
// new BlockMode, except for AES on x86-64 with AES-NI, where
// internal/aescbc decrypts eight blocks at a time and SealBatch encrypts up
// to eight packets side by side (the dataplane seals whole batches through
// it); its output is tested identical to crypto/cipher's. HMAC is
// crypto/hmac: it keeps the inner and outer pad states after their first
// block (marshalled hash states restored on Reset), so per packet there is
// no key schedule, and crypto/sha1 and crypto/sha256 use SHA-NI where the
// processor has it. SealBatch and OpenBatch compute HMAC-SHA1 with
// internal/hmacsha1 instead (pad states precomputed per SA, two packets
// interleaved on SHA-NI), tested identical to crypto/hmac.
package transform
