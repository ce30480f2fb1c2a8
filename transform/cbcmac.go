package transform

import (
	"crypto/cipher"
	"crypto/subtle"
)

// cbcMAC is the CBC-MAC core that AES-XCBC (RFC 3566 §4) and AES-CMAC
// (RFC 4493 §2.4) share, as a hash.Hash with a 16-byte output: blocks are
// chained through the cipher, and the last block is XORed with one subkey
// when it is complete or, padded with 0x80 00…, with the other when it is
// not. The two MACs differ only in how the cipher key and the two subkeys
// are derived (newXCBC, newCMAC). Only the chaining and finalisation are
// done here; the block cipher is crypto/aes.
type cbcMAC struct {
	b             cipher.Block
	full, partial [16]byte // subkey for a complete / a padded last block
	x             [16]byte // chaining value over the blocks already processed
	buf           [16]byte // last, possibly full, block not yet processed
	n             int      // bytes in buf
	tmp           [16]byte // Sum's work space, kept here so Sum does not allocate
}

func (h *cbcMAC) Size() int      { return 16 }
func (h *cbcMAC) BlockSize() int { return 16 }
func (h *cbcMAC) Reset()         { clear(h.x[:]); h.n = 0 }

func (h *cbcMAC) Write(p []byte) (int, error) {
	total := len(p)
	for len(p) > 0 {
		// Keep the final block buffered: whether it is complete decides the
		// finalisation, so a full buffer is processed only when more follows.
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

func (h *cbcMAC) Sum(dst []byte) []byte {
	t := h.tmp[:]
	copy(t, h.x[:])
	if h.n == 16 {
		subtle.XORBytes(t, t, h.buf[:])
		subtle.XORBytes(t, t, h.full[:])
	} else {
		var pad [16]byte
		copy(pad[:], h.buf[:h.n])
		pad[h.n] = 0x80
		subtle.XORBytes(t, t, pad[:])
		subtle.XORBytes(t, t, h.partial[:])
	}
	h.b.Encrypt(t, t)
	dst = append(dst, t...)
	clear(t)
	return dst
}

// Zero wipes the subkeys and the state. The cipher's own key schedule lives
// inside crypto/aes and can only be dropped (see the package doc).
func (h *cbcMAC) Zero() {
	clear(h.full[:])
	clear(h.partial[:])
	clear(h.x[:])
	clear(h.buf[:])
	h.b = nil
}
