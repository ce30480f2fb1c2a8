package transform

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"hash"
	"math/rand/v2"
	"testing"
)

// cbcSuites is AES-CBC at every key size with every HMAC, the combinations
// the batch encrypts in parallel lanes.
func cbcSuites() []suite {
	var out []suite
	for _, kl := range []uint16{128, 192, 256} {
		for _, i := range []ID{IntegHMACSHA1_96, IntegHMACSHA2_256_128, IntegHMACSHA2_384_192,
			IntegHMACSHA2_512_256, IntegHMACMD5_96, IntegAESXCBC96} {
			out = append(out, suite{enc(EncrAESCBC, kl), integ(i)})
		}
	}
	return out
}

// keyed is a Protector with the keys it was built from, so the reference
// can redo its work with the standard library alone.
type keyed struct {
	s          suite
	p          *Protector
	encKey     []byte
	integKey   []byte
	icv        int
	stdHMAC    func() hash.Hash
	stdBatched bool // the batch queues it (AES-CBC with an HMAC)
}

func newKeyed(t testing.TB, s suite, r *rand.Rand) *keyed {
	ek, _ := KeymatLen(s.encr)
	ik, _ := KeymatLen(s.integ)
	k := &keyed{s: s, encKey: randBytes(r, ek), integKey: randBytes(r, ik)}
	if ik == 0 {
		k.integKey = nil
	}
	p, err := NewProtector(s.encr, s.integ, k.encKey, k.integKey)
	if err != nil {
		t.Fatal(err)
	}
	k.p, k.icv = p, p.ICVSize()
	h := map[ID]func() hash.Hash{IntegHMACSHA1_96: sha1.New, IntegHMACSHA2_256_128: sha256.New,
		IntegHMACSHA2_384_192: sha512.New384, IntegHMACSHA2_512_256: sha512.New, IntegHMACMD5_96: md5.New}[s.integ.ID]
	if h != nil && s.encr.ID == EncrAESCBC {
		k.stdHMAC, k.stdBatched = h, true
	}
	return k
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// stdSeal is the reference for AES-CBC+HMAC: crypto/cipher's CBC, then
// crypto/hmac over header, IV, ciphertext and trailer, truncated.
func (k *keyed) stdSeal(t testing.TB, pkt []byte, off int, trailer []byte) {
	blk, err := aes.NewCipher(k.encKey)
	if err != nil {
		t.Fatal(err)
	}
	end := len(pkt) - k.icv
	cipher.NewCBCEncrypter(blk, pkt[off:off+16]).CryptBlocks(pkt[off+16:end], pkt[off+16:end])
	m := hmac.New(k.stdHMAC, k.integKey)
	m.Write(pkt[:end])
	m.Write(trailer)
	copy(pkt[end:], m.Sum(nil))
}

// randPacket is an ESP-shaped packet for k with a random payload of up to
// max bytes (padded to the block size) and a random ESN trailer or none.
func randPacket(r *rand.Rand, k *keyed, max int) (pkt, trailer []byte) {
	n := r.IntN(max + 1)
	bs := k.p.BlockSize()
	padded := (n + 2 + bs - 1) / bs * bs
	size := 8 + k.p.IVSize() + padded + k.icv
	pkt = make([]byte, size, size+8)
	copy(pkt, randBytes(r, size))
	if r.IntN(2) == 0 {
		trailer = randBytes(r, 4)
	}
	return pkt, trailer
}

// TestSealBatch seals batches of 1 to 40 random packets of random suites
// (AES-CBC of every key size and HMAC, mixed with ciphers the batch does
// not queue, several SAs in one batch) and compares each packet with the
// standard library's result and with Seal's; with the assembly and, as on
// processors without it, without.
func TestSealBatch(t *testing.T) {
	for _, fast := range []bool{true, false} {
		t.Run(fmt.Sprintf("fast=%v", fast), func(t *testing.T) {
			disableFastPaths = !fast
			defer func() { disableFastPaths = false }()
			sealBatch(t)
		})
	}
}

func sealBatch(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	var ks []*keyed
	for _, s := range cbcSuites() {
		ks = append(ks, newKeyed(t, s, r))
	}
	for _, s := range []suite{{enc(EncrAESGCM16, 128), integ(IntegNone)}, {enc(EncrAESCTR, 128), integ(IntegHMACSHA1_96)},
		{enc(Encr3DES, 0), integ(IntegHMACSHA1_96)}, {enc(EncrAESCBC, 128), integ(IntegHMACSHA1_96)}} {
		ks = append(ks, newKeyed(t, s, r))
	}
	var b SealBatch
	for n := 1; n <= 40; n++ {
		for round := range 4 {
			// Few SAs per batch in some rounds (long runs of one key),
			// many in others.
			pool := ks[r.IntN(len(ks)):]
			if round%2 == 0 {
				pool = pool[:1]
			}
			type item struct {
				k                 *keyed
				pkt, viaSeal, ref []byte
				trailer           []byte
			}
			items := make([]item, n)
			for i := range items {
				k := pool[r.IntN(len(pool))]
				pkt, tr := randPacket(r, k, []int{64, 1500, 9000}[r.IntN(3)])
				it := item{k: k, pkt: pkt, trailer: tr, viaSeal: append([]byte(nil), pkt...)}
				if err := k.p.Seal(it.viaSeal, 8, nil, tr); err != nil {
					t.Fatal(err)
				}
				if k.stdBatched {
					it.ref = append([]byte(nil), pkt...)
					k.stdSeal(t, it.ref, 8, tr)
				}
				items[i] = it
				if err := b.Add(k.p, pkt, 8, nil, tr); err != nil {
					t.Fatal(err)
				}
			}
			b.Flush()
			for i, it := range items {
				if !bytes.Equal(it.pkt, it.viaSeal) {
					t.Fatalf("batch of %d: packet %d (%v, %d bytes) differs from Seal", n, i, it.k.s, len(it.pkt))
				}
				if it.ref != nil && !bytes.Equal(it.pkt, it.ref) {
					t.Fatalf("batch of %d: packet %d (%v, %d bytes) differs from crypto/cipher+crypto/hmac", n, i, it.k.s, len(it.pkt))
				}
				if err := it.k.p.Open(it.pkt, 8, nil, it.trailer); err != nil {
					t.Fatalf("batch of %d: packet %d (%v) does not open: %v", n, i, it.k.s, err)
				}
			}
		}
	}
}

// TestCBCOpenStdlib opens packets sealed by the standard-library reference,
// with the fast decryption and with crypto/cipher's, for every key size.
func TestCBCOpenStdlib(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, fast := range []bool{true, false} {
		disableFastPaths = !fast
		for _, s := range cbcSuites() {
			k := newKeyed(t, s, r)
			if !k.stdBatched {
				continue
			}
			for range 30 {
				pkt, tr := randPacket(r, k, 3000)
				plain := append([]byte(nil), pkt...)
				k.stdSeal(t, pkt, 8, tr)
				if err := k.p.Open(pkt, 8, nil, tr); err != nil {
					t.Fatalf("%v fast=%v: %v", s, fast, err)
				}
				if !bytes.Equal(pkt[:len(pkt)-k.icv], plain[:len(pkt)-k.icv]) {
					t.Fatalf("%v fast=%v: plaintext differs", s, fast)
				}
			}
		}
	}
	disableFastPaths = false
}

// TestSealBatchErrors: a bad layout is refused by Add and nothing is queued.
func TestSealBatchErrors(t *testing.T) {
	p := newSuite(t, suite{enc(EncrAESCBC, 128), integ(IntegHMACSHA1_96)})
	var b SealBatch
	if err := b.Add(p, make([]byte, 8+16+17+12), 8, nil, nil); err == nil {
		t.Error("payload of 17 bytes accepted")
	}
	if len(b.jobs) != 0 {
		t.Error("refused packet queued")
	}
	b.Flush()
}

func TestSealBatchAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under -race; allocation counts need a normal build")
	}
	r := rand.New(rand.NewPCG(9, 10))
	var ps []*Protector
	for _, s := range append(cbcSuites(), suite{enc(EncrAESGCM16, 128), integ(IntegNone)}) {
		ps = append(ps, newSuite(t, s))
	}
	pkts := make([][]byte, 64)
	for i := range pkts {
		pkts[i] = espPacket(ps[i%len(ps)], fill(r.IntN(1500), 1), uint64(i))
	}
	var b SealBatch
	allocs := testing.AllocsPerRun(50, func() {
		for i, pkt := range pkts {
			// ESN trailer on the stack, as the ESP dataplane builds it.
			var tr [4]byte
			binary.BigEndian.PutUint32(tr[:], uint32(i))
			if err := b.Add(ps[i%len(ps)], pkt, 8, nil, tr[:]); err != nil {
				t.Fatal(err)
			}
		}
		b.Flush()
	})
	if allocs != 0 {
		t.Errorf("%v allocations per batch of %d", allocs, len(pkts))
	}
}

