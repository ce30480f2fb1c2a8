package transform

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"hash"
	"sync"

	"github.com/ipsecgw/ipsecgw/transform/internal/hmacsha1"
)

// cipherMode is the encryption half of a cipher+integrity engine. It works
// in place and takes its per-call state from sc.
type cipherMode interface {
	ivSize() int
	blockSize() int
	needsBlocks() bool
	initScratch(sc *scratch)
	encrypt(sc *scratch, iv, data []byte)
	decrypt(sc *scratch, iv, data []byte)
	// unpredictableIV reports whether IVs must be unpredictable (CBC).
	unpredictableIV() bool
	// keyMaterial is the key the mode was built from (nil for NULL).
	keyMaterial() []byte
	zero()
}

// integEngine combines a cipher with a truncated MAC: encrypt, then MAC the
// header, IV, ciphertext and trailer (RFC 4303 §3.3.2-3.3.4, RFC 7296 §3.14).
type integEngine struct {
	c      cipherMode
	newMAC func() hash.Hash // returns a freshly keyed MAC
	icv    int
	macKey []byte
	ivKey  cipher.Block // CBC only: encrypts IV counters (see Protector.IV)
	ivRaw  []byte
	// sha1 holds the HMAC-SHA1 pad states for the batches' multi-lane
	// HMAC (nil for other MACs and without SHA-NI).
	sha1 *hmacsha1.Key
	// pool holds the engine's scratch, which is keyed (the MAC, the CBC
	// modes).
	pool sync.Pool
}

func (e *integEngine) aead() bool        { return false }
func (e *integEngine) ivSize() int       { return e.c.ivSize() }
func (e *integEngine) blockSize() int    { return e.c.blockSize() }
func (e *integEngine) icvSize() int      { return e.icv }
func (e *integEngine) needsBlocks() bool { return e.c.needsBlocks() }

func (e *integEngine) scratchPool() *sync.Pool { return &e.pool }

func (e *integEngine) newScratch() *scratch {
	sc := &scratch{mac: e.newMAC()}
	e.c.initScratch(sc)
	return sc
}

func (e *integEngine) mac(sc *scratch, authed, trailer []byte) []byte {
	sc.mac.Reset()
	sc.mac.Write(authed)
	sc.mac.Write(trailer)
	return sc.mac.Sum(sc.sum[:0])[:e.icv]
}

func (e *integEngine) seal(sc *scratch, pkt []byte, off int, _, trailer []byte) {
	iv := off + e.c.ivSize()
	end := len(pkt) - e.icv
	e.c.encrypt(sc, pkt[off:iv], pkt[iv:end])
	copy(pkt[end:], e.mac(sc, pkt[:end], trailer))
}

func (e *integEngine) open(sc *scratch, pkt []byte, off int, _, trailer []byte) bool {
	iv := off + e.c.ivSize()
	end := len(pkt) - e.icv
	// Verify before decrypting: a forged packet never reaches the cipher.
	if !ctEqual(e.mac(sc, pkt[:end], trailer), pkt[end:]) {
		return false
	}
	e.c.decrypt(sc, pkt[off:iv], pkt[iv:end])
	return true
}

func (e *integEngine) makeIV(sc *scratch, iv []byte, n uint64) {
	if e.ivKey == nil {
		binary.BigEndian.PutUint64(iv, n)
		return
	}
	// CBC: encrypt the unique counter under a random key only we know. The
	// result never repeats (AES is a permutation) and cannot be predicted by
	// anyone choosing plaintexts (RFC 3602 §3 and the TLS 1.0 CBC attacks).
	b := sc.ks[:16]
	clear(b)
	binary.BigEndian.PutUint64(b, n)
	e.ivKey.Encrypt(b, b)
	copy(iv, b)
}

func (e *integEngine) keys() ([]byte, []byte) { return e.c.keyMaterial(), e.macKey }

func (e *integEngine) zero() {
	e.c.zero()
	clear(e.macKey)
	clear(e.ivRaw)
	e.ivKey = nil
	if e.sha1 != nil {
		e.sha1.Wipe()
		e.sha1 = nil
	}
	e.newMAC = nil
	e.pool = sync.Pool{} // keyed scratch goes with the keys
}

// newIntegEngine keys the MAC for integ and combines it with c.
func newIntegEngine(c cipherMode, integ ID, key []byte) (*integEngine, error) {
	k := append([]byte(nil), key...)
	e := &integEngine{c: c, macKey: k, icv: integSizes[integ].icv}
	var h func() hash.Hash
	switch integ {
	case IntegHMACMD5_96:
		h = md5.New
	case IntegHMACSHA1_96:
		h = sha1.New
		if hmacsha1.Supported() && !disableFastPaths {
			var err error
			if e.sha1, err = hmacsha1.NewKey(k); err != nil {
				return nil, err
			}
		}
	case IntegHMACSHA2_256_128, IntegHMACSHA2_256_96:
		h = sha256.New
	case IntegHMACSHA2_384_192:
		h = sha512.New384
	case IntegHMACSHA2_512_256:
		h = sha512.New
	case IntegAESXCBC96:
		// RFC 3566: the key is exactly 128 bits (checked by the caller).
		e.newMAC = func() hash.Hash { return newXCBC((*[16]byte)(k)) }
	case IntegAESCMAC96:
		// RFC 4494 §2: AES-128-CMAC truncated to 96 bits, a 128-bit key.
		e.newMAC = func() hash.Hash { return newCMAC((*[16]byte)(k)) }
	default:
		return nil, errUnsupportedInteg
	}
	if h != nil {
		e.newMAC = func() hash.Hash { return hmac.New(h, k) }
	}
	if c.unpredictableIV() {
		e.ivRaw = make([]byte, 16)
		if _, err := rand.Read(e.ivRaw); err != nil {
			return nil, err
		}
		b, err := aes.NewCipher(e.ivRaw)
		if err != nil {
			return nil, err
		}
		e.ivKey = b
	}
	return e, nil
}

var errUnsupportedInteg = ErrUnsupported
