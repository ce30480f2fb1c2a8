package spd

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// u128 is an address as a number: IPv6 in full, IPv4 in the low 32 bits.
// Comparing two of these is two integer compares, and the type has no
// pointers, so compiled tables stay flat.
type u128 struct{ hi, lo uint64 }

func toU128(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{lo: uint64(binary.BigEndian.Uint32(b[:]))}
	}
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func fromU128(u u128, is4 bool) netip.Addr {
	if is4 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(u.lo))
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], u.hi)
	binary.BigEndian.PutUint64(b[8:], u.lo)
	return netip.AddrFrom16(b)
}

// hostMask returns a value with the low n bits set.
func hostMask(n int) u128 {
	switch {
	case n <= 0:
		return u128{}
	case n < 64:
		return u128{lo: 1<<n - 1}
	case n < 128:
		return u128{hi: 1<<(n-64) - 1, lo: ^uint64(0)}
	}
	return u128{^uint64(0), ^uint64(0)}
}

func (u u128) or(v u128) u128 { return u128{u.hi | v.hi, u.lo | v.lo} }

func (u u128) sub(v u128) u128 {
	lo, borrow := bits.Sub64(u.lo, v.lo, 0)
	hi, _ := bits.Sub64(u.hi, v.hi, borrow)
	return u128{hi, lo}
}

func (u u128) bitLen() int {
	if u.hi != 0 {
		return 64 + bits.Len64(u.hi)
	}
	return bits.Len64(u.lo)
}

func (u u128) less(v u128) bool { return u.hi < v.hi || (u.hi == v.hi && u.lo < v.lo) }

func (u u128) inRange(from, to u128) bool { return !u.less(from) && !to.less(u) }

// Flow is what the selectors look at in a packet. Parse fills it from a raw
// IP header without allocating.
type Flow struct {
	Src, Dst u128
	Is4      bool
	Proto    uint8 // upper-layer protocol after IPv6 extension headers
	// HasPorts is false for protocols without ports and for non-first
	// fragments. For ICMP/ICMPv6 both ports hold type<<8|code.
	HasPorts         bool
	SrcPort, DstPort uint16
}

// SrcAddr and DstAddr return the flow's addresses (for diagnostics; the
// packet path does not need them).
func (f *Flow) SrcAddr() netip.Addr { return fromU128(f.Src, f.Is4) }
func (f *Flow) DstAddr() netip.Addr { return fromU128(f.Dst, f.Is4) }

// IPv6 extension headers the parser walks over (RFC 8200 §4, RFC 4302).
const (
	ext6HopByHop = 0
	ext6Routing  = 43
	ext6Fragment = 44
	ext6DestOpts = 60
	ext6NoNext   = 59
	// maxExt6 bounds the walk: RFC 8200 §4.1 allows each header at most
	// twice (destination options), so more than this is hostile.
	maxExt6 = 8
)

// Parse reads the addresses, protocol and ports of an IPv4 or IPv6 packet.
// It returns false when the packet is too short or inconsistent for that:
// a wrong version, a header length beyond the data, a total length larger
// than the buffer, or a first fragment too short to hold the ports. Bytes
// after the IP total length are ignored.
func (f *Flow) Parse(pkt []byte) bool {
	*f = Flow{}
	if len(pkt) < 1 {
		return false
	}
	var l4 []byte
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < 20 {
			return false
		}
		ihl := int(pkt[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(pkt[2:4]))
		if ihl < 20 || total < ihl || total > len(pkt) {
			return false
		}
		f.Is4 = true
		f.Src.lo = uint64(binary.BigEndian.Uint32(pkt[12:16]))
		f.Dst.lo = uint64(binary.BigEndian.Uint32(pkt[16:20]))
		f.Proto = pkt[9]
		if binary.BigEndian.Uint16(pkt[6:8])&0x1fff != 0 {
			return true // non-first fragment: no ports
		}
		l4 = pkt[ihl:total]
	case 6:
		if len(pkt) < 40 {
			return false
		}
		total := 40 + int(binary.BigEndian.Uint16(pkt[4:6]))
		if total > len(pkt) {
			return false
		}
		f.Src = u128{binary.BigEndian.Uint64(pkt[8:16]), binary.BigEndian.Uint64(pkt[16:24])}
		f.Dst = u128{binary.BigEndian.Uint64(pkt[24:32]), binary.BigEndian.Uint64(pkt[32:40])}
		next := pkt[6]
		rest := pkt[40:total]
		for i := 0; ; i++ {
			if i > maxExt6 {
				return false
			}
			switch next {
			case ext6HopByHop, ext6Routing, ext6DestOpts:
				if len(rest) < 8 {
					return false
				}
				n := (int(rest[1]) + 1) * 8
				if n > len(rest) {
					return false
				}
				next, rest = rest[0], rest[n:]
				continue
			case ext6Fragment:
				if len(rest) < 8 {
					return false
				}
				if binary.BigEndian.Uint16(rest[2:4])&0xfff8 != 0 {
					f.Proto = rest[0]
					return true // non-first fragment: no ports
				}
				next, rest = rest[0], rest[8:]
				continue
			case ProtoAH:
				if len(rest) < 8 {
					return false
				}
				n := (int(rest[1]) + 2) * 4
				if n > len(rest) {
					return false
				}
				next, rest = rest[0], rest[n:]
				continue
			}
			break
		}
		f.Proto = next
		l4 = rest
	default:
		return false
	}
	switch f.Proto {
	case ProtoTCP, ProtoUDP, ProtoSCTP, ProtoDCCP, ProtoUDPLite:
		if len(l4) < 4 {
			return false
		}
		f.HasPorts = true
		f.SrcPort = binary.BigEndian.Uint16(l4[0:2])
		f.DstPort = binary.BigEndian.Uint16(l4[2:4])
	case ProtoICMP, ProtoICMPv6:
		if (f.Proto == ProtoICMP) != f.Is4 {
			// ICMP over IPv6 or ICMPv6 over IPv4: the type/code layout is
			// not this family's, so treat it as a protocol without ports.
			return true
		}
		if len(l4) < 2 {
			return false
		}
		f.HasPorts = true
		f.SrcPort = binary.BigEndian.Uint16(l4[0:2])
		f.DstPort = f.SrcPort
	}
	return true
}
