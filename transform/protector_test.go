package transform

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"
)

type suite struct {
	encr, integ Transform
}

func (s suite) String() string {
	if s.integ.ID == IntegNone {
		return s.encr.String()
	}
	return s.encr.String() + "-" + s.integ.String()
}

func enc(id ID, kl uint16) Transform { return Transform{Type: TypeENCR, ID: id, KeyLen: kl} }
func integ(id ID) Transform          { return Transform{Type: TypeINTEG, ID: id} }

// allSuites is every supported cipher, each AES key size, and every
// integrity algorithm at least once.
func allSuites() []suite {
	var out []suite
	for _, e := range Supported(TypeENCR) {
		in, _ := Lookup(e)
		if in.AEAD {
			out = append(out, suite{e, integ(IntegNone)})
			continue
		}
		out = append(out, suite{e, integ(IntegHMACSHA2_256_128)})
	}
	for _, i := range Supported(TypeINTEG) {
		out = append(out, suite{enc(EncrAESCBC, 128), i})
	}
	return out
}

// fill returns deterministic bytes for keys and payloads.
func fill(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i*7)
	}
	return b
}

func newSuite(t testing.TB, s suite) *Protector {
	t.Helper()
	ek, err := KeymatLen(s.encr)
	if err != nil {
		t.Fatal(err)
	}
	ik, err := KeymatLen(s.integ)
	if err != nil {
		t.Fatal(err)
	}
	var ikey []byte
	if ik > 0 {
		ikey = fill(ik, 0x40)
	}
	p, err := NewProtector(s.encr, s.integ, fill(ek, 0x10), ikey)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// espPacket lays out an ESP packet (RFC 4303 §2): SPI, low sequence number,
// IV from the sequence number, payload padded with the pad-length and
// next-header bytes to BlockSize, room for the ICV.
func espPacket(p *Protector, payload []byte, seq uint64) []byte {
	n := len(payload) + 2
	padded := (n + p.BlockSize() - 1) / p.BlockSize() * p.BlockSize()
	pkt := make([]byte, 8+p.IVSize()+padded+p.ICVSize(), 8+p.IVSize()+padded+p.ICVSize()+16)
	binary.BigEndian.PutUint32(pkt, 0x1234abcd)
	binary.BigEndian.PutUint32(pkt[4:], uint32(seq))
	if err := p.IV(pkt[8:8+p.IVSize()], seq); err != nil {
		panic(err)
	}
	body := pkt[8+p.IVSize() : len(pkt)-p.ICVSize()]
	copy(body, payload)
	for i := len(payload); i < len(body)-2; i++ {
		body[i] = byte(i - len(payload) + 1) // RFC 4303 §2.4 monotonic padding
	}
	body[len(body)-2] = byte(len(body) - 2 - len(payload))
	body[len(body)-1] = 4 // next header: IPv4
	return pkt
}

// espAuth builds the ESN arguments the way an ESP caller would, on its stack.
func espArgs(pkt []byte, seq uint64, esn bool, aad *[12]byte, trailer *[4]byte) ([]byte, []byte) {
	if !esn {
		return nil, nil
	}
	copy(aad[0:4], pkt[0:4])
	binary.BigEndian.PutUint32(aad[4:8], uint32(seq>>32))
	copy(aad[8:12], pkt[4:8])
	binary.BigEndian.PutUint32(trailer[:], uint32(seq>>32))
	return aad[:], trailer[:]
}

// ikeMessage lays out an IKEv2 message with one SK payload (RFC 7296 §3.14):
// 28-byte IKE header, 4-byte SK generic header, IV, padded plaintext with a
// pad length byte, ICV. It returns the message and the IV offset.
func ikeMessage(p *Protector, inner []byte) ([]byte, int) {
	n := len(inner) + 1
	padded := (n + p.BlockSize() - 1) / p.BlockSize() * p.BlockSize()
	off := 28 + 4
	msg := make([]byte, off+p.IVSize()+padded+p.ICVSize(), off+p.IVSize()+padded+p.ICVSize()+16)
	copy(msg, fill(16, 0xa0)) // SPIs
	msg[16] = 46              // next payload: SK
	msg[17] = 0x20            // version 2.0
	msg[18] = 35              // INFORMATIONAL
	msg[19] = 0x08            // initiator
	binary.BigEndian.PutUint32(msg[20:], 7)
	binary.BigEndian.PutUint32(msg[24:], uint32(len(msg)))
	msg[28] = 41 // first inner payload: Notify
	binary.BigEndian.PutUint16(msg[30:], uint16(len(msg)-28))
	if err := p.NextIV(msg[off : off+p.IVSize()]); err != nil {
		panic(err)
	}
	body := msg[off+p.IVSize() : len(msg)-p.ICVSize()]
	copy(body, inner)
	body[len(body)-1] = byte(len(body) - 1 - len(inner))
	return msg, off
}

// tamper flips each byte of pkt in turn and checks Open rejects it with
// ErrAuthFailed. args builds the aad/trailer from the received packet, as a
// receiver does (for ESN it needs SeqHi, which is not in the packet). pkt is
// restored from orig every time, since a failed AEAD Open may have
// overwritten the payload. Finally the ESN high bits themselves are flipped.
func tamper(t *testing.T, p *Protector, orig []byte, off int, args func(pkt []byte) (aad, trailer []byte)) {
	t.Helper()
	pkt := make([]byte, len(orig), len(orig)+16)
	for i := range orig {
		copy(pkt, orig)
		pkt[i] ^= 0x01
		aad, trailer := args(pkt)
		if err := p.Open(pkt, off, aad, trailer); !errors.Is(err, ErrAuthFailed) {
			t.Fatalf("flipping byte %d of %d: Open returned %v, want ErrAuthFailed", i, len(pkt), err)
		}
	}
	copy(pkt, orig)
	aad, trailer := args(pkt)
	extra := aad
	if !p.AEAD() {
		extra = trailer
	}
	for i := range extra {
		copy(pkt, orig)
		extra[i] ^= 0x80
		err := p.Open(pkt, off, aad, trailer)
		extra[i] ^= 0x80
		if !errors.Is(err, ErrAuthFailed) {
			t.Fatalf("flipping byte %d of the ESN data: Open returned %v", i, err)
		}
	}
}

func TestESPRoundTrip(t *testing.T) {
	for _, s := range allSuites() {
		for _, esn := range []bool{false, true} {
			t.Run(fmt.Sprintf("%v/esn=%v", s, esn), func(t *testing.T) {
				p := newSuite(t, s)
				defer p.Close()
				seq := uint64(0x0000000500000009)
				payload := fill(45, 0x33)
				pkt := espPacket(p, payload, seq)
				plain := append([]byte(nil), pkt...)
				var aadBuf [12]byte
				var trBuf [4]byte
				aad, trailer := espArgs(pkt, seq, esn, &aadBuf, &trBuf)
				if err := p.Seal(pkt, 8, aad, trailer); err != nil {
					t.Fatal(err)
				}
				if s.encr.ID != EncrNull && bytes.Contains(pkt, payload[:16]) {
					t.Fatal("payload visible after Seal")
				}
				if !bytes.Equal(pkt[:8+p.IVSize()], plain[:8+p.IVSize()]) {
					t.Fatal("Seal changed the header or IV")
				}
				sealed := append([]byte(nil), pkt...)
				checkTail(t, pkt)
				tamper(t, p, sealed, 8, func(pkt []byte) ([]byte, []byte) {
					var a [12]byte
					var tr [4]byte
					return espArgs(pkt, seq, esn, &a, &tr)
				})
				copy(pkt, sealed)
				if err := p.Open(pkt, 8, aad, trailer); err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(pkt[:len(pkt)-p.ICVSize()], plain[:len(plain)-p.ICVSize()]) {
					t.Fatal("Open did not restore the plaintext")
				}
				if esn {
					// Without the high sequence bits the packet must not verify.
					copy(pkt, sealed)
					if err := p.Open(pkt, 8, nil, nil); !errors.Is(err, ErrAuthFailed) {
						t.Fatalf("ESN packet opened without ESN data: %v", err)
					}
				}
			})
		}
	}
}

func TestIKERoundTrip(t *testing.T) {
	for _, s := range allSuites() {
		if s.encr.ID == EncrNull {
			continue // NULL encryption is ESP-only
		}
		t.Run(s.String(), func(t *testing.T) {
			p := newSuite(t, s)
			defer p.Close()
			inner := fill(61, 0x77)
			msg, off := ikeMessage(p, inner)
			plain := append([]byte(nil), msg...)
			if err := p.Seal(msg, off, nil, nil); err != nil {
				t.Fatal(err)
			}
			sealed := append([]byte(nil), msg...)
			tamper(t, p, sealed, off, func([]byte) ([]byte, []byte) { return nil, nil })
			copy(msg, sealed)
			if err := p.Open(msg, off, nil, nil); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(msg[:len(msg)-p.ICVSize()], plain[:len(plain)-p.ICVSize()]) {
				t.Fatal("Open did not restore the plaintext")
			}
		})
	}
}

// TestESPFramingIndependent recomputes ESP ICVs with the standard library
// alone, pinning exactly what is authenticated: RFC 4303 §2.2.1 (ESN high
// bits after the ciphertext for HMAC) and RFC 4106 §5 (SPI|SeqHi|SeqLo AAD).
func TestESPFramingIndependent(t *testing.T) {
	seq := uint64(0x00000007_00000001)
	t.Run("hmac-esn", func(t *testing.T) {
		s := suite{enc(EncrAESCBC, 128), integ(IntegHMACSHA2_256_128)}
		p := newSuite(t, s)
		pkt := espPacket(p, fill(30, 1), seq)
		var a [12]byte
		var tr [4]byte
		aad, trailer := espArgs(pkt, seq, true, &a, &tr)
		if err := p.Seal(pkt, 8, aad, trailer); err != nil {
			t.Fatal(err)
		}
		m := hmac.New(sha256.New, fill(32, 0x40))
		m.Write(pkt[:len(pkt)-16])
		m.Write([]byte{0, 0, 0, 7})
		if want := m.Sum(nil)[:16]; !bytes.Equal(pkt[len(pkt)-16:], want) {
			t.Fatalf("ICV %x, want HMAC over SPI|Seq|IV|CT|SeqHi = %x", pkt[len(pkt)-16:], want)
		}
	})
	t.Run("gcm-esn", func(t *testing.T) {
		s := suite{enc(EncrAESGCM16, 128), integ(IntegNone)}
		p := newSuite(t, s)
		pkt := espPacket(p, fill(30, 1), seq)
		var a [12]byte
		var tr [4]byte
		aad, trailer := espArgs(pkt, seq, true, &a, &tr)
		if err := p.Seal(pkt, 8, aad, trailer); err != nil {
			t.Fatal(err)
		}
		key := fill(20, 0x10)
		blk, _ := aes.NewCipher(key[:16])
		g, _ := cipher.NewGCM(blk)
		nonce := append(append([]byte{}, key[16:]...), pkt[8:16]...)
		wantAAD := []byte{0x12, 0x34, 0xab, 0xcd, 0, 0, 0, 7, 0, 0, 0, 1}
		if _, err := g.Open(nil, nonce, pkt[16:], wantAAD); err != nil {
			t.Fatalf("stdlib GCM with AAD SPI|SeqHi|SeqLo and nonce salt|IV rejects our packet: %v", err)
		}
	})
	t.Run("chacha-ike", func(t *testing.T) {
		s := suite{enc(EncrChaCha20Poly1305, 0), integ(IntegNone)}
		p := newSuite(t, s)
		msg, off := ikeMessage(p, fill(20, 9))
		if err := p.Seal(msg, off, nil, nil); err != nil {
			t.Fatal(err)
		}
		key := fill(36, 0x10)
		a, _ := chacha20poly1305.New(key[:32])
		nonce := append(append([]byte{}, key[32:]...), msg[off:off+8]...)
		if _, err := a.Open(nil, nonce, msg[off+8:], msg[:off]); err != nil {
			t.Fatalf("AAD must be IKE header through SK header (RFC 5282 §5.1): %v", err)
		}
	})
}

func TestSealOpenAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("sync.Pool drops items at random under -race; allocation counts need a normal build")
	}
	for _, s := range allSuites() {
		for _, esn := range []bool{false, true} {
			p := newSuite(t, s)
			seq := uint64(1) << 33
			pkt := espPacket(p, fill(1400, 5), seq)
			var allocs float64
			allocs = testing.AllocsPerRun(200, func() {
				seq++
				binary.BigEndian.PutUint32(pkt[4:], uint32(seq))
				if err := p.IV(pkt[8:8+p.IVSize()], seq); err != nil {
					t.Fatal(err)
				}
				// ESN arguments built on the stack, as the ESP dataplane does.
				var a [12]byte
				var tr [4]byte
				aad, trailer := espArgs(pkt, seq, esn, &a, &tr)
				if err := p.Seal(pkt, 8, aad, trailer); err != nil {
					t.Fatal(err)
				}
				if err := p.Open(pkt, 8, aad, trailer); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("%v esn=%v: %v allocations per Seal+Open", s, esn, allocs)
			}
			// A forged packet must not allocate either (flood resistance).
			pkt[len(pkt)-1] ^= 1
			allocs = testing.AllocsPerRun(100, func() { _ = p.Open(pkt, 8, nil, nil) })
			if allocs != 0 {
				t.Errorf("%v: %v allocations per rejected Open", s, allocs)
			}
		}
	}
}

