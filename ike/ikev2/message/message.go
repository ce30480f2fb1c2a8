package message

import "encoding/binary"

// Message is a decoded IKEv2 message.
//
// Payloads are the payloads outside encryption, in wire order; unknown
// non-critical payloads are left out (RFC 7296 §2.5). When the message is
// protected, the last of them is the SK (or SKF) payload, whose Body is the
// still-encrypted IV|ciphertext|ICV (for SKF preceded by Fragment Number and
// Total Fragments), and InnerNext is the type of the first encrypted payload.
// Decrypt fills Inner.
//
// Raw is the whole message (header through Length), and every Body aliases
// it: a Message is only valid while the datagram buffer it was parsed from is
// left unchanged. Decrypt decrypts in place inside Raw.
type Message struct {
	Header    Header
	Payloads  []RawPayload
	InnerNext PayloadType
	Inner     []RawPayload
	Decrypted bool
	Raw       []byte
	// Plain is the decrypted inner payload chain (no IV, padding or ICV;
	// reassembled when fragmented), set with Inner: IKE_INTERMEDIATE
	// messages are authenticated over it (IntermediateAuthData).
	Plain []byte
}

// Encrypted returns the SK or SKF payload of m, if any.
func (m *Message) Encrypted() (RawPayload, bool) {
	if n := len(m.Payloads); n > 0 {
		if p := m.Payloads[n-1]; p.Type == PayloadSK || p.Type == PayloadSKF {
			return p, true
		}
	}
	return RawPayload{}, false
}

// ParseMessage decodes the header and the payload framing of the message at
// the start of b. It returns the message and the number of bytes it occupies
// (the header's Length; bytes beyond it are left to the caller). Payload
// bodies alias b. Typed payloads are decoded on demand with the ParseX
// functions; Validate checks which payloads the exchange allows.
func ParseMessage(b []byte) (Message, int, error) {
	var m Message
	n, err := ParseMessageInto(&m, b)
	return m, n, err
}

// ParseMessageInto is ParseMessage reusing m's payload slices, so that a
// receive loop that keeps one Message decodes without allocating.
func ParseMessageInto(m *Message, b []byte) (int, error) {
	h, _, err := ParseHeader(b)
	m.Header = h
	m.Payloads = m.Payloads[:0]
	m.Inner = m.Inner[:0]
	m.InnerNext = PayloadNone
	m.Decrypted = false
	m.Raw = nil
	m.Plain = nil
	if err != nil {
		return 0, err
	}
	raw := b[:h.Length:h.Length]
	m.Raw = raw
	m.Payloads, m.InnerNext, err = parseChain(m.Payloads, raw[HeaderLen:], h.NextPayload, HeaderLen, true)
	if err != nil {
		return 0, err
	}
	return int(h.Length), nil
}

// AppendMessage appends an unprotected message (IKE_SA_INIT, or an
// unauthenticated error notification) with header h and the payloads in
// order. h.NextPayload and h.Length are computed. Each payload body must be
// shorter than 65532 bytes (the 16-bit Payload Length); no IKEv2 payload of
// an unprotected message comes near that, so this is the caller's contract
// rather than an error path. AppendEncrypted checks its limit.
func AppendMessage(b []byte, h Header, payloads ...Payload) []byte {
	start := len(b)
	h.NextPayload = firstType(payloads, PayloadNone)
	b = AppendHeader(b, h)
	b = appendChain(b, payloads, PayloadNone)
	binary.BigEndian.PutUint32(b[start+24:], uint32(len(b)-start))
	return b
}

// MessageLen is the encoded length of AppendMessage(nil, h, payloads...).
func MessageLen(payloads ...Payload) int {
	n := HeaderLen
	for _, p := range payloads {
		n += GenericHeaderLen + p.Len()
	}
	return n
}
