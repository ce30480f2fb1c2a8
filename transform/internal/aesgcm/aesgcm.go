package aesgcm

import (
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"unsafe"

	"github.com/ipsecgw/ipsecgw/transform/internal/aeskey"
)

// NonceSize is the only nonce length supported: 12 bytes, as ESP (RFC 4106:
// 4-byte salt + 8-byte IV) and IKE (RFC 5282) use.
const NonceSize = 12

const blockSize = 16

var (
	errKeySize = errors.New("aesgcm: key must be 16, 24 or 32 bytes")
	errTagSize = errors.New("aesgcm: tag size must be 12 to 16 bytes")
	errOpen    = errors.New("aesgcm: message authentication failed")
	// ErrUnsupported is returned by New when the processor lacks the
	// instructions; use crypto/cipher's GCM instead.
	ErrUnsupported = errors.New("aesgcm: processor lacks VAES/VPCLMULQDQ/AVX2")
)

// expandedKey is what the assembly reads; its layout is fixed by the offsets
// in aesgcm_amd64.s (checked by TestKeyLayout).
type expandedKey struct {
	// rk holds the AES round keys, each stored twice so that one 256-bit
	// load feeds both blocks of a vector.
	rk [15][32]byte
	// pow holds the hash key powers in register form (byte-reflected,
	// premultiplied by x): [H^8|H^7] [H^6|H^5] [H^4|H^3] [H^2|H^1], the
	// first of each pair in the low lane, so that eight consecutive blocks
	// in four vectors meet H^8 … H^1.
	pow [4][32]byte
	// rounds is 10, 12 or 14.
	rounds int64
}

// GCM is an AES-GCM cipher.AEAD with a 12-byte nonce. It is safe for
// concurrent use; Wipe clears its key schedule once no one uses it.
type GCM struct {
	k       expandedKey
	tagSize int
}

var _ cipher.AEAD = (*GCM)(nil)

// New returns AES-GCM for a 16-, 24- or 32-byte key with a tagSize-byte
// tag (12 to 16), or ErrUnsupported when Supported is false.
func New(key []byte, tagSize int) (*GCM, error) {
	if !Supported() {
		return nil, ErrUnsupported
	}
	if tagSize < 12 || tagSize > 16 {
		return nil, errTagSize
	}
	g := &GCM{tagSize: tagSize}
	if err := expandKey(&g.k, key); err != nil {
		return nil, err
	}
	var zero, h [blockSize]byte
	encryptBlock(&g.k, &h, &zero)
	hashKeyPowers(&g.k, &h)
	clear(h[:])
	return g, nil
}

// NonceSize returns 12.
func (g *GCM) NonceSize() int { return NonceSize }

// Overhead returns the tag size.
func (g *GCM) Overhead() int { return g.tagSize }

// Wipe overwrites the key schedule and hash key powers. The GCM must not
// be used afterwards.
func (g *GCM) Wipe() { g.k = expandedKey{} }

// Seal encrypts and authenticates plaintext, authenticates
// additionalData, and appends the result to dst (see cipher.AEAD). To
// encrypt in place, pass plaintext[:0] as dst.
func (g *GCM) Seal(dst, nonce, plaintext, additionalData []byte) []byte {
	if len(nonce) != NonceSize {
		panic("aesgcm: incorrect nonce length")
	}
	ret, out := sliceForAppend(dst, len(plaintext)+g.tagSize)
	if inexactOverlap(out, plaintext) {
		panic("aesgcm: invalid buffer overlap")
	}
	var s state
	g.start(&s, nonce, additionalData)
	full := len(plaintext) / blockSize
	rem := copy(s.last[:blockSize], plaintext[full*blockSize:])
	putLengths(s.last[blockSize:], len(additionalData), len(plaintext))
	var dp, sp *byte
	if full > 0 {
		dp, sp = &out[0], &plaintext[0]
	}
	// Copied before: in place, out and plaintext are the same memory.
	sealBlocks(&g.k, &s.ctr, &s.j0, &s.acc, &s.pre[0], s.npre, dp, sp, full, &s.last[0], rem)
	copy(out[full*blockSize:], s.last[:rem])
	copy(out[len(plaintext):], s.j0[:g.tagSize])
	return ret
}