// FuzzSealBatch compares the batch with the standard library on packets
// whose count, lengths, key sizes and SAs the fuzzer chooses.
func FuzzSealBatch(f *testing.F) {
	f.Add(uint64(1), []byte{0, 1, 2, 200, 90, 17})
	f.Add(uint64(2), []byte{255, 255, 255, 255, 255, 255, 255, 255, 255})
	r := rand.New(rand.NewPCG(11, 12))
	var ks []*keyed
	for _, s := range cbcSuites() {
		if k := newKeyed(f, s, r); k.stdBatched {
			ks = append(ks, k)
		}
	}
	var b SealBatch
	f.Fuzz(func(t *testing.T, seed uint64, shape []byte) {
		r := rand.New(rand.NewPCG(seed, 0))
		var pkts, refs [][]byte
		// Each byte of shape is one packet: its SA and length.
		for _, c := range shape {
			k := ks[int(c)%len(ks)]
			blocks := 1 + int(c)/4
			pkt := randBytes(r, 8+16+16*blocks+k.icv)
			var tr []byte
			if c&1 != 0 {
				tr = randBytes(r, 4)
			}
			ref := append([]byte(nil), pkt...)
			k.stdSeal(t, ref, 8, tr)
			if err := b.Add(k.p, pkt, 8, nil, tr); err != nil {
				t.Fatal(err)
			}
			pkts, refs = append(pkts, pkt), append(refs, ref)
		}
		b.Flush()
		for i := range pkts {
			if !bytes.Equal(pkts[i], refs[i]) {
				t.Fatalf("packet %d of %d differs from crypto/cipher+crypto/hmac", i, len(pkts))
			}
		}
	})
}

