package header

import (
	"encoding/binary"
	"net/netip"

	"github.com/ipsecgw/ipsecgw/internal/checksum"
)

// IPv6 sizes (RFC 8200 §3).
const (
	// IPv6Len is the length of the fixed header; extension headers
	// follow it as part of the payload.
	IPv6Len = 40
	// IPv6MaxPayloadLen is the largest payload the 16-bit Payload Length
	// can describe (jumbograms aside).
	IPv6MaxPayloadLen = 65535
)

// Field offsets of the IPv6 header (RFC 8200 §3):
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|Version| Traffic Class |           Flow Label                  |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|         Payload Length        |  Next Header  |   Hop Limit   |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                     Source Address (128 bits)                 |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|                  Destination Address (128 bits)               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
const (
	ipv6VersionClassFlow = 0
	ipv6PayloadLength    = 4
	ipv6NextHeader       = 6
	ipv6HopLimit         = 7
	ipv6Src              = 8
	ipv6Dst              = 24
	ipv6AddrLen          = 16
)

// IPv6 is a view of an IPv6 packet, from its fixed header on. Check
// Valid, or check that it holds IPv6Len bytes yourself, before using the
// accessors.
type IPv6 []byte

// Valid reports whether b begins with a whole IPv6 packet: the fixed
// header, version 6, and a payload length that fits in b. Bytes after the
// payload are allowed and are not part of the packet: Payload ends before
// them. Jumbograms (RFC 2675) are not supported: a payload length of 0
// means an empty payload.
func (b IPv6) Valid() bool {
	return len(b) >= IPv6Len && b.Version() == 6 && IPv6Len+b.PayloadLength() <= len(b)
}

// Version returns the version field (6 for a valid header).
func (b IPv6) Version() int { return int(b[ipv6VersionClassFlow] >> 4) }

// TrafficClass returns the Traffic Class (DSCP and ECN).
func (b IPv6) TrafficClass() uint8 {
	return uint8(binary.BigEndian.Uint16(b[ipv6VersionClassFlow:]) >> 4)
}

// FlowLabel returns the 20-bit Flow Label.
func (b IPv6) FlowLabel() uint32 {
	return binary.BigEndian.Uint32(b[ipv6VersionClassFlow:]) & 0xfffff
}

// PayloadLength returns the length of everything after the fixed header,
// extension headers included.
func (b IPv6) PayloadLength() int { return int(binary.BigEndian.Uint16(b[ipv6PayloadLength:])) }

// NextHeader returns the type of the header after the fixed one: an
// extension header or the upper-layer protocol.
func (b IPv6) NextHeader() uint8 { return b[ipv6NextHeader] }

// HopLimit returns the Hop Limit.
func (b IPv6) HopLimit() uint8 { return b[ipv6HopLimit] }

// Src returns the source address as a 16-byte slice of b.
func (b IPv6) Src() []byte { return b[ipv6Src : ipv6Src+ipv6AddrLen] }

// Dst returns the destination address as a 16-byte slice of b.
func (b IPv6) Dst() []byte { return b[ipv6Dst : ipv6Dst+ipv6AddrLen] }

// SrcAddr returns the source address.
func (b IPv6) SrcAddr() netip.Addr { return netip.AddrFrom16([16]byte(b.Src())) }

// DstAddr returns the destination address.
func (b IPv6) DstAddr() netip.Addr { return netip.AddrFrom16([16]byte(b.Dst())) }

// Payload returns the bytes after the fixed header, up to the payload
// length.
func (b IPv6) Payload() []byte { return b[IPv6Len : IPv6Len+b.PayloadLength()] }

// SetPayloadLength sets the payload length field.
func (b IPv6) SetPayloadLength(n uint16) { binary.BigEndian.PutUint16(b[ipv6PayloadLength:], n) }

// PseudoHeaderSum returns the partial checksum of the upper-layer
// pseudo-header (RFC 8200 §8.1) for this packet's addresses, protocol
// proto and an upper-layer packet of length bytes.
func (b IPv6) PseudoHeaderSum(proto uint8, length int) uint64 {
	return checksum.PseudoHeaderSum(proto, b.Src(), b.Dst(), length)
}