// Open authenticates and decrypts ciphertext (see cipher.AEAD). To decrypt
// in place, pass ciphertext[:0] as dst. On failure the output, up to its
// length, is zeroed.
func (g *GCM) Open(dst, nonce, ciphertext, additionalData []byte) ([]byte, error) {
	if len(nonce) != NonceSize {
		panic("aesgcm: incorrect nonce length")
	}
	if len(ciphertext) < g.tagSize {
		return nil, errOpen
	}
	n := len(ciphertext) - g.tagSize
	ct := ciphertext[:n]
	ret, out := sliceForAppend(dst, n)
	if inexactOverlap(out, ct) {
		panic("aesgcm: invalid buffer overlap")
	}
	var s state
	copy(s.want[:], ciphertext[n:])
	g.start(&s, nonce, additionalData)
	full := n / blockSize
	rem := copy(s.last[:blockSize], ct[full*blockSize:])
	putLengths(s.last[blockSize:], len(additionalData), n)
	var dp, sp *byte
	if full > 0 {
		dp, sp = &out[0], &ct[0]
	}
	openBlocks(&g.k, &s.ctr, &s.j0, &s.acc, &s.pre[0], s.npre, dp, sp, full, &s.last[0], rem)
	if subtle.ConstantTimeCompare(s.j0[:g.tagSize], s.want[:g.tagSize]) != 1 {
		clear(out)
		return nil, errOpen
	}
	copy(out[full*blockSize:], s.last[:rem])
	return ret, nil
}

// state is one Seal or Open's working set, on the caller's stack.
type state struct {
	// j0 goes in as the pre-counter block and comes back as the tag.
	j0, ctr, acc [blockSize]byte
	// pre holds up to two blocks of zero-padded additional data, hashed
	// by the assembly on entry (ESP's is 8 or 12 bytes).
	pre  [2 * blockSize]byte
	npre int
	// last is the zero-padded partial block and the length block.
	last [2 * blockSize]byte
	want [blockSize]byte
}

func (g *GCM) start(s *state, nonce, aad []byte) {
	copy(s.j0[:], nonce)
	s.j0[15] = 1
	setCounter(&s.ctr, &s.j0, 2)
	if len(aad) <= len(s.pre) {
		copy(s.pre[:], aad)
		s.npre = (len(aad) + blockSize - 1) / blockSize
	} else {
		g.hashPadded(&s.acc, aad)
	}
}

// hashPadded absorbs b, zero-padded to whole blocks, into acc.
func (g *GCM) hashPadded(acc *[blockSize]byte, b []byte) {
	full := len(b) / blockSize
	if full > 0 {
		ghashBlocks(&g.k, acc, &b[0], full)
	}
	if rem := b[full*blockSize:]; len(rem) > 0 {
		var pad [blockSize]byte
		copy(pad[:], rem)
		ghashBlocks(&g.k, acc, &pad[0], 1)
	}
}

// setCounter sets ctr to the counter block of j0 with 32-bit counter c
// (inc32 wraps, as SP 800-38D specifies).
func setCounter(ctr, j0 *[blockSize]byte, c uint32) {
	*ctr = *j0
	binary.BigEndian.PutUint32(ctr[12:], c)
}

// putLengths writes the final GHASH block: the bit lengths of the
// additional data and of the ciphertext.
func putLengths(b []byte, aad, text int) {
	binary.BigEndian.PutUint64(b[0:], uint64(aad)*8)
	binary.BigEndian.PutUint64(b[8:], uint64(text)*8)
}

// --- key schedule ---------------------------------------------------------

