package keymat

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"hash"
	"net/netip"

	"github.com/ipsecgw/ipsecgw/transform"
)

// Suite is what the key schedule needs of a negotiated phase 1: the
// cipher (3DES-CBC, or AES-CBC with its key length) and the PRF, which in
// IKEv1 is the HMAC of the negotiated hash (RFC 2409 §5); the plain hash
// makes the IVs and NAT-D payloads.
type Suite struct {
	Encr transform.Transform
	PRF  transform.ID

	prf       transform.PRF
	hash      func() hash.Hash
	keyLen    int
	blockSize int
}

// hashes maps the HMAC PRFs to their hash.
var hashes = map[transform.ID]func() hash.Hash{
	transform.PRFHMACMD5:      md5.New,
	transform.PRFHMACSHA1:     sha1.New,
	transform.PRFHMACSHA2_256: sha256.New,
	transform.PRFHMACSHA2_384: sha512.New384,
	transform.PRFHMACSHA2_512: sha512.New,
}

// NewSuite checks and prepares a phase 1 suite: encr must be 3DES-CBC or
// AES-CBC-128/192/256, prf an HMAC PRF (the ENCR and PRF of the
// isakmp.Phase1Offer or shared.Selection negotiated).
func NewSuite(encr transform.Transform, prf transform.ID) (Suite, error) {
	encr.Type = transform.TypeENCR
	if encr.ID != transform.Encr3DES && encr.ID != transform.EncrAESCBC {
		return Suite{}, errors.New("keymat: phase 1 cipher " + encr.String() + " is not 3DES-CBC or AES-CBC")
	}
	info, err := transform.Lookup(encr)
	if err != nil {
		return Suite{}, err
	}
	h, ok := hashes[prf]
	if !ok {
		return Suite{}, errors.New("keymat: phase 1 PRF " + transform.Name(transform.TypePRF, prf, 0) + " is not an HMAC of MD5, SHA-1 or SHA-2")
	}
	f, err := transform.NewPRF(prf)
	if err != nil {
		return Suite{}, err
	}
	return Suite{Encr: encr, PRF: prf, prf: f, hash: h, keyLen: info.KeySize, blockSize: info.BlockSize}, nil
}

// BlockSize is the cipher's block size: the IV length and the padding
// unit.
func (s Suite) BlockSize() int { return s.blockSize }

// KeyLen is the cipher key length in bytes.
func (s Suite) KeyLen() int { return s.keyLen }

// HashSize is the output size of the PRF and hash, and so the length of
// every HASH payload.
func (s Suite) HashSize() int { return s.prf.Size() }

// mac computes prf(key, data...) appended to dst.
func (s Suite) mac(dst, key []byte, data ...[]byte) []byte {
	k := s.prf.New(key)
	for _, d := range data {
		k.Write(d)
	}
	dst = k.Sum(dst)
	k.Zero()
	return dst
}

// digest computes hash(data...).
func (s Suite) digest(data ...[]byte) []byte {
	h := s.hash()
	for _, d := range data {
		h.Write(d)
	}
	return h.Sum(nil)
}

func cookies(ckyI, ckyR uint64) []byte {
	b := binary.BigEndian.AppendUint64(make([]byte, 0, 16), ckyI)
	return binary.BigEndian.AppendUint64(b, ckyR)
}

// NATDHash is the data of a NAT-D payload (RFC 3947 §3.2):
//
//	HASH = HASH(CKY-I | CKY-R | IP | Port)
//
// with the negotiated hash (not the HMAC), the cookies of the ISAKMP SA
// (in main mode messages 3 and 4 both are known) and an IPv4 (4 bytes) or
// IPv6 (16 bytes) address with its UDP port.
func (s Suite) NATDHash(ckyI, ckyR uint64, ap netip.AddrPort) []byte {
	a := ap.Addr().Unmap()
	return s.digest(cookies(ckyI, ckyR), a.AsSlice(), binary.BigEndian.AppendUint16(nil, ap.Port()))
}

