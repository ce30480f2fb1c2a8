package transform

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
)

// cmac is AES-CMAC (RFC 4493) as a hash.Hash with a 16-byte output, built on
// crypto/aes. Used by PRF_AES128_CMAC (RFC 4615).
type cmac struct {
	b      cipher.Block
	k1, k2 [16]byte // subkeys (RFC 4493 §2.3)
	x      [16]byte
	buf    [16]byte
	n      int
	tmp    [16]byte
}

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

func newCMAC(key *[16]byte) *cmac {
	// aes.NewCipher cannot fail for a 16-byte key.
	b, _ := aes.NewCipher(key[:])
	h := &cmac{b: b}
	var l [16]byte
	b.Encrypt(l[:], l[:])
	dbl(&h.k1, &l)
	dbl(&h.k2, &h.k1)
	clear(l[:])
	return h
}

func (h *cmac) Size() int      { return 16 }
func (h *cmac) BlockSize() int { return 16 }
func (h *cmac) Reset()         { clear(h.x[:]); h.n = 0 }

func (h *cmac) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		if h.n == 16 {
			subtle.XORBytes(h.x[:], h.x[:], h.buf[:])
			h.b.Encrypt(h.x[:], h.x[:])
			h.n = 0
		}
		c := copy(h.buf[h.n:], p)
		h.n += c
		p = p[c:]
	}
	return total, nil
}

func (h *cmac) Sum(dst []byte) []byte {
	t := h.tmp[:]
	copy(t, h.x[:])
	if h.n == 16 {
		subtle.XORBytes(t, t, h.buf[:])
		subtle.XORBytes(t, t, h.k1[:])
	} else {
		var pad [16]byte
		copy(pad[:], h.buf[:h.n])
		pad[h.n] = 0x80
		subtle.XORBytes(t, t, pad[:])
		subtle.XORBytes(t, t, h.k2[:])
	}
	h.b.Encrypt(t, t)
	dst = append(dst, t...)
	clear(t)
	return dst
}

func (h *cmac) Zero() {
	clear(h.k1[:])
	clear(h.k2[:])
	clear(h.x[:])
	clear(h.buf[:])
	h.b = nil
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
