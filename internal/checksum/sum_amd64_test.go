package checksum

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// TestAVX2MatchesGeneric compares the two implementations directly, on the
// same inputs, where the machine has AVX2.
func TestAVX2MatchesGeneric(t *testing.T) {
	if !useAVX2 {
		t.Skip("no AVX2")
	}
	r := rand.New(rand.NewPCG(11, 12))
	buf := randBytes(r, avx2MaxChunk+64)
	for n := 0; n <= 1100; n++ {
		for off := 0; off < 64; off += 1 + r.IntN(8) {
			b := buf[off : off+n]
			if g, a := Fold(finish(sumGeneric(b), 0)), Fold(finish(sumAVX2(b), 0)); g != a {
				t.Fatalf("len %d off %d: generic %#04x, avx2 %#04x", n, off, g, a)
			}
		}
	}
	for range 200 {
		n := r.IntN(65536)
		off := r.IntN(64)
		b := buf[off : off+n]
		if g, a := Fold(finish(sumGeneric(b), 0)), Fold(finish(sumAVX2(b), 0)); g != a {
			t.Fatalf("len %d off %d: generic %#04x, avx2 %#04x", n, off, g, a)
		}
	}
	// The assembly's own result is exact (the plain sum of the
	// little-endian words), so it can be checked exactly, not just modulo
	// 0xffff. All-0xff input of the largest chunk is the worst case for
	// the lane accumulators.
	ones := bytes.Repeat([]byte{0xff}, avx2MaxChunk+64)
	for _, data := range [][]byte{buf, ones} {
		for _, n := range []int{32, 34, 62, 64, 96, 126, 128, 130, 158, 1400, 65534, avx2MaxChunk} {
			for _, off := range []int{0, 1, 2, 5} {
				b := data[off : off+n]
				var want uint64
				for i := 0; i < n; i += 2 {
					want += uint64(binary.LittleEndian.Uint16(b[i:]))
				}
				if got := sumAVX2Core(b); got != want {
					t.Fatalf("sumAVX2Core len %d off %d = %#x, want %#x", n, off, got, want)
				}
			}
		}
	}
}

// BenchmarkAVX2 calls the AVX2 code for every size, even below
// avx2MinLen where Sum would not.
func BenchmarkAVX2(b *testing.B) {
	if !useAVX2 {
		b.Skip("no AVX2")
	}
	benchmark(b, func(p []byte) uint64 { return finish(sumAVX2(p), 0) })
}