// Keys are the secrets of an ISAKMP SA (RFC 2409 §5):
//
//	SKEYID   = prf(pre-shared-key, Ni_b | Nr_b)          (PSK, SKEYIDPSK)
//	SKEYID_d = prf(SKEYID, g^xy | CKY-I | CKY-R | 0)
//	SKEYID_a = prf(SKEYID, SKEYID_d | g^xy | CKY-I | CKY-R | 1)
//	SKEYID_e = prf(SKEYID, SKEYID_a | g^xy | CKY-I | CKY-R | 2)
//
// and Ka, the cipher key taken from SKEYID_e: its first KeyLen bytes, or,
// when the PRF's output is shorter than the key (3DES with MD5 or SHA-1,
// AES-192/256 with SHA-1), its extension of RFC 2409 Appendix B:
//
//	Ka = K1 | K2 | K3 ...   K1 = prf(SKEYID_e, 0), Kn = prf(SKEYID_e, Kn-1)
//
// truncated to KeyLen (0 is one zero octet). All slices share one backing
// array; Zero wipes it and drops the cipher. String hides the values.
type Keys struct {
	Suite
	SKEYID, SKEYIDd, SKEYIDa, SKEYIDe, Ka []byte

	all   []byte
	block cipher.Block
}

// Zero overwrites all key material. The Keys must not be used afterwards.
// The AES or 3DES key schedule inside crypto/aes or crypto/des cannot be
// wiped from outside the standard library; it is dropped for the
// garbage collector.
func (k *Keys) Zero() {
	clear(k.all)
	*k = Keys{}
}

// String never prints key bytes (a value receiver, so that printing a
// Keys value is covered as well as a pointer).
func (k Keys) String() string { return "keymat.Keys{redacted}" }

// GoString never prints key bytes, even with %#v.
func (k Keys) GoString() string { return k.String() }

// SKEYIDPSK computes SKEYID for pre-shared key authentication (RFC 2409
// §5): prf(pre-shared-key, Ni_b | Nr_b), with the nonce payload bodies.
func SKEYIDPSK(s Suite, psk, ni, nr []byte) []byte { return s.mac(nil, psk, ni, nr) }

// Derive computes the keys of an ISAKMP SA from SKEYID, the
// Diffie-Hellman shared secret g^xy (as transform.KeyExchange returns it:
// left-padded to the group's size) and the cookies. skeyid is copied; the
// caller wipes its own copy.
func Derive(s Suite, skeyid, gxy []byte, ckyI, ckyR uint64) (*Keys, error) {
	if s.prf == nil {
		return nil, errors.New("keymat: suite not made by NewSuite")
	}
	n := s.prf.Size()
	// Ka takes KeyLen bytes of SKEYID_e, or whole PRF blocks of its
	// extension; size the one backing array for all of it up front.
	kaLen := s.keyLen
	if n < s.keyLen {
		kaLen = (s.keyLen + n - 1) / n * n
	}
	all := make([]byte, 0, len(skeyid)+3*n+kaLen)
	all = append(all, skeyid...)
	ck := cookies(ckyI, ckyR)
	all = s.mac(all, skeyid, gxy, ck, []byte{0})
	all = s.mac(all, skeyid, all[len(skeyid):], gxy, ck, []byte{1})
	all = s.mac(all, skeyid, all[len(skeyid)+n:], gxy, ck, []byte{2})
	take := func(off, l int) []byte { return all[off : off+l : off+l] }
	k := &Keys{Suite: s}
	k.SKEYID = take(0, len(skeyid))
	k.SKEYIDd = take(len(skeyid), n)
	k.SKEYIDa = take(len(skeyid)+n, n)
	k.SKEYIDe = take(len(skeyid)+2*n, n)
	kaAt := len(all)
	if n >= s.keyLen {
		all = append(all, k.SKEYIDe[:s.keyLen]...)
	} else {
		prev := []byte{0}
		for len(all)-kaAt < s.keyLen {
			start := len(all)
			all = s.mac(all, k.SKEYIDe, prev)
			prev = all[start:]
		}
	}
	k.all = all
	k.Ka = take(kaAt, s.keyLen)
	var err error
	if s.Encr.ID == transform.EncrAESCBC {
		k.block, err = aes.NewCipher(k.Ka)
	} else {
		k.block, err = des.NewTripleDESCipher(k.Ka)
	}
	if err != nil {
		k.Zero()
		return nil, err
	}
	return k, nil
}

