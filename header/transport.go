package header

import (
	"encoding/binary"

	"github.com/ipsecgw/ipsecgw/internal/checksum"
)

// PortsLen is the length of the source and destination port that TCP,
// UDP, UDP-Lite, SCTP and DCCP headers all begin with (RFC 9293, 768,
// 3828, 9260, 4340).
const PortsLen = 4

// Ports returns the source and destination port at the start of a TCP,
// UDP, UDP-Lite, SCTP or DCCP header. b must hold PortsLen bytes.
func Ports(b []byte) (src, dst uint16) {
	_ = b[PortsLen-1]
	return binary.BigEndian.Uint16(b[0:]), binary.BigEndian.Uint16(b[2:])
}

// UDP header (RFC 768): source port, destination port, length (header
// included) and checksum, 16 bits each.
const (
	UDPLen = 8
	// UDPChecksumOffset is where the checksum lies in the header (the
	// virtio-net csum_offset of a UDP packet).
	UDPChecksumOffset = 6

	udpSrcPort = 0
	udpDstPort = 2
	udpLength  = 4
)

// UDP is a view of a UDP datagram, header first. It must hold UDPLen bytes.
type UDP []byte

// SrcPort returns the source port.
func (b UDP) SrcPort() uint16 { return binary.BigEndian.Uint16(b[udpSrcPort:]) }

// DstPort returns the destination port.
func (b UDP) DstPort() uint16 { return binary.BigEndian.Uint16(b[udpDstPort:]) }

// Length returns the length field: header and payload.
func (b UDP) Length() int { return int(binary.BigEndian.Uint16(b[udpLength:])) }

// Checksum returns the checksum field (0: none, allowed over IPv4 only).
func (b UDP) Checksum() uint16 { return binary.BigEndian.Uint16(b[UDPChecksumOffset:]) }

// SetLength sets the length field.
func (b UDP) SetLength(n uint16) { binary.BigEndian.PutUint16(b[udpLength:], n) }

// SetChecksum sets the checksum field.
func (b UDP) SetChecksum(c uint16) { binary.BigEndian.PutUint16(b[UDPChecksumOffset:], c) }

// Encode writes a header with the given ports and length and no checksum.
func (b UDP) Encode(src, dst, length uint16) {
	_ = b[UDPLen-1]
	binary.BigEndian.PutUint16(b[udpSrcPort:], src)
	binary.BigEndian.PutUint16(b[udpDstPort:], dst)
	b.SetLength(length)
	b.SetChecksum(0)
}

// UpdateChecksum computes the checksum of the datagram b (header and
// payload: all of b) with the pseudo-header sum pseudo (IPv4 or
// IPv6.PseudoHeaderSum for len(b) bytes) and stores it. A computed zero is
// sent as all ones, zero meaning "no checksum" (RFC 768).
func (b UDP) UpdateChecksum(pseudo uint64) {
	b.SetChecksum(0)
	c := checksum.Checksum(b, pseudo)
	if c == 0 {
		c = 0xffff
	}
	b.SetChecksum(c)
}

// TCP header (RFC 9293 §3.1).
const (
	TCPMinLen = 20
	// TCPChecksumOffset is where the checksum lies in the header (the
	// virtio-net csum_offset of a TCP packet).
	TCPChecksumOffset = 16

	tcpSrcPort    = 0
	tcpDstPort    = 2
	tcpSeq        = 4
	tcpAck        = 8
	tcpDataOffset = 12 // high 4 bits; the low 4 are reserved
	tcpFlags      = 13
	tcpWindow     = 14
	tcpUrgent     = 18
)

// TCP control bits, as TCP.Flags returns them (RFC 9293 §3.1, RFC 3168).
const (
	TCPFlagFIN = 0x01
	TCPFlagSYN = 0x02
	TCPFlagRST = 0x04
	TCPFlagPSH = 0x08
	TCPFlagACK = 0x10
	TCPFlagURG = 0x20
	TCPFlagECE = 0x40
	TCPFlagCWR = 0x80
)

