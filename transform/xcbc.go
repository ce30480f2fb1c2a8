package transform

import "crypto/aes"

// newXCBC keys AES-XCBC-MAC (RFC 3566 §4) with a 16-byte key: K1, K2, K3
// are the encryptions of 0x01.., 0x02.., 0x03.. under the key; K1 keys the
// chaining cipher, K2 finishes a complete last block, K3 a padded one. ESP
// and IKE integrity truncate the MAC to 96 bits; the PRF (RFC 4434) uses all
// of it.
func newXCBC(key *[16]byte) *cbcMAC {
	// aes.NewCipher cannot fail for a 16-byte key.
	kb, _ := aes.NewCipher(key[:])
	var k1 [16]byte
	h := new(cbcMAC)
	for i := range 16 {
		k1[i], h.full[i], h.partial[i] = 1, 2, 3
	}
	kb.Encrypt(k1[:], k1[:])
	kb.Encrypt(h.full[:], h.full[:])
	kb.Encrypt(h.partial[:], h.partial[:])
	h.b, _ = aes.NewCipher(k1[:])
	clear(k1[:])
	return h
}

// xcbcPRF is PRF_AES128_XCBC (RFC 4434).
type xcbcPRF struct{}

func (xcbcPRF) ID() ID       { return PRFAES128XCBC }
func (xcbcPRF) Size() int    { return 16 }
func (xcbcPRF) KeySize() int { return 16 }

// New applies RFC 4434 §2: a 16-byte key is used as is, a shorter one is
// padded with zero bytes, a longer one is replaced by AES-XCBC-MAC-PRF-128 of
// it under the all-zero key.
func (xcbcPRF) New(key []byte) KeyedPRF {
	var k [16]byte
	switch {
	case len(key) <= 16:
		copy(k[:], key)
	default:
		z := newXCBC(&k)
		z.Write(key)
		z.Sum(k[:0])
		z.Zero()
	}
	h := newXCBC(&k)
	clear(k[:])
	return h
}
