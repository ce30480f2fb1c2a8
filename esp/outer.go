package esp

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/ipsecgw/ipsecgw/header"
)

// OuterLen is the size of the outer header WriteOuter builds.
func OuterLen(ipv6, udp bool) int {
	n := header.IPv4MinLen
	if ipv6 {
		n = header.IPv6Len
	}
	if udp {
		n += header.UDPLen
	}
	return n
}

// ErrOuter reports an outer header that cannot be built or parsed.
var ErrOuter = errors.New("esp: bad outer IP/UDP header")

// outerTTL is the TTL (hop limit) of the outer header, as Linux's default.
const outerTTL = 64

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
	ipl := header.IPv4MinLen
	if v6 {
		ipl = header.IPv6Len
	}
	proto := uint8(header.ProtoESP)
	if udp {
		proto = header.ProtoUDP
		header.UDP(buf[s+ipl:start]).Encode(src.Port(), dst.Port(), uint16(end-start+header.UDPLen))
	}
	if v6 {
		n := end - s - header.IPv6Len
		if n > header.IPv6MaxPayloadLen {
			return 0, ErrOuter
		}
		h := header.IPv6(buf[s:end])
		h.Encode(&header.IPv6Fields{PayloadLength: uint16(n), NextHeader: proto, HopLimit: outerTTL,
			Src: src.Addr().As16(), Dst: dst.Addr().As16()})
		if udp {
			// UDP over IPv6 must carry a checksum (RFC 8200 §8.1).
			u := header.UDP(h.Payload())
			u.UpdateChecksum(h.PseudoHeaderSum(header.ProtoUDP, len(u)))
		}
		return s, nil
	}
	if end-s > header.IPv4MaxTotalLen {
		return 0, ErrOuter
	}
	// The UDP checksum stays zero over IPv4, as RFC 3948 §2.1 allows:
	// ESP's own integrity check covers the payload.
	header.IPv4(buf[s:end]).Encode(&header.IPv4Fields{TotalLength: uint16(end - s), Flags: header.IPv4DontFragment,
		TTL: outerTTL, Protocol: proto, Src: src.Addr().As4(), Dst: dst.Addr().As4()})
	return s, nil
}

// ParseOuter finds the ESP packet in a whole IP packet built as WriteOuter
// does: it returns the offset of the SPI, the source and whether it came in
// UDP. Non-ESP UDP (IKE, keepalives) is rejected, and so is a packet whose
// IP header is not valid (header.IPv4.Valid, header.IPv6.Valid); the ESP
// packet ends where the IP packet's length says.
func ParseOuter(pkt []byte) (off int, src netip.AddrPort, udp bool, err error) {
	var proto uint8
	var addr netip.Addr
	var payload []byte
	if ip := header.IPv4(pkt); ip.Valid() {
		off, proto, addr, payload = ip.HeaderLength(), ip.Protocol(), ip.SrcAddr(), ip.Payload()
	} else if ip := header.IPv6(pkt); ip.Valid() {
		off, proto, addr, payload = header.IPv6Len, ip.NextHeader(), ip.SrcAddr(), ip.Payload()
	} else {
		return 0, src, false, ErrOuter
	}
	var port uint16
	switch {
	case proto == header.ProtoUDP && len(payload) >= header.UDPLen+HeaderLen:
		port = header.UDP(payload).SrcPort()
		off += header.UDPLen
		udp = true
		if binary.BigEndian.Uint32(payload[header.UDPLen:]) == 0 { // non-ESP marker: IKE
			return 0, src, false, ErrOuter
		}
	case proto == header.ProtoESP && len(payload) >= HeaderLen:
	default:
		return 0, src, false, ErrOuter
	}
	return off, netip.AddrPortFrom(addr, port), udp, nil
}
