package transform

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
)

// gcm8Supported tells Lookup and Supported whether ENCR_AES_GCM_8 works.
const gcm8Supported = true

// gcm8Engine is AES-GCM with an 8-byte ICV (RFC 4106, RFC 5282). GCM's
// shorter tags are truncations of the 16-byte tag (NIST SP 800-38D §7.1),
// but the standard library only produces 12- to 16-byte tags and this
// package does not implement GHASH, so:
//
//   - Seal runs the 16-byte-tag GCM in place; the tag's last 8 bytes land in
//     the 8 bytes after the packet, which are saved and restored. The caller's
//     buffer therefore needs cap(pkt) >= len(pkt)+8.
//   - Open decrypts with the GCM counter stream, re-seals to obtain the full
//     tag of the received ciphertext (re-creating that ciphertext), compares
//     the first 8 bytes in constant time, and only then decrypts for good.
//     On failure the buffer holds the received ciphertext again: unverified
//     plaintext is never left behind.
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
func (e *gcm8Engine) tailroom() int        { return 8 }
func (e *gcm8Engine) newScratch() *scratch { return new(scratch) }

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

// fullSeal encrypts pkt's payload in place and leaves the 16-byte tag at
// pkt[len-8 : len+8], with the caller responsible for the 8 bytes past len.
func (e *gcm8Engine) fullSeal(sc *scratch, pkt []byte, off int, aad []byte) {
	if aad == nil {
		aad = pkt[:off]
	}
	pt := pkt[off+8 : len(pkt)-8]
	e.a.Seal(pt[:0], e.nonce(sc, pkt[off:off+8]), pt, aad)
}

func (e *gcm8Engine) seal(sc *scratch, pkt []byte, off int, aad, _ []byte) {
	tail := pkt[len(pkt) : len(pkt)+8]
	copy(sc.sum[:8], tail)
	e.fullSeal(sc, pkt, off, aad)
	copy(tail, sc.sum[:8])
}

func (e *gcm8Engine) ctr(sc *scratch, pkt []byte, off int) {
	var prefix [12]byte
	copy(prefix[:], e.salt[:])
	copy(prefix[4:], pkt[off:off+8])
	ctrXOR(e.b, sc, &prefix, 2, pkt[off+8:len(pkt)-8])
}

func (e *gcm8Engine) open(sc *scratch, pkt []byte, off int, aad, _ []byte) bool {
	end := len(pkt)
	tail := pkt[end : end+8]
	copy(sc.sum[:8], tail)          // caller's bytes past the packet
	copy(sc.sum[8:16], pkt[end-8:]) // received ICV
	e.ctr(sc, pkt, off)             // ciphertext -> candidate plaintext
	e.fullSeal(sc, pkt, off, aad)   // back to the ciphertext, plus its full tag
	ok := ctEqual(pkt[end-8:end], sc.sum[8:16])
	copy(pkt[end-8:], sc.sum[8:16])
	copy(tail, sc.sum[:8])
	if ok {
		e.ctr(sc, pkt, off)
	}
	return ok
}

func (e *gcm8Engine) zero() {
	clear(e.key)
	clear(e.salt[:])
	e.a, e.b = nil, nil
}
