package message

import (
	"crypto/sha1"
	"crypto/subtle"
	"encoding/binary"
	"net/netip"

	"github.com/ipsecgw/ipsecgw/transform"
)

// prf computes prf(key, data...) appended to dst.
func prf(f transform.PRF, dst, key []byte, data ...[]byte) []byte {
	k := f.New(key)
	for _, d := range data {
		k.Write(d)
	}
	dst = k.Sum(dst)
	k.Zero()
	return dst
}

// PRFPlus returns n bytes of prf+(key, seed) (RFC 7296 §2.13):
//
//	prf+ (K,S) = T1 | T2 | T3 | T4 | ...
//	T1 = prf (K, S | 0x01)
//	T2 = prf (K, T1 | S | 0x02)
//	...
//
// The counter is one octet, so at most 255 blocks can be produced; asking for
// more is an error (the key schedule never does).
func PRFPlus(f transform.PRF, key []byte, n int, seed ...[]byte) ([]byte, error) {
	if n < 0 || n > 255*f.Size() {
		return nil, &Error{Notify: NotifyNone, Reason: "prf+ output longer than 255 blocks", Offset: -1}
	}
	out := make([]byte, 0, n+f.Size())
	k := f.New(key)
	defer k.Zero()
	var prev []byte
	for i := 1; len(out) < n; i++ {
		k.Reset()
		k.Write(prev)
		for _, s := range seed {
			k.Write(s)
		}
		k.Write([]byte{byte(i)})
		start := len(out)
		out = k.Sum(out)
		prev = out[start:]
	}
	clear(out[n:])
	return out[:n:n], nil
}

// fixedKeyPRF reports whether the PRF takes a fixed 16-byte key (AES-XCBC,
// AES-CMAC), for which RFC 7296 §2.14 builds the SKEYSEED key from the first
// half of each nonce.
func fixedKeyPRF(f transform.PRF) bool {
	return f.ID() == transform.PRFAES128XCBC || f.ID() == transform.PRFAES128CMAC
}

// SKEYSEED computes SKEYSEED = prf(Ni | Nr, g^ir) for a new IKE SA (RFC 7296
// §2.14). ni and nr are the nonce payload bodies, gir the shared secret.
// For PRFs with a fixed key length the key is the first 8 bytes of Ni and
// of Nr, as §2.14 prescribes ("half the bits must come from Ni and half from
// Nr, taking the first bits of each").
func SKEYSEED(f transform.PRF, ni, nr, gir []byte) []byte {
	if fixedKeyPRF(f) && len(ni) >= 8 && len(nr) >= 8 {
		var key [16]byte
		copy(key[:8], ni)
		copy(key[8:], nr)
		out := prf(f, nil, key[:], gir)
		clear(key[:])
		return out
	}
	key := make([]byte, 0, len(ni)+len(nr))
	key = append(append(key, ni...), nr...)
	out := prf(f, nil, key, gir)
	return out
}

// RekeySKEYSEED computes the SKEYSEED of an IKE SA created by rekeying (RFC
// 7296 §2.18): prf(SK_d (old), g^ir (new) | Ni | Nr), with the old IKE SA's
// PRF, SK_d, the new shared secret and the CREATE_CHILD_SA nonces. The
// shared secrets of additional key exchanges run in IKE_FOLLOWUP_KE
// exchanges follow the nonces, in order (RFC 9370 §2.2.4):
// prf(SK_d (old), SK(0) | Ni | Nr | SK(1) | ... | SK(n)).
func RekeySKEYSEED(oldPRF transform.PRF, oldSKd, gir, ni, nr []byte, add ...[]byte) []byte {
	return prf(oldPRF, nil, oldSKd, append([][]byte{gir, ni, nr}, add...)...)
}

// IKEKeys are the seven secrets of an IKE SA (RFC 7296 §2.14):
//
//	{SK_d | SK_ai | SK_ar | SK_ei | SK_er | SK_pi | SK_pr}
//	                = prf+ (SKEYSEED, Ni | Nr | SPIi | SPIr)
//
// SK_ai/SK_ar are empty for AEAD ciphers. SK_ei/SK_er include the salt where
// the cipher has one (last 4 bytes, RFC 5282 §7.1). All slices share one
// backing array; Zero wipes it. String hides the values.
type IKEKeys struct {
	SKd, SKai, SKar, SKei, SKer, SKpi, SKpr []byte
	all                                     []byte
}

// Zero overwrites all key material.
func (k *IKEKeys) Zero() {
	clear(k.all)
	*k = IKEKeys{}
}

