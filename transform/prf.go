package transform

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"hash"
)

// PRF is an IKEv2 pseudo-random function (Transform Type 2). The IKE key
// derivation builds prf+ (RFC 7296 §2.13) on a keyed instance:
//
//	m := prf.New(key)
//	m.Reset(); m.Write(t); m.Write(s); m.Write(counter); out = m.Sum(out)
//
// A PRF value is immutable and safe for concurrent use; keyed instances are not.
type PRF interface {
	// ID is the IANA PRF transform ID.
	ID() ID
	// Size is the output length in bytes.
	Size() int
	// KeySize is the preferred key length in bytes: the length of SK_d,
	// SK_pi and SK_pr (RFC 7296 §2.14). HMAC: the hash output size; AES-XCBC
	// and AES-CMAC: 16.
	KeySize() int
	// New returns an instance keyed with key, which may have any length:
	// HMAC per RFC 2104, AES-XCBC per RFC 4434 §2 (keys shorter than 16 bytes
	// are zero-padded, longer ones are first reduced with a zero key), AES-CMAC
	// per RFC 4615 §3 (likewise with CMAC). The key is copied.
	New(key []byte) KeyedPRF
}

// KeyedPRF is a keyed PRF computation. It is a hash.Hash: Write never fails,
// Sum(dst) appends Size() bytes to dst without changing the state and without
// allocating when dst has room, Reset returns to the keyed initial state.
type KeyedPRF interface {
	hash.Hash
	// Zero wipes the copy of the key held by the instance; it must not be
	// used afterwards.
	Zero()
}

// NewPRF returns the PRF with the given IANA ID. Unknown or unimplemented IDs
// give an error wrapping ErrUnsupported.
func NewPRF(id ID) (PRF, error) {
	switch id {
	case PRFHMACMD5:
		return hmacPRF{id, md5.New, md5.Size}, nil
	case PRFHMACSHA1:
		return hmacPRF{id, sha1.New, sha1.Size}, nil
	case PRFHMACSHA2_256:
		return hmacPRF{id, sha256.New, sha256.Size}, nil
	case PRFHMACSHA2_384:
		return hmacPRF{id, sha512.New384, sha512.Size384}, nil
	case PRFHMACSHA2_512:
		return hmacPRF{id, sha512.New, sha512.Size}, nil
	case PRFAES128XCBC:
		return xcbcPRF{}, nil
	case PRFAES128CMAC:
		return cmacPRF{}, nil
	}
	return nil, newErr("new", Transform{Type: TypePRF, ID: id}, ErrUnsupported, "")
}

type hmacPRF struct {
	id   ID
	h    func() hash.Hash
	size int
}

func (p hmacPRF) ID() ID       { return p.id }
func (p hmacPRF) Size() int    { return p.size }
func (p hmacPRF) KeySize() int { return p.size }
func (p hmacPRF) New(key []byte) KeyedPRF {
	k := append([]byte(nil), key...)
	return &hmacKeyed{Hash: hmac.New(p.h, k), key: k}
}

// hmacKeyed keeps the key copy it gave crypto/hmac so Zero can wipe it;
// crypto/hmac's own padded key blocks are unexported and are dropped instead.
type hmacKeyed struct {
	hash.Hash
	key []byte
}

func (h *hmacKeyed) Zero() {
	clear(h.key)
	h.Hash = nil
}
