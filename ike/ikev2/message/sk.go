package message

import (
	"encoding/binary"
	"errors"

	"github.com/ipsecgw/ipsecgw/transform"
)

// Encrypted is the Encrypted and Authenticated payload, SK (RFC 7296 §3.14),
// as it appears inside a Message: Message.Payloads' last entry, with the
// Next Payload naming the first inner payload (Message.InnerNext).
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     Initialization Vector                     |
//	|         (length is block size for encryption algorithm)       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                    Encrypted IKE Payloads                     ~
//	+               +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|               |             Padding (0-255 octets)            |
//	+-+-+-+-+-+-+-+-+                               +-+-+-+-+-+-+-+-+
//	|                                               |  Pad Length   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	~                    Integrity Checksum Data                    ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// With AEAD ciphers (RFC 5282) the ICV is the AEAD tag and the associated
// data is the IKE header through the SK payload header. The cryptography is
// transform.Protector's; this file only lays out the bytes.
//
// The fragment variant SKF (RFC 7383 §2.5) adds two fields before the IV:
//
//	                     1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	| Next Payload  |C|  RESERVED   |         Payload Length        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|        Fragment Number        |        Total Fragments        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     Initialization Vector                     |
//	~                      Encrypted content                        ~
//	~                    Integrity Checksum Data                    ~
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//
// Fragment Number counts from 1; only the first fragment's Next Payload
// names the first inner payload, the others carry 0. The fields before the
// IV are authenticated (associated data for AEAD).

// FragmentHeader is the Fragment Number / Total Fragments pair of an SKF
// payload.
type FragmentHeader struct {
	Number, Total uint16
}

// ParseFragmentHeader decodes the first four bytes of an SKF body; the
// number must be between 1 and the total (RFC 7383 §2.6).
func ParseFragmentHeader(b []byte) (FragmentHeader, int, error) {
	if len(b) < 4 {
		return FragmentHeader{}, 0, syntaxErr(0, "SKF payload too short")
	}
	f := FragmentHeader{Number: binary.BigEndian.Uint16(b), Total: binary.BigEndian.Uint16(b[2:])}
	if f.Number == 0 || f.Number > f.Total {
		return FragmentHeader{}, 0, syntaxErr(0, "fragment number outside 1..total")
	}
	return f, 4, nil
}

// AppendFragmentHeader appends the SKF fragment fields.
func AppendFragmentHeader(b []byte, f FragmentHeader) []byte {
	b = binary.BigEndian.AppendUint16(b, f.Number)
	return binary.BigEndian.AppendUint16(b, f.Total)
}

// padLen returns the number of padding bytes for n bytes of plaintext so that
// plaintext, padding and the Pad Length octet fill whole blocks.
func padLen(n, block int) int {
	if block <= 1 {
		return 0
	}
	return (block - (n+1)%block) % block
}

// AppendEncrypted appends a protected message: header h (NextPayload and
// Length are computed), then an SK payload holding inner. p is the sending
// direction's protector (SK_ei/SK_ai for the original initiator, SK_er/SK_ar
// for the responder); the IV comes from p.NextIV.
func AppendEncrypted(b []byte, h Header, p *transform.Protector, inner ...Payload) ([]byte, error) {
	start := len(b)
	h.NextPayload = PayloadSK
	b = AppendHeader(b, h)
	b, sk := appendGeneric(b, firstType(inner, PayloadNone), false)
	ivOff := len(b)
	b = append(b, make([]byte, p.IVSize())...)
	ptStart := len(b)
	b = appendChain(b, inner, PayloadNone)
	return seal(b, start, sk, ivOff, ptStart, p)
}

// seal pads the plaintext b[ptStart:], reserves the ICV, fills in the
// lengths, draws an IV and encrypts. sk is the offset of the SK/SKF generic
// header, ivOff of the IV.
func seal(b []byte, start, sk, ivOff, ptStart int, p *transform.Protector) ([]byte, error) {
	pad := padLen(len(b)-ptStart, p.BlockSize())
	for range pad {
		b = append(b, 0)
	}
	b = append(b, byte(pad))
	b = append(b, make([]byte, p.ICVSize())...)
	if len(b)-sk > 0xffff {
		return b[:start], &Error{Notify: INVALID_SYNTAX, Reason: "encrypted payload longer than 65535 bytes", Offset: -1}
	}
	patchLen(b, sk)
	binary.BigEndian.PutUint32(b[start+24:], uint32(len(b)-start))
	if err := p.NextIV(b[ivOff : ivOff+p.IVSize()]); err != nil {
		return b[:start], err
	}
	if err := p.Seal(b[start:], ivOff-start, nil, nil); err != nil {
		return b[:start], err
	}
	return b, nil
}

