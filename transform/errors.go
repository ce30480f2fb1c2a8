package transform

import (
	"errors"
	"strconv"
)

// Sentinel errors. Every error returned by this package wraps exactly one of
// them; test with errors.Is.
var (
	// ErrUnsupported: the transform type/ID is unknown to ipsecgw (e.g. a
	// GOST or Brainpool group), or is not valid for the requested use.
	ErrUnsupported = errors.New("unsupported transform")
	// ErrKeyLength: the Key Length attribute or a supplied key has the wrong
	// size for the transform.
	ErrKeyLength = errors.New("bad key length")
	// ErrInvalidPublic: a peer's key exchange public value failed validation
	// (out of range, not in the subgroup, off the curve, wrong length), or
	// the resulting shared secret is degenerate (all-zero X25519 output).
	ErrInvalidPublic = errors.New("invalid peer public value")
	// ErrAuthFailed: the ICV of a packet did not verify. The payload bytes
	// of the buffer are unspecified afterwards (the caller drops the packet).
	ErrAuthFailed = errors.New("integrity check failed")
	// ErrLayout: the buffer handed to Seal/Open is too short, the payload is
	// not a multiple of the cipher block size, or an argument is out of range.
	ErrLayout = errors.New("bad buffer layout")
	// ErrClosed: the object was used after Close.
	ErrClosed = errors.New("use after close")
)

// Error describes a failure of operation Op on transform T. It never contains
// key material or packet contents.
type Error struct {
	Op     string    // "new", "seal", "open", "iv", "keyexchange", "lookup"
	T      Transform // the transform concerned
	Detail string    // optional human-readable detail, never secret
	Err    error     // one of the sentinel errors above
}

func (e *Error) Error() string {
	s := "transform: " + e.Op + " " + typeName(e.T.Type) + " " + Name(e.T.Type, e.T.ID, int(e.T.KeyLen)) +
		" (id " + strconv.Itoa(int(e.T.ID))
	if e.T.KeyLen != 0 {
		s += ", keylen " + strconv.Itoa(int(e.T.KeyLen))
	}
	s += "): " + e.Err.Error()
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Unwrap returns the sentinel.
func (e *Error) Unwrap() error { return e.Err }

func newErr(op string, t Transform, err error, detail string) error {
	return &Error{Op: op, T: t, Err: err, Detail: detail}
}

func typeName(t Type) string {
	switch t {
	case TypeENCR:
		return "ENCR"
	case TypePRF:
		return "PRF"
	case TypeINTEG:
		return "INTEG"
	case TypeKE:
		return "KE"
	case TypeESN:
		return "ESN"
	}
	return "TYPE" + strconv.Itoa(int(t))
}
