package header

import (
	"encoding/binary"
	"net/netip"

	"github.com/ipsecgw/ipsecgw/internal/checksum"
)

// IPv4 header sizes (RFC 791 §3.1).
const (
	// IPv4MinLen is the header without options (IHL 5).
	IPv4MinLen = 20
	// IPv4MaxTotalLen is the largest packet the 16-bit Total Length can
	// describe.
	IPv4MaxTotalLen = 65535
)

// Field offsets of the IPv4 header (RFC 791 §3.1):
//
//	 0                   1                   2                   3
//	 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version|  IHL  |Type of Service|          Total Length         |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Identification        |Flags|      Fragment Offset    |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Time to Live |    Protocol   |         Header Checksum       |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                       Source Address                          |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                    Destination Address                        |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	ipv4VersionIHL  = 0
	ipv4TOS         = 1
	ipv4TotalLength = 2
	ipv4ID          = 4
	ipv4FlagsFrag   = 6
	ipv4TTL         = 8
	ipv4Protocol    = 9
	ipv4Checksum    = 10
	ipv4Src         = 12
	ipv4Dst         = 16
	ipv4AddrLen     = 4
)

// Flags, in place in the 16-bit word of flags and fragment offset (as
// IPv4.Flags returns them).
const (
	IPv4DontFragment  = 0x4000
	IPv4MoreFragments = 0x2000
	ipv4FlagsMask     = 0xe000 // with the reserved bit
	ipv4FragOffMask   = 0x1fff // in units of 8 bytes
)

// IPv4 is a view of an IPv4 packet, from its header on. Check Valid, or
// check the length yourself, before using the accessors.
type IPv4 []byte

// Valid reports whether b begins with a whole IPv4 packet: at least the
// fixed header, version 4, a header length of at least 20 bytes that fits
// in the total length, and a total length that fits in b. Bytes after the
// total length (link padding, the rest of a larger buffer) are allowed and
// are not part of the packet: Payload ends before them.
func (b IPv4) Valid() bool {
	if len(b) < IPv4MinLen || b.Version() != 4 {
		return false
	}
	hl, total := b.HeaderLength(), b.TotalLength()
	return hl >= IPv4MinLen && hl <= total && total <= len(b)
}

// Version returns the version field (4 for a valid header).
func (b IPv4) Version() int { return int(b[ipv4VersionIHL] >> 4) }

// HeaderLength returns the header length in bytes, options included.
func (b IPv4) HeaderLength() int { return int(b[ipv4VersionIHL]&0x0f) * 4 }

// TOS returns the Type of Service byte (DSCP and ECN).
func (b IPv4) TOS() uint8 { return b[ipv4TOS] }

// TotalLength returns the length of the packet, header included.
func (b IPv4) TotalLength() int { return int(binary.BigEndian.Uint16(b[ipv4TotalLength:])) }

// ID returns the Identification field.
func (b IPv4) ID() uint16 { return binary.BigEndian.Uint16(b[ipv4ID:]) }

// Flags returns the three flag bits in place: IPv4DontFragment,
// IPv4MoreFragments and the reserved bit 0x8000.
func (b IPv4) Flags() uint16 { return binary.BigEndian.Uint16(b[ipv4FlagsFrag:]) & ipv4FlagsMask }

// FragmentOffset returns the offset of this fragment's data in the
// original packet, in bytes; 0 for an unfragmented packet or a first
// fragment.
func (b IPv4) FragmentOffset() int {
	return int(binary.BigEndian.Uint16(b[ipv4FlagsFrag:])&ipv4FragOffMask) * 8
}

// IsFragment reports whether the packet is a fragment: more fragments
// follow it, or it is not the first.
func (b IPv4) IsFragment() bool {
	return binary.BigEndian.Uint16(b[ipv4FlagsFrag:])&(IPv4MoreFragments|ipv4FragOffMask) != 0
}

// TTL returns the Time to Live.
func (b IPv4) TTL() uint8 { return b[ipv4TTL] }

// Protocol returns the protocol of the payload.
func (b IPv4) Protocol() uint8 { return b[ipv4Protocol] }

// Checksum returns the header checksum field.
func (b IPv4) Checksum() uint16 { return binary.BigEndian.Uint16(b[ipv4Checksum:]) }

// Src returns the source address as a 4-byte slice of b.
func (b IPv4) Src() []byte { return b[ipv4Src : ipv4Src+ipv4AddrLen] }

// Dst returns the destination address as a 4-byte slice of b.
func (b IPv4) Dst() []byte { return b[ipv4Dst : ipv4Dst+ipv4AddrLen] }

// SrcAddr returns the source address.
func (b IPv4) SrcAddr() netip.Addr { return netip.AddrFrom4([4]byte(b.Src())) }

// DstAddr returns the destination address.
func (b IPv4) DstAddr() netip.Addr { return netip.AddrFrom4([4]byte(b.Dst())) }

// Payload returns the bytes after the header, up to the total length.
func (b IPv4) Payload() []byte { return b[b.HeaderLength():b.TotalLength()] }

// SetTotalLength sets the total length field.
func (b IPv4) SetTotalLength(n uint16) { binary.BigEndian.PutUint16(b[ipv4TotalLength:], n) }

// SetID sets the Identification field.
func (b IPv4) SetID(id uint16) { binary.BigEndian.PutUint16(b[ipv4ID:], id) }

// SetChecksum sets the header checksum field.
func (b IPv4) SetChecksum(c uint16) { binary.BigEndian.PutUint16(b[ipv4Checksum:], c) }

// UpdateChecksum computes the header checksum over HeaderLength bytes and
// stores it.
func (b IPv4) UpdateChecksum() {
	b.SetChecksum(0)
	b.SetChecksum(checksum.Checksum(b[:b.HeaderLength()], 0))
}

// PseudoHeaderSum returns the partial checksum of the TCP/UDP
// pseudo-header (RFC 768, RFC 9293 §3.1) for this packet's addresses,
// protocol proto and a transport segment of length bytes.
func (b IPv4) PseudoHeaderSum(proto uint8, length int) uint64 {
	return checksum.PseudoHeaderSum(proto, b.Src(), b.Dst(), length)
}

// IPv4Fields are the values Encode writes into a header without options.
type IPv4Fields struct {
	TOS         uint8
	TotalLength uint16
	ID          uint16
	Flags       uint16 // IPv4DontFragment and/or IPv4MoreFragments
	TTL         uint8
	Protocol    uint8
	Src, Dst    [4]byte
}

// Encode writes a 20-byte header (no options, fragment offset 0) with the
// given fields and its checksum into b.
func (b IPv4) Encode(f *IPv4Fields) {
	_ = b[IPv4MinLen-1]
	b[ipv4VersionIHL] = 4<<4 | IPv4MinLen/4
	b[ipv4TOS] = f.TOS
	b.SetTotalLength(f.TotalLength)
	b.SetID(f.ID)
	binary.BigEndian.PutUint16(b[ipv4FlagsFrag:], f.Flags&ipv4FlagsMask)
	b[ipv4TTL] = f.TTL
	b[ipv4Protocol] = f.Protocol
	copy(b[ipv4Src:], f.Src[:])
	copy(b[ipv4Dst:], f.Dst[:])
	b.SetChecksum(0)
	b.SetChecksum(checksum.Checksum(b[:IPv4MinLen], 0))
}
