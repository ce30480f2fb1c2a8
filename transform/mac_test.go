package transform

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"hash"
	"testing"
)

// TestAuthenticateMatchesHMAC checks the integrity-only path against
// crypto/hmac directly, for every HMAC that AH negotiates.
func TestAuthenticateMatchesHMAC(t *testing.T) {
	cases := []struct {
		id  ID
		h   func() hash.Hash
		key int
		icv int
	}{
		{IntegHMACMD5_96, md5.New, 16, 12},
		{IntegHMACSHA1_96, sha1.New, 20, 12},
		{IntegHMACSHA2_256_128, sha256.New, 32, 16},
		{IntegHMACSHA2_384_192, sha512.New384, 48, 24},
		{IntegHMACSHA2_512_256, sha512.New, 64, 32},
	}
	data := bytes.Repeat([]byte("authenticated bytes "), 7)
	trailer := []byte{0, 0, 0, 1}
	for _, c := range cases {
		key := bytes.Repeat([]byte{byte(c.id)}, c.key)
		p, err := NewAuthProtector(Transform{Type: TypeINTEG, ID: c.id}, key)
		if err != nil {
			t.Fatalf("%v: %v", c.id, err)
		}
		if p.ICVSize() != c.icv {
			t.Errorf("%v: ICVSize %d, want %d", c.id, p.ICVSize(), c.icv)
		}
		m := hmac.New(c.h, key)
		m.Write(data)
		m.Write(trailer)
		want := m.Sum(nil)[:c.icv]
		icv := make([]byte, c.icv)
		if err := p.Authenticate(icv, data, trailer); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(icv, want) {
			t.Errorf("%v: ICV %x, want %x", c.id, icv, want)
		}
		if err := p.Verify(want, data, trailer); err != nil {
			t.Errorf("%v: Verify of the right ICV: %v", c.id, err)
		}
		want[0] ^= 1
		if err := p.Verify(want, data, trailer); !errors.Is(err, ErrAuthFailed) {
			t.Errorf("%v: Verify of a wrong ICV: %v", c.id, err)
		}
		if allocs := testing.AllocsPerRun(100, func() { _ = p.Authenticate(icv, data, trailer); _ = p.Verify(icv, data, trailer) }); allocs != 0 && !raceEnabled {
			t.Errorf("%v: %v allocations per Authenticate+Verify", c.id, allocs)
		}
		p.Close()
		if err := p.Authenticate(icv, data, nil); !errors.Is(err, ErrClosed) {
			t.Errorf("%v: Authenticate after Close: %v", c.id, err)
		}
	}
}

func TestAuthenticateRefusesAEAD(t *testing.T) {
	p, err := NewProtector(Transform{Type: TypeENCR, ID: EncrAESGCM16, KeyLen: 128}, Transform{}, make([]byte, 20), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Authenticate(make([]byte, 16), nil, nil); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Authenticate on AES-GCM: %v, want ErrUnsupported", err)
	}
}
