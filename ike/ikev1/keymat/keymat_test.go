package keymat

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipsecgw/ipsecgw/ike/ikev1/isakmp"
	"github.com/ipsecgw/ipsecgw/transform"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustSuite(t testing.TB, encr transform.ID, keyLen uint16, prf transform.ID) Suite {
	t.Helper()
	s, err := NewSuite(transform.Transform{Type: transform.TypeENCR, ID: encr, KeyLen: keyLen}, prf)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestHashRVectors checks SKEYID and HASH_R against the two published
// captures in ike-scan's check-hash.c (Roy Hills, NTA Monitor): Check
// Point Firewall-1 answering aggressive mode with pre-shared key "abc123",
// once with MD5 and once with SHA-1. HashR is given the values in HashI's
// order and must reorder them as RFC 2409 §5 says.
func TestHashRVectors(t *testing.T) {
	tests := []struct {
		name                 string
		prf                  transform.ID
		gxr, gxi, ckyR, ckyI string
		saiB, idirB, ni, nr  string
		want                 string
	}{
		{
			name: "MD5", prf: transform.PRFHMACMD5,
			gxr:   "9c1e0e07828af45086a4eb559ad8dafb7d655bab38656609426653565ef7e332bed7212cf24a05048032240256a169a68ee304ca500abe073d150bc50239350446ab568132aebcf34acd25ce23b30d0de9f8e7a89c22ce0dec2dabf0409bc25f0988d5d956916dce220c630d2a1fda846667fdecb20b2dc2d5c5b8273a07095c",
			gxi:   "6f8c74c15bb4dd09b7af8d1c23e7b381a38dddcd4c5afb3b1335ff766f0267df8fdca0ea907ef4482d8164506817d10ba4aed8f108d32c1b082b91772df956bcd5f7a765759bada21c11f28429c48fcd7267be7b3aea96421528b9432110fff607a65b7c41091e5d1a10e143d4701147d7cfc211ba5853cf800d12a11d129724",
			ckyR:  "6d08132c8abb6931",
			ckyI:  "eac82ea45cbe59e6",
			saiB:  "00000001000000010000002c01010001000000240101000080010001800200018003000180040002800b0001000c000400007080",
			idirB: "01000000ac100202",
			ni:    "64745a975dbcd95c2abf7d2eeeb93ac4633a03f1",
			nr:    "502c0b3872518fa1e7ff8f5a28a3d797f65e2cb1",
			want:  "f995ec2968f695aeb1d4e4b437f49d26",
		},
		{
			name: "SHA-1", prf: transform.PRFHMACSHA1,
			gxr:   "6c5559243259d5293df34a766561b8ffa78a9f8ee03d8a05916aadeeba9997864e0cd712f2a08104366c5e48f391ee7ce7b0ac08c59b8001c888c9f0343fd7d7d2d1da8e672c4ff05a7dd3c4eb6adc09bec712128ed951f7fcde2c31431643eb04d5ffc0be68e17aa80168e9635cb6f4c80af8ea1432c2b095b25f3d79ac4e55",
			gxi:   "857209de96faf07bad57ff1aba648a2c61a6802e4db3ab54c5593fa8abd9b1304bbb0fe2b5ff5d63565c7d10c1073d22adbd51fb70fc4f35568ede01678f32b24a41940040f263964ee0a70fe8e43295a18390117fdf46d56d24d7d4b40987fe4a1bfe8a0d61205c42c76b2aab9dbf4c20505da02fa4759dc84c717c55f87b9f",
			ckyR:  "963c61ef1778b6c5",
			ckyI:  "efa6639971a91c08",
			saiB:  "00000001000000010000002c01010001000000240101000080010001800200028003000180040002800b0001000c000400007080",
			idirB: "01000000ac100202",
			ni:    "6d62656f72fd1c53cda7337d0612aeebe3529a09",
			nr:    "8e83c48eb087b8276b4bb2976ea23bf426abde8f",
			want:  "543ea42889c07b17390cc6f0440246c0148422df",
		},
	}
	for _, tt := range tests {
		s := mustSuite(t, transform.Encr3DES, 0, tt.prf)
		skeyid := SKEYIDPSK(s, []byte("abc123"), unhex(t, tt.ni), unhex(t, tt.nr))
		k, err := Derive(s, skeyid, make([]byte, 128), 0, 0) // only SKEYID enters HASH_R
		if err != nil {
			t.Fatal(err)
		}
		ckyI := binary.BigEndian.Uint64(unhex(t, tt.ckyI))
		ckyR := binary.BigEndian.Uint64(unhex(t, tt.ckyR))
		got := k.HashR(unhex(t, tt.gxi), unhex(t, tt.gxr), ckyI, ckyR, unhex(t, tt.saiB), unhex(t, tt.idirB))
		if !Equal(unhex(t, tt.want), got) {
			t.Errorf("%s: HASH_R %x, want %s", tt.name, got, tt.want)
		}
		// The SA body of the capture parses, and HASH_I with the
		// same inputs differs (the order matters).
		if _, _, err := isakmp.ParseSA(unhex(t, tt.saiB)); err != nil {
			t.Errorf("%s: capture's SA: %v", tt.name, err)
		}
		if Equal(got, k.HashI(unhex(t, tt.gxi), unhex(t, tt.gxr), ckyI, ckyR, unhex(t, tt.saiB), unhex(t, tt.idirB))) {
			t.Errorf("%s: HASH_I equals HASH_R", tt.name)
		}
		wrong, _ := Derive(s, SKEYIDPSK(s, []byte("abc124"), unhex(t, tt.ni), unhex(t, tt.nr)), nil, 0, 0)
		if Equal(unhex(t, tt.want), wrong.HashR(unhex(t, tt.gxi), unhex(t, tt.gxr), ckyI, ckyR, unhex(t, tt.saiB), unhex(t, tt.idirB))) {
			t.Errorf("%s: a wrong pre-shared key verifies", tt.name)
		}
	}
}

// hm is an independent HMAC over concatenated parts, with crypto/hmac
// directly.
func hm(h func() hash.Hash, key []byte, parts ...[]byte) []byte {
	m := hmac.New(h, key)
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)
}