func TestProtectorErrors(t *testing.T) {
	p := newSuite(t, suite{enc(EncrAESCBC, 128), integ(IntegHMACSHA1_96)})
	if err := p.Seal(make([]byte, 8+16+15+12), 8, nil, nil); !errors.Is(err, ErrLayout) {
		t.Errorf("CBC payload not a block multiple: %v", err)
	}
	if err := p.Seal(make([]byte, 10), 8, nil, nil); !errors.Is(err, ErrLayout) {
		t.Errorf("short packet: %v", err)
	}
	if err := p.Seal(make([]byte, 64), -1, nil, nil); !errors.Is(err, ErrLayout) {
		t.Errorf("negative offset: %v", err)
	}
	if err := p.Open(make([]byte, 8+16+16+12), 8, nil, make([]byte, MaxTrailer+1)); !errors.Is(err, ErrLayout) {
		t.Errorf("long trailer: %v", err)
	}
	if err := p.IV(make([]byte, 8), 1); !errors.Is(err, ErrLayout) {
		t.Errorf("IV of wrong size: %v", err)
	}
	p.Close()
	if err := p.Seal(make([]byte, 8+16+16+12), 8, nil, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("after Close: %v", err)
	}
	p.Close() // idempotent

	bad := []struct {
		name        string
		encr, integ Transform
		ek, ik      int
		want        error
	}{
		{"AEAD with integrity", enc(EncrAESGCM16, 128), integ(IntegHMACSHA1_96), 20, 20, ErrUnsupported},
		{"CBC without integrity", enc(EncrAESCBC, 128), integ(IntegNone), 16, 0, ErrUnsupported},
		{"AES key length 100", enc(EncrAESCBC, 100), integ(IntegHMACSHA1_96), 16, 20, ErrKeyLength},
		{"AES key length absent", enc(EncrAESGCM16, 0), integ(IntegNone), 20, 0, ErrKeyLength},
		{"GCM key missing salt", enc(EncrAESGCM16, 128), integ(IntegNone), 16, 0, ErrKeyLength},
		{"short integ key", enc(EncrAESCBC, 128), integ(IntegHMACSHA2_256_128), 16, 20, ErrKeyLength},
		{"unknown cipher", enc(99, 0), integ(IntegHMACSHA1_96), 16, 20, ErrUnsupported},
		{"unknown integ", enc(EncrAESCBC, 128), integ(99), 16, 20, ErrUnsupported},
		{"ChaCha with key length 128", enc(EncrChaCha20Poly1305, 128), integ(IntegNone), 36, 0, ErrKeyLength},
		{"PRF as cipher", Transform{Type: TypePRF, ID: PRFHMACSHA1}, integ(IntegHMACSHA1_96), 20, 20, ErrUnsupported},
	}
	for _, b := range bad {
		p, err := NewProtector(b.encr, b.integ, make([]byte, b.ek), make([]byte, b.ik))
		if p != nil || !errors.Is(err, b.want) {
			t.Errorf("%s: got %v, %v; want %v", b.name, p, err, b.want)
		}
		var te *Error
		if !errors.As(err, &te) {
			t.Errorf("%s: error %T is not *Error", b.name, err)
		}
	}
}

