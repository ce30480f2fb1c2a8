// Package tcpencap carries IKE and ESP over a TCP stream as RFC 9329
// defines it, for networks that let nothing out but TCP.
//
// The side that opens the TCP connection (the initiator of the stream,
// which need not be the IKE initiator) first sends the six bytes "IKETCP".
// After that both directions carry messages, each preceded by a 16-bit
// big-endian length that counts itself:
//
//	IKE:       Length | 0x00000000 (non-ESP marker) | IKE message
//	ESP:       Length | ESP packet (a non-zero SPI first)
//	keepalive: Length (3) | 0xFF (dropped on receipt, RFC 9329 §4)
//
// The payload after the length is classified as a datagram on UDP port
// 4500 is (conn.ClassifyNATT), so the two transports cannot disagree on
// what is IKE and what is ESP.
//
// A Stream does not allocate per ESP packet in either direction: received
// packets are handed over as slices of the stream's read buffer, and sent
// packets are framed into one reused buffer per batch and written with one
// system call.
package tcpencap

import (
	"encoding/binary"
	"errors"

	"github.com/ipsecgw/ipsecgw/esp/conn"
)

// Prefix is what the stream's initiator sends first (RFC 9329 §4).
const Prefix = "IKETCP"

const (
	// lengthLen is the size of the length field in front of each message.
	lengthLen = 2
	// markerLen is the non-ESP marker in front of IKE messages.
	markerLen = 4
	// MaxMessage is the largest payload one frame carries: the 16-bit
	// length counts itself.
	MaxMessage = 0xFFFF - lengthLen
)

// ErrBadLength means a length field below 2: the stream cannot be
// re-synchronised after it, so the connection must be closed.
var ErrBadLength = errors.New("tcpencap: length field shorter than itself")

// ErrTooLarge is returned when a message does not fit in one frame.
var ErrTooLarge = errors.New("tcpencap: message larger than a frame can carry")

// Frame is one message found in a stream buffer.
type Frame struct {
	// Kind says what the payload is; KindDrop frames are counted under
	// Why and skipped.
	Kind conn.Kind
	Why  conn.DropReason
	// Off and Len locate the IKE message (after the marker) or the ESP
	// packet in the buffer given to Next.
	Off, Len int
}

// Next parses the frame at the start of b. It returns the number of bytes
// the frame takes, or 0 when b does not hold a whole frame yet. A length
// below 2 is ErrBadLength.
func Next(b []byte) (f Frame, size int, err error) {
	if len(b) < lengthLen {
		return Frame{}, 0, nil
	}
	l := int(binary.BigEndian.Uint16(b))
	if l < lengthLen {
		return Frame{}, 0, ErrBadLength
	}
	if len(b) < l {
		return Frame{}, 0, nil
	}
	payload := b[lengthLen:l]
	k, off, why := conn.ClassifyNATT(payload)
	f = Frame{Kind: k, Why: why}
	if k == conn.KindIKE || k == conn.KindESP {
		f.Off, f.Len = lengthLen+off, len(payload)-off
	}
	return f, l, nil
}

// AppendIKE appends an IKE message framed for the stream (length and
// non-ESP marker) to dst.
func AppendIKE(dst, msg []byte) ([]byte, error) {
	n := markerLen + len(msg)
	if n > MaxMessage {
		return dst, ErrTooLarge
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(lengthLen+n))
	dst = append(dst, 0, 0, 0, 0)
	return append(dst, msg...), nil
}

// AppendESP appends an ESP packet framed for the stream to dst.
func AppendESP(dst, pkt []byte) ([]byte, error) {
	if len(pkt) > MaxMessage {
		return dst, ErrTooLarge
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(lengthLen+len(pkt)))
	return append(dst, pkt...), nil
}

// AppendKeepalive appends a NAT-keepalive frame (RFC 9329 §4: a 1-byte
// 0xFF payload; receivers drop it). RFC 9329 says not to send them over
// TCP on a NAT's account; they are for tests and for peers behind
// proxies that close idle streams.
func AppendKeepalive(dst []byte) []byte {
	return append(dst, 0, lengthLen+1, 0xFF)
}
