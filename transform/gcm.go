package transform

import (
	"crypto/aes"
	"crypto/cipher"
)

// newGCM builds AES-GCM with a 12- or 16-byte ICV (RFC 4106 for ESP, RFC 5282
// for IKE). key is the AES key followed by the 4-byte salt.
func newGCM(key []byte, icv int) (engine, error) {
	k := append([]byte(nil), key...)
	b, err := aes.NewCipher(k[:len(k)-4])
	if err != nil {
		return nil, err
	}
	a, err := cipher.NewGCMWithTagSize(b, icv)
	if err != nil {
		return nil, err
	}
	e := &aeadEngine{a: a, icv: icv, key: k}
	copy(e.salt[:], k[len(k)-4:])
	return e, nil
}
