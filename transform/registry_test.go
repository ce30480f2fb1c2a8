package transform

import (
	"errors"
	"strings"
	"testing"
)

func TestNames(t *testing.T) {
	cases := []struct {
		t    Transform
		want string
	}{
		{enc(EncrAESGCM16, 128), "aes128gcm16"},
		{enc(EncrAESGCM12, 256), "aes256gcm12"},
		{enc(EncrAESGCM8, 192), "aes192gcm8"},
		{enc(EncrAESCBC, 256), "aes256"},
		{enc(EncrAESCTR, 128), "aes128ctr"},
		{enc(EncrChaCha20Poly1305, 0), "chacha20poly1305"},
		{enc(Encr3DES, 0), "3des"},
		{enc(EncrNull, 0), "null"},
		{integ(IntegHMACSHA2_256_128), "sha256"},
		{integ(IntegHMACSHA2_384_192), "sha384"},
		{integ(IntegHMACSHA2_512_256), "sha512"},
		{integ(IntegHMACSHA1_96), "sha1"},
		{integ(IntegHMACMD5_96), "md5"},
		{integ(IntegAESXCBC96), "aesxcbc"},
		{integ(IntegHMACSHA2_256_96), "sha256_96"},
		{Transform{Type: TypePRF, ID: PRFHMACSHA2_256}, "prfsha256"},
		{Transform{Type: TypePRF, ID: PRFAES128XCBC}, "prfaesxcbc"},
		{Transform{Type: TypePRF, ID: PRFAES128CMAC}, "prfaescmac"},
		{Transform{Type: TypeKE, ID: KEMODP2048}, "modp2048"},
		{Transform{Type: TypeKE, ID: KEMODP2048S256}, "modp2048s256"},
		{Transform{Type: TypeKE, ID: KEECP384}, "ecp384"},
		{Transform{Type: TypeKE, ID: KECurve25519}, "x25519"},
		{Transform{Type: TypeESN, ID: ESNYes}, "esn"},
		{Transform{Type: TypeESN, ID: ESNNo}, "noesn"},
		{enc(17, 0), "encr-id-17"},
		{Transform{Type: 9, ID: KEMLKEM768}, "ke4_mlkem768"}, // ADDKE4 (RFC 9370)
		{Transform{Type: 13, ID: 1}, "type13-id-1"},
	}
	for _, c := range cases {
		if got := c.t.String(); got != c.want {
			t.Errorf("%+v: %q, want %q", c.t, got, c.want)
		}
	}
}

func TestKeymatLen(t *testing.T) {
	cases := []struct {
		t    Transform
		want int
	}{
		{enc(EncrAESGCM16, 128), 20}, // RFC 4106 §8.1: key + 4-byte salt
		{enc(EncrAESGCM12, 256), 36},
		{enc(EncrAESCTR, 192), 28}, // RFC 3686 §5.1: key + 4-byte nonce
		{enc(EncrAESCBC, 192), 24},
		{enc(EncrChaCha20Poly1305, 0), 36}, // RFC 7634 §2
		{enc(Encr3DES, 0), 24},
		{enc(EncrNull, 0), 0},
		{integ(IntegHMACSHA2_256_128), 32}, // RFC 4868 §2.1.1
		{integ(IntegHMACSHA2_384_192), 48},
		{integ(IntegHMACSHA2_512_256), 64},
		{integ(IntegHMACSHA1_96), 20},
		{integ(IntegHMACMD5_96), 16},
		{integ(IntegAESXCBC96), 16},
		{integ(IntegHMACSHA2_256_96), 32},
		{Transform{Type: TypePRF, ID: PRFHMACSHA2_512}, 64},
		{Transform{Type: TypePRF, ID: PRFAES128XCBC}, 16},
		{Transform{Type: TypeKE, ID: KEMODP2048}, 0},
		{Transform{Type: TypeESN, ID: ESNYes}, 0},
	}
	for _, c := range cases {
		got, err := KeymatLen(c.t)
		if err != nil || got != c.want {
			t.Errorf("%v: %d, %v; want %d", c.t, got, err, c.want)
		}
	}
}

func TestLookupErrors(t *testing.T) {
	cases := []struct {
		t    Transform
		want error
	}{
		{enc(EncrAESCBC, 0), ErrKeyLength},
		{enc(EncrAESCBC, 512), ErrKeyLength},
		{enc(Encr3DES, 128), ErrKeyLength},
		{enc(EncrNull, 128), ErrKeyLength},
		{integ(IntegHMACSHA1_96), nil},
		{Transform{Type: TypeINTEG, ID: IntegHMACSHA1_96, KeyLen: 160}, ErrKeyLength},
		{Transform{Type: TypePRF, ID: PRFHMACSHA1, KeyLen: 128}, ErrKeyLength},
		{Transform{Type: TypePRF, ID: 3}, ErrUnsupported}, // PRF_HMAC_TIGER
		{Transform{Type: TypeKE, ID: 33}, ErrUnsupported},
		{Transform{Type: TypeESN, ID: 2}, ErrUnsupported},
		{Transform{Type: 0, ID: 1}, ErrUnsupported},
		{Transform{Type: 6, ID: 1}, ErrUnsupported},
	}
	for _, c := range cases {
		_, err := Lookup(c.t)
		if c.want == nil {
			if err != nil {
				t.Errorf("%v: unexpected %v", c.t, err)
			}
			continue
		}
		if !errors.Is(err, c.want) {
			t.Errorf("%v: %v, want %v", c.t, err, c.want)
		}
		if err != nil && !strings.Contains(err.Error(), "id ") {
			t.Errorf("%v: error %q does not name the ID", c.t, err)
		}
	}
	if _, err := NewPRF(99); !errors.Is(err, ErrUnsupported) {
		t.Errorf("NewPRF(99): %v", err)
	}
}

// TestSupportedAreConstructible makes sure Supported never lists something
// the constructors refuse.
func TestSupportedAreConstructible(t *testing.T) {
	for _, typ := range []Type{TypeENCR, TypeINTEG, TypePRF, TypeKE, TypeESN} {
		list := Supported(typ)
		if len(list) == 0 {
			t.Fatalf("nothing supported for %v", typ)
		}
		for _, tr := range list {
			if _, err := Lookup(tr); err != nil {
				t.Errorf("%v: %v", tr, err)
			}
			switch typ {
			case TypePRF:
				if _, err := NewPRF(tr.ID); err != nil {
					t.Errorf("%v: %v", tr, err)
				}
			case TypeENCR, TypeINTEG:
				// Covered by allSuites in protector_test.go.
			}
		}
	}
}

// TestErrorsCarryNoSecrets checks that a key-length error does not echo key
// bytes.
func TestErrorsCarryNoSecrets(t *testing.T) {
	key := []byte("SECRETSECRETSECRETSECRET")
	_, err := NewProtector(enc(EncrAESCBC, 128), integ(IntegHMACSHA1_96), key, key)
	if err == nil {
		t.Fatal("expected an error")
	}
	if strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "5345435245") {
		t.Fatalf("error leaks key material: %v", err)
	}
}