// TestIVUniqueness checks that IVs derived from distinct numbers differ and
// that CBC IVs are not the counter itself (they must be unpredictable).
func TestIVUniqueness(t *testing.T) {
	for _, s := range allSuites() {
		p := newSuite(t, s)
		if p.IVSize() == 0 {
			continue
		}
		seen := map[string]bool{}
		for n := uint64(0); n < 1000; n++ {
			iv := make([]byte, p.IVSize())
			if err := p.IV(iv, n); err != nil {
				t.Fatal(err)
			}
			if seen[string(iv)] {
				t.Fatalf("%v: IV repeated for n=%d", s, n)
			}
			seen[string(iv)] = true
			if s.encr.ID == EncrAESCBC || s.encr.ID == Encr3DES {
				var ctr [16]byte
				binary.BigEndian.PutUint64(ctr[:], n)
				if bytes.Equal(iv, ctr[:len(iv)]) {
					t.Fatalf("%v: CBC IV equals the counter", s)
				}
			}
		}
		a, b := make([]byte, p.IVSize()), make([]byte, p.IVSize())
		p.NextIV(a)
		p.NextIV(b)
		if bytes.Equal(a, b) {
			t.Fatalf("%v: NextIV repeated", s)
		}
	}
}

// checkTail verifies that the spare capacity after pkt (which GCM-8 borrows)
// still holds what the test helpers put there: zeros.
func checkTail(t *testing.T, pkt []byte) {
	t.Helper()
	for i, c := range pkt[len(pkt):cap(pkt)] {
		if c != 0 {
			t.Fatalf("byte %d past the packet changed to %#x", i, c)
		}
	}
}

