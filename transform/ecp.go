package transform

import (
	"crypto/ecdh"
	"crypto/rand"
)

// ecpKE is ECDH over the NIST curves as IKEv2 uses them (RFC 5903): public
// values are x || y without the SEC 1 0x04 prefix, the shared secret is the x
// coordinate. crypto/ecdh validates points (on the curve, not the point at
// infinity) and is constant-time.
type ecpKE struct {
	t     Transform
	curve ecdh.Curve
	coord int // bytes per coordinate
	priv  *ecdh.PrivateKey
	pub   []byte
}

func newECP(t Transform, priv []byte) (KeyExchange, error) {
	var c ecdh.Curve
	var coord int
	switch t.ID {
	case KEECP256:
		c, coord = ecdh.P256(), 32
	case KEECP384:
		c, coord = ecdh.P384(), 48
	case KEECP521:
		c, coord = ecdh.P521(), 66
	}
	var k *ecdh.PrivateKey
	var err error
	if priv != nil {
		k, err = c.NewPrivateKey(priv)
	} else {
		k, err = c.GenerateKey(rand.Reader)
	}
	if err != nil {
		return nil, newErr("new", t, ErrKeyLength, "private key rejected")
	}
	return &ecpKE{t: t, curve: c, coord: coord, priv: k, pub: k.PublicKey().Bytes()[1:]}, nil
}

func (k *ecpKE) Group() ID         { return k.t.ID }
func (k *ecpKE) PublicKey() []byte { return k.pub }

func (k *ecpKE) SharedSecret(peer []byte) ([]byte, error) {
	if k.priv == nil {
		return nil, newErr("keyexchange", k.t, ErrClosed, "")
	}
	if len(peer) != 2*k.coord {
		return nil, newErr("keyexchange", k.t, ErrInvalidPublic, "public value must be x||y of the curve's coordinate size")
	}
	sec1 := make([]byte, 1+len(peer))
	sec1[0] = 4 // uncompressed point
	copy(sec1[1:], peer)
	pub, err := k.curve.NewPublicKey(sec1)
	if err != nil {
		return nil, newErr("keyexchange", k.t, ErrInvalidPublic, "point is not on the curve")
	}
	s, err := k.priv.ECDH(pub)
	if err != nil {
		return nil, newErr("keyexchange", k.t, ErrInvalidPublic, "ECDH failed")
	}
	return s, nil
}

// Close drops the private key; crypto/ecdh keeps its scalar unexported, so it
// cannot be overwritten from here.
func (k *ecpKE) Close() { k.priv = nil }
