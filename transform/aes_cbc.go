package transform

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
)

// ivSetter is implemented by the CBC BlockModes of crypto/cipher (and of the
// FIPS AES module behind it): it lets one BlockMode per pooled scratch be
// reused for every packet instead of allocating one per IV.
type ivSetter interface{ SetIV([]byte) }

// cbcMode is CBC over AES (RFC 3602) or 3DES (RFC 2451), using the standard
// library's CBC implementation (assembly-accelerated for AES).
type cbcMode struct {
	b   cipher.Block
	bs  int
	key []byte
}

func newAESCBC(key []byte) (*cbcMode, error) {
	k := append([]byte(nil), key...)
	b, err := aes.NewCipher(k)
	if err != nil {
		return nil, err
	}
	return &cbcMode{b: b, bs: 16, key: k}, nil
}

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
	sc.cbcDec.(ivSetter).SetIV(iv)
	sc.cbcDec.CryptBlocks(data, data)
}

func (m *cbcMode) zero() {
	clear(m.key)
	m.b = nil
}