// TCP is a view of a TCP segment, header first. It must hold TCPMinLen
// bytes for the fixed fields, and Options needs the whole header: check
// Valid first.
type TCP []byte

// Valid reports whether b holds a whole TCP header: the fixed part, and a
// data offset that covers it and fits in b.
func (b TCP) Valid() bool {
	return len(b) >= TCPMinLen && b.DataOffset() >= TCPMinLen && b.DataOffset() <= len(b)
}

// SrcPort returns the source port.
func (b TCP) SrcPort() uint16 { return binary.BigEndian.Uint16(b[tcpSrcPort:]) }

// DstPort returns the destination port.
func (b TCP) DstPort() uint16 { return binary.BigEndian.Uint16(b[tcpDstPort:]) }

// SeqNumber returns the sequence number.
func (b TCP) SeqNumber() uint32 { return binary.BigEndian.Uint32(b[tcpSeq:]) }

// AckNumber returns the acknowledgment number.
func (b TCP) AckNumber() uint32 { return binary.BigEndian.Uint32(b[tcpAck:]) }

// DataOffset returns the header length in bytes, options included.
func (b TCP) DataOffset() int { return int(b[tcpDataOffset]>>4) * 4 }

// Reserved returns the four bits between the data offset and the control
// bits (the last of them is AccECN's AE flag).
func (b TCP) Reserved() uint8 { return b[tcpDataOffset] & 0x0f }

// Flags returns the eight control bits (TCPFlagFIN ... TCPFlagCWR).
func (b TCP) Flags() uint8 { return b[tcpFlags] }

// Window returns the window field.
func (b TCP) Window() uint16 { return binary.BigEndian.Uint16(b[tcpWindow:]) }

// Checksum returns the checksum field.
func (b TCP) Checksum() uint16 { return binary.BigEndian.Uint16(b[TCPChecksumOffset:]) }

// UrgentPointer returns the urgent pointer.
func (b TCP) UrgentPointer() uint16 { return binary.BigEndian.Uint16(b[tcpUrgent:]) }

// Options returns the options: the header from its fixed part to
// DataOffset.
func (b TCP) Options() []byte { return b[TCPMinLen:b.DataOffset()] }

// SetSeqNumber sets the sequence number.
func (b TCP) SetSeqNumber(n uint32) { binary.BigEndian.PutUint32(b[tcpSeq:], n) }

// SetFlags sets the eight control bits.
func (b TCP) SetFlags(f uint8) { b[tcpFlags] = f }

// SetChecksum sets the checksum field.
func (b TCP) SetChecksum(c uint16) { binary.BigEndian.PutUint16(b[TCPChecksumOffset:], c) }

// UpdateChecksum computes the checksum of the segment b (header and
// payload: all of b) with the pseudo-header sum pseudo (IPv4 or
// IPv6.PseudoHeaderSum for len(b) bytes) and stores it.
func (b TCP) UpdateChecksum(pseudo uint64) {
	b.SetChecksum(0)
	b.SetChecksum(checksum.Checksum(b, pseudo))
}

// ICMP header: ICMPv4 (RFC 792) and ICMPv6 (RFC 4443 §2.1) messages both
// begin with an 8-bit type and an 8-bit code, then a 16-bit checksum.
const (
	// ICMPTypeCodeLen is how much of a message Type and Code need.
	ICMPTypeCodeLen = 2

	icmpType = 0
	icmpCode = 1
)

// ICMP is a view of an ICMPv4 or ICMPv6 message. It must hold
// ICMPTypeCodeLen bytes.
type ICMP []byte

// Type returns the message type.
func (b ICMP) Type() uint8 { return b[icmpType] }

// Code returns the message code.
func (b ICMP) Code() uint8 { return b[icmpCode] }

// TypeCode returns type<<8 | code, the value IKEv2 traffic selectors use
// in place of a port for ICMP (RFC 7296 §3.13.1).
func (b ICMP) TypeCode() uint16 { return binary.BigEndian.Uint16(b[icmpType:]) }