// TestKeySchedule recomputes RFC 2409 §5 and Appendix B with crypto/hmac
// for the three kinds of Ka: cut from SKEYID_e (AES-128 with SHA-256),
// extended by one block and cut (AES-256 with SHA-1: 20 + 12 bytes) and
// extended to two whole blocks (3DES with MD5: 16 + 8).
func TestKeySchedule(t *testing.T) {
	psk := []byte("secret")
	ni, nr := bytes.Repeat([]byte{1}, 16), bytes.Repeat([]byte{2}, 32)
	gxy := bytes.Repeat([]byte{0xde, 0xad}, 64)
	ckyI, ckyR := uint64(0x0102030405060708), uint64(0x1112131415161718)
	ck := unhex(t, "0102030405060708 1112131415161718")
	tests := []struct {
		encr   transform.ID
		keyLen uint16
		prf    transform.ID
		h      func() hash.Hash
		blocks int // PRF blocks in Ka's extension, 0 = cut from SKEYID_e
	}{
		{transform.EncrAESCBC, 128, transform.PRFHMACSHA2_256, sha256.New, 0},
		{transform.EncrAESCBC, 256, transform.PRFHMACSHA1, sha1.New, 2},
		{transform.EncrAESCBC, 192, transform.PRFHMACSHA1, sha1.New, 2},
		{transform.Encr3DES, 0, transform.PRFHMACMD5, md5.New, 2},
		{transform.Encr3DES, 0, transform.PRFHMACSHA1, sha1.New, 2},
		{transform.EncrAESCBC, 256, transform.PRFHMACMD5, md5.New, 2},
	}
	for _, tt := range tests {
		name := fmt.Sprintf("%v-%d/%v", tt.encr, tt.keyLen, tt.prf)
		s := mustSuite(t, tt.encr, tt.keyLen, tt.prf)
		k, err := DerivePSK(s, psk, ni, nr, gxy, ckyI, ckyR)
		if err != nil {
			t.Fatal(err)
		}
		skeyid := hm(tt.h, psk, ni, nr)
		d := hm(tt.h, skeyid, gxy, ck, []byte{0})
		a := hm(tt.h, skeyid, d, gxy, ck, []byte{1})
		e := hm(tt.h, skeyid, a, gxy, ck, []byte{2})
		if !bytes.Equal(k.SKEYID, skeyid) || !bytes.Equal(k.SKEYIDd, d) || !bytes.Equal(k.SKEYIDa, a) || !bytes.Equal(k.SKEYIDe, e) {
			t.Errorf("%s: SKEYID chain differs", name)
		}
		var ka []byte
		if tt.blocks == 0 {
			ka = e
		} else {
			k1 := hm(tt.h, e, []byte{0})
			ka = append(k1, hm(tt.h, e, k1)...)
		}
		ka = ka[:s.KeyLen()]
		if !bytes.Equal(k.Ka, ka) || len(k.Ka) != s.KeyLen() {
			t.Errorf("%s: Ka %x, want %x", name, k.Ka, ka)
		}
		if got := len(k.SKEYIDe) < s.KeyLen(); got != (tt.blocks > 0) {
			t.Errorf("%s: extension %v", name, got)
		}
	}
}

