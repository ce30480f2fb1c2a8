package transform

import (
	"crypto/ecdh"
	"crypto/rand"
)

// x25519KE is Curve25519 Diffie-Hellman for IKEv2 (RFC 8031): 32-byte public
// values and secret. An all-zero shared secret (a peer sending a low-order
// point) must be rejected (RFC 8031 §2.3, RFC 7748 §6.1); crypto/ecdh
// reports it as an error.
type x25519KE struct {
	t    Transform
	priv *ecdh.PrivateKey
	pub  []byte
}

func newX25519(t Transform, priv []byte) (KeyExchange, error) {
	var k *ecdh.PrivateKey
	var err error
	if priv != nil {
		k, err = ecdh.X25519().NewPrivateKey(priv)
	} else {
		k, err = ecdh.X25519().GenerateKey(rand.Reader)
	}
	if err != nil {
		return nil, newErr("new", t, ErrKeyLength, "private key rejected")
	}
	return &x25519KE{t: t, priv: k, pub: k.PublicKey().Bytes()}, nil
}

func (k *x25519KE) Group() ID         { return k.t.ID }
func (k *x25519KE) PublicKey() []byte { return k.pub }

func (k *x25519KE) SharedSecret(peer []byte) ([]byte, error) {
	if k.priv == nil {
		return nil, newErr("keyexchange", k.t, ErrClosed, "")
	}
	if len(peer) != 32 {
		return nil, newErr("keyexchange", k.t, ErrInvalidPublic, "public value must be 32 bytes")
	}
	pub, err := ecdh.X25519().NewPublicKey(peer)
	if err != nil {
		return nil, newErr("keyexchange", k.t, ErrInvalidPublic, "bad public value")
	}
	s, err := k.priv.ECDH(pub)
	if err != nil {
		return nil, newErr("keyexchange", k.t, ErrInvalidPublic, "all-zero shared secret (low-order point)")
	}
	return s, nil
}

// Close drops the private key (crypto/ecdh keeps it unexported).
func (k *x25519KE) Close() { k.priv = nil }
