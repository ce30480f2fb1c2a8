// Package ah is the framing of the IP Authentication Header (RFC 4302):
// tunnel and transport mode, applied in place on pooled buffers like
// package esp, with the ICV computed by an integrity-only
// transform.Protector (transform.NewAuthProtector).
//
// # Framing
//
// An AH packet is
//
//	IP header (protocol / Next Header 51) | Next Header (1) | Payload Len (1) |
//	Reserved (2) | SPI (4) | Sequence Number low 32 bits (4) | ICV | payload
//
// where, in tunnel mode, the IP header is the outer header built here and
// the payload is the whole inner packet (Next Header 4 or 41); in transport
// mode the IP header is the packet's own, moved forward to make room, and
// the payload is its upper-layer part. Payload Len is the AH length in
// 32-bit words minus 2 (§2.2). The ICV field is padded to a multiple of 4
// bytes over IPv4 and 8 bytes over IPv6 (§2.6); our padding is zeros.
//
// Unlike ESP nothing is encrypted, and the ICV covers the IP header too
// (§3.3.3.1): the immutable fields as they are, the mutable ones as zeros
// (IPv4: TOS, flags and fragment offset, TTL, checksum, and every option
// except the immutable ones of Appendix A.1; IPv6: traffic class, flow
// label, hop limit), then the AH header with its ICV field zeroed, then
// the payload, then — with extended sequence numbers — the high-order 32
// bits of the sequence number, which are never sent (§2.5.1, §3.3.3.2.1).
// Mutable fields are zeroed in place for the computation and restored.
//
// Because the outer header is authenticated, the sender must know it
// exactly: it is built here (IPv4 Identification included, which the
// kernel would otherwise choose) and sent as a whole IP packet (IP_HDRINCL,
// IPV6_HDRINCL). AH authenticates the outer addresses, so it never works
// through a NAT and is never carried in UDP.
//
// Over IPv6, Hop-by-Hop, Routing and Destination Options headers may come
// before AH (ipv6ext.go): their mutable option data counts as zeros.
//
// Limits: IPv4 packets carrying a source-route option (whose destination
// address the ICV would take from the option), IPv6 packets whose Routing
// header still has segments left, and more than 256 bytes of IPv6
// extension headers before AH are refused.
package ah

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/ipsecgw/ipsecgw/header"
	"github.com/ipsecgw/ipsecgw/transform"
)

// HeaderLen is the fixed part of the AH header: Next Header, Payload Len,
// Reserved, SPI and the low 32 bits of the sequence number.
const HeaderLen = 12

// Protocol is AH's IP protocol number.
const Protocol = header.ProtoAH

// TTL is the outer header's TTL (hop limit), as Linux's default.
const TTL = 64

// Framing errors, preallocated so that rejecting a packet does not
// allocate.
var (
	ErrNoRoom      = errors.New("ah: not enough headroom in the buffer")
	ErrShort       = errors.New("ah: packet shorter than its IP header, AH header and ICV")
	ErrHeader      = errors.New("ah: IP header is not valid or does not carry AH right after it")
	ErrLength      = errors.New("ah: AH Payload Len disagrees with the ICV size")
	ErrOption      = errors.New("ah: IPv4 source-route option (not supported with AH)")
	ErrExtension   = errors.New("ah: IPv6 extension header AH cannot authenticate (routing header with segments left, malformed options, or more than 256 bytes)")
	ErrInnerPacket = errors.New("ah: inner packet is neither IPv4 nor IPv6")
	ErrNextHeader  = errors.New("ah: Next Header disagrees with the inner packet")
	ErrAuth        = errors.New("ah: ICV verification failed")
)

// Len is the length of the AH header (fixed part, ICV and its padding) for
// an ICV of icv bytes, over IPv6 or IPv4.
func Len(icv int, v6 bool) int {
	a := 4
	if v6 {
		a = 8
	}
	return (HeaderLen + icv + a - 1) &^ (a - 1)
}

func ipLen(v6 bool) int {
	if v6 {
		return header.IPv6Len
	}
	return header.IPv4MinLen
}

// TunnelHeadLen is how many bytes SealTunnel writes in front of the inner
// packet: the outer IP header and the AH header.
func TunnelHeadLen(p *transform.Protector, v6 bool) int { return ipLen(v6) + Len(p.ICVSize(), v6) }

