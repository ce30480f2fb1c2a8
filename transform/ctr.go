package transform

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/subtle"
	"encoding/binary"
)

// ctrBatch is how many keystream bytes are produced per round of block
// encryptions before XORing them into the payload.
const ctrBatch = 512

// ctrMode is AES-CTR as ESP and IKE use it (RFC 3686 §4, RFC 5930): the
// counter block is nonce(4) || IV(8) || block counter(4), the counter starting
// at 1. crypto/cipher's CTR cannot be re-seeded without allocating, so the
// counter mode is driven here over the AES block cipher.
type ctrMode struct {
	b     cipher.Block
	nonce [4]byte
	key   []byte
}

// newAESCTR takes the AES key followed by the 4-byte nonce (RFC 3686 §5.1).
func newAESCTR(key []byte) (*ctrMode, error) {
	k := append([]byte(nil), key...)
	b, err := aes.NewCipher(k[:len(k)-4])
	if err != nil {
		return nil, err
	}
	m := &ctrMode{b: b, key: k}
	copy(m.nonce[:], k[len(k)-4:])
	return m, nil
}

func (m *ctrMode) ivSize() int                          { return 8 }
func (m *ctrMode) blockSize() int                       { return 4 }
func (m *ctrMode) needsBlocks() bool                    { return false }
func (m *ctrMode) unpredictableIV() bool                { return false }
func (m *ctrMode) initScratch(_ *scratch)               {}
func (m *ctrMode) decrypt(sc *scratch, iv, data []byte) { m.encrypt(sc, iv, data) }

func (m *ctrMode) encrypt(sc *scratch, iv, data []byte) {
	var prefix [12]byte
	copy(prefix[:], m.nonce[:])
	copy(prefix[4:], iv)
	ctrXOR(m.b, sc, &prefix, 1, data)
}

// ctrXOR XORs data with the keystream E(prefix || counter), the 32-bit
// big-endian counter starting at start and incremented per 16-byte block:
// the counter block layout shared by RFC 3686 (start 1) and GCM with a
// 96-bit nonce (start 2, NIST SP 800-38D §7.1).
func ctrXOR(b cipher.Block, sc *scratch, prefix *[12]byte, start uint32, data []byte) {
	ctr := start
	used := 0
	for len(data) > 0 {
		n := min(len(data), ctrBatch)
		blocks := (n + 15) / 16
		ks := sc.ks[:blocks*16]
		for i := 0; i < blocks; i++ {
			cb := ks[i*16 : i*16+16]
			copy(cb, prefix[:])
			binary.BigEndian.PutUint32(cb[12:], ctr)
			ctr++
			b.Encrypt(cb, cb)
		}
		subtle.XORBytes(data[:n], data[:n], ks[:n])
		data = data[n:]
		used = max(used, len(ks))
	}
	clear(sc.ks[:used]) // keystream is key-dependent; do not leave it in the pool
}

func (m *ctrMode) keyMaterial() []byte { return m.key }

func (m *ctrMode) zero() {
	clear(m.key)
	clear(m.nonce[:])
	m.b = nil
}

// nullMode is ENCR_NULL (RFC 2410): no confidentiality, integrity only. No
// IV, 4-byte alignment.
type nullMode struct{}

func (nullMode) ivSize() int                      { return 0 }
func (nullMode) blockSize() int                   { return 4 }
func (nullMode) needsBlocks() bool                { return false }
func (nullMode) unpredictableIV() bool            { return false }
func (nullMode) initScratch(*scratch)             {}
func (nullMode) encrypt(*scratch, []byte, []byte) {}
func (nullMode) decrypt(*scratch, []byte, []byte) {}
func (nullMode) zero()                            {}
func (nullMode) keyMaterial() []byte              { return nil }
