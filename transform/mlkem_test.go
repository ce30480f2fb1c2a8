package transform

import (
	"bytes"
	"crypto/mlkem"
	"crypto/mlkem/mlkemtest"
	"encoding/json"
	"errors"
	"os"
	"testing"

	"github.com/cloudflare/circl/kem/mlkem/mlkem512"
)

// acvpVectors are FIPS 203 known answers from NIST's ACVP server
// (testdata/mlkem_acvp.json names the source).
type acvpVectors struct {
	KeyGen []struct {
		TcID         int    `json:"tcId"`
		ParameterSet string `json:"parameterSet"`
		D, Z, EK     string
	} `json:"keyGen"`
	Encapsulation []struct {
		TcID         int    `json:"tcId"`
		ParameterSet string `json:"parameterSet"`
		EK, M, C, K  string
	} `json:"encapsulation"`
}

var kemByName = map[string]ID{"ML-KEM-512": KEMLKEM512, "ML-KEM-768": KEMLKEM768, "ML-KEM-1024": KEMLKEM1024}

func loadACVP(t *testing.T) acvpVectors {
	t.Helper()
	b, err := os.ReadFile("testdata/mlkem_acvp.json")
	if err != nil {
		t.Fatal(err)
	}
	var v acvpVectors
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.KeyGen) != 6 || len(v.Encapsulation) != 6 {
		t.Fatalf("%d keyGen and %d encapsulation vectors, want 6 each", len(v.KeyGen), len(v.Encapsulation))
	}
	return v
}

// deterministicEncapsulate encapsulates with the message m of a vector,
// through the libraries' test hooks (our Encapsulate draws m at random).
func deterministicEncapsulate(t *testing.T, g ID, ek, m []byte) (c, k []byte) {
	t.Helper()
	switch g {
	case KEMLKEM768:
		key, err := mlkem.NewEncapsulationKey768(ek)
		if err != nil {
			t.Fatal(err)
		}
		k, c, err = mlkemtest.Encapsulate768(key, m)
		if err != nil {
			t.Fatal(err)
		}
	case KEMLKEM1024:
		key, err := mlkem.NewEncapsulationKey1024(ek)
		if err != nil {
			t.Fatal(err)
		}
		k, c, err = mlkemtest.Encapsulate1024(key, m)
		if err != nil {
			t.Fatal(err)
		}
	case KEMLKEM512:
		var pk mlkem512.PublicKey
		if err := pk.Unpack(ek); err != nil {
			t.Fatal(err)
		}
		c, k = make([]byte, mlkem512.CiphertextSize), make([]byte, mlkem512.SharedKeySize)
		pk.EncapsulateTo(c, k, m)
	}
	return c, k
}

// TestMLKEMKeyGenKAT: NewKEM from the seed d || z gives FIPS 203's
// encapsulation key, and decapsulates what is encapsulated to it.
func TestMLKEMKeyGenKAT(t *testing.T) {
	for _, v := range loadACVP(t).KeyGen {
		g := kemByName[v.ParameterSet]
		seed := append(unhex(t, v.D), unhex(t, v.Z)...)
		k, err := NewKEM(g, seed)
		if err != nil {
			t.Fatalf("tc %d: %v", v.TcID, err)
		}
		if !bytes.Equal(k.PublicKey(), unhex(t, v.EK)) {
			t.Errorf("tc %d %s: encapsulation key differs", v.TcID, v.ParameterSet)
		}
		c, want := deterministicEncapsulate(t, g, k.PublicKey(), bytes.Repeat([]byte{byte(v.TcID)}, 32))
		got, err := k.SharedSecret(c)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("tc %d %s: decapsulation: %v", v.TcID, v.ParameterSet, err)
		}
	}
}

// TestMLKEMEncapsulationKAT: the libraries under Encapsulate produce
// FIPS 203's ciphertext and secret for the vectors' key and message.
func TestMLKEMEncapsulationKAT(t *testing.T) {
	for _, v := range loadACVP(t).Encapsulation {
		g := kemByName[v.ParameterSet]
		c, k := deterministicEncapsulate(t, g, unhex(t, v.EK), unhex(t, v.M))
		if !bytes.Equal(c, unhex(t, v.C)) || !bytes.Equal(k, unhex(t, v.K)) {
			t.Errorf("tc %d %s: ciphertext or shared secret differs", v.TcID, v.ParameterSet)
		}
		if _, _, err := Encapsulate(g, unhex(t, v.EK)); err != nil {
			t.Errorf("tc %d %s: Encapsulate refused a valid key: %v", v.TcID, v.ParameterSet, err)
		}
	}
}

func TestMLKEMExchange(t *testing.T) {
	for _, g := range []ID{KEMLKEM512, KEMLKEM768, KEMLKEM1024} {
		if !IsKEM(g) {
			t.Errorf("IsKEM(%d) false", g)
		}
		init, err := NewKEM(g, nil)
		if err != nil {
			t.Fatal(err)
		}
		ct, ss, err := Encapsulate(g, init.PublicKey())
		if err != nil {
			t.Fatal(err)
		}
		got, err := init.SharedSecret(ct)
		if err != nil || !bytes.Equal(got, ss) || len(ss) != 32 || init.Group() != g {
			t.Errorf("%d: secrets differ: %v", g, err)
		}
		// Implicit rejection (FIPS 203 §6.3): a changed ciphertext gives
		// another secret, not an error.
		bad := bytes.Clone(ct)
		bad[0] ^= 1
		if other, err := init.SharedSecret(bad); err != nil || bytes.Equal(other, ss) {
			t.Errorf("%d: tampered ciphertext: %v", g, err)
		}
		if _, err := init.SharedSecret(ct[1:]); !errors.Is(err, ErrInvalidPublic) {
			t.Errorf("%d: short ciphertext: %v", g, err)
		}
		if _, _, err := Encapsulate(g, init.PublicKey()[1:]); !errors.Is(err, ErrInvalidPublic) {
			t.Errorf("%d: short key: %v", g, err)
		}
		// FIPS 203 §7.2 modulus check: a coefficient of 4095 ≥ q.
		ek := bytes.Clone(init.PublicKey())
		ek[0], ek[1] = 0xff, ek[1]|0x0f
		if _, _, err := Encapsulate(g, ek); !errors.Is(err, ErrInvalidPublic) {
			t.Errorf("%d: key with a coefficient ≥ q accepted: %v", g, err)
		}
		init.Close()
		if _, err := init.SharedSecret(ct); !errors.Is(err, ErrClosed) {
			t.Errorf("%d: after Close: %v", g, err)
		}
	}
	if IsKEM(KECurve25519) || IsKEM(KECurve448) {
		t.Error("IsKEM true for a Diffie-Hellman group")
	}
	if _, err := NewKEM(KECurve25519, nil); !errors.Is(err, ErrUnsupported) {
		t.Errorf("NewKEM(x25519): %v", err)
	}
}