// ipID is the IPv4 Identification of the packet with sequence number seq:
// it is authenticated, so we choose it (the kernel fills in a zero one
// itself). The packets are sent with DF, so it only has to be non-zero.
func ipID(seq uint64) uint16 {
	if id := uint16(seq); id != 0 {
		return id
	}
	return uint16(seq>>16) | 1
}

// SealTunnel frames the inner IP packet buf[off:off+n] in tunnel mode: it
// writes an outer IPv4 or IPv6 header from src to dst (protocol 51) and the
// AH header with SPI spi and sequence number seq in front of it, and the
// ICV computed with p. It needs TunnelHeadLen bytes before off. It returns
// where the whole IP packet starts in buf, and the packet (a slice of buf).
func SealTunnel(p *transform.Protector, spi uint32, seq uint64, esn bool, src, dst netip.Addr, buf []byte, off, n int) (start int, pkt []byte, err error) {
	if !src.IsValid() || src.Is4() != dst.Is4() {
		return 0, nil, ErrHeader
	}
	v6 := !src.Is4()
	hl, al := ipLen(v6), Len(p.ICVSize(), v6)
	start = off - hl - al
	if start < 0 || n < 0 || off+n > len(buf) {
		return 0, nil, ErrNoRoom
	}
	var next byte
	switch header.IPVersion(buf[off : off+n]) {
	case 4:
		next = header.ProtoIPv4
	case 6:
		next = header.ProtoIPv6
	default:
		return 0, nil, ErrInnerPacket
	}
	pkt = buf[start : off+n]
	if v6 {
		if len(pkt)-hl > header.IPv6MaxPayloadLen {
			return 0, nil, ErrNoRoom
		}
		header.IPv6(pkt).Encode(&header.IPv6Fields{PayloadLength: uint16(len(pkt) - hl), NextHeader: Protocol,
			HopLimit: TTL, Src: src.As16(), Dst: dst.As16()})
	} else {
		if len(pkt) > header.IPv4MaxTotalLen {
			return 0, nil, ErrNoRoom
		}
		header.IPv4(pkt).Encode(&header.IPv4Fields{TotalLength: uint16(len(pkt)), ID: ipID(seq), Flags: header.IPv4DontFragment,
			TTL: TTL, Protocol: Protocol, Src: src.As4(), Dst: dst.As4()})
	}
	if err := seal(p, pkt, hl, al, next, spi, seq, esn); err != nil {
		return 0, nil, err
	}
	return start, pkt, nil
}

// TransportHeadLen is how many bytes SealTransport needs in front of the
// packet: the AH header it inserts.
func TransportHeadLen(p *transform.Protector, v6 bool) int { return Len(p.ICVSize(), v6) }

// SealTransport protects the IP packet buf[off:off+n] in transport mode: it
// moves the packet's IP header forward by the AH header's length, inserts
// the AH header between it and the payload (Next Header = the packet's
// protocol), fixes the IP header's protocol and length, and computes the
// ICV. Over IPv6 the AH header goes after the Hop-by-Hop, Routing and
// Destination Options headers (RFC 4302 §3.1.1), whose last Next Header
// becomes 51; fragments are refused (ErrHeader). It needs
// TransportHeadLen bytes before off.
func SealTransport(p *transform.Protector, spi uint32, seq uint64, esn bool, buf []byte, off, n int) (start int, pkt []byte, err error) {
	if n < 0 || off+n > len(buf) {
		return 0, nil, ErrNoRoom
	}
	in := buf[off : off+n]
	var v6 bool
	var hl, nextAt int
	var next byte
	switch {
	case header.IPv4(in).Valid() && header.IPv4(in).TotalLength() == n && !header.IPv4(in).IsFragment():
		hl, nextAt, next = header.IPv4(in).HeaderLength(), 9, header.IPv4(in).Protocol()
	case header.IPv6(in).Valid() && header.IPv6Len+header.IPv6(in).PayloadLength() == n:
		v6 = true
		if hl, nextAt, next, err = v6Chain(in); err != nil || next == Protocol {
			return 0, nil, ErrHeader
		}
	default:
		return 0, nil, ErrHeader
	}
	al := Len(p.ICVSize(), v6)
	start = off - al
	if start < 0 {
		return 0, nil, ErrNoRoom
	}
	pkt = buf[start : off+n]
	copy(pkt, in[:hl])
	if v6 {
		if n+al-header.IPv6Len > header.IPv6MaxPayloadLen {
			return 0, nil, ErrNoRoom
		}
		ip := header.IPv6(pkt)
		ip.SetPayloadLength(uint16(len(pkt) - header.IPv6Len))
		pkt[nextAt] = Protocol // the fixed header's or the last extension header's Next Header
	} else {
		if len(pkt) > header.IPv4MaxTotalLen {
			return 0, nil, ErrNoRoom
		}
		ip := header.IPv4(pkt)
		ip.SetTotalLength(uint16(len(pkt)))
		pkt[nextAt] = Protocol
		ip.UpdateChecksum()
	}
	if err := seal(p, pkt, hl, al, next, spi, seq, esn); err != nil {
		return 0, nil, err
	}
	return start, pkt, nil
}

