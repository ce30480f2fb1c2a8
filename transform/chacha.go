package transform

import (
	"crypto/cipher"
	"errors"

	"golang.org/x/crypto/chacha20poly1305"
)

// newChaCha builds ChaCha20-Poly1305 for IKE and ESP (RFC 7634): 32-byte key
// followed by the 4-byte salt, 8-byte IV, 16-byte ICV. The cipher is built
// on the first packet (aeadEngine).
func newChaCha(key []byte) (engine, error) {
	if len(key) != chacha20poly1305.KeySize+4 {
		return nil, errChaChaKey
	}
	return newAEADEngine(key, 16, newChaChaAEAD), nil
}

// newChaChaAEAD is chacha20poly1305.New in aeadEngine's signature (the ICV
// is always 16 bytes).
func newChaChaAEAD(key []byte, _ int) (cipher.AEAD, error) { return chacha20poly1305.New(key) }

var errChaChaKey = errors.New("chacha20poly1305: key material must be 36 bytes (key and salt)")
