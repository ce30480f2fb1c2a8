package transform

import (
	"crypto/aes"
	"crypto/cipher"

	"github.com/ipsecgw/ipsecgw/transform/internal/aesgcm"
)

// newGCM builds AES-GCM with a 12- or 16-byte ICV (RFC 4106 for ESP, RFC 5282
// for IKE). key is the AES key followed by the 4-byte salt. On processors
// with VAES and VPCLMULQDQ it uses our vector implementation
// (internal/aesgcm, identical output, about 1.4× faster on ESP-sized
// packets); elsewhere crypto/cipher's.
// The key schedule is built on the first packet (aeadEngine).
func newGCM(key []byte, icv int) (engine, error) {
	if n := len(key) - 4; n != 16 && n != 24 && n != 32 {
		return nil, aes.KeySizeError(max(n, 0))
	}
	return newAEADEngine(key, icv, NewAESGCM), nil
}

// NewAESGCM returns the AES-GCM (12-byte nonce, tagSize-byte tag) that
// Protectors use: internal/aesgcm where the processor has VAES and
// VPCLMULQDQ, crypto/cipher's elsewhere. Exported so that benchmarks can
// measure ESP framing against the very cipher underneath it.
func NewAESGCM(key []byte, tagSize int) (cipher.AEAD, error) {
	if aesgcm.Supported() {
		return aesgcm.New(key, tagSize)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCMWithTagSize(b, tagSize)
}
