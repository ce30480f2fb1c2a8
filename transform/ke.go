package transform

// KeyExchange is one side of one Diffie-Hellman exchange (IKEv2 KE payload,
// RFC 7296 §3.4), created with a fresh private key by NewKeyExchange.
//
// Public value encodings are those of the KE payload's Key Exchange Data:
//   - MODP groups: the big-endian value left-padded with zeros to the length
//     of the prime (RFC 7296 §3.4);
//   - ECP groups 19/20/21: x || y, each left-padded to the field size, with no
//     0x04 point-format prefix (RFC 5903 §7);
//   - Curve25519 and Curve448: the 32- or 56-byte u-coordinate (RFC 8031 §3.1).
//
// The shared secret has a fixed length: the prime length for MODP (left-padded,
// RFC 7296 §2.14), the x coordinate for ECP (RFC 5903 §7), 32 bytes for
// Curve25519, 56 for Curve448.
//
// Methods are safe to call from one goroutine at a time.
type KeyExchange interface {
	// Group is the IANA key exchange method ID.
	Group() ID
	// PublicKey returns our public value. The slice must not be modified.
	PublicKey() []byte
	// SharedSecret validates peer (MODP: 1 < y < p-1 and, for the RFC 5114
	// groups, y^q mod p == 1; ECP: correct length and on the curve;
	// Curve25519/448: 32/56 bytes and a non-zero result) and returns the shared
	// secret in a new slice. A bad value gives an error wrapping
	// ErrInvalidPublic; it may be called again with another value.
	SharedSecret(peer []byte) ([]byte, error)
	// Close wipes the private key; later SharedSecret calls fail with ErrClosed.
	Close()
}

// NewKeyExchange returns a KeyExchange for group with a new random private
// key (from crypto/rand). Unknown groups give an error wrapping
// ErrUnsupported. Curve448 uses github.com/cloudflare/circl, since neither
// the standard library nor golang.org/x/crypto implements X448.
func NewKeyExchange(group ID) (KeyExchange, error) {
	return newKeyExchange(group, nil)
}

// newKeyExchange uses priv as the private key when non-nil (known-answer
// tests), otherwise a random one.
func newKeyExchange(group ID, priv []byte) (KeyExchange, error) {
	t := Transform{Type: TypeKE, ID: group}
	if g := modpGroups[group]; g != nil {
		return newMODP(t, g, priv)
	}
	switch group {
	case KEECP256, KEECP384, KEECP521:
		return newECP(t, priv)
	case KECurve25519:
		return newX25519(t, priv)
	case KECurve448:
		return newX448(t, priv)
	}
	return nil, newErr("new", t, ErrUnsupported, "")
}
