package esp

import (
	"encoding/binary"
	"errors"
	"net/netip"
)

// Outer header sizes.
const (
	ipv4Len = 20
	ipv6Len = 40
	udpLen  = 8
	// ProtoESP is the IP protocol number of ESP.
	ProtoESP = 50
	protoUDP = 17
)

// OuterLen is the size of the outer header WriteOuter builds.
func OuterLen(ipv6, udp bool) int {
	n := ipv4Len
	if ipv6 {
		n = ipv6Len
	}
	if udp {
		n += udpLen
	}
	return n
}

// ErrOuter reports an outer header that cannot be built or parsed.
var ErrOuter = errors.New("esp: bad outer IP/UDP header")

// WriteOuter writes an outer IPv4 or IPv6 header (protocol 50, or 17 with a
// UDP header for RFC 3948 encapsulation) in front of the ESP packet
// buf[start:end], in place, and returns the start of the whole IP packet.
// The ESP sockets do not need it (the kernel builds outer headers); it
// serves transports that carry whole IP packets and packet captures.
func WriteOuter(buf []byte, start, end int, src, dst netip.AddrPort, udp bool) (int, error) {
	if src.Addr().Is4() != dst.Addr().Is4() || !src.Addr().IsValid() {
		return 0, ErrOuter
	}
	v6 := !src.Addr().Is4()
	s := start - OuterLen(v6, udp)
	if s < 0 || end > len(buf) || end < start {
		return 0, ErrOuter
	}
	ipl := ipv4Len
	if v6 {
		ipl = ipv6Len
	}
	proto := byte(ProtoESP)
	if udp {
		proto = protoUDP
		u := buf[s+ipl : start]
		binary.BigEndian.PutUint16(u[0:], src.Port())
		binary.BigEndian.PutUint16(u[2:], dst.Port())
		binary.BigEndian.PutUint16(u[4:], uint16(end-start+udpLen))
		binary.BigEndian.PutUint16(u[6:], 0)
	}
	h := buf[s : s+ipl]
	if v6 {
		if end-s-ipv6Len > 0xffff {
			return 0, ErrOuter
		}
		h[0], h[1], h[2], h[3] = 0x60, 0, 0, 0
		binary.BigEndian.PutUint16(h[4:], uint16(end-s-ipv6Len))
		h[6], h[7] = proto, 64
		a, b := src.Addr().As16(), dst.Addr().As16()
		copy(h[8:24], a[:])
		copy(h[24:40], b[:])
		if udp {
			// UDP over IPv6 must carry a checksum (RFC 8200 §8.1).
			c := pseudoSum(h[8:40], uint32(end-s-ipv6Len), protoUDP)
			c = sum(buf[s+ipv6Len:end], c)
			binary.BigEndian.PutUint16(buf[s+ipv6Len+6:], finish(c, true))
		}
		return s, nil
	}
	if end-s > 0xffff {
		return 0, ErrOuter
	}
	h[0], h[1] = 0x45, 0
	binary.BigEndian.PutUint16(h[2:], uint16(end-s))
	h[4], h[5], h[6], h[7] = 0, 0, 0x40, 0 // DF
	h[8], h[9] = 64, proto
	h[10], h[11] = 0, 0
	a, b := src.Addr().As4(), dst.Addr().As4()
	copy(h[12:16], a[:])
	copy(h[16:20], b[:])
	binary.BigEndian.PutUint16(h[10:], finish(sum(h, 0), false))
	return s, nil
}

// ParseOuter finds the ESP packet in a whole IP packet built as WriteOuter
// does: it returns the offset of the SPI, the source and whether it came in
// UDP. Non-ESP UDP (IKE, keepalives) is rejected.
func ParseOuter(pkt []byte) (off int, src netip.AddrPort, udp bool, err error) {
	if len(pkt) < 1 {
		return 0, src, false, ErrOuter
	}
	var proto byte
	var addr netip.Addr
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < ipv4Len {
			return 0, src, false, ErrOuter
		}
		off = int(pkt[0]&0xf) * 4
		proto = pkt[9]
		addr = netip.AddrFrom4([4]byte(pkt[12:16]))
	case 6:
		if len(pkt) < ipv6Len {
			return 0, src, false, ErrOuter
		}
		off, proto = ipv6Len, pkt[6]
		addr = netip.AddrFrom16([16]byte(pkt[8:24]))
	default:
		return 0, src, false, ErrOuter
	}
	var port uint16
	if proto == protoUDP {
		if len(pkt) < off+udpLen+HeaderLen {
			return 0, src, false, ErrOuter
		}
		port = binary.BigEndian.Uint16(pkt[off:])
		off += udpLen
		udp = true
		if binary.BigEndian.Uint32(pkt[off:]) == 0 { // non-ESP marker: IKE
			return 0, src, false, ErrOuter
		}
	} else if proto != ProtoESP || len(pkt) < off+HeaderLen {
		return 0, src, false, ErrOuter
	}
	return off, netip.AddrPortFrom(addr, port), udp, nil
}

func sum(b []byte, c uint32) uint32 {
	for len(b) >= 2 {
		c += uint32(b[0])<<8 | uint32(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		c += uint32(b[0]) << 8
	}
	return c
}

func pseudoSum(addrs []byte, length uint32, proto byte) uint32 {
	c := sum(addrs, 0)
	c += length>>16 + length&0xffff
	return c + uint32(proto)
}

func finish(c uint32, udp bool) uint16 {
	for c > 0xffff {
		c = c>>16 + c&0xffff
	}
	r := ^uint16(c)
	if udp && r == 0 {
		return 0xffff
	}
	return r
}
