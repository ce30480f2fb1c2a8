package message

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"testing"

	"github.com/ipsecgw/ipsecgw/transform"
)

// TestFollowupKEKeyDerivation checks the order in which the shared secrets
// of additional key exchanges run in IKE_FOLLOWUP_KE enter the keys (RFC
// 9370 §2.2.4), against HMAC-SHA-256 computed here by hand:
//
//	SKEYSEED = prf(SK_d (old), SK(0) | Ni | Nr | SK(1) | ... | SK(n))
//	KEYMAT   = prf+(SK_d, SK(0) | Ni | Nr | SK(1) | ... | SK(n))
//
// and that without them both are RFC 7296's (§2.17, §2.18).
func TestFollowupKEKeyDerivation(t *testing.T) {
	f := mustPRF(t, transform.PRFHMACSHA2_256)
	skd := bytes.Repeat([]byte{0x0d}, 32)
	sk0, ni, nr := []byte("x25519 secret"), []byte("nonce i"), []byte("nonce r")
	sk1, sk2 := []byte("ml-kem-768 secret"), []byte("ml-kem-1024 secret")
	mac := func(key []byte, parts ...[]byte) []byte {
		h := hmac.New(sha256.New, key)
		for _, p := range parts {
			h.Write(p)
		}
		return h.Sum(nil)
	}

	want := mac(skd, sk0, ni, nr, sk1, sk2)
	if got := RekeySKEYSEED(f, skd, sk0, ni, nr, sk1, sk2); !bytes.Equal(got, want) {
		t.Errorf("SKEYSEED with two additional key exchanges\n got %x\nwant %x", got, want)
	}
	if got, plain := RekeySKEYSEED(f, skd, sk0, ni, nr), mac(skd, sk0, ni, nr); !bytes.Equal(got, plain) {
		t.Errorf("SKEYSEED without additional key exchanges\n got %x\nwant %x", got, plain)
	}

	// AES-GCM-16 with a 256-bit key: 36 bytes per direction, 72 in all,
	// three HMAC-SHA-256 blocks of prf+.
	encr := transform.Transform{Type: transform.TypeENCR, ID: transform.EncrAESGCM16, KeyLen: 256}
	integ := transform.Transform{Type: transform.TypeINTEG, ID: transform.IntegNone}
	seed := bytes.Join([][]byte{sk0, ni, nr, sk1, sk2}, nil)
	var keymat, prev []byte
	for i := byte(1); len(keymat) < 72; i++ {
		prev = mac(skd, prev, seed, []byte{i})
		keymat = append(keymat, prev...)
	}
	k, err := DeriveChildKeys(f, skd, encr, integ, sk0, ni, nr, sk1, sk2)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(k.EncrI, keymat[:36]) || !bytes.Equal(k.EncrR, keymat[36:72]) {
		t.Errorf("CHILD SA keys with two additional key exchanges\n got %x %x\nwant %x", k.EncrI, k.EncrR, keymat[:72])
	}
	plain, err := DeriveChildKeys(f, skd, encr, integ, sk0, ni, nr)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(plain.EncrI, k.EncrI) {
		t.Errorf("the additional shared secrets change nothing")
	}
}
