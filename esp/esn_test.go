package esp

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/ipsecgw/ipsecgw/transform"
)

// TestESNIndependent rebuilds ESN packets with the standard library alone,
// following the RFCs rather than our code, and compares them byte for
// byte with SealPacket:
//
//   - AES-GCM (RFC 4106 §5): AAD = SPI | SeqHi | SeqLo, nonce = salt | IV;
//   - AES-CBC + HMAC-SHA-256-128 (RFC 4303 §2.2.1, Appendix A): the ICV is
//     the MAC over SPI | SeqLo | IV | ciphertext | SeqHi, SeqHi not sent.
func TestESNIndependent(t *testing.T) {
	const spi = 0x0badcafe
	var seq = uint64(0x00000007_fffffff0)
	inner := ipv4Packet(77, "10.1.0.2", "10.2.0.2", 1)

	t.Run("aes128gcm16", func(t *testing.T) {
		key := fixedKey(20, 0x21)
		p, err := transform.NewProtector(tr(transform.TypeENCR, transform.EncrAESGCM16, 128), tr(transform.TypeINTEG, 0, 0), key, nil)
		if err != nil {
			t.Fatal(err)
		}
		buf, off := newBuf(inner)
		_, got, err := SealPacket(p, spi, seq, true, buf, off, len(inner))
		if err != nil {
			t.Fatal(err)
		}
		// Independent: plaintext = inner | pad 1,2,.. | padlen | 4, to 4 bytes.
		plain := append([]byte(nil), inner...)
		pad := (4 - (len(inner)+2)%4) % 4
		for i := range pad {
			plain = append(plain, byte(i+1))
		}
		plain = append(plain, byte(pad), 4)
		iv := got[8:16] // the IV is the sender's choice; take it from the packet
		blk, _ := aes.NewCipher(key[:16])
		g, _ := cipher.NewGCM(blk)
		aad := binary.BigEndian.AppendUint32(nil, spi)
		aad = binary.BigEndian.AppendUint32(aad, uint32(seq>>32))
		aad = binary.BigEndian.AppendUint32(aad, uint32(seq))
		nonce := append(append([]byte(nil), key[16:]...), iv...)
		want := binary.BigEndian.AppendUint32(nil, spi)
		want = binary.BigEndian.AppendUint32(want, uint32(seq))
		want = append(want, iv...)
		want = g.Seal(want, nonce, plain, aad)
		if !bytes.Equal(got, want) {
			t.Fatalf("ESN AES-GCM packet differs\n got %x\nwant %x", got, want)
		}
	})

	t.Run("aes128-cbc+hmac-sha256-128", func(t *testing.T) {
		ek, ik := fixedKey(16, 0x31), fixedKey(32, 0x41)
		p, err := transform.NewProtector(tr(transform.TypeENCR, transform.EncrAESCBC, 128), tr(transform.TypeINTEG, transform.IntegHMACSHA2_256_128, 0), ek, ik)
		if err != nil {
			t.Fatal(err)
		}
		buf, off := newBuf(inner)
		_, got, err := SealPacket(p, spi, seq, true, buf, off, len(inner))
		if err != nil {
			t.Fatal(err)
		}
		plain := append([]byte(nil), inner...)
		pad := (16 - (len(inner)+2)%16) % 16
		for i := range pad {
			plain = append(plain, byte(i+1))
		}
		plain = append(plain, byte(pad), 4)
		iv := got[8:24]
		blk, _ := aes.NewCipher(ek)
		ct := make([]byte, len(plain))
		cipher.NewCBCEncrypter(blk, iv).CryptBlocks(ct, plain)
		want := binary.BigEndian.AppendUint32(nil, spi)
		want = binary.BigEndian.AppendUint32(want, uint32(seq))
		want = append(append(want, iv...), ct...)
		m := hmac.New(sha256.New, ik)
		m.Write(want)
		m.Write(binary.BigEndian.AppendUint32(nil, uint32(seq>>32)))
		want = append(want, m.Sum(nil)[:16]...)
		if !bytes.Equal(got, want) {
			t.Fatalf("ESN CBC+HMAC packet differs\n got %x\nwant %x", got, want)
		}
	})
}
