package transform

import (
	"crypto/cipher"
	"encoding/binary"
)

// aeadEngine is a Protector engine for combined-mode ciphers whose nonce is
// a 4-byte salt from the keying material followed by the 8-byte explicit IV
// (RFC 4106 §4, RFC 5282 §4, RFC 7634 §2). a must be safe for concurrent use,
// which the standard library GCM and x/crypto ChaCha20-Poly1305 are.
type aeadEngine struct {
	a    cipher.AEAD
	salt [4]byte
	icv  int
	key  []byte // our copy of the key, wiped by zero
}

func (e *aeadEngine) aead() bool        { return true }
func (e *aeadEngine) ivSize() int       { return 8 }
func (e *aeadEngine) blockSize() int    { return 4 }
func (e *aeadEngine) icvSize() int      { return e.icv }
func (e *aeadEngine) needsBlocks() bool { return false }
func (e *aeadEngine) newScratch() *scratch {
	return new(scratch)
}

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
	pt := pkt[off+8 : len(pkt)-e.icv]
	// dst = pt[:0] shares pt's array, whose capacity reaches the ICV field:
	// Seal encrypts in place and appends the tag there.
	e.a.Seal(pt[:0], e.nonce(sc, pkt[off:off+8]), pt, aad)
}

func (e *aeadEngine) open(sc *scratch, pkt []byte, off int, aad, _ []byte) bool {
	if aad == nil {
		aad = pkt[:off]
	}
	ct := pkt[off+8:]
	// The AEAD checks the tag before releasing plaintext; on failure the
	// payload may be overwritten, which is fine for a packet being dropped.
	_, err := e.a.Open(ct[:0], e.nonce(sc, pkt[off:off+8]), ct, aad)
	return err == nil
}

// makeIV uses the unique number itself: GCM and ChaCha20-Poly1305 need only
// uniqueness per key (RFC 4106 §3.1, RFC 7634 §2).
func (e *aeadEngine) makeIV(_ *scratch, iv []byte, n uint64) {
	binary.BigEndian.PutUint64(iv, n)
}

func (e *aeadEngine) zero() {
	clear(e.key)
	clear(e.salt[:])
	// Our own AES-GCM keeps its key schedule where we can reach it.
	if w, ok := e.a.(interface{ Wipe() }); ok {
		w.Wipe()
	}
	e.a = nil
}
