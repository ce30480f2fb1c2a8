package transform

import (
	"bytes"
	"fmt"
	"testing"
)

// TestAESCMAC96Vectors checks AES-CMAC-96 (RFC 4494) with its §4 test
// cases: the four examples of RFC 4493 §4 with the MAC truncated to its
// first 96 bits, through a NULL-encryption Protector (the ICV is the MAC
// of the whole packet) and through Authenticate/Verify as AH uses it.
func TestAESCMAC96Vectors(t *testing.T) {
	key := unhex(t, "2b7e151628aed2a6abf7158809cf4f3c")
	m := unhex(t, "6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e5130c81c46a35ce411e5fbc1191a0a52ef"+
		"f69f2445df4f9b17ad2b417be66c3710")
	integ := Transform{Type: TypeINTEG, ID: IntegAESCMAC96}
	if Name(TypeINTEG, IntegAESCMAC96, 0) != "aescmac" {
		t.Errorf("name %q", Name(TypeINTEG, IntegAESCMAC96, 0))
	}
	for _, v := range []struct {
		n   int
		icv string
	}{
		{0, "bb1d6929e95937287fa37d12"},
		{16, "070a16b46b4d4144f79bdd9d"},
		{40, "dfa66747de9ae63030ca3261"},
		{64, "51f0bebf7e3b9d92fc497417"},
	} {
		t.Run(fmt.Sprint(v.n), func(t *testing.T) {
			data, icv := m[:v.n], unhex(t, v.icv)
			p, err := NewProtector(Transform{Type: TypeENCR, ID: EncrNull}, integ, nil, key)
			if err != nil {
				t.Fatal(err)
			}
			defer p.Close()
			if p.ICVSize() != 12 {
				t.Fatalf("ICVSize %d", p.ICVSize())
			}
			pkt := append(bytes.Clone(data), make([]byte, 12)...)
			if err := p.Seal(pkt, 0, nil, nil); err != nil {
				t.Fatal(err)
			}
			if got := pkt[v.n:]; !bytes.Equal(got, icv) {
				t.Fatalf("Seal: icv %x, want %x", got, icv)
			}
			a, err := NewAuthProtector(integ, key)
			if err != nil {
				t.Fatal(err)
			}
			defer a.Close()
			got := make([]byte, 12)
			// The last bytes as the trailer, as AH passes the ESN high bits.
			k := min(4, v.n)
			if err := a.Authenticate(got, data[:v.n-k], data[v.n-k:]); err != nil || !bytes.Equal(got, icv) {
				t.Fatalf("Authenticate: %x, %v; want %x", got, err, icv)
			}
			icv[0] ^= 1
			if err := a.Verify(icv, data, nil); err == nil {
				t.Fatal("Verify accepted a wrong ICV")
			}
		})
	}
}