// seal writes the AH header at pkt[hl:hl+al] and its ICV.
func seal(p *transform.Protector, pkt []byte, hl, al int, next byte, spi uint32, seq uint64, esn bool) error {
	a := pkt[hl : hl+al]
	a[0] = next
	a[1] = byte(al/4 - 2)
	a[2], a[3] = 0, 0
	binary.BigEndian.PutUint32(a[4:], spi)
	binary.BigEndian.PutUint32(a[8:], uint32(seq))
	clear(a[HeaderLen:])
	icv := a[HeaderLen : HeaderLen+p.ICVSize()]
	var hi [4]byte
	trailer := seqHi(&hi, seq, esn)
	var saved mutable
	if err := saved.zero(pkt, hl); err != nil {
		return err
	}
	err := p.Authenticate(icv, pkt, trailer)
	saved.restore(pkt, hl)
	return err
}

// seqHi returns the ESN high-order bits to append to the authenticated
// data, or nil without ESN. hi keeps them on the caller's stack.
func seqHi(hi *[4]byte, seq uint64, esn bool) []byte {
	if !esn {
		return nil
	}
	binary.BigEndian.PutUint32(hi[:], uint32(seq>>32))
	return hi[:]
}

// Parse finds the AH header in a whole IP packet (IPv4, or IPv6 with AH
// after the fixed header and any Hop-by-Hop, Routing and Destination
// Options headers) and returns its offset, the SPI and the low 32 bits of
// the sequence number. The IPv4 header must be valid
// (header.IPv4.Valid) and the packet is taken as long as its IP header
// says.
func Parse(pkt []byte) (ahOff int, spi, seqLo uint32, err error) {
	var hl int
	switch header.IPVersion(pkt) {
	case 4:
		ip := header.IPv4(pkt)
		if !ip.Valid() || ip.Protocol() != Protocol || ip.IsFragment() {
			return 0, 0, 0, ErrHeader
		}
		hl = ip.HeaderLength()
		pkt = pkt[:ip.TotalLength()]
	case 6:
		ip := header.IPv6(pkt)
		if !ip.Valid() {
			return 0, 0, 0, ErrHeader
		}
		pkt = pkt[:header.IPv6Len+ip.PayloadLength()]
		var next byte
		var err error
		if hl, _, next, err = v6Chain(pkt); err != nil {
			return 0, 0, 0, err
		}
		if next != Protocol {
			return 0, 0, 0, ErrHeader
		}
	default:
		return 0, 0, 0, ErrHeader
	}
	if len(pkt) < hl+HeaderLen {
		return 0, 0, 0, ErrShort
	}
	return hl, binary.BigEndian.Uint32(pkt[hl+4:]), binary.BigEndian.Uint32(pkt[hl+8:]), nil
}