// Decrypt checks the integrity of m's SK payload with p (the receiving
// direction) and only then decrypts it in place in m.Raw and decodes the
// inner payloads into m.Inner. For an SKF payload use DecryptFragment.
//
// A failed integrity check, a ciphertext of impossible length or bad padding
// give an error matching ErrIntegrity (drop silently); malformed inner
// payloads give INVALID_SYNTAX or UNSUPPORTED_CRITICAL_PAYLOAD. After an
// integrity failure m.Raw's encrypted bytes are unspecified.
func Decrypt(m *Message, p *transform.Protector) error {
	sk, ok := m.Encrypted()
	if !ok || sk.Type != PayloadSK {
		return syntaxErr(-1, "message has no SK payload")
	}
	off := len(m.Raw) - len(sk.Body)
	plain, err := open(m.Raw, off, p)
	if err != nil {
		return err
	}
	m.Inner, _, err = parseChain(m.Inner[:0], plain, m.InnerNext, off+p.IVSize(), false)
	if err != nil {
		return err
	}
	m.Decrypted, m.Plain = true, plain
	return nil
}

// open verifies and decrypts the message raw whose IV starts at off and
// returns the inner payload bytes (padding removed).
func open(raw []byte, off int, p *transform.Protector) ([]byte, error) {
	if len(raw)-off < p.IVSize()+p.ICVSize()+1 {
		return nil, &Error{Notify: NotifyNone, Reason: "encrypted payload too short", Offset: off}
	}
	if err := p.Open(raw, off, nil, nil); err != nil {
		reason := "integrity check failed"
		if !errors.Is(err, transform.ErrAuthFailed) {
			reason = "cannot decrypt"
		}
		return nil, &Error{Notify: NotifyNone, Reason: reason, Offset: off, Err: err}
	}
	plain := raw[off+p.IVSize() : len(raw)-p.ICVSize()]
	pad := int(plain[len(plain)-1])
	if pad+1 > len(plain) {
		return nil, &Error{Notify: NotifyNone, Reason: "pad length exceeds the encrypted data", Offset: off}
	}
	return plain[: len(plain)-pad-1 : len(plain)-pad-1], nil
}

// FragmentOverhead is the number of bytes a fragment message spends outside
// its share of the inner payloads when protected by p, not counting the
// padding: header, SKF header, fragment fields, IV, Pad Length, ICV.
func FragmentOverhead(p *transform.Protector) int {
	return HeaderLen + GenericHeaderLen + 4 + p.IVSize() + 1 + p.ICVSize()
}

// AppendFragments encodes inner as one or more IKE fragment messages (RFC
// 7383 §2.5) of at most maxLen bytes each (the IKE message size: the caller
// subtracts IP and UDP headers from the path MTU, and the non-ESP marker on
// port 4500). All fragments carry h's message ID. Each message is appended
// to dst as its own slice.
func AppendFragments(dst [][]byte, h Header, p *transform.Protector, maxLen int, inner ...Payload) ([][]byte, error) {
	plain := appendChain(nil, inner, PayloadNone)
	bs := max(p.BlockSize(), 1)
	room := maxLen - FragmentOverhead(p) + 1 // bytes for chunk + padding + Pad Length
	chunk := room/bs*bs - 1
	if chunk < 1 {
		return dst, &Error{Notify: INVALID_SYNTAX, Reason: "fragment size too small for the cipher", Offset: -1}
	}
	total := (len(plain) + chunk - 1) / chunk
	if total == 0 {
		total = 1
	}
	if total > 0xffff {
		return dst, &Error{Notify: INVALID_SYNTAX, Reason: "message needs too many fragments", Offset: -1}
	}
	h.NextPayload = PayloadSKF
	for i := range total {
		part := plain[i*chunk : min((i+1)*chunk, len(plain))]
		next := PayloadNone
		if i == 0 {
			next = firstType(inner, PayloadNone)
		}
		b := AppendHeader(make([]byte, 0, maxLen), h)
		b, skf := appendGeneric(b, next, false)
		b = AppendFragmentHeader(b, FragmentHeader{Number: uint16(i + 1), Total: uint16(total)})
		ivOff := len(b)
		b = append(b, make([]byte, p.IVSize())...)
		ptStart := len(b)
		b = append(b, part...)
		b, err := seal(b, 0, skf, ivOff, ptStart, p)
		if err != nil {
			return dst, err
		}
		dst = append(dst, b)
	}
	return dst, nil
}

