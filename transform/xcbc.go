package transform

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
)

// xcbc is AES-XCBC-MAC (RFC 3566 §4) as a hash.Hash with a 16-byte output.
// ESP and IKE integrity truncate it to 96 bits; the PRF (RFC 4434) uses all
// of it. Only the CBC-MAC chaining and the K2/K3 finalisation are done here;
// the block cipher is crypto/aes.
type xcbc struct {
	b      cipher.Block // keyed with K1
	k2, k3 [16]byte
	x      [16]byte // chaining value over the blocks already processed
	buf    [16]byte // last, possibly full, block not yet processed
	n      int      // bytes in buf
	tmp    [16]byte // Sum's work space, kept here so Sum does not allocate
	k1     [16]byte
}

// newXCBC keys XCBC with a 16-byte key (RFC 3566 §4: K1, K2, K3 are the
// encryptions of 0x01.., 0x02.., 0x03.. under the key).
func newXCBC(key *[16]byte) *xcbc {
	// aes.NewCipher cannot fail for a 16-byte key.
	kb, _ := aes.NewCipher(key[:])
	h := new(xcbc)
	for i := range 16 {
		h.k1[i], h.k2[i], h.k3[i] = 1, 2, 3
	}
	kb.Encrypt(h.k1[:], h.k1[:])
	kb.Encrypt(h.k2[:], h.k2[:])
	kb.Encrypt(h.k3[:], h.k3[:])
	h.b, _ = aes.NewCipher(h.k1[:])
	return h
}

func (h *xcbc) Size() int      { return 16 }
func (h *xcbc) BlockSize() int { return 16 }
func (h *xcbc) Reset()         { clear(h.x[:]); h.n = 0 }

func (h *xcbc) Write(p []byte) (int, error) {
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

func (h *xcbc) Sum(dst []byte) []byte {
	t := h.tmp[:]
	copy(t, h.x[:])
	if h.n == 16 {
		subtle.XORBytes(t, t, h.buf[:])
		subtle.XORBytes(t, t, h.k2[:])
	} else {
		var pad [16]byte
		copy(pad[:], h.buf[:h.n])
		pad[h.n] = 0x80
		subtle.XORBytes(t, t, pad[:])
		subtle.XORBytes(t, t, h.k3[:])
	}
	h.b.Encrypt(t, t)
	dst = append(dst, t...)
	clear(t)
	return dst
}

// Zero wipes subkeys and state.
func (h *xcbc) Zero() {
	clear(h.k1[:])
	clear(h.k2[:])
	clear(h.k3[:])
	clear(h.x[:])
	clear(h.buf[:])
	h.b = nil
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
