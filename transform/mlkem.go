package transform

import (
	"crypto/mlkem"
	"crypto/rand"

	"github.com/cloudflare/circl/kem/mlkem/mlkem512"
)

// ML-KEM (FIPS 203) as IKEv2 key exchange methods (RFC 9370 additional key
// exchanges; IANA Transform Type 4 IDs 35-37, draft-ietf-ipsecme-ikev2-mlkem).
// A KEM is not symmetric like Diffie-Hellman: the initiator sends its
// encapsulation key, the responder encapsulates a secret to it and answers
// with the ciphertext, which the initiator decapsulates. NewKEM is the
// initiator's side (PublicKey is the encapsulation key, SharedSecret
// decapsulates), Encapsulate the responder's.
//
// ML-KEM-768 and -1024 come from the standard library's crypto/mlkem; Go
// 1.26 has no ML-KEM-512, so it comes from Cloudflare's CIRCL, as X448 does.

// ML-KEM key exchange method IDs (Transform Type 4).
const (
	KEMLKEM512  ID = 35
	KEMLKEM768  ID = 36
	KEMLKEM1024 ID = 37
)

// IsKEM reports whether group is a key encapsulation method.
func IsKEM(group ID) bool { return group >= KEMLKEM512 && group <= KEMLKEM1024 }

// kemSizes are the encapsulation key and ciphertext sizes of FIPS 203
// Table 3.
var kemSizes = map[ID][2]int{
	KEMLKEM512:  {800, 768},
	KEMLKEM768:  {mlkem.EncapsulationKeySize768, mlkem.CiphertextSize768},
	KEMLKEM1024: {mlkem.EncapsulationKeySize1024, mlkem.CiphertextSize1024},
}

// kemKE is the initiator's side of an ML-KEM exchange.
type kemKE struct {
	t   Transform
	pub []byte
	// decap decapsulates a ciphertext of the right size; nil once closed.
	decap func(ct []byte) ([]byte, error)
}

// NewKEM returns the initiator's side of ML-KEM method group, from a new
// random key or, for known-answer tests, from the 64-byte seed d || z of
// FIPS 203 ML-KEM.KeyGen_internal.
func NewKEM(group ID, seed []byte) (KeyExchange, error) {
	t := Transform{Type: TypeKE, ID: group}
	if seed == nil {
		seed = make([]byte, mlkem.SeedSize)
		if _, err := rand.Read(seed); err != nil {
			return nil, newErr("new", t, ErrUnsupported, "random source failed")
		}
		defer clear(seed)
	}
	if len(seed) != mlkem.SeedSize {
		return nil, newErr("new", t, ErrKeyLength, "ML-KEM seed must be 64 bytes")
	}
	k := &kemKE{t: t}
	switch group {
	case KEMLKEM768:
		dk, err := mlkem.NewDecapsulationKey768(seed)
		if err != nil {
			return nil, newErr("new", t, ErrKeyLength, err.Error())
		}
		k.pub, k.decap = dk.EncapsulationKey().Bytes(), dk.Decapsulate
	case KEMLKEM1024:
		dk, err := mlkem.NewDecapsulationKey1024(seed)
		if err != nil {
			return nil, newErr("new", t, ErrKeyLength, err.Error())
		}
		k.pub, k.decap = dk.EncapsulationKey().Bytes(), dk.Decapsulate
	case KEMLKEM512:
		pk, sk := mlkem512.NewKeyFromSeed(seed)
		k.pub = make([]byte, kemSizes[group][0])
		pk.Pack(k.pub)
		k.decap = func(ct []byte) ([]byte, error) {
			ss := make([]byte, mlkem.SharedKeySize)
			sk.DecapsulateTo(ss, ct)
			return ss, nil
		}
	default:
		return nil, newErr("new", t, ErrUnsupported, "not an ML-KEM method")
	}
	return k, nil
}

func (k *kemKE) Group() ID         { return k.t.ID }
func (k *kemKE) PublicKey() []byte { return k.pub }

// SharedSecret decapsulates the responder's ciphertext. FIPS 203's implicit
// rejection makes a wrong ciphertext of the right size yield a
// pseudo-random secret, not an error: the exchange then fails at the next
// integrity check, as with a wrong Diffie-Hellman value.
func (k *kemKE) SharedSecret(ct []byte) ([]byte, error) {
	if k.decap == nil {
		return nil, newErr("keyexchange", k.t, ErrClosed, "")
	}
	if len(ct) != kemSizes[k.t.ID][1] {
		return nil, newErr("keyexchange", k.t, ErrInvalidPublic, "ciphertext has the wrong length")
	}
	ss, err := k.decap(ct)
	if err != nil {
		return nil, newErr("keyexchange", k.t, ErrInvalidPublic, err.Error())
	}
	return ss, nil
}

// Close drops the decapsulation key (the libraries keep it unexported).
func (k *kemKE) Close() { k.decap = nil }

// Encapsulate is the responder's side of ML-KEM method group: it checks the
// initiator's encapsulation key (length and, per FIPS 203 §7.2, that it
// decodes modulo q) and returns the ciphertext to send and the shared
// secret, from fresh randomness.
func Encapsulate(group ID, ek []byte) (ciphertext, shared []byte, err error) {
	t := Transform{Type: TypeKE, ID: group}
	sizes, ok := kemSizes[group]
	if !ok {
		return nil, nil, newErr("encapsulate", t, ErrUnsupported, "not an ML-KEM method")
	}
	if len(ek) != sizes[0] {
		return nil, nil, newErr("encapsulate", t, ErrInvalidPublic, "encapsulation key has the wrong length")
	}
	bad := func(e error) error { return newErr("encapsulate", t, ErrInvalidPublic, e.Error()) }
	switch group {
	case KEMLKEM768:
		k, e := mlkem.NewEncapsulationKey768(ek)
		if e != nil {
			return nil, nil, bad(e)
		}
		shared, ciphertext = k.Encapsulate()
	case KEMLKEM1024:
		k, e := mlkem.NewEncapsulationKey1024(ek)
		if e != nil {
			return nil, nil, bad(e)
		}
		shared, ciphertext = k.Encapsulate()
	case KEMLKEM512:
		var pk mlkem512.PublicKey
		if e := pk.Unpack(ek); e != nil {
			return nil, nil, bad(e)
		}
		ciphertext, shared = make([]byte, sizes[1]), make([]byte, mlkem.SharedKeySize)
		// A nil seed makes CIRCL draw the message from crypto/rand.
		pk.EncapsulateTo(ciphertext, shared, nil)
	}
	return ciphertext, shared, nil
}