// DropAuthKeys forgets SK_pi and SK_pr, which only the AUTH payloads of
// IKE_AUTH (and the IKE_INTERMEDIATE chain before it) use, once the SA is
// authenticated: the keys its later exchanges need (SK_d for new keys,
// SK_a and SK_e for the SK payload) move to an allocation of just their
// size, and the old one, with prf+'s spare block, is wiped. With
// thousands of idle IKE SAs the dropped bytes add up.
func (k *IKEKeys) DropAuthKeys() {
	if k.all == nil || k.SKpi == nil {
		return
	}
	all := make([]byte, 0, len(k.SKd)+len(k.SKai)+len(k.SKar)+len(k.SKei)+len(k.SKer))
	keep := func(s []byte) []byte {
		from := len(all)
		all = append(all, s...)
		return all[from:len(all):len(all)]
	}
	kept := IKEKeys{SKd: keep(k.SKd), SKai: keep(k.SKai), SKar: keep(k.SKar), SKei: keep(k.SKei), SKer: keep(k.SKer)}
	kept.all = all
	k.Zero()
	*k = kept
}

// String never prints key bytes.
func (k IKEKeys) String() string { return "IKEKeys{redacted}" }

// GoString never prints key bytes, even with %#v.
func (k IKEKeys) GoString() string { return k.String() }

// integKeymat is KeymatLen for integrity transforms, with IntegNone (AEAD)
// consuming nothing.
func integKeymat(integ transform.Transform) (int, error) {
	if integ.ID == transform.IntegNone {
		return 0, nil
	}
	if integ.Type == 0 {
		integ.Type = transform.TypeINTEG
	}
	return transform.KeymatLen(integ)
}

// DeriveIKEKeys computes the IKE SA keys from SKEYSEED. The lengths come from
// the negotiated transforms: SK_d, SK_pi, SK_pr are the PRF's preferred key
// size, SK_a the integrity key size, SK_e the cipher key plus salt
// (transform.KeymatLen). ni, nr are nonce bodies; spii, spir the IKE SPIs of
// the new SA.
func DeriveIKEKeys(f transform.PRF, encr, integ transform.Transform, skeyseed, ni, nr []byte, spii, spir uint64) (IKEKeys, error) {
	if encr.Type == 0 {
		encr.Type = transform.TypeENCR
	}
	el, err := transform.KeymatLen(encr)
	if err != nil {
		return IKEKeys{}, err
	}
	al, err := integKeymat(integ)
	if err != nil {
		return IKEKeys{}, err
	}
	pl := f.KeySize()
	var spis [16]byte
	binary.BigEndian.PutUint64(spis[:], spii)
	binary.BigEndian.PutUint64(spis[8:], spir)
	all, err := PRFPlus(f, skeyseed, 3*pl+2*al+2*el, ni, nr, spis[:])
	if err != nil {
		return IKEKeys{}, err
	}
	k := IKEKeys{all: all}
	rest := all
	take := func(n int) []byte {
		s := rest[:n:n]
		rest = rest[n:]
		return s
	}
	k.SKd, k.SKai, k.SKar = take(pl), take(al), take(al)
	k.SKei, k.SKer = take(el), take(el)
	k.SKpi, k.SKpr = take(pl), take(pl)
	return k, nil
}

// Protectors builds the SK payload protection of an IKE SA from its keys:
// out protects what we send, in checks what we receive. The original
// initiator sends with SK_ei/SK_ai and receives with SK_er/SK_ar (RFC 7296
// §2.14); the responder the other way round.
func (k *IKEKeys) Protectors(encr, integ transform.Transform, initiator bool) (out, in *transform.Protector, err error) {
	out, err = k.Protector(encr, integ, initiator, true)
	if err != nil {
		return nil, nil, err
	}
	in, err = k.Protector(encr, integ, initiator, false)
	if err != nil {
		out.Close()
		return nil, nil, err
	}
	return out, in, nil
}

// Protector builds the SK payload protection of one direction (outbound:
// what we send; otherwise what we receive), for a holder of the keys that
// builds it only while a message is sealed or opened.
func (k *IKEKeys) Protector(encr, integ transform.Transform, initiator, outbound bool) (*transform.Protector, error) {
	if encr.Type == 0 {
		encr.Type = transform.TypeENCR
	}
	if integ.Type == 0 {
		integ.Type = transform.TypeINTEG
	}
	e, a := k.SKei, k.SKai
	if initiator != outbound {
		e, a = k.SKer, k.SKar
	}
	return transform.NewProtector(encr, integ, e, nilIfEmpty(a))
}

// Derived reports whether the keys hold key material (DeriveIKEKeys made
// them and Zero has not wiped them).
func (k *IKEKeys) Derived() bool { return k.all != nil }

func nilIfEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// ChildKeys is the keying material of a CHILD_SA pair (RFC 7296 §2.17):
//
//	KEYMAT = prf+(SK_d, Ni | Nr)                    without PFS
//	KEYMAT = prf+(SK_d, g^ir (new) | Ni | Nr)       with PFS
//	KEYMAT = prf+(SK_d, SK(0) | Ni | Nr | SK(1) | ... | SK(n))
//	                  with additional key exchanges (RFC 9370 §2.2.4)
//
// taken in the order encryption key then integrity key for the SA carrying
// traffic from initiator to responder (EncrI, IntegI), then the same for
// responder to initiator (EncrR, IntegR). "Initiator" is the initiator of
// the exchange that created the CHILD_SA. Zero wipes everything.
type ChildKeys struct {
	EncrI, IntegI, EncrR, IntegR []byte
	all                          []byte
}