// DerivePSK computes SKEYID from the pre-shared key and the nonce bodies
// and derives the keys from it (RFC 2409 §5 with §5.4's SKEYID).
func DerivePSK(s Suite, psk, ni, nr, gxy []byte, ckyI, ckyR uint64) (*Keys, error) {
	skeyid := SKEYIDPSK(s, psk, ni, nr)
	defer clear(skeyid)
	return Derive(s, skeyid, gxy, ckyI, ckyR)
}

// HashI computes the initiator's HASH_I (RFC 2409 §5):
//
//	HASH_I = prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b)
//
// g^xi and g^xr are the KE payload bodies of initiator and responder,
// SAi_b the body of the SA payload the initiator sent in message 1 (as
// sent: isakmp.RawPayload.Body, not a re-encoding) and IDii_b the body
// of the initiator's ID payload (ID type, protocol, port, data).
func (k *Keys) HashI(gxi, gxr []byte, ckyI, ckyR uint64, saiB, idiiB []byte) []byte {
	return k.mac(nil, k.SKEYID, gxi, gxr, cookies(ckyI, ckyR), saiB, idiiB)
}

// HashR computes the responder's HASH_R (RFC 2409 §5), with the same
// arguments in the same order as HashI and the responder's ID body:
//
//	HASH_R = prf(SKEYID, g^xr | g^xi | CKY-R | CKY-I | SAi_b | IDir_b)
func (k *Keys) HashR(gxi, gxr []byte, ckyI, ckyR uint64, saiB, idirB []byte) []byte {
	return k.mac(nil, k.SKEYID, gxr, gxi, cookies(ckyR, ckyI), saiB, idirB)
}

// Equal compares a received HASH with the expected one in constant time.
func Equal(want, got []byte) bool { return subtle.ConstantTimeCompare(want, got) == 1 }

func mid(m uint32) []byte { return binary.BigEndian.AppendUint32(nil, m) }

// QuickHash1 computes HASH(1) of quick mode message 1 (RFC 2409 §5.5):
//
//	HASH(1) = prf(SKEYID_a, M-ID | SA | Ni [ | KE ] [ | IDci | IDcr ])
//
// where rest is the message after the HASH payload
// (isakmp.Message.AfterHash, or what isakmp.AppendHashedMessage passes).
func (k *Keys) QuickHash1(msgID uint32, rest []byte) []byte {
	return k.mac(nil, k.SKEYIDa, mid(msgID), rest)
}

// QuickHash2 computes HASH(2) of quick mode message 2 (RFC 2409 §5.5):
//
//	HASH(2) = prf(SKEYID_a, M-ID | Ni_b | SA | Nr [ | KE ] [ | IDci | IDcr ])
//
// with the initiator's nonce body and the rest of message 2.
func (k *Keys) QuickHash2(msgID uint32, ni, rest []byte) []byte {
	return k.mac(nil, k.SKEYIDa, mid(msgID), ni, rest)
}

// QuickHash3 computes HASH(3) of quick mode message 3 (RFC 2409 §5.5):
//
//	HASH(3) = prf(SKEYID_a, 0 | M-ID | Ni_b | Nr_b)
func (k *Keys) QuickHash3(msgID uint32, ni, nr []byte) []byte {
	return k.mac(nil, k.SKEYIDa, []byte{0}, mid(msgID), ni, nr)
}

// InformationalHash computes the HASH of a protected informational
// message (RFC 2409 §5.7), with rest the payloads after the HASH payload:
//
//	HASH = prf(SKEYID_a, M-ID | N/D)
func (k *Keys) InformationalHash(msgID uint32, rest []byte) []byte {
	return k.mac(nil, k.SKEYIDa, mid(msgID), rest)
}

