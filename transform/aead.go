package transform

import (
	"crypto/cipher"
	"encoding/binary"
	"sync"
)

// aeadEngine is a Protector engine for combined-mode ciphers whose nonce is
// a 4-byte salt from the keying material followed by the 8-byte explicit IV
// (RFC 4106 §4, RFC 5282 §4, RFC 7634 §2). The AEAD must be safe for
// concurrent use, which the standard library GCM, our internal/aesgcm and
// x/crypto ChaCha20-Poly1305 are.
//
// The AEAD is built from key on the first Seal or Open, not by
// NewProtector: an AES-GCM key schedule with its hash key powers is about
// 600 bytes, and a hub's thousands of idle CHILD SAs never use theirs. The
// first packet of each direction pays the key expansion and one allocation;
// later ones find the AEAD built (one atomic load).
type aeadEngine struct {
	once sync.Once
	salt [4]byte     // after once, which leaves room for it: 80 bytes, not 96
	a    cipher.AEAD // set by once (build)
	// mk builds the AEAD from the cipher key (key without the salt) for
	// an ICV of icv bytes; the key length was checked by the constructor,
	// so it cannot fail for a length reason.
	mk func(key []byte, icv int) (cipher.AEAD, error)
	// key[:n] is our copy of the key material (cipher key, salt), wiped
	// by zero; held inline, it costs no allocation of its own.
	key    [maxAEADKeymat]byte
	n, icv uint8
}

// maxAEADKeymat is the longest AEAD key material: a 256-bit key and the
// 4-byte salt (AES-256-GCM, ChaCha20-Poly1305).
const maxAEADKeymat = 32 + 4

// newAEADEngine keeps a copy of key (cipher key followed by the 4-byte salt)
// for an AEAD that mk builds on first use.
func newAEADEngine(key []byte, icv int, mk func(key []byte, icv int) (cipher.AEAD, error)) *aeadEngine {
	if len(key) > maxAEADKeymat {
		// The constructors accept only the key sizes of their ciphers.
		panic("transform: AEAD key material longer than any cipher's")
	}
	e := &aeadEngine{mk: mk, icv: uint8(icv), n: uint8(len(key))}
	copy(e.key[:], key)
	copy(e.salt[:], key[len(key)-4:])
	return e
}

// aeadCipher returns the AEAD, building it on the first call.
func (e *aeadEngine) aeadCipher() cipher.AEAD {
	e.once.Do(e.build)
	return e.a
}

func (e *aeadEngine) build() {
	a, err := e.mk(e.key[:e.n-4], int(e.icv))
	if err != nil {
		// The constructors reject every key the AEAD could refuse.
		panic("transform: building a checked AEAD key failed: " + err.Error())
	}
	e.a = a
}

func (e *aeadEngine) aead() bool        { return true }
func (e *aeadEngine) ivSize() int       { return 8 }
func (e *aeadEngine) blockSize() int    { return 4 }
func (e *aeadEngine) icvSize() int      { return int(e.icv) }
func (e *aeadEngine) needsBlocks() bool { return false }
func (e *aeadEngine) newScratch() *scratch {
	return new(scratch)
}

func (e *aeadEngine) scratchPool() *sync.Pool { return &plainScratch }

func (e *aeadEngine) nonce(sc *scratch, iv []byte) []byte {
	n := sc.nonce[:12]
	copy(n, e.salt[:])
	copy(n[4:], iv)
	return n
}

func (e *aeadEngine) seal(sc *scratch, pkt []byte, off int, aad, _ []byte) {
	if aad == nil {
		aad = pkt[:off]
	}
	pt := pkt[off+8 : len(pkt)-int(e.icv)]
	// dst = pt[:0] shares pt's array, whose capacity reaches the ICV field:
	// Seal encrypts in place and appends the tag there.
	e.aeadCipher().Seal(pt[:0], e.nonce(sc, pkt[off:off+8]), pt, aad)
}

func (e *aeadEngine) open(sc *scratch, pkt []byte, off int, aad, _ []byte) bool {
	if aad == nil {
		aad = pkt[:off]
	}
	ct := pkt[off+8:]
	// The AEAD checks the tag before releasing plaintext; on failure the
	// payload may be overwritten, which is fine for a packet being dropped.
	_, err := e.aeadCipher().Open(ct[:0], e.nonce(sc, pkt[off:off+8]), ct, aad)
	return err == nil
}

// makeIV uses the unique number itself: GCM and ChaCha20-Poly1305 need only
// uniqueness per key (RFC 4106 §3.1, RFC 7634 §2).
func (e *aeadEngine) makeIV(_ *scratch, iv []byte, n uint64) {
	binary.BigEndian.PutUint64(iv, n)
}

func (e *aeadEngine) keys() ([]byte, []byte) { return e.key[:e.n], nil }

func (e *aeadEngine) zero() {
	clear(e.key[:])
	clear(e.salt[:])
	// Our own AES-GCM keeps its key schedule where we can reach it. An
	// AEAD never built has none. Close does not run concurrently with Seal
	// or Open, and whoever built it handed the Protector over to the
	// closing goroutine with a synchronising operation, so reading e.a
	// here is ordered after build's write.
	if w, ok := e.a.(interface{ Wipe() }); ok {
		w.Wipe()
	}
	e.a = nil
}
