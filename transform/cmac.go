package transform

import "crypto/aes"

// dbl multiplies by x in GF(2^128) as RFC 4493 §2.3 defines it: shift left
// one bit, and XOR Rb = 0x87 into the last byte if the top bit was set. The
// conditional XOR is done with a mask so it takes constant time.
func dbl(dst, src *[16]byte) {
	msb := src[0] >> 7
	for i := 0; i < 15; i++ {
		dst[i] = src[i]<<1 | src[i+1]>>7
	}
	dst[15] = src[15]<<1 ^ (0x87 & -msb)
}

// newCMAC keys AES-CMAC (RFC 4493, used by PRF_AES128_CMAC, RFC 4615) with
// a 16-byte key: the subkeys are L = AES(key, 0) doubled once (K1, complete
// last block) and twice (K2, padded last block), RFC 4493 §2.3.
func newCMAC(key *[16]byte) *cbcMAC {
	// aes.NewCipher cannot fail for a 16-byte key.
	b, _ := aes.NewCipher(key[:])
	h := &cbcMAC{b: b}
	var l [16]byte
	b.Encrypt(l[:], l[:])
	dbl(&h.full, &l)
	dbl(&h.partial, &h.full)
	clear(l[:])
	return h
}

// cmacPRF is PRF_AES128_CMAC (RFC 4615).
type cmacPRF struct{}

func (cmacPRF) ID() ID       { return PRFAES128CMAC }
func (cmacPRF) Size() int    { return 16 }
func (cmacPRF) KeySize() int { return 16 }

// New applies RFC 4615 §3: a 16-byte key is used as is, any other length is
// replaced by AES-CMAC of it under the all-zero key.
func (cmacPRF) New(key []byte) KeyedPRF {
	var k [16]byte
	if len(key) == 16 {
		copy(k[:], key)
	} else {
		z := newCMAC(&k)
		z.Write(key)
		z.Sum(k[:0])
		z.Zero()
	}
	h := newCMAC(&k)
	clear(k[:])
	return h
}
