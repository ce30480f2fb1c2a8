package transform

import (
	"bytes"
	"errors"
	"math/big"
	"testing"
)

// TestMODPParams checks the group table: the RFC 2409/3526 primes are safe
// primes with generator 2; the RFC 5114 groups have a prime subgroup order
// q dividing p-1 with g^q = 1 (so the subgroup check is meaningful).
func TestMODPParams(t *testing.T) {
	for id, g := range modpGroups {
		if !g.p.ProbablyPrime(0) {
			t.Errorf("%v: p not prime", Name(TypeKE, id, 0))
		}
		one := big.NewInt(1)
		if g.q == nil {
			half := new(big.Int).Rsh(g.pMinus1, 1)
			if !half.ProbablyPrime(0) || g.g.Cmp(big.NewInt(2)) != 0 {
				t.Errorf("%v: not a safe prime with generator 2", Name(TypeKE, id, 0))
			}
			continue
		}
		if !g.q.ProbablyPrime(0) {
			t.Errorf("%v: q not prime", Name(TypeKE, id, 0))
		}
		if new(big.Int).Mod(g.pMinus1, g.q).Sign() != 0 {
			t.Errorf("%v: q does not divide p-1", Name(TypeKE, id, 0))
		}
		if new(big.Int).Exp(g.g, g.q, g.p).Cmp(one) != 0 {
			t.Errorf("%v: g^q != 1", Name(TypeKE, id, 0))
		}
	}
}

// TestKeyExchangeAgreement runs both sides of every supported group with
// random keys.
func TestKeyExchangeAgreement(t *testing.T) {
	for _, tr := range Supported(TypeKE) {
		t.Run(tr.String(), func(t *testing.T) {
			a, err := NewKeyExchange(tr.ID)
			if err != nil {
				t.Fatal(err)
			}
			b, err := NewKeyExchange(tr.ID)
			if err != nil {
				t.Fatal(err)
			}
			if a.Group() != tr.ID {
				t.Fatalf("Group() = %v", a.Group())
			}
			sa, err := a.SharedSecret(b.PublicKey())
			if err != nil {
				t.Fatal(err)
			}
			sb, err := b.SharedSecret(a.PublicKey())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(sa, sb) {
				t.Fatal("secrets differ")
			}
			if len(sa) != len(a.PublicKey()) && tr.ID != KEECP256 && tr.ID != KEECP384 && tr.ID != KEECP521 {
				t.Fatalf("secret %d bytes, public %d", len(sa), len(a.PublicKey()))
			}
			a.Close()
			if _, err := a.SharedSecret(b.PublicKey()); !errors.Is(err, ErrClosed) {
				t.Fatalf("after Close: %v", err)
			}
		})
	}
}

func TestMODPRejectsBadPublic(t *testing.T) {
	for _, id := range []ID{KEMODP2048, KEMODP1024S160, KEMODP2048S224, KEMODP2048S256} {
		k, err := NewKeyExchange(id)
		if err != nil {
			t.Fatal(err)
		}
		g := modpGroups[id]
		enc := func(v *big.Int) []byte { return v.FillBytes(make([]byte, g.size)) }
		bad := map[string][]byte{
			"0":        make([]byte, g.size),
			"1":        enc(big.NewInt(1)),
			"p-1":      enc(g.pMinus1),
			"p":        enc(g.p),
			"p+1":      enc(new(big.Int).Add(g.p, big.NewInt(1))),
			"all ones": bytes.Repeat([]byte{0xff}, g.size),
			"short":    enc(big.NewInt(5))[1:],
			"long":     append([]byte{0}, enc(big.NewInt(5))...),
			"empty":    nil,
		}
		if g.q != nil {
			// 2 is outside the prime-order subgroup of the RFC 5114 groups.
			bad["outside subgroup"] = enc(big.NewInt(2))
		}
		for name, v := range bad {
			if _, err := k.SharedSecret(v); !errors.Is(err, ErrInvalidPublic) {
				t.Errorf("%v %s: got %v, want ErrInvalidPublic", Name(TypeKE, id, 0), name, err)
			}
		}
		// The check is not over-eager: the group's own generator is valid.
		if _, err := k.SharedSecret(enc(g.g)); err != nil {
			t.Errorf("%v generator rejected: %v", Name(TypeKE, id, 0), err)
		}
	}
}

