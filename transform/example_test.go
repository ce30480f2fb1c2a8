package transform_test

import (
	"encoding/binary"
	"fmt"

	"github.com/ipsecgw/ipsecgw/transform"
)

// An ESP sender with extended sequence numbers. The same two calls work for
// AEAD and cipher+integrity SAs: the Protector uses aad (AEAD) or trailer
// (HMAC) as its kind requires.
func ExampleProtector_esp() {
	encr := transform.Transform{Type: transform.TypeENCR, ID: transform.EncrAESGCM16, KeyLen: 128}
	integ := transform.Transform{Type: transform.TypeINTEG, ID: transform.IntegNone}
	n, _ := transform.KeymatLen(encr) // 16-byte key + 4-byte salt
	keymat := make([]byte, n)         // from the CHILD_SA KEYMAT in real use
	p, err := transform.NewProtector(encr, integ, keymat, nil)
	if err != nil {
		panic(err)
	}
	defer p.Close()

	seq := uint64(1)<<32 | 7
	payload := []byte("inner IP packet")
	padded := (len(payload) + 2 + p.BlockSize() - 1) / p.BlockSize() * p.BlockSize()
	pkt := make([]byte, 8+p.IVSize()+padded+p.ICVSize())
	binary.BigEndian.PutUint32(pkt[0:], 0xc0ffee01)  // SPI
	binary.BigEndian.PutUint32(pkt[4:], uint32(seq)) // low 32 bits
	_ = p.IV(pkt[8:8+p.IVSize()], seq)
	body := pkt[8+p.IVSize() : len(pkt)-p.ICVSize()]
	copy(body, payload)
	body[len(body)-2] = byte(padded - 2 - len(payload)) // pad length
	body[len(body)-1] = 4                               // next header

	var aad [12]byte // SPI | SeqHi | SeqLo, on the stack
	copy(aad[0:4], pkt[0:4])
	binary.BigEndian.PutUint32(aad[4:], uint32(seq>>32))
	copy(aad[8:12], pkt[4:8])
	var trailer [4]byte // SeqHi, for HMAC SAs
	binary.BigEndian.PutUint32(trailer[:], uint32(seq>>32))

	if err := p.Seal(pkt, 8, aad[:], trailer[:]); err != nil {
		panic(err)
	}
	fmt.Println(len(pkt), p.AEAD(), p.IVSize(), p.ICVSize())
	// Output: 52 true 8 16
}

// An IKE SK payload: the IKE header and the SK generic header are
// authenticated in place, so no aad or trailer is passed.
func ExampleProtector_ike() {
	encr := transform.Transform{Type: transform.TypeENCR, ID: transform.EncrAESCBC, KeyLen: 256}
	integ := transform.Transform{Type: transform.TypeINTEG, ID: transform.IntegHMACSHA2_256_128}
	ek, _ := transform.KeymatLen(encr)
	ik, _ := transform.KeymatLen(integ)
	p, err := transform.NewProtector(encr, integ, make([]byte, ek), make([]byte, ik))
	if err != nil {
		panic(err)
	}
	off := 28 + 4 // IKE header + SK payload header
	inner := make([]byte, 31)
	padded := (len(inner) + 1 + p.BlockSize() - 1) / p.BlockSize() * p.BlockSize()
	msg := make([]byte, off+p.IVSize()+padded+p.ICVSize())
	_ = p.NextIV(msg[off : off+p.IVSize()])
	if err := p.Seal(msg, off, nil, nil); err != nil {
		panic(err)
	}
	fmt.Println(p.Open(msg, off, nil, nil))
	msg[0] ^= 1
	fmt.Println(p.Open(msg, off, nil, nil))
	// Output:
	// <nil>
	// transform: open ENCR aes256 (id 12, keylen 256): integrity check failed
}

func ExampleName() {
	fmt.Println(transform.Name(transform.TypeENCR, transform.EncrAESGCM16, 128))
	fmt.Println(transform.Name(transform.TypePRF, transform.PRFHMACSHA2_256, 0))
	fmt.Println(transform.Name(transform.TypeKE, transform.KEECP384, 0))
	// Output:
	// aes128gcm16
	// prfsha256
	// ecp384
}