// DecryptFragment verifies and decrypts m's SKF payload in place and returns
// the fragment fields and this fragment's share of the inner payloads
// (aliasing m.Raw). Errors are as for Decrypt. The fragment fields are
// judged only once the integrity check has passed: impossible ones would
// otherwise give INVALID_SYNTAX for a forged fragment, and a receiver
// answers that for the whole message ID (RFC 7296 §2.21.2: messages
// failing the check are dropped unanswered).
func DecryptFragment(m *Message, p *transform.Protector) (FragmentHeader, []byte, error) {
	skf, ok := m.Encrypted()
	if !ok || skf.Type != PayloadSKF {
		return FragmentHeader{}, nil, syntaxErr(-1, "message has no SKF payload")
	}
	off := len(m.Raw) - len(skf.Body)
	const fieldsLen = 4 // Fragment Number, Total Fragments
	if len(skf.Body) < fieldsLen {
		return FragmentHeader{}, nil, &Error{Notify: NotifyNone, Reason: "SKF payload too short", Offset: off}
	}
	plain, err := open(m.Raw, off+fieldsLen, p)
	if err != nil {
		return FragmentHeader{}, nil, err
	}
	f, _, err := ParseFragmentHeader(skf.Body)
	if err != nil {
		return FragmentHeader{}, nil, shift(err, off)
	}
	return f, plain, nil
}

// Reassembly collects the decrypted fragments of one message (RFC 7383
// §2.6). The zero value is ready; use one per message ID.
type Reassembly struct {
	total uint16
	next  PayloadType
	parts [][]byte
	have  int
	size  int
}

// MaxReassembled bounds the reassembled inner payloads, so that a peer cannot
// make us buffer without limit (the SK payload length field allows 64 KiB).
const MaxReassembled = 0xffff

// Add records fragment f with plaintext part (copied) taken from the
// decrypted message m, and reports whether all fragments are now present.
// Duplicates are ignored; a total that changes, or too much data, is
// INVALID_SYNTAX.
func (r *Reassembly) Add(m *Message, f FragmentHeader, part []byte) (bool, error) {
	if r.total == 0 {
		r.total = f.Total
		r.parts = make([][]byte, f.Total)
	}
	if f.Total != r.total || f.Number == 0 || f.Number > r.total {
		return false, syntaxErr(-1, "fragment total changed")
	}
	if r.parts[f.Number-1] != nil {
		return r.have == int(r.total), nil
	}
	if r.size+len(part) > MaxReassembled {
		return false, syntaxErr(-1, "reassembled message too large")
	}
	if f.Number == 1 {
		r.next = m.InnerNext
	}
	r.parts[f.Number-1] = append(make([]byte, 0, len(part)+1), part...)
	r.have++
	r.size += len(part)
	return r.have == int(r.total), nil
}

// Complete decodes the reassembled inner payloads into m (the message of
// any fragment, normally the last) as Decrypt would: m.Inner, m.InnerNext
// and m.Decrypted are set, so that Validate can check the whole message.
func (r *Reassembly) Complete(m *Message) error {
	ps, plain, err := r.payloads(m.Inner[:0])
	if err != nil {
		return err
	}
	m.Inner, m.InnerNext, m.Decrypted, m.Plain = ps, r.next, true, plain
	return nil
}

// Payloads decodes the reassembled inner payloads once Add reported
// completion. They alias a buffer owned by the Reassembly.
func (r *Reassembly) Payloads(dst []RawPayload) ([]RawPayload, error) {
	dst, _, err := r.payloads(dst)
	return dst, err
}

// payloads is Payloads that also returns the reassembled plaintext.
func (r *Reassembly) payloads(dst []RawPayload) ([]RawPayload, []byte, error) {
	if r.total == 0 || r.have != int(r.total) {
		return dst, nil, syntaxErr(-1, "fragments missing")
	}
	buf := make([]byte, 0, r.size)
	for _, p := range r.parts {
		buf = append(buf, p...)
	}
	dst, _, err := parseChain(dst, buf, r.next, -1, false)
	return dst, buf, err
}
