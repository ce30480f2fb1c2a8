package spd

import (
	"encoding/binary"
	"math/bits"
	"net/netip"

	"github.com/ipsecgw/ipsecgw/header"
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

// Parse reads the addresses, protocol and ports of an IPv4 or IPv6 packet.
// It returns false when the packet is too short or inconsistent for that:
// a wrong version, a header length beyond the data, a total length larger
// than the buffer, an IPv6 extension header chain that is truncated or too
// long, or a first fragment too short to hold the ports. Bytes after the
// IP total length are ignored.
func (f *Flow) Parse(pkt []byte) bool {
	*f = Flow{}
	var l4 []byte
	first := true // not a non-first fragment
	// Parse is a leaf function: every header helper it uses is inlined,
	// and each header is read before the first store to f. (The compiler
	// cannot tell f from pkt's bytes; after a store it would reload the
	// lengths Valid checked and bounds-check them again.)
	if ip := header.IPv4(pkt); ip.Valid() {
		src, dst, proto := binary.BigEndian.Uint32(ip.Src()), binary.BigEndian.Uint32(ip.Dst()), ip.Protocol()
		if first = ip.FragmentOffset() == 0; first {
			l4 = ip.Payload()
		}
		f.Is4, f.Proto = true, proto
		f.Src.lo, f.Dst.lo = uint64(src), uint64(dst)
	} else if ip := header.IPv6(pkt); ip.Valid() {
		src, dst := ip.Src(), ip.Dst()
		proto, rest := ip.NextHeader(), ip.Payload()
		f.Src = u128{binary.BigEndian.Uint64(src[:8]), binary.BigEndian.Uint64(src[8:])}
		f.Dst = u128{binary.BigEndian.Uint64(dst[:8]), binary.BigEndian.Uint64(dst[8:])}
		// The upper-layer protocol follows the extension headers; so does
		// AH, whose payload the selectors cannot see into anyway. A
		// non-first fragment names its protocol but holds no header of it.
		for n := 0; header.IsIPv6Extension(proto); n++ {
			next, after, isFirst, ok := header.IPv6Extension(rest).Next(proto)
			if !ok {
				return false
			}
			proto, rest = next, after
			if first = isFirst; !first {
				break
			}
			if n == header.MaxIPv6Extensions {
				return false
			}
		}
		f.Proto, l4 = proto, rest
	} else {
		return false
	}
	if !first {
		return true // non-first fragment: no ports
	}
	switch f.Proto {
	case header.ProtoTCP, header.ProtoUDP, header.ProtoSCTP, header.ProtoDCCP, header.ProtoUDPLite:
		if len(l4) < header.PortsLen {
			return false
		}
		f.HasPorts = true
		f.SrcPort, f.DstPort = header.Ports(l4)
	case header.ProtoICMP, header.ProtoICMPv6:
		if (f.Proto == header.ProtoICMP) != f.Is4 {
			// ICMP over IPv6 or ICMPv6 over IPv4: the type/code layout is
			// not this family's, so treat it as a protocol without ports.
			return true
		}
		if len(l4) < header.ICMPTypeCodeLen {
			return false
		}
		f.HasPorts = true
		f.SrcPort = header.ICMP(l4).TypeCode()
		f.DstPort = f.SrcPort
	}
	return true
}