func TestPhase2Hashes(t *testing.T) {
	s := mustSuite(t, transform.EncrAESCBC, 128, transform.PRFHMACSHA1)
	k, err := DerivePSK(s, []byte("k"), []byte("ni-bytes"), []byte("nr-bytes"), []byte("gxy"), 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	mid := []byte{0xaa, 0xbb, 0xcc, 0xdd}
	ni, nr, rest := []byte("quick-ni"), []byte("quick-nr"), []byte("payloads after HASH")
	checks := []struct {
		name      string
		got, want []byte
	}{
		{"HASH(1)", k.QuickHash1(0xaabbccdd, rest), hm(sha1.New, k.SKEYIDa, mid, rest)},
		{"HASH(2)", k.QuickHash2(0xaabbccdd, ni, rest), hm(sha1.New, k.SKEYIDa, mid, ni, rest)},
		{"HASH(3)", k.QuickHash3(0xaabbccdd, ni, nr), hm(sha1.New, k.SKEYIDa, []byte{0}, mid, ni, nr)},
		{"informational HASH", k.InformationalHash(0xaabbccdd, rest), hm(sha1.New, k.SKEYIDa, mid, rest)},
	}
	for _, c := range checks {
		if !bytes.Equal(c.got, c.want) || len(c.got) != s.HashSize() {
			t.Errorf("%s: %x, want %x", c.name, c.got, c.want)
		}
	}
}

// TestKEYMAT recomputes RFC 2409 §5.5 with crypto/hmac, with and without
// PFS, and checks which SPI each direction uses.
func TestKEYMAT(t *testing.T) {
	s := mustSuite(t, transform.EncrAESCBC, 256, transform.PRFHMACSHA1)
	k, err := DerivePSK(s, []byte("k"), []byte("ni-bytes"), []byte("nr-bytes"), []byte("gxy"), 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	ni, nr, gqm := []byte("nonce-i"), []byte("nonce-r"), []byte("pfs-secret")
	spi := []byte{0xc0, 0, 0, 9}
	for _, g := range [][]byte{nil, gqm} {
		seed := append(append(append(append(append([]byte(nil), g...), 3), spi...), ni...), nr...)
		k1 := hm(sha1.New, k.SKEYIDd, seed)
		k2 := hm(sha1.New, k.SKEYIDd, k1, seed)
		k3 := hm(sha1.New, k.SKEYIDd, k2, seed)
		want := append(append(append([]byte(nil), k1...), k2...), k3...)
		for _, n := range []int{1, 20, 21, 52, 60} {
			if got := k.KEYMAT(3, 0xc0000009, g, ni, nr, n); !bytes.Equal(got, want[:n]) {
				t.Errorf("pfs %v, %d bytes: %x, want %x", g != nil, n, got, want[:n])
			}
		}
	}
	// ESP AES-256-CBC with HMAC-SHA-256: 32 + 32 bytes per direction;
	// I→R uses the responder's SPI, R→I the initiator's.
	encr := transform.Transform{Type: transform.TypeENCR, ID: transform.EncrAESCBC, KeyLen: 256}
	integ := transform.Transform{Type: transform.TypeINTEG, ID: transform.IntegHMACSHA2_256_128}
	c, err := k.ChildKeys(3, encr, integ, 0x11111111, 0x22222222, gqm, ni, nr)
	if err != nil {
		t.Fatal(err)
	}
	toR, toI := k.KEYMAT(3, 0x22222222, gqm, ni, nr, 64), k.KEYMAT(3, 0x11111111, gqm, ni, nr, 64)
	if !bytes.Equal(c.EncrI, toR[:32]) || !bytes.Equal(c.IntegI, toR[32:]) || !bytes.Equal(c.EncrR, toI[:32]) || !bytes.Equal(c.IntegR, toI[32:]) {
		t.Error("ChildKeys slices KEYMAT wrongly")
	}
	// AES-GCM: key and 4-byte salt, no integrity key.
	gcm := transform.Transform{Type: transform.TypeENCR, ID: transform.EncrAESGCM16, KeyLen: 128}
	c, err = k.ChildKeys(3, gcm, transform.Transform{}, 1, 2, nil, ni, nr)
	if err != nil || len(c.EncrI) != 20 || len(c.IntegI) != 0 || len(c.EncrR) != 20 {
		t.Errorf("GCM keys %d/%d/%d, %v", len(c.EncrI), len(c.IntegI), len(c.EncrR), err)
	}
	// AH (protocol 2, no cipher): the integrity key alone, from KEYMAT
	// seeded with protocol 2.
	ah, err := k.ChildKeys(2, transform.Transform{}, integ, 0x11111111, 0x22222222, nil, ni, nr)
	if err != nil || len(ah.EncrI)+len(ah.EncrR) != 0 || !bytes.Equal(ah.IntegI, k.KEYMAT(2, 0x22222222, nil, ni, nr, 32)) ||
		!bytes.Equal(ah.IntegR, k.KEYMAT(2, 0x11111111, nil, ni, nr, 32)) {
		t.Errorf("AH keys: %v", err)
	}
	if _, err := k.ChildKeys(3, transform.Transform{ID: 99}, integ, 1, 2, nil, ni, nr); err == nil {
		t.Error("unknown cipher accepted")
	}
	if s := fmt.Sprintf("%v %+v %#v", c, c, c); strings.Contains(s, hex.EncodeToString(c.EncrI[:4])) || !strings.Contains(s, "redacted") {
		t.Errorf("ChildKeys print %q", s)
	}
}

// TestNATDHash recomputes RFC 3947 §3.2 with the plain hash.
func TestNATDHash(t *testing.T) {
	s := mustSuite(t, transform.EncrAESCBC, 128, transform.PRFHMACSHA1)
	want := sha1.Sum(unhex(t, "0102030405060708 1112131415161718 c6336401 01f4"))
	if got := s.NATDHash(0x0102030405060708, 0x1112131415161718, netip.MustParseAddrPort("198.51.100.1:500")); !bytes.Equal(got, want[:]) {
		t.Errorf("IPv4: %x, want %x", got, want)
	}
	mapped := s.NATDHash(0x0102030405060708, 0x1112131415161718, netip.MustParseAddrPort("[::ffff:198.51.100.1]:500"))
	if !bytes.Equal(mapped, want[:]) {
		t.Error("an IPv4-mapped address hashes differently from the IPv4 one")
	}
	s2 := mustSuite(t, transform.EncrAESCBC, 128, transform.PRFHMACSHA2_256)
	want6 := sha256.Sum256(unhex(t, "0102030405060708 0000000000000000 20010db8000000000000000000000001 1194"))
	if got := s2.NATDHash(0x0102030405060708, 0, netip.MustParseAddrPort("[2001:db8::1]:4500")); !bytes.Equal(got, want6[:]) {
		t.Errorf("IPv6 SHA-256: %x", got)
	}
}

func TestNewSuiteRefuses(t *testing.T) {
	for _, c := range []struct {
		encr transform.Transform
		prf  transform.ID
	}{
		{transform.Transform{ID: transform.EncrAESGCM16, KeyLen: 128}, transform.PRFHMACSHA1},
		{transform.Transform{ID: transform.EncrAESCBC}, transform.PRFHMACSHA1},
		{transform.Transform{ID: transform.EncrAESCBC, KeyLen: 128}, transform.PRFAES128XCBC},
		{transform.Transform{ID: transform.Encr3DES}, 99},
	} {
		if _, err := NewSuite(c.encr, c.prf); err == nil {
			t.Errorf("%v/%v accepted", c.encr, c.prf)
		}
	}
	if _, err := Derive(Suite{}, []byte("x"), nil, 0, 0); err == nil {
		t.Error("Derive with a zero Suite")
	}
}

// TestIVChain follows main mode and two interleaved quick modes.
func TestIVChain(t *testing.T) {
	s := mustSuite(t, transform.Encr3DES, 0, transform.PRFHMACMD5)
	gxi, gxr := []byte("g^xi"), []byte("g^xr")
	c := s.NewIVChain(gxi, gxr, 2)
	first := md5.Sum([]byte("g^xig^xr"))
	if !bytes.Equal(c.IV(0), first[:8]) {
		t.Fatalf("initial IV %x", c.IV(0))
	}
	last5 := []byte("mm5-last")
	c.Update(0, last5)
	last6 := []byte("mm6-last")
	c.Update(0, last6)
	if !bytes.Equal(c.IV(0), last6) {
		t.Fatal("phase 1 IV is not the last block")
	}
	qm := func(mid uint32) []byte {
		h := md5.Sum(append(append([]byte(nil), last6...), byte(mid>>24), byte(mid>>16), byte(mid>>8), byte(mid)))
		return h[:8]
	}
	if !bytes.Equal(c.IV(7), qm(7)) || !bytes.Equal(c.IV(8), qm(8)) {
		t.Fatal("exchange IVs are not hash(phase 1 IV | M-ID)")
	}
	c.Update(7, []byte("qm1-last"))
	if !bytes.Equal(c.IV(7), []byte("qm1-last")) || !bytes.Equal(c.IV(8), qm(8)) {
		t.Fatal("exchanges share state")
	}
	c.Update(7, []byte("short")) // not one block: ignored
	if !bytes.Equal(c.IV(7), []byte("qm1-last")) {
		t.Fatal("a wrong-length block moved the chain")
	}
	// With room for two exchanges, using 8 and 9 evicts 7 (the least
	// recently used): its state is gone and its IV starts over from
	// the phase 1 IV, which exchanges never touch.
	_ = c.IV(8)
	_ = c.IV(9)
	if !bytes.Equal(c.IV(7), qm(7)) || !bytes.Equal(c.IV(0), last6) {
		t.Fatal("eviction or phase 1 IV wrong")
	}
	c.Update(9, []byte("qm9-last"))
	c.Forget(9)
	if !bytes.Equal(c.IV(9), qm(9)) {
		t.Fatal("Forget kept the exchange")
	}
	iv := c.IV(0)
	iv[0] ^= 1
	if bytes.Equal(c.IV(0), iv) {
		t.Fatal("IV returned the chain's own slice")
	}
}

func TestEncryptDecrypt(t *testing.T) {
	s := mustSuite(t, transform.EncrAESCBC, 128, transform.PRFHMACSHA1)
	k, err := DerivePSK(s, []byte("k"), []byte("ni-bytes"), []byte("nr-bytes"), []byte("gxy"), 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	iv := bytes.Repeat([]byte{7}, 16)
	h := isakmp.Header{CookieI: 1, CookieR: 2, Exchange: isakmp.ExchangeIdentityProtection}
	// Chains of every length modulo the block size get 1 to 16 bytes of
	// zero padding.
	for n := 8; n < 8+16; n++ {
		plain := isakmp.AppendMessage(nil, h, isakmp.ID{Type: isakmp.IDFQDN, Data: bytes.Repeat([]byte{'a'}, n)})
		chain := bytes.Clone(plain[isakmp.HeaderLen:])
		msg, next, err := k.Encrypt(bytes.Clone(plain), iv)
		if err != nil {
			t.Fatal(err)
		}
		pad := len(msg) - len(plain)
		if pad < 1 || pad > 16 || (len(msg)-isakmp.HeaderLen)%16 != 0 || !bytes.Equal(next, msg[len(msg)-16:]) {
			t.Fatalf("chain of %d: %d bytes of padding, next %x", len(chain), pad, next)
		}
		m, _, err := isakmp.ParseMessage(msg)
		if err != nil || !m.Encrypted() || int(m.Header.Length) != len(msg) {
			t.Fatalf("encrypted message: %v %+v", err, m.Header)
		}
		got, err := k.Decrypt(&m, iv)
		if err != nil || !bytes.Equal(got, next) || !bytes.Equal(m.Chain, chain) || !bytes.Equal(m.Body[len(chain):], make([]byte, pad)) {
			t.Fatalf("decrypt: %v", err)
		}
		if _, err := k.Decrypt(&m, iv); err == nil {
			t.Fatal("decrypted twice")
		}
	}
	// A different key (a pre-shared key mismatch) does not decrypt into
	// a payload chain.
	other, _ := DerivePSK(s, []byte("K"), []byte("ni-bytes"), []byte("nr-bytes"), []byte("gxy"), 1, 2)
	msg, _, _ := k.Encrypt(isakmp.AppendMessage(nil, h, isakmp.ID{Type: isakmp.IDFQDN, Data: []byte("peer")}, isakmp.Hash{Data: make([]byte, 20)}), iv)
	m, _, _ := isakmp.ParseMessage(msg)
	if _, err := other.Decrypt(&m, iv); !errors.Is(err, isakmp.ErrPayloadMalformed) || !strings.Contains(err.Error(), "pre-shared key") {
		t.Fatalf("wrong key: %v", err)
	}
	// Bodies that are not whole blocks, and unencrypted messages, are
	// dropped.
	bad := append(isakmp.AppendHeader(nil, isakmp.Header{CookieI: 1, NextPayload: isakmp.PayloadID, Flags: isakmp.FlagEncryption, Length: 28 + 15}), make([]byte, 15)...)
	m, _, _ = isakmp.ParseMessage(bad)
	if _, err := k.Decrypt(&m, iv); !errors.Is(err, isakmp.ErrDrop) {
		t.Fatalf("15-byte body: %v", err)
	}
	m, _, _ = isakmp.ParseMessage(isakmp.AppendMessage(nil, h, isakmp.Nonce{Data: make([]byte, 8)}))
	if _, err := k.Decrypt(&m, iv); !errors.Is(err, isakmp.ErrDrop) {
		t.Fatalf("unencrypted: %v", err)
	}
	if _, _, err := k.Encrypt(make([]byte, 10), iv); err == nil {
		t.Fatal("Encrypt of less than a header")
	}
	if _, _, err := k.Encrypt(isakmp.AppendMessage(nil, h), iv[:8]); err == nil {
		t.Fatal("Encrypt with a short IV")
	}
}

func TestKeysRedactedAndZeroed(t *testing.T) {
	s := mustSuite(t, transform.Encr3DES, 0, transform.PRFHMACMD5)
	k, err := DerivePSK(s, []byte("k"), []byte("ni-bytes"), []byte("nr-bytes"), []byte("gxy"), 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"%v", "%+v", "%#v", "%s"} {
		for _, v := range []any{k, *k} {
			if p := fmt.Sprintf(f, v); strings.Contains(p, hex.EncodeToString(k.Ka[:4])) || !strings.Contains(p, "redacted") {
				t.Errorf("%s prints %q", f, p)
			}
		}
	}
	all := k.all
	k.Zero()
	if !bytes.Equal(all, make([]byte, len(all))) || k.SKEYIDa != nil || k.block != nil {
		t.Error("Zero left key material")
	}
}

// fuzzKeys are the keys FuzzDecrypt decrypts with, and its seed: a quick
// mode body encrypted with them.
func fuzzKeys(t testing.TB) (*Keys, []byte) {
	s := mustSuite(t, transform.EncrAESCBC, 128, transform.PRFHMACSHA1)
	k, err := DerivePSK(s, []byte("k"), []byte("ni-bytes"), []byte("nr-bytes"), []byte("gxy"), 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	h := isakmp.Header{CookieI: 1, CookieR: 2, Exchange: isakmp.ExchangeQuickMode, MessageID: 9}
	msg, _, err := k.Encrypt(isakmp.AppendMessage(nil, h, isakmp.Hash{Data: make([]byte, 20)}, isakmp.Nonce{Data: make([]byte, 16)}), make([]byte, 16))
	if err != nil {
		t.Fatal(err)
	}
	return k, msg[isakmp.HeaderLen:]
}

// FuzzDecrypt feeds arbitrary ciphertext through Decrypt: it must fail
// cleanly or yield a payload chain, never panic.
func FuzzDecrypt(f *testing.F) {
	k, seed := fuzzKeys(f)
	f.Add(seed, uint8(isakmp.PayloadHash))
	iv := make([]byte, 16)
	h := isakmp.Header{CookieI: 1, CookieR: 2, Exchange: isakmp.ExchangeQuickMode, MessageID: 9}
	f.Fuzz(func(t *testing.T, body []byte, first uint8) {
		hh := h
		hh.Flags, hh.NextPayload, hh.Length = isakmp.FlagEncryption, isakmp.PayloadType(first), uint32(isakmp.HeaderLen+len(body))
		m, _, err := isakmp.ParseMessage(append(isakmp.AppendHeader(nil, hh), body...))
		if err != nil {
			return
		}
		if _, err := k.Decrypt(&m, iv); err == nil {
			_ = isakmp.Validate(&m)
			_, _ = m.AfterHash()
		} else if !errors.As(err, new(*isakmp.Error)) {
			t.Fatalf("error %T", err)
		}
	})
}

// TestWriteFuzzSeeds regenerates the committed seed corpus when
// KEYMAT_WRITE_FUZZ_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("KEYMAT_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set KEYMAT_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz")
	}
	_, seed := fuzzKeys(t)
	dir := filepath.Join("testdata", "fuzz", "FuzzDecrypt")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\nbyte(%q)\n", seed, byte(isakmp.PayloadHash))
	if err := os.WriteFile(filepath.Join(dir, "seed00"), []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}
