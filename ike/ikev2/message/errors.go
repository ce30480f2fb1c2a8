package message

import "strconv"

// Error is a malformed or unacceptable message. Notify is the IKEv2 error
// notification the receiver should answer with (RFC 7296 §2.21: only to
// requests, and for IKE_SA_INIT only unauthenticated), and Data is that
// notification's data (for UNSUPPORTED_CRITICAL_PAYLOAD the one-octet payload
// type, for INVALID_MAJOR_VERSION the highest version we speak).
//
// Errors compare with errors.Is by Notify: errors.Is(err, ErrInvalidSyntax)
// holds for every Error with Notify == INVALID_SYNTAX. Err, when set, is the
// underlying cause (for example a transform error) and is returned by Unwrap.
//
// The text never contains key material or payload bytes, only offsets,
// lengths and type numbers.
type Error struct {
	Notify NotifyType
	Data   []byte
	Reason string // what was wrong, for logs
	Offset int    // byte offset in the buffer being parsed, -1 if not meaningful
	Err    error
}

func (e *Error) Error() string {
	s := "ike/message: " + e.Notify.String()
	if e.Reason != "" {
		s += ": " + e.Reason
	}
	if e.Offset >= 0 {
		s += " (at offset " + strconv.Itoa(e.Offset) + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the cause, if any.
func (e *Error) Unwrap() error { return e.Err }

// Is matches any *Error with the same notify type, so the sentinels below
// work with errors.Is.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Notify == e.Notify
}

// Sentinels for errors.Is; never returned themselves.
var (
	ErrInvalidSyntax              = &Error{Notify: INVALID_SYNTAX, Offset: -1}
	ErrUnsupportedCriticalPayload = &Error{Notify: UNSUPPORTED_CRITICAL_PAYLOAD, Offset: -1}
	ErrInvalidMajorVersion        = &Error{Notify: INVALID_MAJOR_VERSION, Offset: -1}
	ErrAuthenticationFailed       = &Error{Notify: AUTHENTICATION_FAILED, Offset: -1}
)

func syntaxErr(off int, reason string) error {
	return &Error{Notify: INVALID_SYNTAX, Reason: reason, Offset: off}
}

// NotifyNone in an Error means: drop the message silently, answer nothing.
// RFC 7296 §2.21.2 and §3.14 require this for messages whose integrity check
// fails or that cannot be decrypted.
const NotifyNone NotifyType = 0

// ErrIntegrity matches (errors.Is) messages that failed the integrity check
// or could not be decrypted; such errors wrap the transform error.
var ErrIntegrity = &Error{Notify: NotifyNone, Offset: -1}
