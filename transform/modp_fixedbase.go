package transform

import (
	"math/big"
	"math/bits"
	"sync"
)

// A MODP public value is g^x mod p with the group's fixed generator g, so
// the powers of g that any exponent needs can be computed once: with
// fbTable[i][d-1] = g^(d·16^i) mod p for every 4-bit digit d of x at
// position i, g^x is the product of one table entry per non-zero digit.
// For modp2048's 384-bit exponents that is at most 96 multiplications
// (each with a division for the reduction) instead of the ~384 squarings
// and 96 multiplications of a general exponentiation: the responder's key
// generation, half of its Diffie-Hellman work per IKE SA, becomes about
// four times cheaper. The shared secret, whose base is the peer's value,
// still needs the general exponentiation.
//
// Like big.Int.Exp (math/big is never constant-time; Exp indexes its
// window table by exponent bits too), this takes time that depends on the
// exponent, here also on how many of its 4-bit digits are zero (those are
// skipped). Each private value serves one exchange, so what one setup's
// timing could tell about it is never combined with another's.

// fbWindow is the digit width of the fixed-base table, in bits.
const fbWindow = 4

// fbMaxTableBytes bounds one group's table (modp2048's is 360 KiB,
// modp4096's 1.1 MiB): the groups whose tables would be larger (modp6144
// and modp8192, rarely used) keep the general exponentiation rather than
// hold megabytes for it.
const fbMaxTableBytes = 3 << 19

// fixedBase is the table of one group, built on first use.
type fixedBase struct {
	once  sync.Once
	table [][]*big.Int // table[i][d-1] = g^(d·16^i) mod p; nil: not worth it
	bits  int          // longest exponent the table covers
}

// expBits is the longest private exponent newMODP draws for the group.
func (g *modpGroup) expBits() int {
	if g.q != nil {
		return g.q.BitLen()
	}
	return g.expLen * 8
}

// fixedBaseTable returns the group's table, building it the first time;
// nil when the group is too large for one (fbMaxTableBytes).
func (g *modpGroup) fixedBaseTable() *fixedBase {
	g.fb.once.Do(func() {
		n := (g.expBits() + fbWindow - 1) / fbWindow
		if n*(1<<fbWindow-1)*g.size > fbMaxTableBytes {
			return
		}
		table := make([][]*big.Int, n)
		base := new(big.Int).Set(g.g) // g^(16^i)
		for i := range table {
			row := make([]*big.Int, 1<<fbWindow-1)
			row[0] = new(big.Int).Set(base)
			for d := 1; d < len(row); d++ {
				row[d] = new(big.Int).Mul(row[d-1], base)
				row[d].Mod(row[d], g.p)
			}
			table[i] = row
			base = new(big.Int).Mul(row[len(row)-1], base)
			base.Mod(base, g.p)
		}
		g.fb.table, g.fb.bits = table, n*fbWindow
	})
	return &g.fb
}

// generatorExp returns g^x mod p for 0 <= x, from the fixed-base table
// when there is one and x fits it, otherwise with big.Int.Exp.
func (g *modpGroup) generatorExp(x *big.Int) *big.Int {
	fb := g.fixedBaseTable()
	if fb.table == nil || x.Sign() < 0 || x.BitLen() > fb.bits {
		return new(big.Int).Exp(g.g, x, g.p)
	}
	z := big.NewInt(1)
	var prod, quo big.Int
	const perWord = bits.UintSize / fbWindow
	for wi, w := range x.Bits() {
		for j := range perWord {
			d := uint(w>>(j*fbWindow)) & (1<<fbWindow - 1)
			if d == 0 {
				continue
			}
			prod.Mul(z, fb.table[wi*perWord+j][d-1])
			quo.QuoRem(&prod, g.p, z)
		}
	}
	clear(prod.Bits())
	return z
}