// KEYMAT returns n bytes of keying material for the IPsec SA whose
// receiver chose spi (RFC 2409 §5.5):
//
//	KEYMAT = K1 | K2 | ...
//	K1 = prf(SKEYID_d, [ g(qm)^xy | ] protocol | SPI | Ni_b | Nr_b)
//	Kn = prf(SKEYID_d, Kn-1 | [ g(qm)^xy | ] protocol | SPI | Ni_b | Nr_b)
//
// gqm is the quick mode Diffie-Hellman secret with PFS, nil without;
// protocol the proposal's protocol ID (3 for ESP); ni and nr the quick
// mode nonce bodies, the initiator's first whatever our role.
func (k *Keys) KEYMAT(protocol uint8, spi uint32, gqm, ni, nr []byte, n int) []byte {
	seed := make([]byte, 0, len(gqm)+5+len(ni)+len(nr))
	seed = append(append(seed, gqm...), protocol)
	seed = binary.BigEndian.AppendUint32(seed, spi)
	seed = append(append(seed, ni...), nr...)
	h := k.prf.Size()
	out := make([]byte, 0, n+h)
	var prev []byte
	for len(out) < n {
		start := len(out)
		out = k.mac(out, k.SKEYIDd, prev, seed)
		prev = out[start:]
	}
	clear(seed)
	clear(out[n:])
	return out[:n:n]
}

// ChildKeys is the keying material of a pair of IPsec SAs made by quick
// mode: for the SA carrying traffic from the quick mode initiator to the
// responder (EncrI, IntegI; its SPI is the responder's) and for the other
// direction (EncrR, IntegR; the initiator's SPI). Each direction's KEYMAT
// starts with the encryption key (with the salt last for AES-GCM and
// AES-CTR, RFC 4106 §8.1, RFC 3686 §5.1), followed by the integrity key,
// as strongSwan slices it. Zero wipes everything.
type ChildKeys struct {
	EncrI, IntegI, EncrR, IntegR []byte
	all                          [2][]byte
}

// Zero overwrites all key material.
func (c *ChildKeys) Zero() {
	clear(c.all[0])
	clear(c.all[1])
	*c = ChildKeys{}
}

// String never prints key bytes.
func (c ChildKeys) String() string { return "keymat.ChildKeys{redacted}" }

// GoString never prints key bytes, even with %#v.
func (c ChildKeys) GoString() string { return c.String() }

// ChildKeys derives the keys of the IPsec SA pair negotiated by a quick
// mode exchange: encr and integ are the negotiated transforms (integ
// IntegNone, or zero, for AEAD ciphers), spiI and spiR the SPIs of the
// initiator's and the responder's SA payloads (each side's inbound SPI),
// gqm the PFS secret (nil without), ni and nr the nonce bodies of quick
// mode messages 1 and 2. The engine maps I/R to inbound/outbound by its
// role in this quick mode.
//
// An AH SA pair has no encryption transform (encr is the zero Transform,
// protocol 2): its KEYMAT is the integrity key alone.
func (k *Keys) ChildKeys(protocol uint8, encr, integ transform.Transform, spiI, spiR uint32, gqm, ni, nr []byte) (ChildKeys, error) {
	el := 0
	var err error
	if encr != (transform.Transform{}) {
		encr.Type = transform.TypeENCR
		if el, err = transform.KeymatLen(encr); err != nil {
			return ChildKeys{}, err
		}
	}
	al := 0
	if integ.ID != transform.IntegNone {
		integ.Type = transform.TypeINTEG
		if al, err = transform.KeymatLen(integ); err != nil {
			return ChildKeys{}, err
		}
	}
	i := k.KEYMAT(protocol, spiR, gqm, ni, nr, el+al)
	r := k.KEYMAT(protocol, spiI, gqm, ni, nr, el+al)
	c := ChildKeys{all: [2][]byte{i, r}}
	c.EncrI, c.IntegI = i[:el:el], i[el:el+al:el+al]
	c.EncrR, c.IntegR = r[:el:el], r[el:el+al:el+al]
	return c, nil
}
