package transform

import "golang.org/x/crypto/chacha20poly1305"

// newChaCha builds ChaCha20-Poly1305 for IKE and ESP (RFC 7634): 32-byte key
// followed by the 4-byte salt, 8-byte IV, 16-byte ICV.
func newChaCha(key []byte) (engine, error) {
	k := append([]byte(nil), key...)
	a, err := chacha20poly1305.New(k[:32])
	if err != nil {
		return nil, err
	}
	e := &aeadEngine{a: a, icv: 16, key: k}
	copy(e.salt[:], k[32:])
	return e, nil
}
