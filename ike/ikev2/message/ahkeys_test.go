package message

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"testing"

	"github.com/ipsecgw/ipsecgw/transform"
)

// TestDeriveChildKeysAH: an AH CHILD SA (no encryption transform) takes
// only integrity keys from KEYMAT, initiator→responder first (RFC 7296
// §2.17). KEYMAT = prf+(SK_d, Ni | Nr) is recomputed here with crypto/hmac.
func TestDeriveChildKeysAH(t *testing.T) {
	f, err := transform.NewPRF(transform.PRFHMACSHA2_256)
	if err != nil {
		t.Fatal(err)
	}
	skd := bytes.Repeat([]byte{7}, 32)
	ni, nr := bytes.Repeat([]byte{1}, 16), bytes.Repeat([]byte{2}, 16)
	k, err := DeriveChildKeys(f, skd, transform.Transform{}, transform.Transform{Type: transform.TypeINTEG, ID: transform.IntegHMACSHA2_256_128}, nil, ni, nr)
	if err != nil {
		t.Fatal(err)
	}
	var keymat, prev []byte
	for i := byte(1); len(keymat) < 64; i++ {
		m := hmac.New(sha256.New, skd)
		m.Write(prev)
		m.Write(ni)
		m.Write(nr)
		m.Write([]byte{i})
		prev = m.Sum(nil)
		keymat = append(keymat, prev...)
	}
	if len(k.EncrI)+len(k.EncrR) != 0 || !bytes.Equal(k.IntegI, keymat[:32]) || !bytes.Equal(k.IntegR, keymat[32:64]) {
		t.Fatalf("AH keys: encr %d/%d bytes, integ i %x r %x; want KEYMAT %x", len(k.EncrI), len(k.EncrR), k.IntegI, k.IntegR, keymat[:64])
	}
}
