package transform

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"

	"github.com/ipsecgw/ipsecgw/transform/internal/aescbc"
)

// ivSetter is implemented by the CBC BlockModes of crypto/cipher (and of the
// FIPS AES module behind it): it lets one BlockMode per pooled scratch be
// reused for every packet instead of allocating one per IV.
type ivSetter interface{ SetIV([]byte) }

// cbcMode is CBC over AES (RFC 3602) or 3DES (RFC 2451), using the standard
// library's CBC implementation, except for AES on processors with AES-NI:
// there decryption runs internal/aescbc (eight blocks at a time), and so
// does the encryption of packets sealed through a SealBatch (eight packets
// at a time). A single Seal keeps crypto/cipher's encrypter, which is as
// fast for one packet.
type cbcMode struct {
	b    cipher.Block
	bs   int
	key  []byte
	fast *aescbc.Key // nil without AES-NI and for 3DES
}

func newAESCBC(key []byte) (*cbcMode, error) {
	k := append([]byte(nil), key...)
	b, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	m := &cbcMode{b: b, bs: 16, key: k}
	if aescbc.Supported() && !disableFastPaths {
		if m.fast, err = aescbc.NewKey(k); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// disableFastPaths makes new Protectors use crypto/cipher and crypto/hmac
// only (no internal/aescbc, no internal/hmacsha1); tests set it to check
// both paths on a processor that has the instructions.
var disableFastPaths = false

func new3DESCBC(key []byte) (*cbcMode, error) {
	k := append([]byte(nil), key...)
	b, err := des.NewTripleDESCipher(k)
	if err != nil {
		return nil, err
	}
	return &cbcMode{b: b, bs: 8, key: k}, nil
}

func (m *cbcMode) ivSize() int           { return m.bs }
func (m *cbcMode) blockSize() int        { return m.bs }
func (m *cbcMode) needsBlocks() bool     { return true }
func (m *cbcMode) unpredictableIV() bool { return true }

func (m *cbcMode) initScratch(sc *scratch) {
	zero := make([]byte, m.bs)
	sc.cbcEnc = cipher.NewCBCEncrypter(m.b, zero)
	sc.cbcDec = cipher.NewCBCDecrypter(m.b, zero)
}

func (m *cbcMode) encrypt(sc *scratch, iv, data []byte) {
	sc.cbcEnc.(ivSetter).SetIV(iv)
	sc.cbcEnc.CryptBlocks(data, data)
}

func (m *cbcMode) decrypt(sc *scratch, iv, data []byte) {
	if m.fast != nil {
		aescbc.Decrypt(m.fast, (*[aescbc.BlockSize]byte)(iv), data)
		return
	}
	sc.cbcDec.(ivSetter).SetIV(iv)
	sc.cbcDec.CryptBlocks(data, data)
}

func (m *cbcMode) keyMaterial() []byte { return m.key }

func (m *cbcMode) zero() {
	clear(m.key)
	m.b = nil
	if m.fast != nil {
		m.fast.Wipe()
		m.fast = nil
	}
}
