package hmacsha1

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"fmt"
	"math/rand/v2"
	"testing"
	"unsafe"
)

func need(t testing.TB) {
	if !Supported() {
		t.Skip("processor lacks SHA-NI/AVX")
	}
}

func TestLayout(t *testing.T) {
	var l lanes
	if o := unsafe.Offsetof(l.st); o != 16 {
		t.Errorf("states at %d, assembly expects 16", o)
	}
	if s := unsafe.Sizeof(state{}); s != 32 {
		t.Errorf("state is %d bytes, assembly expects 32", s)
	}
	var w lanes16
	if o := unsafe.Offsetof(w.h); o != 128 {
		t.Errorf("lanes16 words at %d, assembly expects 128", o)
	}
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func std(key, data, trailer []byte) []byte {
	m := hmac.New(sha1.New, key)
	m.Write(data)
	m.Write(trailer)
	return m.Sum(nil)
}

// lanePaths are the ways Sum can spread a batch over the lanes: its
// default, every message on the sixteen AVX-512 lanes (parking none), and
// the two SHA-NI lanes only.
var lanePaths = []struct {
	name    string
	wideMin int
}{{"default", wideMin}, {"wide", 1}, {"narrow", 1 << 30}}

// withPath runs f with Sum set to take one of lanePaths.
func withPath(t *testing.T, min int, f func(t *testing.T)) {
	saved := wideMin
	wideMin = min
	defer func() { wideMin = saved }()
	if min < 1<<30 && !wideSupported() {
		t.Skip("processor lacks AVX-512F/BW")
	}
	f(t)
}

// TestSum compares batches of 1 to 40 random jobs (several keys, including
// one longer than a block; lengths 0 to 3000 around the block boundaries;
// trailers of 0 to 16 bytes; truncations) with crypto/hmac, on each lane
// path.
func TestSum(t *testing.T) {
	need(t)
	for _, path := range lanePaths {
		t.Run(path.name, func(t *testing.T) {
			withPath(t, path.wideMin, testSum)
		})
	}
}

func testSum(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var m Multi
	for n := 1; n <= 40; n++ {
		for range 12 {
			raw := [][]byte{randBytes(r, 20), randBytes(r, 64), randBytes(r, 100), randBytes(r, 1)}
			keys := make([]*Key, len(raw))
			for i := range raw {
				var err error
				if keys[i], err = NewKey(raw[i]); err != nil {
					t.Fatal(err)
				}
			}
			jobs := make([]Job, n)
			want := make([][]byte, n)
			for i := range jobs {
				ki := r.IntN(len(raw))
				size := r.IntN(3000)
				if r.IntN(2) == 0 {
					size = 64*r.IntN(4) + r.IntN(3) - 1 + 55 // around the padding boundary
					size = max(size, 0)
				}
				data := randBytes(r, size)
				tr := randBytes(r, r.IntN(MaxTrailer+1))
				out := make([]byte, []int{12, 20}[r.IntN(2)])
				jobs[i] = Job{Key: keys[ki], Data: data, Trailer: tr, Out: out}
				want[i] = std(raw[ki], data, tr)[:len(out)]
			}
			m.Sum(jobs)
			for i := range jobs {
				if !bytes.Equal(jobs[i].Out, want[i]) {
					t.Fatalf("batch of %d: job %d (%d+%d bytes) differs from crypto/hmac", n, i, len(jobs[i].Data), len(jobs[i].Trailer))
				}
			}
		}
	}
}

// TestBlocks16 checks the sixteen-lane compression alone against the
// two-lane one, lane by lane, on random states and blocks (the lanes'
// data pointers all different).
func TestBlocks16(t *testing.T) {
	need(t)
	if !wideSupported() {
		t.Skip("processor lacks AVX-512F/BW")
	}
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{1, 2, 5} {
		var w lanes16
		var bufs [16][]byte
		var want [16][5]uint32
		for lane := range 16 {
			bufs[lane] = randBytes(r, n*blockSize)
			w.data[lane] = &bufs[lane][0]
			var h [5]uint32
			for i := range h {
				h[i] = r.Uint32()
				w.h[i][lane] = h[i]
			}
			var l lanes
			l.data = [2]*byte{&bufs[lane][0], &bufs[lane][0]}
			l.st = [2]state{toState(h), toState(h)}
			blocks2(&l, n)
			want[lane] = l.st[0].words()
		}
		blocks16(&w, n)
		for lane := range 16 {
			var got [5]uint32
			for i := range got {
				got[i] = w.h[i][lane]
			}
			if got != want[lane] {
				t.Fatalf("%d blocks, lane %d: %08x, two-lane code gives %08x", n, lane, got, want[lane])
			}
		}
	}
}

func TestSumAllocs(t *testing.T) {
	need(t)
	k, _ := NewKey(make([]byte, 20))
	var m Multi
	jobs := make([]Job, 40)
	for i := range jobs {
		jobs[i] = Job{Key: k, Data: make([]byte, 100*i), Trailer: make([]byte, 4), Out: make([]byte, 12)}
	}
	for _, n := range []int{1, 9, 40} {
		if a := testing.AllocsPerRun(100, func() { m.Sum(jobs[:n]) }); a != 0 {
			t.Errorf("Sum of %d: %v allocations per run, want 0", n, a)
		}
	}
}

// FuzzSum checks two-message batches against crypto/hmac.
func FuzzSum(f *testing.F) {
	f.Add([]byte("key"), []byte("abc"), []byte{1, 2, 3, 4}, make([]byte, 200))
	var m Multi
	f.Fuzz(func(t *testing.T, key, a, tr, b []byte) {
		need(t)
		if len(tr) > MaxTrailer {
			tr = tr[:MaxTrailer]
		}
		k, _ := NewKey(key)
		jobs := []Job{{Key: k, Data: a, Trailer: tr, Out: make([]byte, Size)}, {Key: k, Data: b, Out: make([]byte, Size)}}
		m.Sum(jobs)
		if !bytes.Equal(jobs[0].Out, std(key, a, tr)) || !bytes.Equal(jobs[1].Out, std(key, b, nil)) {
			t.Fatal("differs from crypto/hmac")
		}
	})
}

// BenchmarkSum: batches of 32 same-sized messages on each lane path, and
// crypto/hmac for one message. wideMin is set from the ratio of the
// "narrow" and "wide" figures at 64 bytes (one block-step each, plus the
// outer block).
func BenchmarkSum(b *testing.B) {
	need(b)
	for _, size := range []int{64, 1400} {
		for _, path := range lanePaths {
			b.Run(fmt.Sprintf("%dB/x32/%s", size, path.name), func(b *testing.B) {
				saved := wideMin
				wideMin = path.wideMin
				defer func() { wideMin = saved }()
				if path.wideMin < 1<<30 && !wideSupported() {
					b.Skip("processor lacks AVX-512F/BW")
				}
				k, _ := NewKey(make([]byte, 20))
				var m Multi
				jobs := make([]Job, 32)
				for i := range jobs {
					jobs[i] = Job{Key: k, Data: make([]byte, size), Out: make([]byte, 12)}
				}
				b.SetBytes(int64(size * len(jobs)))
				for b.Loop() {
					m.Sum(jobs)
				}
			})
		}
		b.Run(fmt.Sprintf("%dB/stdlib", size), func(b *testing.B) {
			m := hmac.New(sha1.New, make([]byte, 20))
			data := make([]byte, size)
			var sum [Size]byte
			b.SetBytes(int64(size))
			for b.Loop() {
				m.Reset()
				m.Write(data)
				m.Sum(sum[:0])
			}
		})
	}
}
