package aeskey

import (
	"bytes"
	"crypto/aes"
	"encoding/hex"
	"testing"
)

// TestExpandFIPS197 checks the last round key of the FIPS 197 Appendix A
// expansions and the S-box against a few of its entries.
func TestExpandFIPS197(t *testing.T) {
	for _, tc := range []struct{ key, last string }{
		{"2b7e151628aed2a6abf7158809cf4f3c", "d014f9a8c9ee2589e13f0cc8b6630ca6"},
		{"8e73b0f7da0e6452c810f32b809079e562f8ead2522c6b7b", "e98ba06f448c773c8ecc720401002202"},
		{"603deb1015ca71be2b73aef0857d77811f352c073b6108d72d9810a30914dff4", "fe4890d1e6188d0b046df344706c631e"},
	} {
		key, _ := hex.DecodeString(tc.key)
		var s Schedule
		if err := Expand(&s, key); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, 16)
		s.PutRoundKey(got, s.Rounds)
		if hex.EncodeToString(got) != tc.last {
			t.Errorf("%d-byte key: last round key %x, want %s", len(key), got, tc.last)
		}
	}
	if s := sbox(); s[0x00] != 0x63 || s[0x53] != 0xed || s[0xff] != 0x16 {
		t.Errorf("S-box entries 00, 53, ff = %02x %02x %02x", s[0x00], s[0x53], s[0xff])
	}
}

// TestExpandEncryptsAsStdlib runs AES rounds in Go over the schedule and
// compares a block with crypto/aes, for every key size.
func TestExpandEncryptsAsStdlib(t *testing.T) {
	for _, n := range []int{16, 24, 32} {
		key := bytes.Repeat([]byte{byte(n)}, n)
		var s Schedule
		if err := Expand(&s, key); err != nil {
			t.Fatal(err)
		}
		in := []byte("sixteen byte msg")
		b, _ := aes.NewCipher(key)
		want := make([]byte, 16)
		b.Encrypt(want, in)
		if got := encryptBlock(&s, in); !bytes.Equal(got, want) {
			t.Errorf("%d-byte key: %x, want %x", n, got, want)
		}
	}
	var s Schedule
	if err := Expand(&s, make([]byte, 20)); err != ErrKeySize {
		t.Errorf("20-byte key: %v", err)
	}
}

// encryptBlock is the textbook cipher (FIPS 197 §5.1), for the test only.
func encryptBlock(s *Schedule, in []byte) []byte {
	var st [16]byte
	copy(st[:], in)
	rk := make([]byte, 16)
	addKey := func(r int) {
		s.PutRoundKey(rk, r)
		for i := range st {
			st[i] ^= rk[i]
		}
	}
	addKey(0)
	for r := 1; r <= s.Rounds; r++ {
		for i := range st {
			st[i] = sbox()[st[i]]
		}
		var sh [16]byte
		for c := range 4 {
			for row := range 4 {
				sh[4*c+row] = st[4*((c+row)%4)+row]
			}
		}
		st = sh
		if r != s.Rounds {
			for c := range 4 {
				a := st[4*c : 4*c+4]
				a0, a1, a2, a3 := a[0], a[1], a[2], a[3]
				a[0] = gfMul(a0, 2) ^ gfMul(a1, 3) ^ a2 ^ a3
				a[1] = a0 ^ gfMul(a1, 2) ^ gfMul(a2, 3) ^ a3
				a[2] = a0 ^ a1 ^ gfMul(a2, 2) ^ gfMul(a3, 3)
				a[3] = gfMul(a0, 3) ^ a1 ^ a2 ^ gfMul(a3, 2)
			}
		}
		addKey(r)
	}
	return st[:]
}