func TestECPRejectsBadPublic(t *testing.T) {
	for _, id := range []ID{KEECP256, KEECP384, KEECP521} {
		k, err := NewKeyExchange(id)
		if err != nil {
			t.Fatal(err)
		}
		good := append([]byte(nil), k.PublicKey()...)
		offCurve := append([]byte(nil), good...)
		offCurve[len(offCurve)-1] ^= 1
		bad := map[string][]byte{
			"off curve":       offCurve,
			"zero point":      make([]byte, len(good)),
			"with 04 prefix":  append([]byte{4}, good...),
			"x only":          good[:len(good)/2],
			"coordinate >= p": bytes.Repeat([]byte{0xff}, len(good)),
		}
		for name, v := range bad {
			if _, err := k.SharedSecret(v); !errors.Is(err, ErrInvalidPublic) {
				t.Errorf("%v %s: got %v, want ErrInvalidPublic", Name(TypeKE, id, 0), name, err)
			}
		}
	}
}

func TestX25519RejectsBadPublic(t *testing.T) {
	k, err := NewKeyExchange(KECurve25519)
	if err != nil {
		t.Fatal(err)
	}
	u1 := make([]byte, 32)
	u1[0] = 1
	bad := map[string][]byte{
		"zero (all-zero secret)":          make([]byte, 32),
		"u=1 low order (all-zero secret)": u1,
		"short":                           make([]byte, 31),
		"long":                            make([]byte, 33),
	}
	for name, v := range bad {
		if _, err := k.SharedSecret(v); !errors.Is(err, ErrInvalidPublic) {
			t.Errorf("%s: got %v, want ErrInvalidPublic", name, err)
		}
	}
}

func TestKeyExchangeUnsupported(t *testing.T) {
	for _, id := range []ID{KENone, 3, 4, 25, 99, 0xffff} {
		k, err := NewKeyExchange(id)
		if k != nil || !errors.Is(err, ErrUnsupported) {
			t.Errorf("group %d: got %v, %v; want ErrUnsupported", id, k, err)
		}
	}
}

func TestX448RejectsBadPublic(t *testing.T) {
	k, err := NewKeyExchange(KECurve448)
	if err != nil {
		t.Fatal(err)
	}
	u1 := make([]byte, 56)
	u1[0] = 1
	bad := map[string][]byte{
		"zero (all-zero secret)":          make([]byte, 56),
		"u=1 low order (all-zero secret)": u1,
		"short":                           make([]byte, 55),
		"x25519 size":                     make([]byte, 32),
	}
	for name, v := range bad {
		if _, err := k.SharedSecret(v); !errors.Is(err, ErrInvalidPublic) {
			t.Errorf("%s: got %v, want ErrInvalidPublic", name, err)
		}
	}
}

// BenchmarkKeyExchange measures the two halves of a responder's
// Diffie-Hellman work per IKE SA: generating its key pair (Generate) and
// computing the shared secret from the peer's value (Shared).
func BenchmarkKeyExchange(b *testing.B) {
	for _, id := range []ID{KECurve25519, KEECP256, KEMODP2048, KEMODP3072} {
		peer, err := NewKeyExchange(id)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(Name(TypeKE, id, 0)+"/Generate", func(b *testing.B) {
			for range b.N {
				k, err := NewKeyExchange(id)
				if err != nil {
					b.Fatal(err)
				}
				k.Close()
			}
		})
		b.Run(Name(TypeKE, id, 0)+"/Shared", func(b *testing.B) {
			k, err := NewKeyExchange(id)
			if err != nil {
				b.Fatal(err)
			}
			for range b.N {
				if _, err := k.SharedSecret(peer.PublicKey()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
