package transform

import (
	"crypto/rand"
	"math/big"
)

// modpGroup holds one finite-field Diffie-Hellman group.
type modpGroup struct {
	p, g    *big.Int
	q       *big.Int // prime subgroup order (RFC 5114), nil for safe-prime groups
	pMinus1 *big.Int
	size    int // bytes of p: length of public values and of the secret
	// expLen is the private exponent length in bytes for safe-prime groups:
	// twice the symmetric strength RFC 3526 §8 estimates for the group,
	// rounded up, so the exponent is not the weak link while 8192-bit
	// exponentiations stay fast. Zero for subgroup groups, whose exponent
	// is uniform in [2, q-2] (RFC 5114 §2, NIST SP 800-56A).
	expLen int
	// fb holds the powers of g that make computing public values cheap
	// (modp_fixedbase.go).
	fb fixedBase
}

type expBytes int

const subgroupExp expBytes = 0

// mustGroup parses a table entry; the table is constant and checked by tests,
// so a failure here is a programming error caught on package load.
func mustGroup(exp expBytes, p, g, q string) *modpGroup {
	parse := func(s string) *big.Int {
		if s == "" {
			return nil
		}
		v, ok := new(big.Int).SetString(s, 16)
		if !ok {
			panic("transform: bad MODP table entry")
		}
		return v
	}
	grp := &modpGroup{p: parse(p), g: parse(g), q: parse(q), expLen: int(exp)}
	grp.pMinus1 = new(big.Int).Sub(grp.p, big.NewInt(1))
	grp.size = (grp.p.BitLen() + 7) / 8
	return grp
}

type modpKE struct {
	t   Transform
	grp *modpGroup
	x   *big.Int
	pub []byte
}

func newMODP(t Transform, grp *modpGroup, priv []byte) (KeyExchange, error) {
	var x *big.Int
	switch {
	case priv != nil:
		x = new(big.Int).SetBytes(priv)
	case grp.q != nil:
		// x uniform in [2, q-2].
		r, err := rand.Int(rand.Reader, new(big.Int).Sub(grp.q, big.NewInt(3)))
		if err != nil {
			return nil, newErr("new", t, ErrUnsupported, "random source failed")
		}
		x = r.Add(r, big.NewInt(2))
	default:
		b := make([]byte, grp.expLen)
		if _, err := rand.Read(b); err != nil {
			return nil, newErr("new", t, ErrUnsupported, "random source failed")
		}
		b[0] |= 0x80 // full length, so the exponent has the intended strength
		x = new(big.Int).SetBytes(b)
		clear(b)
	}
	y := grp.generatorExp(x)
	return &modpKE{t: t, grp: grp, x: x, pub: y.FillBytes(make([]byte, grp.size))}, nil
}

func (k *modpKE) Group() ID         { return k.t.ID }
func (k *modpKE) PublicKey() []byte { return k.pub }

func (k *modpKE) SharedSecret(peer []byte) ([]byte, error) {
	if k.x == nil {
		return nil, newErr("keyexchange", k.t, ErrClosed, "")
	}
	// RFC 7296 §3.4: the KE data is exactly as long as the prime.
	if len(peer) != k.grp.size {
		return nil, newErr("keyexchange", k.t, ErrInvalidPublic, "public value length differs from the prime length")
	}
	y := new(big.Int).SetBytes(peer)
	// 1 < y < p-1 rules out the trivial elements 0, 1, p-1 and values >= p
	// (RFC 6989 §2.1, NIST SP 800-56A §5.6.2.3.1).
	if y.Cmp(big.NewInt(1)) <= 0 || y.Cmp(k.grp.pMinus1) >= 0 {
		return nil, newErr("keyexchange", k.t, ErrInvalidPublic, "public value out of range (must be 1 < y < p-1)")
	}
	// Groups with a small subgroup order must check that y lies in the
	// prime-order subgroup, or a peer can force the secret into a small
	// subgroup (RFC 6989 §2.2).
	if k.grp.q != nil && new(big.Int).Exp(y, k.grp.q, k.grp.p).Cmp(big.NewInt(1)) != 0 {
		return nil, newErr("keyexchange", k.t, ErrInvalidPublic, "public value not in the prime-order subgroup")
	}
	z := new(big.Int).Exp(y, k.x, k.grp.p)
	// Left-pad to the prime length (RFC 7296 §2.14).
	out := z.FillBytes(make([]byte, k.grp.size))
	clear(z.Bits())
	return out, nil
}

func (k *modpKE) Close() {
	if k.x != nil {
		clear(k.x.Bits())
		k.x = nil
	}
}
