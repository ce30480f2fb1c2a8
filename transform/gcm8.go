package transform

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"sync"
)

// gcm8Supported tells Lookup and Supported whether ENCR_AES_GCM_8 works.
const gcm8Supported = true

// gcm8Engine is AES-GCM with an 8-byte ICV (RFC 4106, RFC 5282). GCM's
// shorter tags are truncations of the 16-byte tag (NIST SP 800-38D §7.1),
// but the standard library only produces 12- to 16-byte tags and this
// package does not implement GHASH, so:
//
//   - Seal runs the 16-byte-tag GCM in place; the tag's last 8 bytes land in
//     the 8 bytes after the packet, which are saved and restored.
//   - Open decrypts with the GCM counter stream, re-seals to obtain the full
//     tag of the received ciphertext (re-creating that ciphertext), compares
//     the first 8 bytes in constant time, and only then decrypts for good.
//     On failure the buffer holds the received ciphertext again: unverified
//     plaintext is never left behind.
//
// Both need 8 bytes past the ICV. When the caller's buffer has that capacity
// they are borrowed and restored (no allocation); otherwise the payload is
// processed in a per-scratch work buffer and copied back, which allocates
// only when that pooled buffer has to grow.
//
// This costs about three passes over the payload; GCM-8 is rare and
// discouraged (RFC 8221 §5), so correctness beats speed here.
type gcm8Engine struct {
	a    cipher.AEAD // 16-byte tag
	b    cipher.Block
	salt [4]byte
	key  []byte
}

func newGCM8(key []byte) (engine, error) {
	k := append([]byte(nil), key...)
	b, err := aes.NewCipher(k[:len(k)-4])
	if err != nil {
		return nil, err
	}
	a, err := cipher.NewGCM(b)
	if err != nil {
		return nil, err
	}
	e := &gcm8Engine{a: a, b: b, key: k}
	copy(e.salt[:], k[len(k)-4:])
	return e, nil
}

func (e *gcm8Engine) aead() bool           { return true }
func (e *gcm8Engine) ivSize() int          { return 8 }
func (e *gcm8Engine) blockSize() int       { return 4 }
func (e *gcm8Engine) icvSize() int         { return 8 }
func (e *gcm8Engine) needsBlocks() bool    { return false }
func (e *gcm8Engine) newScratch() *scratch { return new(scratch) }

func (e *gcm8Engine) scratchPool() *sync.Pool { return &plainScratch }

// makeIV uses the unique number itself, as for the other GCM variants.
func (e *gcm8Engine) makeIV(_ *scratch, iv []byte, n uint64) {
	binary.BigEndian.PutUint64(iv, n)
}

func (e *gcm8Engine) nonce(sc *scratch, iv []byte) []byte {
	n := sc.nonce[:12]
	copy(n, e.salt[:])
	copy(n[4:], iv)
	return n
}

// work returns the region to process (ciphertext||ICV) with 8 bytes of
// capacity beyond it: pkt's own memory when it has the room, else sc.work
// holding a copy.
func (e *gcm8Engine) work(sc *scratch, body []byte) (w []byte, inPlace bool) {
	if cap(body)-len(body) >= 8 {
		return body, true
	}
	if cap(sc.work) < len(body)+8 {
		sc.work = make([]byte, len(body)+8, len(body)+8+512)
	}
	w = sc.work[:len(body)]
	copy(w, body)
	return w, false
}

// fullSeal encrypts body[:len-8] in place and leaves the 16-byte tag at
// body[len-8 : len+8].
func (e *gcm8Engine) fullSeal(nonce, body, aad []byte) {
	pt := body[:len(body)-8]
	e.a.Seal(pt[:0], nonce, pt, aad)
}

func (e *gcm8Engine) seal(sc *scratch, pkt []byte, off int, aad, _ []byte) {
	if aad == nil {
		aad = pkt[:off]
	}
	nonce := e.nonce(sc, pkt[off:off+8])
	body := pkt[off+8:]
	w, inPlace := e.work(sc, body)
	tail := w[len(w) : len(w)+8]
	copy(sc.sum[:8], tail)
	e.fullSeal(nonce, w, aad)
	copy(tail, sc.sum[:8])
	if !inPlace {
		copy(body, w)
	}
}

func (e *gcm8Engine) ctr(sc *scratch, nonce, data []byte) {
	ctrXOR(e.b, sc, (*[12]byte)(nonce), 2, data)
}

func (e *gcm8Engine) open(sc *scratch, pkt []byte, off int, aad, _ []byte) bool {
	if aad == nil {
		aad = pkt[:off]
	}
	nonce := e.nonce(sc, pkt[off:off+8])
	body := pkt[off+8:]
	w, inPlace := e.work(sc, body)
	end := len(w)
	tail := w[end : end+8]
	copy(sc.sum[:8], tail)        // bytes past the region
	copy(sc.sum[8:16], w[end-8:]) // received ICV
	e.ctr(sc, nonce, w[:end-8])   // ciphertext -> candidate plaintext
	e.fullSeal(nonce, w, aad)     // back to the ciphertext, plus its full tag
	ok := ctEqual(w[end-8:end], sc.sum[8:16])
	copy(w[end-8:], sc.sum[8:16])
	copy(tail, sc.sum[:8])
	if ok {
		e.ctr(sc, nonce, w[:end-8])
		if !inPlace {
			copy(body, w)
		}
	}
	if !inPlace {
		clear(sc.work[:cap(sc.work)]) // candidate plaintext must not linger in the pool
	}
	return ok
}

func (e *gcm8Engine) keys() ([]byte, []byte) { return e.key, nil }

func (e *gcm8Engine) zero() {
	clear(e.key)
	clear(e.salt[:])
	e.a, e.b = nil, nil
}
