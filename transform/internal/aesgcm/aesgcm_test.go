package aesgcm

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"math/rand/v2"
	"strconv"
	"testing"
	"unsafe"
)

func TestKeyLayout(t *testing.T) {
	var k expandedKey
	// The offsets the assembly uses (aesgcm_amd64.s: POW, H1, ROUNDS).
	if o := unsafe.Offsetof(k.pow); o != 480 {
		t.Fatalf("pow at %d, assembly expects 480", o)
	}
	if o := unsafe.Offsetof(k.rounds); o != 608 {
		t.Fatalf("rounds at %d, assembly expects 608", o)
	}
}

func needSupport(t testing.TB) {
	t.Helper()
	if !Supported() {
		t.Skip("processor lacks VAES/VPCLMULQDQ/AVX2; crypto/cipher's GCM is used instead")
	}
}

func stdGCM(t testing.TB, key []byte, tagSize int) cipher.AEAD {
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	a, err := cipher.NewGCMWithTagSize(b, tagSize)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestMatchesStandardLibrary compares Seal and Open with crypto/cipher's
// GCM on random keys of every size, random nonces, additional data of 0-40
// bytes and every plaintext length up to 300 bytes plus ESP and jumbo
// sizes, in place and into separate buffers at odd alignments.
func TestMatchesStandardLibrary(t *testing.T) {
	needSupport(t)
	rng := rand.New(rand.NewPCG(1, 2))
	lengths := []int{1400, 1403, 1436, 1500, 8000, 9001, 65000}
	for n := 0; n <= 300; n++ {
		lengths = append(lengths, n)
	}
	for _, keyLen := range []int{16, 24, 32} {
		for _, tagSize := range []int{16, 12} {
			for _, n := range lengths {
				key := randBytes(rng, keyLen)
				nonce := randBytes(rng, NonceSize)
				aad := randBytes(rng, rng.IntN(41))
				pt := randBytes(rng, n)
				ours, err := New(key, tagSize)
				if err != nil {
					t.Fatal(err)
				}
				want := stdGCM(t, key, tagSize).Seal(nil, nonce, pt, aad)

				// Out of place, at an odd offset.
				off := rng.IntN(16)
				buf := make([]byte, off, off+n+tagSize)
				got := ours.Seal(buf, nonce, pt, aad)[off:]
				if !bytes.Equal(got, want) {
					t.Fatalf("key %d tag %d len %d aad %d: Seal differs from crypto/cipher", keyLen, tagSize, n, len(aad))
				}
				// In place.
				inplace := make([]byte, n, n+tagSize)
				copy(inplace, pt)
				if got := ours.Seal(inplace[:0], nonce, inplace, aad); !bytes.Equal(got, want) {
					t.Fatalf("key %d tag %d len %d: in-place Seal differs", keyLen, tagSize, n)
				}
				// Open out of place and in place.
				opened, err := ours.Open(nil, nonce, want, aad)
				if err != nil || !bytes.Equal(opened, pt) {
					t.Fatalf("key %d tag %d len %d: Open = %v, plaintext equal %v", keyLen, tagSize, n, err, bytes.Equal(opened, pt))
				}
				ct := append([]byte(nil), want...)
				if opened, err := ours.Open(ct[:0], nonce, ct, aad); err != nil || !bytes.Equal(opened, pt) {
					t.Fatalf("key %d tag %d len %d: in-place Open = %v", keyLen, tagSize, n, err)
				}
			}
		}
	}
}

// TestOpenRejectsForgeries flips every bit of a short message, its tag
// and its additional data, and one random bit of long ones.
func TestOpenRejectsForgeries(t *testing.T) {
	needSupport(t)
	rng := rand.New(rand.NewPCG(3, 4))
	key, nonce := randBytes(rng, 16), randBytes(rng, NonceSize)
	g, err := New(key, 16)
	if err != nil {
		t.Fatal(err)
	}
	aad := randBytes(rng, 8)
	sealed := g.Seal(nil, nonce, randBytes(rng, 37), aad)
	for bit := range 8 * len(sealed) {
		c := append([]byte(nil), sealed...)
		c[bit/8] ^= 1 << (bit % 8)
		out, err := g.Open(nil, nonce, c, aad)
		if err == nil || out != nil {
			t.Fatalf("bit %d flipped: Open accepted it", bit)
		}
	}
	for bit := range 8 * len(aad) {
		a := append([]byte(nil), aad...)
		a[bit/8] ^= 1 << (bit % 8)
		if _, err := g.Open(nil, nonce, sealed, a); err == nil {
			t.Fatalf("aad bit %d flipped: Open accepted it", bit)
		}
	}
	for _, n := range []int{128, 1400, 9000} {
		sealed := g.Seal(nil, nonce, randBytes(rng, n), aad)
		bit := rng.IntN(8 * len(sealed))
		sealed[bit/8] ^= 1 << (bit % 8)
		dst := make([]byte, 0, n)
		if _, err := g.Open(dst, nonce, sealed, aad); err == nil {
			t.Fatalf("len %d bit %d flipped: Open accepted it", n, bit)
		}
		if !bytes.Equal(dst[:n], make([]byte, n)) {
			t.Fatalf("len %d: rejected plaintext left in dst", n)
		}
	}
	if _, err := g.Open(nil, nonce, sealed[:15], aad); err == nil {
		t.Fatal("Open accepted a message shorter than the tag")
	}
}

// TestCounterWraps checks inc32's wrap from 0xffffffff to 0 in the vector
// counters against crypto/cipher (nonce chosen so the wrap falls inside an
// eight-block group).
func TestCounterWraps(t *testing.T) {
	needSupport(t)
	key := bytes.Repeat([]byte{7}, 16)
	g, err := New(key, 16)
	if err != nil {
		t.Fatal(err)
	}
	pt := bytes.Repeat([]byte{0xab}, 16*40+5)
	// The counter is not under the caller's control for 12-byte nonces
	// (it starts at 2), so drive the assembly directly from 0xfffffffb.
	var j0, ctr, acc, acc2, pre [16]byte
	j0[0] = 1
	setCounter(&ctr, &j0, 0xfffffffb)
	got := make([]byte, 16*40)
	mask := j0
	var last [32]byte
	sealBlocks(&g.k, &ctr, &mask, &acc, &pre[0], 0, &got[0], &pt[0], 40, &last[0], 0)
	want := make([]byte, 16*40)
	b, _ := aes.NewCipher(key)
	for i := range 40 {
		var c, ks [16]byte
		setCounter(&c, &j0, uint32(0xfffffffb+i))
		b.Encrypt(ks[:], c[:])
		for j := range 16 {
			want[16*i+j] = pt[16*i+j] ^ ks[j]
		}
	}
	if !bytes.Equal(got, want) {
		t.Fatal("counter mode across the 32-bit wrap differs from AES-CTR with inc32")
	}
	// The assembly went on to absorb the (all-zero) length block in last.
	ghashBlocks(&g.k, &acc2, &want[0], 40)
	ghashBlocks(&g.k, &acc2, &last[16], 1)
	if acc != acc2 {
		t.Fatal("hash of the eight-block path differs from the one-block path")
	}
}

func TestNewRejects(t *testing.T) {
	needSupport(t)
	if _, err := New(make([]byte, 20), 16); err == nil {
		t.Error("20-byte key accepted")
	}
	if _, err := New(make([]byte, 16), 8); err == nil {
		t.Error("8-byte tag accepted")
	}
}

func TestAllocations(t *testing.T) {
	needSupport(t)
	g, _ := New(make([]byte, 16), 16)
	buf := make([]byte, 1400+16)
	nonce, aad := make([]byte, 12), make([]byte, 8)
	allocs := testing.AllocsPerRun(100, func() {
		g.Seal(buf[:0], nonce, buf[:1400], aad)
		if _, err := g.Open(buf[:0], nonce, buf, aad); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per Seal+Open", allocs)
	}
}

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func BenchmarkSeal(b *testing.B) {
	for _, n := range []int{64, 1400, 8192} {
		key, nonce, aad := make([]byte, 16), make([]byte, 12), make([]byte, 8)
		buf := make([]byte, n+16)
		b.Run("std/"+strconv.Itoa(n), func(b *testing.B) {
			a := stdGCM(b, key, 16)
			b.SetBytes(int64(n))
			for b.Loop() {
				a.Seal(buf[:0], nonce, buf[:n], aad)
			}
		})
		if !Supported() {
			continue
		}
		b.Run("vaes/"+strconv.Itoa(n), func(b *testing.B) {
			g, _ := New(key, 16)
			b.SetBytes(int64(n))
			for b.Loop() {
				g.Seal(buf[:0], nonce, buf[:n], aad)
			}
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	for _, n := range []int{64, 1400, 8192} {
		key, nonce, aad := make([]byte, 16), make([]byte, 12), make([]byte, 8)
		a := stdGCM(b, key, 16)
		sealed := a.Seal(nil, nonce, make([]byte, n), aad)
		buf := make([]byte, n)
		b.Run("std/"+strconv.Itoa(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				if _, err := a.Open(buf[:0], nonce, sealed, aad); err != nil {
					b.Fatal(err)
				}
			}
		})
		if !Supported() {
			continue
		}
		b.Run("vaes/"+strconv.Itoa(n), func(b *testing.B) {
			g, _ := New(key, 16)
			b.SetBytes(int64(n))
			for b.Loop() {
				if _, err := g.Open(buf[:0], nonce, sealed, aad); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func TestWipe(t *testing.T) {
	needSupport(t)
	g, err := New(bytes.Repeat([]byte{0x5a}, 32), 16)
	if err != nil {
		t.Fatal(err)
	}
	g.Wipe()
	if g.k != (expandedKey{}) {
		t.Fatal("key schedule or hash powers left after Wipe")
	}
}

// TestHashKeyPowers checks the Go multiplication that builds the powers
// against the definition of GHASH: with X = H (register form) the tag of
// a one-block message hashes to X·H, computed here bit by bit as in SP
// 800-38D Algorithm 1.
func TestHashKeyPowers(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for range 50 {
		var h, x [16]byte
		copy(h[:], randBytes(rng, 16))
		copy(x[:], randBytes(rng, 16))
		var k expandedKey
		hashKeyPowers(&k, &h)
		// pow holds H^1 at offset 16·7; gfMul(x, H^1·x) = x·H.
		h1 := u128{lo: le64(k.pow[3][16:]), hi: le64(k.pow[3][24:])}
		xr := u128{lo: be64(x[8:]), hi: be64(x[:8])}
		got := gfMul(xr, h1)
		want := specMul(x, h)
		if got.hi != be64(want[:8]) || got.lo != be64(want[8:]) {
			t.Fatalf("x·H differs from SP 800-38D multiplication")
		}
	}
}

// specMul is SP 800-38D §6.3 Algorithm 1, bit by bit on the block bytes.
func specMul(x, y [16]byte) [16]byte {
	var z [16]byte
	v := y
	for i := range 128 {
		if x[i/8]>>(7-i%8)&1 != 0 {
			for j := range z {
				z[j] ^= v[j]
			}
		}
		lsb := v[15] & 1
		for j := 15; j > 0; j-- {
			v[j] = v[j]>>1 | v[j-1]<<7
		}
		v[0] >>= 1
		if lsb != 0 {
			v[0] ^= 0xe1
		}
	}
	return z
}

func be64(b []byte) uint64 {
	return uint64(b[0])<<56 | uint64(b[1])<<48 | uint64(b[2])<<40 | uint64(b[3])<<32 |
		uint64(b[4])<<24 | uint64(b[5])<<16 | uint64(b[6])<<8 | uint64(b[7])
}

func le64(b []byte) uint64 {
	return uint64(b[7])<<56 | uint64(b[6])<<48 | uint64(b[5])<<40 | uint64(b[4])<<32 |
		uint64(b[3])<<24 | uint64(b[2])<<16 | uint64(b[1])<<8 | uint64(b[0])
}
