package transform

import (
	"crypto/rand"
	"math/big"
	"testing"
)

// TestGeneratorExpMatchesExp checks the fixed-base table against
// big.Int.Exp for every group: random exponents of every length the
// groups draw (and shorter ones, whose high digits are zero), the
// smallest exponents, exponents whose digits are all 15, and exponents
// longer than the table (which must fall back to Exp).
func TestGeneratorExpMatchesExp(t *testing.T) {
	for id, g := range modpGroups {
		t.Run(Name(TypeKE, id, 0), func(t *testing.T) {
			n := g.expBits()
			var xs []*big.Int
			for _, v := range []int64{0, 1, 2, 15, 16, 17, 255, 256} {
				xs = append(xs, big.NewInt(v))
			}
			one := big.NewInt(1)
			allF := new(big.Int).Sub(new(big.Int).Lsh(one, uint(n)), one) // n one bits
			xs = append(xs, allF, new(big.Int).Lsh(one, uint(n-1)), new(big.Int).Lsh(allF, 1))
			for _, bitLen := range []int{1, 63, 64, 65, n / 2, n - 1, n, n + 1, n + 64} {
				for range 4 {
					x, err := rand.Int(rand.Reader, new(big.Int).Lsh(one, uint(bitLen)))
					if err != nil {
						t.Fatal(err)
					}
					xs = append(xs, x)
				}
			}
			for _, x := range xs {
				want := new(big.Int).Exp(g.g, x, g.p)
				if got := g.generatorExp(x); got.Cmp(want) != 0 {
					t.Fatalf("g^x differs from Exp for x = %x (%d bits)", x, x.BitLen())
				}
			}
		})
	}
}

// TestFixedBaseTableSize checks which groups get a table: those whose
// exponentiations dominate IKE setups (up to modp4096, the RFC 5114
// groups) do, and no table exceeds fbMaxTableBytes.
func TestFixedBaseTableSize(t *testing.T) {
	for _, id := range []ID{KEMODP768, KEMODP1024, KEMODP1536, KEMODP2048, KEMODP3072, KEMODP4096, KEMODP1024S160, KEMODP2048S224, KEMODP2048S256} {
		g := modpGroups[id]
		fb := g.fixedBaseTable()
		if fb.table == nil {
			t.Errorf("%v: no fixed-base table", Name(TypeKE, id, 0))
			continue
		}
		if fb.bits < g.expBits() {
			t.Errorf("%v: table covers %d exponent bits, keys have %d", Name(TypeKE, id, 0), fb.bits, g.expBits())
		}
		if size := len(fb.table) * len(fb.table[0]) * g.size; size > fbMaxTableBytes {
			t.Errorf("%v: table of %d bytes", Name(TypeKE, id, 0), size)
		}
	}
	for _, id := range []ID{KEMODP6144, KEMODP8192} {
		if modpGroups[id].fixedBaseTable().table != nil {
			t.Errorf("%v: has a table above the size bound", Name(TypeKE, id, 0))
		}
	}
}