// expandKey fills k.rk with the AES key schedule (FIPS 197 §5.2), each
// round key duplicated for both vector lanes.
func expandKey(k *expandedKey, key []byte) error {
	var s aeskey.Schedule
	defer s.Wipe()
	if err := aeskey.Expand(&s, key); err != nil {
		return errKeySize
	}
	for r := 0; r <= s.Rounds; r++ {
		s.PutRoundKey(k.rk[r][:16], r)
		s.PutRoundKey(k.rk[r][16:], r)
	}
	k.rounds = int64(s.Rounds)
	return nil
}

// --- hash key powers ------------------------------------------------------

// u128 is a GHASH field element in register form: the block's bytes
// reversed, as a little-endian 128-bit integer.
type u128 struct{ lo, hi uint64 }

// hashKeyPowers fills k.pow from the hash key h = E(K, 0^128).
func hashKeyPowers(k *expandedKey, h *[blockSize]byte) {
	x := u128{lo: binary.BigEndian.Uint64(h[8:]), hi: binary.BigEndian.Uint64(h[:8])}
	// Premultiply by x (a left shift in this representation, reduced):
	// then the carry-less product of a block and a power needs no shift.
	carry := x.hi >> 63
	x.hi = x.hi<<1 | x.lo>>63
	x.lo <<= 1
	if carry != 0 {
		x.hi ^= 0xc200000000000000
		x.lo ^= 1
	}
	p := x
	for i := 1; i <= 8; i++ {
		// H^i goes to vector (8-i)/2, low lane when i is even.
		v, lane := (8-i)/2, 16
		if i%2 == 0 {
			lane = 0
		}
		binary.LittleEndian.PutUint64(k.pow[v][lane:], p.lo)
		binary.LittleEndian.PutUint64(k.pow[v][lane+8:], p.hi)
		p = gfMul(p, x)
	}
}

// gfMul is the assembly's multiplication, in Go: the 256-bit carry-less
// product of a and b, then two folding steps by 0xC2<<56. With b
// premultiplied by x it returns a·b/x in GF(2^128), so powers of the
// premultiplied key stay premultiplied.
func gfMul(a, b u128) u128 {
	t0h, t0l := clmul(a.lo, b.lo)
	t1h, t1l := clmul(a.hi, b.hi)
	m1h, m1l := clmul(a.lo, b.hi)
	m2h, m2l := clmul(a.hi, b.lo)
	lo := u128{lo: t0l, hi: t0h ^ m1l ^ m2l}
	hi := u128{lo: t1l ^ m1h ^ m2h, hi: t1h}
	lo = fold(fold(lo))
	return u128{lo: hi.lo ^ lo.lo, hi: hi.hi ^ lo.hi}
}

func fold(a u128) u128 {
	ph, pl := clmul(a.lo, 0xc200000000000000)
	return u128{lo: a.hi ^ pl, hi: a.lo ^ ph}
}

// clmul is the 128-bit carry-less product of a and b.
func clmul(a, b uint64) (hi, lo uint64) {
	for i := range 64 {
		if b>>i&1 != 0 {
			lo ^= a << i
			if i > 0 {
				hi ^= a >> (64 - i)
			}
		}
	}
	return hi, lo
}

// --- buffers --------------------------------------------------------------

// sliceForAppend extends in by n bytes, reusing its capacity when it can;
// tail is the extension.
func sliceForAppend(in []byte, n int) (head, tail []byte) {
	if total := len(in) + n; cap(in) >= total {
		head = in[:total]
	} else {
		head = make([]byte, total)
		copy(head, in)
	}
	return head, head[len(in):]
}

// inexactOverlap reports whether x and y share memory other than starting
// at the same address (which in-place operation needs).
func inexactOverlap(x, y []byte) bool {
	if len(x) == 0 || len(y) == 0 || &x[0] == &y[0] {
		return false
	}
	xs, xe := uintptr(unsafe.Pointer(&x[0])), uintptr(unsafe.Pointer(&x[len(x)-1]))
	ys, ye := uintptr(unsafe.Pointer(&y[0])), uintptr(unsafe.Pointer(&y[len(y)-1]))
	return xs <= ye && ys <= xe
}