// Zero overwrites all key material.
func (k *ChildKeys) Zero() {
	clear(k.all)
	*k = ChildKeys{}
}

// String never prints key bytes.
func (k ChildKeys) String() string { return "ChildKeys{redacted}" }

// GoString never prints key bytes, even with %#v.
func (k ChildKeys) GoString() string { return k.String() }

// DeriveChildKeys computes CHILD_SA keys with prf and SK_d of the IKE SA.
// gir is the CREATE_CHILD_SA shared secret for PFS, nil without. ni and nr
// are the nonces of the exchange (for the first CHILD_SA those of
// IKE_SA_INIT). add are the shared secrets of the additional key exchanges
// (IKE_FOLLOWUP_KE), in order. Integrity is IntegNone for AEAD ciphers.
func DeriveChildKeys(f transform.PRF, skd []byte, encr, integ transform.Transform, gir, ni, nr []byte, add ...[]byte) (ChildKeys, error) {
	// AH (no encryption transform, the zero Transform) takes integrity
	// keys only (RFC 7296 §2.17).
	el := 0
	if encr != (transform.Transform{}) {
		if encr.Type == 0 {
			encr.Type = transform.TypeENCR
		}
		var err error
		if el, err = transform.KeymatLen(encr); err != nil {
			return ChildKeys{}, err
		}
	}
	al, err := integKeymat(integ)
	if err != nil {
		return ChildKeys{}, err
	}
	all, err := PRFPlus(f, skd, 2*(el+al), append([][]byte{gir, ni, nr}, add...)...)
	if err != nil {
		return ChildKeys{}, err
	}
	k := ChildKeys{all: all}
	k.EncrI = all[:el:el]
	k.IntegI = all[el : el+al : el+al]
	k.EncrR = all[el+al : 2*el+al : 2*el+al]
	k.IntegR = all[2*el+al : 2*el+2*al : 2*el+2*al]
	return k, nil
}

// SignedOctets builds the octets an AUTH payload signs or MACs (RFC 7296
// §2.15):
//
//	InitiatorSignedOctets = RealMessage1 | NonceRData | MACedIDForI
//	ResponderSignedOctets = RealMessage2 | NonceIData | MACedIDForR
//	MACedIDForI = prf(SK_pi, RestOfInitIDPayload)
//
// realMessage is the signer's IKE_SA_INIT message exactly as sent (bytes on
// the wire, from the IKE header on), peerNonce the other side's nonce body,
// skp the signer's SK_pi or SK_pr, and idBody the signer's ID payload body
// (ID Type, three RESERVED octets, data: RestOfInitIDPayload).
func SignedOctets(f transform.PRF, skp, realMessage, peerNonce, idBody []byte) []byte {
	out := make([]byte, 0, len(realMessage)+len(peerNonce)+f.Size())
	out = append(append(out, realMessage...), peerNonce...)
	return prf(f, out, skp, idBody)
}

// keyPad is the constant RFC 7296 §2.15 mixes into the shared secret.
var keyPad = []byte("Key Pad for IKEv2")

// PSKAuth computes the AUTH data for shared-key authentication (Auth Method
// 2, RFC 7296 §2.15):
//
//	AUTH = prf( prf(Shared Secret, "Key Pad for IKEv2"), <SignedOctets>)
func PSKAuth(f transform.PRF, psk, signedOctets []byte) []byte {
	inner := prf(f, nil, psk, keyPad)
	out := prf(f, nil, inner, signedOctets)
	clear(inner)
	return out
}

// VerifyPSKAuth compares received AUTH data with the expected value in
// constant time.
func VerifyPSKAuth(f transform.PRF, psk, signedOctets, got []byte) bool {
	want := PSKAuth(f, psk, signedOctets)
	ok := subtle.ConstantTimeCompare(want, got) == 1
	clear(want)
	return ok
}

// NATDetectionHash computes the data of a NAT_DETECTION_SOURCE_IP or
// NAT_DETECTION_DESTINATION_IP notification (RFC 7296 §2.23):
//
//	SHA-1(SPIi | SPIr | IP | Port)
//
// with the IKE SPIs as in the header (SPIr zero in the IKE_SA_INIT request),
// the IPv4 (4 bytes) or IPv6 (16 bytes) address and the UDP port.
func NATDetectionHash(spii, spir uint64, ap netip.AddrPort) [sha1.Size]byte {
	var buf [8 + 8 + 16 + 2]byte
	b := binary.BigEndian.AppendUint64(buf[:0], spii)
	b = binary.BigEndian.AppendUint64(b, spir)
	a := ap.Addr().Unmap()
	b = append(b, a.AsSlice()...)
	b = binary.BigEndian.AppendUint16(b, ap.Port())
	return sha1.Sum(b)
}
