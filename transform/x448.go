package transform

import (
	"crypto/rand"

	"github.com/cloudflare/circl/dh/x448"
)

// x448KE is Curve448 Diffie-Hellman for IKEv2 (RFC 8031): 56-byte public
// values and secret. Neither the standard library nor golang.org/x/crypto has
// X448, so it comes from Cloudflare's CIRCL, which is maintained and checks
// for low-order points: an all-zero shared secret is rejected (RFC 8031
// §2.3).
type x448KE struct {
	t    Transform
	priv *x448.Key
	pub  []byte
}

func newX448(t Transform, priv []byte) (KeyExchange, error) {
	k := new(x448.Key)
	if priv != nil {
		if len(priv) != x448.Size {
			return nil, newErr("new", t, ErrKeyLength, "private key must be 56 bytes")
		}
		copy(k[:], priv)
	} else if _, err := rand.Read(k[:]); err != nil {
		return nil, newErr("new", t, ErrUnsupported, "random source failed")
	}
	var pub x448.Key
	x448.KeyGen(&pub, k)
	return &x448KE{t: t, priv: k, pub: pub[:]}, nil
}

func (k *x448KE) Group() ID         { return k.t.ID }
func (k *x448KE) PublicKey() []byte { return k.pub }

func (k *x448KE) SharedSecret(peer []byte) ([]byte, error) {
	if k.priv == nil {
		return nil, newErr("keyexchange", k.t, ErrClosed, "")
	}
	if len(peer) != x448.Size {
		return nil, newErr("keyexchange", k.t, ErrInvalidPublic, "public value must be 56 bytes")
	}
	var pub, shared x448.Key
	copy(pub[:], peer)
	if !x448.Shared(&shared, k.priv, &pub) {
		return nil, newErr("keyexchange", k.t, ErrInvalidPublic, "all-zero shared secret (low-order point)")
	}
	return shared[:], nil
}

// Close wipes the private key, which lives in our own array.
func (k *x448KE) Close() {
	if k.priv != nil {
		clear(k.priv[:])
		k.priv = nil
	}
}
