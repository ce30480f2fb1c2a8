package isakmp

import (
	"encoding/binary"
	"errors"
)

// Message is a decoded ISAKMP message.
//
// Raw is the whole message (header through Length) and Body everything
// after the header; every byte slice aliases the datagram it was parsed
// from, so a Message is only valid while that buffer is left unchanged.
//
// When the header's E flag is set, Body is ciphertext and Payloads is
// empty: the engine decrypts Body in place with the ISAKMP SA's key and
// IV (package keymat) and hands the plaintext to SetPlaintext, which
// decodes the payload chain. Otherwise ParseMessage decodes the chain
// itself.
//
// Chain is the payload chain proper (the plaintext from the first generic
// header through the end of the payload whose Next Payload is zero);
// anything after it in Body is padding.
type Message struct {
	Header    Header
	Payloads  []RawPayload
	Body      []byte
	Chain     []byte
	Raw       []byte
	Decrypted bool
}

// Encrypted reports whether the message was sent encrypted (E flag).
func (m *Message) Encrypted() bool { return m.Header.Encrypted() }

// ParseMessage decodes the header and, unless the message is encrypted,
// the payload framing of the message at the start of b. It returns the
// message and the number of bytes it occupies (the header's Length; bytes
// beyond it are left to the caller). Payload bodies alias b; typed
// payloads are decoded on demand with the ParseX functions, and Validate
// checks which payloads the exchange allows.
func ParseMessage(b []byte) (Message, int, error) {
	var m Message
	n, err := ParseMessageInto(&m, b)
	return m, n, err
}

// ParseMessageInto is ParseMessage reusing m's payload slice, so that a
// receive loop that keeps one Message decodes without allocating.
func ParseMessageInto(m *Message, b []byte) (int, error) {
	h, _, err := ParseHeader(b)
	m.Header = h
	m.Payloads = m.Payloads[:0]
	m.Body, m.Chain, m.Raw = nil, nil, nil
	m.Decrypted = false
	if err != nil {
		return 0, err
	}
	m.Raw = b[:h.Length:h.Length]
	m.Body = m.Raw[HeaderLen:]
	if h.Encrypted() {
		return int(h.Length), nil
	}
	if err := m.decode(m.Body, HeaderLen); err != nil {
		return 0, err
	}
	return int(h.Length), nil
}

func (m *Message) decode(plain []byte, base int) error {
	var n int
	var err error
	m.Payloads, n, err = appendPayloads(m.Payloads[:0], m.Header.NextPayload, plain, base)
	if err != nil {
		m.Payloads = m.Payloads[:0]
		return err
	}
	m.Chain = plain[:n:n]
	return nil
}

// SetPlaintext decodes the payload chain of an encrypted message from its
// decrypted body (normally m.Body itself, decrypted in place). The
// header's Next Payload names the first payload. On success Decrypted is
// set; payload bodies alias plain.
func (m *Message) SetPlaintext(plain []byte) error {
	if !m.Encrypted() {
		return errors.New("isakmp: SetPlaintext on a message that was not encrypted")
	}
	if err := m.decode(plain, HeaderLen); err != nil {
		return err
	}
	m.Decrypted = true
	return nil
}

// First returns the first payload of the chain if it is of type t. Quick
// mode and protected informational messages must start with their HASH
// payload (RFC 2409 §5.5, §5.7).
func (m *Message) First(t PayloadType) (RawPayload, bool) {
	if m.Header.NextPayload != t || len(m.Payloads) == 0 || m.Payloads[0].Type != t {
		return RawPayload{}, false
	}
	return m.Payloads[0], true
}

// AfterHash returns the bytes a quick mode or informational HASH covers
// besides M-ID and nonces: the payload chain after the first payload,
// which must be HASH, through the end of the last payload, padding
// excluded (RFC 2409 §5.5: "the entire message - excluding the generic
// header - following the HASH payload", read as every implementation
// does: the payloads after the HASH payload, each with its generic
// header).
func (m *Message) AfterHash() ([]byte, error) {
	h, ok := m.First(PayloadHash)
	if !ok {
		return nil, newErr(INVALID_HASH_INFORMATION, HeaderLen, "first payload is not HASH")
	}
	start := GenericHeaderLen + len(h.Body)
	return m.Chain[start:len(m.Chain):len(m.Chain)], nil
}

// Find returns the payloads of type t, in wire order.
func (m *Message) Find(t PayloadType) []RawPayload {
	var out []RawPayload
	for _, p := range m.Payloads {
		if p.Type == t {
			out = append(out, p)
		}
	}
	return out
}

// AppendMessage appends a message with header h and the payloads in
// order, as plaintext. h.NextPayload and h.Length are computed; the
// version is 1.0. For an encrypted message set FlagEncryption in h and
// hand the result to the encryption of package keymat, which pads and
// encrypts everything after the header and rewrites Length.
func AppendMessage(b []byte, h Header, payloads ...Payload) []byte {
	start := len(b)
	h.NextPayload = firstType(payloads)
	b = AppendHeader(b, h)
	b = AppendPayloads(b, payloads...)
	binary.BigEndian.PutUint32(b[start+24:], uint32(len(b)-start))
	return b
}

// MessageLen is the encoded length of AppendMessage(nil, h, payloads...).
func MessageLen(payloads ...Payload) int { return HeaderLen + PayloadsLen(payloads...) }

// AppendHashedMessage appends a message whose first payload is a HASH
// computed over the payloads after it, as quick mode and protected
// informational messages need (RFC 2409 §5.5, §5.7): hash receives the
// encoded payloads that follow the HASH payload (AppendPayloads of them)
// and returns the hash, which must be hashLen bytes long (the PRF's
// output size). The message is plaintext, as with AppendMessage.
func AppendHashedMessage(b []byte, h Header, hashLen int, hash func(rest []byte) []byte, payloads ...Payload) ([]byte, error) {
	all := make([]Payload, 0, len(payloads)+1)
	all = append(all, Hash{Data: make([]byte, hashLen)})
	all = append(all, payloads...)
	start := len(b)
	b = AppendMessage(b, h, all...)
	hashAt := start + HeaderLen + GenericHeaderLen
	rest := b[hashAt+hashLen:]
	sum := hash(rest)
	if len(sum) != hashLen {
		return b[:start], errors.New("isakmp: hash function returned " + itoa(len(sum)) + " bytes, not " + itoa(hashLen))
	}
	copy(b[hashAt:], sum)
	return b, nil
}
