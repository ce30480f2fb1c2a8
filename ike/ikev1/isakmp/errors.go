package isakmp

import "strconv"

// Error is a malformed or unacceptable message, payload or proposal.
// Notify is the ISAKMP notification to answer with (RFC 2408 §3.14.1, §5),
// or NotifyNone when the message is to be dropped silently (it could not
// be decrypted or is not authenticated, so answering would only help an
// attacker). Data is the notification data where RFC 2408 §5 gives one
// (the offending payload type, for example).
//
// Errors compare with errors.Is by Notify: errors.Is(err,
// ErrPayloadMalformed) holds for every Error whose Notify is
// PAYLOAD_MALFORMED. Err, when set, is the cause and is returned by
// Unwrap.
//
// The text never contains key material or payload bytes, only offsets,
// lengths and numbers.
type Error struct {
	Notify NotifyType
	Data   []byte
	Reason string // what was wrong, for logs and failure texts
	Offset int    // byte offset in the buffer being parsed, -1 if not meaningful
	Err    error
}

func (e *Error) Error() string {
	s := "isakmp: "
	if e.Notify == NotifyNone {
		s += "dropped"
	} else {
		s += e.Notify.String()
	}
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

// Is matches any *Error with the same notification type, so that the
// sentinels below work with errors.Is.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Notify == e.Notify
}

// NotifyNone in an Error means: drop the message, answer nothing.
const NotifyNone NotifyType = 0

// Sentinels for errors.Is; never returned themselves.
var (
	ErrDrop                    = &Error{Notify: NotifyNone, Offset: -1}
	ErrInvalidPayloadType      = &Error{Notify: INVALID_PAYLOAD_TYPE, Offset: -1}
	ErrDOINotSupported         = &Error{Notify: DOI_NOT_SUPPORTED, Offset: -1}
	ErrSituationNotSupported   = &Error{Notify: SITUATION_NOT_SUPPORTED, Offset: -1}
	ErrInvalidCookie           = &Error{Notify: INVALID_COOKIE, Offset: -1}
	ErrInvalidMajorVersion     = &Error{Notify: INVALID_MAJOR_VERSION, Offset: -1}
	ErrInvalidMinorVersion     = &Error{Notify: INVALID_MINOR_VERSION, Offset: -1}
	ErrInvalidExchangeType     = &Error{Notify: INVALID_EXCHANGE_TYPE, Offset: -1}
	ErrInvalidFlags            = &Error{Notify: INVALID_FLAGS, Offset: -1}
	ErrInvalidMessageID        = &Error{Notify: INVALID_MESSAGE_ID, Offset: -1}
	ErrInvalidProtocolID       = &Error{Notify: INVALID_PROTOCOL_ID, Offset: -1}
	ErrInvalidSPI              = &Error{Notify: INVALID_SPI, Offset: -1}
	ErrInvalidTransformID      = &Error{Notify: INVALID_TRANSFORM_ID, Offset: -1}
	ErrAttributesNotSupported  = &Error{Notify: ATTRIBUTES_NOT_SUPPORTED, Offset: -1}
	ErrNoProposalChosen        = &Error{Notify: NO_PROPOSAL_CHOSEN, Offset: -1}
	ErrBadProposalSyntax       = &Error{Notify: BAD_PROPOSAL_SYNTAX, Offset: -1}
	ErrPayloadMalformed        = &Error{Notify: PAYLOAD_MALFORMED, Offset: -1}
	ErrInvalidIDInformation    = &Error{Notify: INVALID_ID_INFORMATION, Offset: -1}
	ErrInvalidHashInformation  = &Error{Notify: INVALID_HASH_INFORMATION, Offset: -1}
	ErrUnsupportedExchangeType = &Error{Notify: UNSUPPORTED_EXCHANGE_TYPE, Offset: -1}
)

func newErr(n NotifyType, off int, reason string) *Error {
	return &Error{Notify: n, Reason: reason, Offset: off}
}

func malformed(off int, reason string) error { return newErr(PAYLOAD_MALFORMED, off, reason) }

// shift adds off to the offset of an error from a nested parser.
func shift(err error, off int) error {
	if e, ok := err.(*Error); ok && e.Offset >= 0 {
		c := *e
		c.Offset += off
		return &c
	}
	return err
}

func itoa(i int) string { return strconv.Itoa(i) }