func TestGCM8Tailroom(t *testing.T) {
	p := newSuite(t, suite{enc(EncrAESGCM8, 128), integ(IntegNone)})
	pkt := espPacket(p, fill(40, 3), 9)
	full := pkt[:cap(pkt)]
	for i := len(pkt); i < len(full); i++ {
		full[i] = 0xee // caller data after the packet
	}
	if err := p.Seal(pkt, 8, nil, nil); err != nil {
		t.Fatal(err)
	}
	sealed := append([]byte(nil), pkt...)
	pkt[20] ^= 1
	if err := p.Open(pkt, 8, nil, nil); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("forged: %v", err)
	}
	pkt[20] ^= 1
	if !bytes.Equal(pkt, sealed) {
		t.Fatal("failed Open did not restore the ciphertext")
	}
	if err := p.Open(pkt, 8, nil, nil); err != nil {
		t.Fatal(err)
	}
	for i := len(pkt); i < len(full); i++ {
		if full[i] != 0xee {
			t.Fatalf("byte %d after the packet not restored", i-len(pkt))
		}
	}
	// Without tailroom the pooled work buffer is used; results are the same
	// and no byte outside the packet is touched.
	exact := espPacket(p, fill(40, 3), 10)
	roomy := append(make([]byte, 0, len(exact)+8), exact...)
	exact = exact[:len(exact):len(exact)]
	if err := p.Seal(exact, 8, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := p.Seal(roomy, 8, nil, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(exact, roomy) {
		t.Fatal("sealing with and without tailroom differs")
	}
	exact[9] ^= 1
	if err := p.Open(exact, 8, nil, nil); !errors.Is(err, ErrAuthFailed) {
		t.Fatalf("forged, no tailroom: %v", err)
	}
	exact[9] ^= 1
	if !bytes.Equal(exact, roomy) {
		t.Fatal("failed Open without tailroom changed the packet")
	}
	if err := p.Open(exact, 8, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := p.Open(roomy, 8, nil, nil); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(exact, roomy) || !bytes.Equal(exact[16:56], fill(40, 3)) {
		t.Fatal("opening with and without tailroom differs")
	}
}