// BenchmarkSealBatch seals batches of 32 and of 256 packets of one SA (the
// dataplane reads up to 128 from the TUN at once); ns/op is per packet so
// it compares with BenchmarkSeal.
func BenchmarkSealBatch(b *testing.B) {
	for _, s := range []suite{{enc(EncrAESCBC, 128), integ(IntegHMACSHA1_96)}, {enc(EncrAESCBC, 128), integ(IntegHMACSHA2_256_128)},
		{enc(EncrAESGCM16, 128), integ(IntegNone)}} {
		for _, n := range benchSizes {
			for _, batch := range []int{32, 256} {
				b.Run(fmt.Sprintf("%v/%d/batch=%d", s, n, batch), func(b *testing.B) {
					p := newSuite(b, s)
					pkts := make([][]byte, batch)
					for i := range pkts {
						pkts[i] = espPacket(p, fill(n, 1), uint64(i))
					}
					var sb SealBatch
					sb.Reserve(batch) // as the dataplane does: no growth while measuring
					b.SetBytes(int64(n))
					b.ReportAllocs()
					i := 0
					for b.Loop() {
						if err := sb.Add(p, pkts[i], 8, nil, nil); err != nil {
							b.Fatal(err)
						}
						if i++; i == batch {
							sb.Flush()
							i = 0
						}
					}
					sb.Flush()
				})
			}
		}
	}
}

