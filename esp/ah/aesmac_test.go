package ah

import (
	"bytes"
	"crypto/aes"
	"crypto/subtle"
	"encoding/hex"
	"testing"
)

// This test's own AES-XCBC-MAC (RFC 3566 §4) and AES-CMAC (RFC 4493
// §2.4), written from the RFCs and independent of package transform, so
// that the AH tests can check ICVs of the AES MACs as they check the HMAC
// ones with crypto/hmac. Both chain the blocks through AES and finish the
// last block with one of two subkeys: complete, or padded with 0x80 00…
// They differ in the keys: XCBC encrypts with K1 = AES(K, 0x01…) and
// finishes with K2 = AES(K, 0x02…) or K3 = AES(K, 0x03…); CMAC encrypts
// with K and finishes with L·x or L·x² in GF(2^128), L = AES(K, 0).

func xcbcMAC(key, msg []byte) []byte {
	k, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	sub := func(b byte) []byte {
		in, out := bytes.Repeat([]byte{b}, 16), make([]byte, 16)
		k.Encrypt(out, in)
		return out
	}
	return cbcMACFinish(sub(1), sub(2), sub(3), msg)
}

func cmacMAC(key, msg []byte) []byte {
	k, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}
	l := make([]byte, 16)
	k.Encrypt(l, l)
	k1 := double(l)
	return cbcMACFinish(key, k1, double(k1), msg)
}

// double multiplies by x in GF(2^128) with the polynomial of RFC 4493
// (x^128 + x^7 + x^2 + x + 1, so the carry folds in as 0x87).
func double(b []byte) []byte {
	out := make([]byte, 16)
	carry := byte(0)
	for i := 15; i >= 0; i-- {
		out[i] = b[i]<<1 | carry
		carry = b[i] >> 7
	}
	if carry != 0 {
		out[15] ^= 0x87
	}
	return out
}

// cbcMACFinish is the CBC-MAC with cipher key ck, XORing complete into a
// complete last block and padded into a padded one (the empty message is
// one padded block).
func cbcMACFinish(ck, complete, padded, msg []byte) []byte {
	c, err := aes.NewCipher(ck)
	if err != nil {
		panic(err)
	}
	e := make([]byte, 16)
	for len(msg) > 16 {
		subtle.XORBytes(e, e, msg[:16])
		c.Encrypt(e, e)
		msg = msg[16:]
	}
	last := make([]byte, 16)
	copy(last, msg)
	if len(msg) == 16 {
		subtle.XORBytes(last, last, complete)
	} else {
		last[len(msg)] = 0x80
		subtle.XORBytes(last, last, padded)
	}
	subtle.XORBytes(e, e, last)
	c.Encrypt(e, e)
	return e
}

// TestOwnAESMACs checks the implementations above against the RFCs' test
// vectors (RFC 3566 §4.6 test cases 1–5, RFC 4493 §4 examples 1–4) before
// the AH tests rely on them.
func TestOwnAESMACs(t *testing.T) {
	h := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	xk := h("000102030405060708090a0b0c0d0e0f")
	xm := h("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021")
	for _, v := range []struct {
		n   int
		mac string
	}{
		{0, "75f0251d528ac01c4573dfd584d79f29"},
		{3, "5b376580ae2f19afe7219ceef172756f"},
		{16, "d2a246fa349b68a79998a4394ff7a263"},
		{20, "47f51b4564966215b8985c63055ed308"},
		{32, "f54f0ec8d2b9f3d36807734bd5283fd4"},
		{34, "becbb3bccdb518a30677d5481fb6b4d8"},
	} {
		if got := xcbcMAC(xk, xm[:v.n]); !bytes.Equal(got, h(v.mac)) {
			t.Errorf("AES-XCBC-MAC of %d bytes: %x, RFC 3566 says %s", v.n, got, v.mac)
		}
	}
	ck := h("2b7e151628aed2a6abf7158809cf4f3c")
	cm := h("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52ef" +
		"f69f2445df4f9b17ad2b417be66c3710")
	for _, v := range []struct {
		n   int
		mac string
	}{
		{0, "bb1d6929e95937287fa37d129b756746"},
		{16, "070a16b46b4d4144f79bdd9dd04a287c"},
		{40, "dfa66747de9ae63030ca32611497c827"},
		{64, "51f0bebf7e3b9d92fc49741779363cfe"},
	} {
		if got := cmacMAC(ck, cm[:v.n]); !bytes.Equal(got, h(v.mac)) {
			t.Errorf("AES-CMAC of %d bytes: %x, RFC 4493 says %s", v.n, got, v.mac)
		}
	}
}
