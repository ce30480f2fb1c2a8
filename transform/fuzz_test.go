package transform

import (
	"errors"
	"testing"
)

// FuzzOpen feeds arbitrary packets to Open for every cipher kind: it must
// never panic and must fail with ErrAuthFailed or ErrLayout (a random packet
// verifying would mean the ICV check is broken).
func FuzzOpen(f *testing.F) {
	f.Add([]byte{}, 0)
	f.Add(make([]byte, 64), 8)
	f.Add(make([]byte, 200), 32)
	var ps []*Protector
	for _, s := range allSuites() {
		ps = append(ps, newSuite(f, s))
	}
	f.Fuzz(func(t *testing.T, pkt []byte, off int) {
		for _, p := range ps {
			buf := append(make([]byte, 0, len(pkt)+8), pkt...)
			err := p.Open(buf, off, nil, nil)
			if !errors.Is(err, ErrAuthFailed) && !errors.Is(err, ErrLayout) {
				t.Fatalf("%v: Open(%d bytes, off %d) = %v", p.Encr(), len(pkt), off, err)
			}
		}
	})
}

// FuzzPeerPublic feeds arbitrary peer public values to each key exchange:
// no panics, and any failure is ErrInvalidPublic.
func FuzzPeerPublic(f *testing.F) {
	var kes []KeyExchange
	for _, id := range []ID{KEMODP1024S160, KEMODP2048, KEECP256, KEECP521, KECurve25519, KECurve448} {
		k, err := NewKeyExchange(id)
		if err != nil {
			f.Fatal(err)
		}
		kes = append(kes, k)
		f.Add(k.PublicKey())
	}
	f.Fuzz(func(t *testing.T, peer []byte) {
		for _, k := range kes {
			if _, err := k.SharedSecret(peer); err != nil && !errors.Is(err, ErrInvalidPublic) {
				t.Fatalf("group %d: %v", k.Group(), err)
			}
		}
	})
}
