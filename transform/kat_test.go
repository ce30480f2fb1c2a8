package transform

import (
	"bytes"
	"encoding/hex"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex in test table: %v", err)
	}
	return b
}

// dummyInteg is an integrity transform and key for driving cipher-only
// vectors through a Protector (which always authenticates).
var dummyInteg = Transform{Type: TypeINTEG, ID: IntegHMACSHA2_256_128}

// TestCipherVectors checks AES-CBC, AES-CTR and 3DES-CBC against published
// vectors through the Protector's in-place encryption (header length 0, the
// ICV following the ciphertext).
func TestCipherVectors(t *testing.T) {
	for _, v := range cipherVectors {
		t.Run(v.src, func(t *testing.T) {
			encr := Transform{Type: TypeENCR, ID: v.encr, KeyLen: v.keyLen}
			p, err := NewProtector(encr, dummyInteg, unhex(t, v.key), make([]byte, 32))
			if err != nil {
				t.Fatal(err)
			}
			iv, pt, ct := unhex(t, v.iv), unhex(t, v.plain), unhex(t, v.ciphertext)
			pkt := append(append(append([]byte{}, iv...), pt...), make([]byte, p.ICVSize())...)
			if err := p.Seal(pkt, 0, nil, nil); err != nil {
				t.Fatal(err)
			}
			if got := pkt[len(iv) : len(iv)+len(pt)]; !bytes.Equal(got, ct) {
				t.Fatalf("ciphertext\n got %x\nwant %x", got, ct)
			}
			if err := p.Open(pkt, 0, nil, nil); err != nil {
				t.Fatal(err)
			}
			if got := pkt[len(iv) : len(iv)+len(pt)]; !bytes.Equal(got, pt) {
				t.Fatalf("decrypted\n got %x\nwant %x", got, pt)
			}
		})
	}
}

// TestAEADVectors checks AES-GCM and ChaCha20-Poly1305 in RFC 4106 / RFC
// 7634 framing: key||salt, explicit 8-byte IV, separate AAD.
func TestAEADVectors(t *testing.T) {
	for _, v := range aeadVectors {
		t.Run(v.src, func(t *testing.T) {
			encr := Transform{Type: TypeENCR, ID: v.encr, KeyLen: v.keyLen}
			p, err := NewProtector(encr, Transform{}, unhex(t, v.key), nil)
			if err != nil {
				t.Fatal(err)
			}
			aad, iv, pt, ct := unhex(t, v.aad), unhex(t, v.iv), unhex(t, v.plain), unhex(t, v.ciphertext)
			// Header = AAD in place, then IV, payload, ICV.
			n := len(aad) + len(iv) + len(pt) + p.ICVSize()
			pkt := make([]byte, n, n+8) // tailroom: GCM-8 takes its in-place path
			copy(pkt, aad)
			copy(pkt[len(aad):], iv)
			copy(pkt[len(aad)+len(iv):], pt)
			if err := p.Seal(pkt, len(aad), nil, nil); err != nil {
				t.Fatal(err)
			}
			if got := pkt[len(aad)+len(iv):]; !bytes.Equal(got, ct) {
				t.Fatalf("ciphertext||tag\n got %x\nwant %x", got, ct)
			}
			if err := p.Open(pkt, len(aad), nil, nil); err != nil {
				t.Fatal(err)
			}
			if got := pkt[len(aad)+len(iv) : len(pkt)-p.ICVSize()]; !bytes.Equal(got, pt) {
				t.Fatalf("decrypted\n got %x\nwant %x", got, pt)
			}
		})
	}
}