// IPv6Fields are the values Encode writes into a fixed header.
type IPv6Fields struct {
	TrafficClass  uint8
	FlowLabel     uint32 // 20 bits
	PayloadLength uint16
	NextHeader    uint8
	HopLimit      uint8
	Src, Dst      [16]byte
}

// Encode writes the fixed header with the given fields into b.
func (b IPv6) Encode(f *IPv6Fields) {
	_ = b[IPv6Len-1]
	binary.BigEndian.PutUint32(b[ipv6VersionClassFlow:], 6<<28|uint32(f.TrafficClass)<<20|f.FlowLabel&0xfffff)
	b.SetPayloadLength(f.PayloadLength)
	b[ipv6NextHeader] = f.NextHeader
	b[ipv6HopLimit] = f.HopLimit
	copy(b[ipv6Src:], f.Src[:])
	copy(b[ipv6Dst:], f.Dst[:])
}

// IPv6 extension headers (RFC 8200 §4): Hop-by-Hop Options, Routing,
// Fragment and Destination Options, and AH (RFC 4302), which IPv6 chains
// like one of them. Each begins with the Next Header of the header after
// it; the length rules differ:
//
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
//	|  Next Header  |  Hdr Ext Len  |                               |
//	+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+    (type-specific data) ...   |
//
// Hdr Ext Len counts 8-byte units beyond the first 8; AH's Payload Len
// counts 4-byte units minus 2 (RFC 4302 §2.2); the Fragment header is
// always 8 bytes, its Fragment Offset in the top 13 bits of bytes 2-3
// (RFC 8200 §4.5). Every one is at least 8 bytes long.
const (
	ipv6ExtNext        = 0
	ipv6ExtLength      = 1
	ipv6ExtMinLen      = 8
	ipv6ExtLengthUnit  = 8
	ahLengthUnit       = 4
	ahLengthBias       = 2
	ipv6FragLen        = 8
	ipv6FragOffset     = 2
	ipv6FragOffsetMask = 0xfff8

	// MaxIPv6Extensions bounds a walk over a chain of extension
	// headers: RFC 8200 §4.1 allows each type once and Destination
	// Options twice, so a longer chain is broken or hostile.
	MaxIPv6Extensions = 8
)

// ipv6Extensions has bit n set for each header type n IsIPv6Extension
// accepts; all of them are below 64.
const ipv6Extensions = 1<<ProtoHopByHop | 1<<ProtoRouting | 1<<ProtoFragment | 1<<ProtoDestOpts | 1<<ProtoAH

// IsIPv6Extension reports whether the Next Header value typ names an
// extension header (or AH) rather than the upper-layer protocol.
func IsIPv6Extension(typ uint8) bool { return typ < 64 && ipv6Extensions>>typ&1 != 0 }

// IPv6Extension is a view of an IPv6 extension header, from its start to
// the end of the packet's payload; its type is the Next Header of the
// header before it.
type IPv6Extension []byte

// Next steps over the extension header b of type typ (IsIPv6Extension): it
// returns the type of the header after it and the bytes from there on.
// For the Fragment header of a fragment other than the first, first is
// false: rest is then fragment data, not a header. ok is false when b is
// shorter than the header.
//
// A walk to the upper layer calls Next while IsIPv6Extension(next), stops
// at a non-first fragment, and gives up on a chain that goes on after
// MaxIPv6Extensions headers. Next is small enough to be inlined, so such a
// loop costs no function call per packet.
func (b IPv6Extension) Next(typ uint8) (next uint8, rest []byte, first, ok bool) {
	if len(b) < ipv6ExtMinLen {
		return 0, nil, false, false
	}
	n, first := (int(b[ipv6ExtLength])+1)*ipv6ExtLengthUnit, true
	switch typ {
	case ProtoAH:
		n = (int(b[ipv6ExtLength]) + ahLengthBias) * ahLengthUnit
	case ProtoFragment:
		n, first = ipv6FragLen, binary.BigEndian.Uint16(b[ipv6FragOffset:])&ipv6FragOffsetMask == 0
	}
	if uint(n) > uint(len(b)) { // as unsigned, the bounds check of b[n:] is seen to be done
		return 0, nil, false, false
	}
	return b[ipv6ExtNext], b[n:], first, true
}