// Open verifies the AH packet pkt (a whole IP packet as Parse takes it)
// with p, for seq the full sequence number (with ESN the high bits inferred
// by the replay window). On success the payload after the AH header is
// pkt[off:off+n] and next its Next Header; the packet's bytes are as
// received. Errors: ErrHeader, ErrShort, ErrLength (Payload Len does not
// match p's ICV), ErrOption, ErrExtension, ErrAuth, or a transform error
// (closed key).
func Open(p *transform.Protector, seq uint64, esn bool, pkt []byte) (off, n int, next byte, err error) {
	hl, _, _, err := Parse(pkt)
	if err != nil {
		return 0, 0, 0, err
	}
	v6 := header.IPVersion(pkt) == 6
	if v6 {
		pkt = pkt[:header.IPv6Len+header.IPv6(pkt).PayloadLength()]
	} else {
		pkt = pkt[:header.IPv4(pkt).TotalLength()]
	}
	al := Len(p.ICVSize(), v6)
	if len(pkt) < hl+al {
		return 0, 0, 0, ErrShort
	}
	a := pkt[hl : hl+al]
	if int(a[1]) != al/4-2 {
		return 0, 0, 0, ErrLength
	}
	var saved mutable
	if err := saved.zero(pkt, hl); err != nil {
		return 0, 0, 0, err
	}
	// The ICV is compared against a copy while the field itself is zero
	// for the computation; the copy lives on the stack (ICVs are at most
	// 32 bytes) and the field is restored afterwards.
	var got [maxICV]byte
	icvLen := p.ICVSize()
	if icvLen > maxICV {
		saved.restore(pkt, hl)
		return 0, 0, 0, ErrLength
	}
	icv := a[HeaderLen : HeaderLen+icvLen]
	copy(got[:], icv)
	clear(icv)
	var hi [4]byte
	err = p.Verify(got[:icvLen], pkt, seqHi(&hi, seq, esn))
	copy(icv, got[:icvLen])
	saved.restore(pkt, hl)
	if err != nil {
		if errors.Is(err, transform.ErrAuthFailed) {
			return 0, 0, 0, ErrAuth
		}
		return 0, 0, 0, err
	}
	return hl + al, len(pkt) - hl - al, a[0], nil
}

// maxICV is the longest ICV of the integrity algorithms AH negotiates
// (HMAC-SHA2-512-256).
const maxICV = 32

// OpenTunnel is Open for tunnel mode: the payload must be an IPv4 or IPv6
// packet that agrees with Next Header (4 or 41); the inner packet is
// pkt[off:off+n].
func OpenTunnel(p *transform.Protector, seq uint64, esn bool, pkt []byte) (off, n int, err error) {
	off, n, next, err := Open(p, seq, esn, pkt)
	if err != nil {
		return 0, 0, err
	}
	inner := pkt[off : off+n]
	switch {
	case next == header.ProtoIPv4 && header.IPVersion(inner) == 4,
		next == header.ProtoIPv6 && header.IPVersion(inner) == 6:
		return off, n, nil
	}
	return 0, 0, ErrNextHeader
}

// RemoveTransport turns a verified transport-mode AH packet (Open returned
// off, n, next) back into the plain IP packet in place: the IP header moves
// back over the AH header and gets next as its protocol and its length
// fixed. It returns where the plain packet starts in pkt.
func RemoveTransport(pkt []byte, off, n int, next byte) int {
	v6 := header.IPVersion(pkt) == 6
	var hl, nextAt int
	if v6 {
		// Open has walked this chain already: it cannot fail here.
		hl, nextAt, _, _ = v6Chain(pkt[:off])
	} else {
		hl = header.IPv4(pkt).HeaderLength()
	}
	al := off - hl
	copy(pkt[al:off], pkt[:hl])
	out := pkt[al : off+n]
	if v6 {
		header.IPv6(out).SetPayloadLength(uint16(len(out) - header.IPv6Len))
		out[nextAt] = next
	} else {
		ip := header.IPv4(out)
		ip.SetTotalLength(uint16(len(out)))
		out[9] = next
		ip.UpdateChecksum()
	}
	return al
}

// BuildIPv6 writes the fixed IPv6 header that carried an AH packet of n
// bytes (AH header first) from src to dst into buf[at-40:at] and returns
// at-40: an IPv6 raw socket delivers the packet without its header, and
// the ICV covers the header's immutable fields (payload length, next
// header, addresses), which are known. The mutable ones are not: traffic
// class and flow label are written as 0 and the hop limit as TTL, which is
// what a transport-mode packet is delivered with.
func BuildIPv6(buf []byte, at, n int, src, dst netip.Addr) (int, error) {
	s := at - header.IPv6Len
	if s < 0 || n > header.IPv6MaxPayloadLen || !src.Is6() || !dst.Is6() {
		return 0, ErrHeader
	}
	header.IPv6(buf[s:at]).Encode(&header.IPv6Fields{PayloadLength: uint16(n), NextHeader: Protocol,
		HopLimit: TTL, Src: src.As16(), Dst: dst.As16()})
	return s, nil
}