// TestIntegVectors checks the truncated MACs (RFC 2202, RFC 4868, RFC 3566)
// through a NULL-encryption Protector, whose ICV is the MAC of the whole
// packet.
func TestIntegVectors(t *testing.T) {
	for _, v := range integVectors {
		t.Run(v.src, func(t *testing.T) {
			integ := Transform{Type: TypeINTEG, ID: v.id}
			p, err := NewProtector(Transform{Type: TypeENCR, ID: EncrNull}, integ, nil, unhex(t, v.key))
			if err != nil {
				t.Fatal(err)
			}
			data, icv := unhex(t, v.data), unhex(t, v.icv)
			if p.ICVSize() != len(icv) {
				t.Fatalf("ICVSize %d, vector has %d", p.ICVSize(), len(icv))
			}
			pkt := append(append([]byte{}, data...), make([]byte, len(icv))...)
			if err := p.Seal(pkt, 0, nil, nil); err != nil {
				t.Fatal(err)
			}
			if got := pkt[len(data):]; !bytes.Equal(got, icv) {
				t.Fatalf("icv\n got %x\nwant %x", got, icv)
			}
			if err := p.Open(pkt, 0, nil, nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestSHA256_96 checks strongSwan's sha256_96: HMAC-SHA-256 truncated to 96
// bits, i.e. the first 12 bytes of the RFC 4231 test case 2 output.
func TestSHA256_96(t *testing.T) {
	key := []byte("JefeJefeJefeJefeJefeJefeJefeJefe")
	p, err := NewProtector(Transform{Type: TypeENCR, ID: EncrNull}, Transform{Type: TypeINTEG, ID: IntegHMACSHA2_256_96}, nil, key)
	if err != nil {
		t.Fatal(err)
	}
	full, err := NewPRF(PRFHMACSHA2_256)
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("what do ya want for nothing?")
	m := full.New(key)
	m.Write(data)
	want := m.Sum(nil)[:12]
	pkt := append(append([]byte{}, data...), make([]byte, 12)...)
	if err := p.Seal(pkt, 0, nil, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pkt[len(data):], want) {
		t.Fatalf("icv %x, want %x", pkt[len(data):], want)
	}
}

// TestPRFVectors checks the PRFs, including the RFC 4434 and RFC 4615 key
// length cases (10- and 18-byte keys).
func TestPRFVectors(t *testing.T) {
	for _, v := range prfVectors {
		t.Run(v.src, func(t *testing.T) {
			p, err := NewPRF(v.id)
			if err != nil {
				t.Fatal(err)
			}
			m := p.New(unhex(t, v.key))
			data := unhex(t, v.data)
			// Write in two pieces to exercise the streaming path.
			m.Write(data[:len(data)/2])
			m.Write(data[len(data)/2:])
			got := m.Sum(nil)
			if len(got) != p.Size() {
				t.Fatalf("output %d bytes, Size() %d", len(got), p.Size())
			}
			want := unhex(t, v.out)
			if !bytes.Equal(got[:len(want)], want) {
				t.Fatalf("\n got %x\nwant %x", got, want)
			}
			// Reset returns to the keyed state.
			m.Reset()
			m.Write(data)
			if again := m.Sum(nil); !bytes.Equal(again, got) {
				t.Fatalf("after Reset %x, want %x", again, got)
			}
			m.Zero()
		})
	}
}

// TestPRFFullOutput pins full-length HMAC-SHA2 PRF outputs (RFC 4231 test
// case 2), since the table above lists some outputs only as prefixes.
func TestPRFFullOutput(t *testing.T) {
	for _, c := range []struct {
		id   ID
		want string
	}{
		{PRFHMACSHA2_256, "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
		{PRFHMACSHA2_384, "af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e8e2240ca5e69e2c78b3239ecfab21649"},
		{PRFHMACSHA2_512, "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea2505549758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737"},
	} {
		p, _ := NewPRF(c.id)
		m := p.New([]byte("Jefe"))
		m.Write([]byte("what do ya want for nothing?"))
		if got := hex.EncodeToString(m.Sum(nil)); got != c.want {
			t.Errorf("%v: got %s want %s", c.id, got, c.want)
		}
	}
}

// TestKEVectors checks MODP (RFC 5114), ECP and Curve25519 agreement from
// fixed private keys in both directions.
func TestKEVectors(t *testing.T) {
	for _, v := range keVectors {
		t.Run(v.src, func(t *testing.T) {
			i, err := newKeyExchange(v.group, unhex(t, v.privI))
			if err != nil {
				t.Fatal(err)
			}
			r, err := newKeyExchange(v.group, unhex(t, v.privR))
			if err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(i.PublicKey()); got != v.pubI {
				t.Fatalf("pub_i\n got %s\nwant %s", got, v.pubI)
			}
			if got := hex.EncodeToString(r.PublicKey()); got != v.pubR {
				t.Fatalf("pub_r\n got %s\nwant %s", got, v.pubR)
			}
			si, err := i.SharedSecret(r.PublicKey())
			if err != nil {
				t.Fatal(err)
			}
			sr, err := r.SharedSecret(i.PublicKey())
			if err != nil {
				t.Fatal(err)
			}
			want := unhex(t, v.shared)
			if !bytes.Equal(si, want) || !bytes.Equal(sr, want) {
				t.Fatalf("shared\n i %x\n r %x\nwant %x", si, sr, want)
			}
		})
	}
}
