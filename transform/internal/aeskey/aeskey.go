// Package aeskey computes the AES key schedule (FIPS 197 §5.2) for the
// assembly AES modes under transform/internal: each lays the round keys
// out in its own form, but the schedule is one.
package aeskey

import (
	"encoding/binary"
	"errors"
	"math/bits"
	"sync"
)

// ErrKeySize is returned for a key that is not 16, 24 or 32 bytes long.
var ErrKeySize = errors.New("AES key must be 16, 24 or 32 bytes")

// MaxRounds is the number of rounds of AES-256, the most any key has.
const MaxRounds = 14

// Schedule is an expanded key: Words[4r:4r+4] is round key r as
// big-endian words, for r = 0..Rounds.
type Schedule struct {
	Words  [4 * (MaxRounds + 1)]uint32
	Rounds int
}

// Expand fills s with the schedule of a 16-, 24- or 32-byte key.
func Expand(s *Schedule, key []byte) error {
	nk := len(key) / 4
	switch len(key) {
	case 16, 24, 32:
	default:
		return ErrKeySize
	}
	rounds := nk + 6
	w := &s.Words
	for i := range nk {
		w[i] = binary.BigEndian.Uint32(key[4*i:])
	}
	rcon := byte(1)
	for i := nk; i < 4*(rounds+1); i++ {
		t := w[i-1]
		switch {
		case i%nk == 0:
			t = subWord(bits.RotateLeft32(t, 8)) ^ uint32(rcon)<<24
			rcon = xtime(rcon)
		case nk > 6 && i%nk == 4:
			t = subWord(t)
		}
		w[i] = w[i-nk] ^ t
	}
	s.Rounds = rounds
	return nil
}

// PutRoundKey writes round key r into dst (16 bytes), as AESENC reads it.
func (s *Schedule) PutRoundKey(dst []byte, r int) {
	for j := range 4 {
		binary.BigEndian.PutUint32(dst[4*j:], s.Words[4*r+j])
	}
}

// Wipe clears the schedule, which is key material.
func (s *Schedule) Wipe() { *s = Schedule{} }

func subWord(w uint32) uint32 {
	s := sbox()
	return uint32(s[w>>24])<<24 | uint32(s[w>>16&0xff])<<16 | uint32(s[w>>8&0xff])<<8 | uint32(s[w&0xff])
}

// xtime multiplies by x in GF(2^8) modulo x^8+x^4+x^3+x+1.
func xtime(b byte) byte {
	if b&0x80 != 0 {
		return b<<1 ^ 0x1b
	}
	return b << 1
}

func gfMul(a, b byte) byte {
	var p byte
	for ; b != 0; b >>= 1 {
		if b&1 != 0 {
			p ^= a
		}
		a = xtime(a)
	}
	return p
}

// sbox is the AES S-box, computed once from its definition (FIPS 197
// §5.1.1: the multiplicative inverse in GF(2^8), then the affine map)
// rather than typed in.
var sbox = sync.OnceValue(func() *[256]byte {
	var s [256]byte
	for x := range 256 {
		inv, p := byte(1), byte(x)
		for e := 254; e > 0; e >>= 1 { // x^254 = x^-1, and 0 stays 0
			if e&1 != 0 {
				inv = gfMul(inv, p)
			}
			p = gfMul(p, p)
		}
		s[x] = inv ^ bits.RotateLeft8(inv, 1) ^ bits.RotateLeft8(inv, 2) ^
			bits.RotateLeft8(inv, 3) ^ bits.RotateLeft8(inv, 4) ^ 0x63
	}
	return &s
})
