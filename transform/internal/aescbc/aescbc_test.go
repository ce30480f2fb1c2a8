package aescbc

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"math/rand/v2"
	"testing"
	"unsafe"
)

func need(t testing.TB) {
	if !Supported() {
		t.Skip("processor lacks AES-NI/AVX")
	}
}

// TestKeyLayout pins the offsets the assembly uses.
func TestKeyLayout(t *testing.T) {
	var k Key
	var l lanes
	if o := unsafe.Offsetof(k.dec); o != 240 {
		t.Errorf("dec at %d, assembly expects 240", o)
	}
	if o := unsafe.Offsetof(k.rounds); o != 480 {
		t.Errorf("rounds at %d, assembly expects 480", o)
	}
	if o := unsafe.Offsetof(l.keys); o != 64 {
		t.Errorf("keys at %d, assembly expects 64", o)
	}
	if o := unsafe.Offsetof(l.chain); o != 128 {
		t.Errorf("chain at %d, assembly expects 128", o)
	}
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func stdEncrypt(t testing.TB, key, iv, pt []byte) []byte {
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]byte, len(pt))
	cipher.NewCBCEncrypter(b, iv).CryptBlocks(out, pt)
	return out
}

// TestDecrypt compares Decrypt with crypto/cipher for every key size and
// lengths around the eight-block stride.
func TestDecrypt(t *testing.T) {
	need(t)
	r := rand.New(rand.NewPCG(1, 2))
	for _, ks := range []int{16, 24, 32} {
		for blocks := 0; blocks <= 40; blocks++ {
			key, iv := randBytes(r, ks), randBytes(r, 16)
			pt := randBytes(r, 16*blocks)
			ct := stdEncrypt(t, key, iv, pt)
			k, err := NewKey(key)
			if err != nil {
				t.Fatal(err)
			}
			got := append([]byte(nil), ct...)
			Decrypt(k, (*[16]byte)(iv), got)
			if !bytes.Equal(got, pt) {
				t.Fatalf("key %d bytes, %d blocks: decryption differs from crypto/cipher", ks, blocks)
			}
		}
	}
}

// TestEncryptMulti encrypts batches of 1 to 20 jobs with mixed key sizes,
// keys and lengths (including empty ones) and compares each with
// crypto/cipher.
func TestEncryptMulti(t *testing.T) {
	need(t)
	r := rand.New(rand.NewPCG(3, 4))
	var m Multi
	for n := 1; n <= 20; n++ {
		for round := range 20 {
			keys := make([]*Key, 3)
			raw := make([][]byte, 3)
			for i := range keys {
				raw[i] = randBytes(r, []int{16, 24, 32}[r.IntN(3)])
				keys[i], _ = NewKey(raw[i])
			}
			jobs := make([]Job, n)
			want := make([][]byte, n)
			for i := range jobs {
				ki := r.IntN(3)
				blocks := r.IntN(100)
				if round%4 == 0 {
					blocks = r.IntN(3) // short ones: lanes refill often
				}
				iv := randBytes(r, 16)
				pt := randBytes(r, 16*blocks)
				want[i] = stdEncrypt(t, raw[ki], iv, pt)
				jobs[i] = Job{Key: keys[ki], IV: (*[16]byte)(iv), Data: pt}
			}
			m.EncryptMulti(jobs)
			for i := range jobs {
				if !bytes.Equal(jobs[i].Data, want[i]) {
					t.Fatalf("batch of %d, round %d: job %d (%d-round key, %d bytes) differs from crypto/cipher",
						n, round, i, jobs[i].Key.rounds, len(jobs[i].Data))
				}
			}
		}
	}
}

func TestEncryptMultiAllocs(t *testing.T) {
	need(t)
	k, _ := NewKey(make([]byte, 16))
	var m Multi
	bufs := make([][]byte, 12)
	jobs := make([]Job, len(bufs))
	iv := new([16]byte)
	for i := range bufs {
		bufs[i] = make([]byte, 16*(i+1))
		jobs[i] = Job{Key: k, IV: iv, Data: bufs[i]}
	}
	if a := testing.AllocsPerRun(100, func() { m.EncryptMulti(jobs) }); a != 0 {
		t.Errorf("EncryptMulti: %v allocations per run, want 0", a)
	}
}

func TestBadKey(t *testing.T) {
	need(t)
	if _, err := NewKey(make([]byte, 20)); err == nil {
		t.Error("20-byte key accepted")
	}
}

// FuzzDecrypt checks Decrypt against crypto/cipher on arbitrary input.
func FuzzDecrypt(f *testing.F) {
	f.Add(make([]byte, 16), make([]byte, 16), make([]byte, 160))
	f.Fuzz(func(t *testing.T, key, iv, data []byte) {
		need(t)
		if len(key) != 16 && len(key) != 24 && len(key) != 32 || len(iv) != 16 {
			return
		}
		data = data[:len(data)/16*16]
		b, _ := aes.NewCipher(key)
		want := make([]byte, len(data))
		cipher.NewCBCDecrypter(b, iv).CryptBlocks(want, data)
		k, _ := NewKey(key)
		Decrypt(k, (*[16]byte)(iv), data)
		if !bytes.Equal(data, want) {
			t.Fatal("differs from crypto/cipher")
		}
	})
}

func BenchmarkEncrypt(b *testing.B) {
	need(b)
	for _, size := range []int{64, 1408} {
		for _, n := range []int{1, 8, 32} {
			b.Run(fmt.Sprintf("%dB/x%d", size, n), func(b *testing.B) {
				k, _ := NewKey(make([]byte, 16))
				var m Multi
				jobs := make([]Job, n)
				for i := range jobs {
					jobs[i] = Job{Key: k, IV: new([16]byte), Data: make([]byte, size)}
				}
				b.SetBytes(int64(size * n))
				for b.Loop() {
					m.EncryptMulti(jobs)
				}
			})
		}
	}
}

// BenchmarkStdlib is the same work one packet at a time with crypto/cipher.
func BenchmarkStdlib(b *testing.B) {
	for _, size := range []int{64, 1408} {
		b.Run(fmt.Sprintf("%dB/encrypt", size), func(b *testing.B) {
			blk, _ := aes.NewCipher(make([]byte, 16))
			enc := cipher.NewCBCEncrypter(blk, make([]byte, 16))
			buf := make([]byte, size)
			b.SetBytes(int64(size))
			for b.Loop() {
				enc.CryptBlocks(buf, buf)
			}
		})
		b.Run(fmt.Sprintf("%dB/decrypt", size), func(b *testing.B) {
			blk, _ := aes.NewCipher(make([]byte, 16))
			dec := cipher.NewCBCDecrypter(blk, make([]byte, 16))
			buf := make([]byte, size)
			b.SetBytes(int64(size))
			for b.Loop() {
				dec.CryptBlocks(buf, buf)
			}
		})
	}
}

func BenchmarkDecrypt(b *testing.B) {
	need(b)
	for _, size := range []int{64, 1408} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			k, _ := NewKey(make([]byte, 16))
			buf := make([]byte, size)
			iv := new([16]byte)
			b.SetBytes(int64(size))
			for b.Loop() {
				Decrypt(k, iv, buf)
			}
		})
	}
}
