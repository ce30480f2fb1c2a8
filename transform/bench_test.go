package transform

import (
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

var benchSizes = []int{64, 512, 1400, 8900}

// benchSuites are the ESP ciphers benchmarked: every cipher at 128 and 256
// bits where AES, with HMAC-SHA2-256-128 for the non-AEAD ones, and
// AES-128-CBC with HMAC-SHA1-96 (the cloud template's default).
func benchSuites() []suite {
	out := []suite{{enc(EncrAESCBC, 128), integ(IntegHMACSHA1_96)}}
	for _, e := range Supported(TypeENCR) {
		if e.KeyLen == 192 {
			continue
		}
		in, _ := Lookup(e)
		if in.AEAD {
			out = append(out, suite{e, integ(IntegNone)})
		} else {
			out = append(out, suite{e, integ(IntegHMACSHA2_256_128)})
		}
	}
	return out
}

// Benchmark names: BenchmarkSeal/<suite>/<payload bytes>. The baselines
// "stdlib-aes128gcm" and "xcrypto-chacha20poly1305" call cipher.AEAD
// directly on the same layout, so ours/baseline is the Protector overhead.
func BenchmarkSeal(b *testing.B) {
	for _, s := range benchSuites() {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%v/%d", s, n), func(b *testing.B) {
				p := newSuite(b, s)
				pkt := espPacket(p, fill(n, 1), 1)
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					if err := p.Seal(pkt, 8, nil, nil); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
	for _, base := range baselines() {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/%d", base.name, n), func(b *testing.B) {
				pkt := make([]byte, 8+8+n+2+16)
				nonce := make([]byte, 12)
				pt := pkt[16 : len(pkt)-16]
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					base.a.Seal(pt[:0], nonce, pt, pkt[:8])
				}
			})
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	for _, s := range benchSuites() {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%v/%d", s, n), func(b *testing.B) {
				p := newSuite(b, s)
				pkt := espPacket(p, fill(n, 1), 1)
				if err := p.Seal(pkt, 8, nil, nil); err != nil {
					b.Fatal(err)
				}
				sealed := append([]byte(nil), pkt...)
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					copy(pkt, sealed) // Open decrypts in place
					if err := p.Open(pkt, 8, nil, nil); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
	for _, base := range baselines() {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%s/%d", base.name, n), func(b *testing.B) {
				pkt := make([]byte, 8+8+n+2+16)
				nonce := make([]byte, 12)
				pt := pkt[16 : len(pkt)-16]
				base.a.Seal(pt[:0], nonce, pt, pkt[:8])
				sealed := append([]byte(nil), pkt...)
				ct := pkt[16:]
				b.SetBytes(int64(n))
				b.ReportAllocs()
				for b.Loop() {
					copy(pkt, sealed)
					if _, err := base.a.Open(ct[:0], nonce, ct, pkt[:8]); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

type baseline struct {
	name string
	a    cipher.AEAD
}

func baselines() []baseline {
	blk, _ := aes.NewCipher(make([]byte, 16))
	g, _ := cipher.NewGCM(blk)
	blk256, _ := aes.NewCipher(make([]byte, 32))
	g256, _ := cipher.NewGCM(blk256)
	c, _ := chacha20poly1305.New(make([]byte, 32))
	return []baseline{{"stdlib-aes128gcm", g}, {"stdlib-aes256gcm", g256}, {"xcrypto-chacha20poly1305", c}}
}