// TestOpenBatch opens batches of sealed packets of many suites (HMAC-SHA1
// with every cipher it pairs with, and others), some forged, truncated or
// with the wrong trailer, and compares every outcome and every byte with
// Open on a copy; with the assembly and without.
func TestOpenBatch(t *testing.T) {
	for _, fast := range []bool{true, false} {
		t.Run(fmt.Sprintf("fast=%v", fast), func(t *testing.T) {
			disableFastPaths = !fast
			defer func() { disableFastPaths = false }()
			openBatch(t)
		})
	}
}

func openBatch(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	var ks []*keyed
	for _, s := range append(cbcSuites(), suite{enc(EncrAESCTR, 256), integ(IntegHMACSHA1_96)}, suite{enc(Encr3DES, 0), integ(IntegHMACSHA1_96)},
		suite{enc(EncrNull, 0), integ(IntegHMACSHA1_96)}, suite{enc(EncrAESGCM16, 128), integ(IntegNone)}) {
		ks = append(ks, newKeyed(t, s, r))
	}
	var b OpenBatch
	for n := 1; n <= 30; n++ {
		for round := range 4 {
			pool := ks[r.IntN(len(ks)):]
			if round%2 == 0 {
				pool = pool[:1]
			}
			type item struct {
				k            *keyed
				pkt, viaOpen []byte
				trailer      []byte
				err          error
				idx          int
			}
			items := make([]item, n)
			for i := range items {
				k := pool[r.IntN(len(pool))]
				pkt, tr := randPacket(r, k, []int{64, 1500, 9000}[r.IntN(3)])
				if err := k.p.Seal(pkt, 8, nil, tr); err != nil {
					t.Fatal(err)
				}
				switch r.IntN(6) {
				case 0: // forged
					pkt[r.IntN(len(pkt))] ^= 1 << r.IntN(8)
				case 1: // other trailer (ESN high bits)
					tr = randBytes(r, 4)
				case 2: // truncated: bad layout or bad ICV
					pkt = pkt[:len(pkt)-1-r.IntN(4)]
				}
				it := item{k: k, pkt: pkt, trailer: tr, viaOpen: append([]byte(nil), pkt...)}
				it.err = k.p.Open(it.viaOpen, 8, nil, tr)
				it.idx = b.Add(k.p, pkt, 8, nil, tr)
				items[i] = it
			}
			b.Flush()
			for i, it := range items {
				if got := b.Err(it.idx); got != it.err && (got == nil || it.err == nil || got.Error() != it.err.Error()) {
					t.Fatalf("batch of %d: packet %d (%v): %v, Open gave %v", n, i, it.k.s, got, it.err)
				}
				if it.err == nil && !bytes.Equal(it.pkt, it.viaOpen) {
					t.Fatalf("batch of %d: packet %d (%v) decrypted differently from Open", n, i, it.k.s)
				}
			}
			b.Reset()
		}
	}
}

func TestOpenBatchAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under -race; allocation counts need a normal build")
	}
	r := rand.New(rand.NewPCG(15, 16))
	var ps []*Protector
	for _, s := range append(cbcSuites(), suite{enc(EncrAESGCM16, 128), integ(IntegNone)}) {
		ps = append(ps, newSuite(t, s))
	}
	pkts := make([][]byte, 64)
	sealed := make([][]byte, len(pkts))
	for i := range pkts {
		pkts[i] = espPacket(ps[i%len(ps)], fill(r.IntN(1500), 1), uint64(i))
		if err := ps[i%len(ps)].Seal(pkts[i], 8, nil, nil); err != nil {
			t.Fatal(err)
		}
		if i%5 == 0 {
			pkts[i][9] ^= 1 // some forged: rejecting must not allocate either
		}
		sealed[i] = append([]byte(nil), pkts[i]...)
	}
	var b OpenBatch
	b.Reserve(len(pkts))
	allocs := testing.AllocsPerRun(50, func() {
		for i, pkt := range pkts {
			copy(pkt, sealed[i])
			b.Add(ps[i%len(ps)], pkt, 8, nil, nil)
		}
		b.Flush()
		for i := range pkts {
			if err := b.Err(i); (err == nil) != (i%5 != 0) {
				t.Fatalf("packet %d: %v", i, err)
			}
		}
		b.Reset()
	})
	if allocs != 0 {
		t.Errorf("%v allocations per batch of %d", allocs, len(pkts))
	}
}

// FuzzOpenBatch: arbitrary packets opened in a batch and one by one with
// Open give the same outcome and bytes.
func FuzzOpenBatch(f *testing.F) {
	f.Add([]byte{}, []byte{}, 8)
	f.Add(make([]byte, 100), make([]byte, 300), 8)
	r := rand.New(rand.NewPCG(17, 18))
	var ps []*Protector
	for _, s := range cbcSuites() {
		if s.integ.ID == IntegHMACSHA1_96 {
			ps = append(ps, newKeyed(f, s, r).p)
		}
	}
	var b OpenBatch
	f.Fuzz(func(t *testing.T, a, c []byte, off int) {
		for _, p := range ps {
			var want [2]error
			var ref [2][]byte
			for i, pkt := range [][]byte{a, c} {
				ref[i] = append([]byte(nil), pkt...)
				want[i] = p.Open(ref[i], off, nil, nil)
			}
			pa, pc := append([]byte(nil), a...), append([]byte(nil), c...)
			b.Add(p, pa, off, nil, nil)
			b.Add(p, pc, off, nil, nil)
			b.Flush()
			for i, got := range []error{b.Err(0), b.Err(1)} {
				if (got == nil) != (want[i] == nil) || got != nil && got.Error() != want[i].Error() {
					t.Fatalf("packet %d: %v, Open gave %v", i, got, want[i])
				}
			}
			if !bytes.Equal(pa, ref[0]) || !bytes.Equal(pc, ref[1]) {
				t.Fatal("bytes differ from Open's")
			}
			b.Reset()
		}
	})
}

// BenchmarkOpenBatch opens batches of 32 and of 256 packets of one SA (the
// dataplane hands up to 256 received packets to a worker at once); ns/op
// is per packet so it compares with BenchmarkOpen.
func BenchmarkOpenBatch(b *testing.B) {
	for _, s := range []suite{{enc(EncrAESCBC, 128), integ(IntegHMACSHA1_96)}, {enc(EncrAESGCM16, 128), integ(IntegNone)}} {
		for _, n := range benchSizes {
			for _, batch := range []int{32, 256} {
				b.Run(fmt.Sprintf("%v/%d/batch=%d", s, n, batch), func(b *testing.B) {
					p := newSuite(b, s)
					pkts := make([][]byte, batch)
					sealed := make([][]byte, batch)
					for i := range pkts {
						pkts[i] = espPacket(p, fill(n, 1), uint64(i))
						if err := p.Seal(pkts[i], 8, nil, nil); err != nil {
							b.Fatal(err)
						}
						sealed[i] = append([]byte(nil), pkts[i]...)
					}
					var ob OpenBatch
					ob.Reserve(batch)
					b.SetBytes(int64(n))
					b.ReportAllocs()
					i := 0
					for b.Loop() {
						copy(pkts[i], sealed[i]) // Open decrypts in place
						ob.Add(p, pkts[i], 8, nil, nil)
						if i++; i == batch {
							ob.Flush()
							for k := range batch {
								if err := ob.Err(k); err != nil {
									b.Fatal(err)
								}
							}
							ob.Reset()
							i = 0
						}
					}
				})
			}
		}
	}
}
