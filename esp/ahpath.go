package esp

import (
	"encoding/binary"
	"errors"
	"net/netip"

	"github.com/ipsecgw/ipsecgw/esp/ah"
	"github.com/ipsecgw/ipsecgw/header"
	"github.com/ipsecgw/ipsecgw/sad"
	"github.com/ipsecgw/ipsecgw/transform"
)

// The dataplane's AH path (RFC 4302, framing in package ah): SAs with
// sad.AH share the SAD, the SPI space, the replay windows, the lifetimes
// and the pipeline with ESP; only the framing differs. Outbound, an AH
// packet is a whole IP packet (the ICV covers the outer header), sent on
// the raw AH socket as it is (conn.OutPacket.AH). Inbound, the raw AH
// socket delivers whole IPv4 packets, and IPv6 packets without their fixed
// header, which is rebuilt from the source and the SA's local address
// before the ICV is checked.

// ahHeadLen is the room an AH SA needs in front of an inner packet.
func ahHeadLen(sa *sad.SA) int {
	return ah.TunnelHeadLen(sa.Cipher(), !sa.Local().Addr().Is4())
}

// headLen is the room SA sa needs in front of an inner packet, tailLen
// behind an inner packet of n bytes (Spare not included).
func headLen(sa *sad.SA) int {
	if sa.Proto() == sad.AH {
		return ahHeadLen(sa)
	}
	return HeadLen(sa.Cipher())
}

func tailLen(sa *sad.SA, n int) int {
	if sa.Proto() == sad.AH {
		return 0
	}
	return TailLen(sa.Cipher(), n)
}

// sealAny frames the inner packet buf[off:off+n] with SA sa and sequence
// number seq: as ESP (the ESP packet, SPI first) or as tunnel- or
// transport-mode AH (the whole IP packet).
func sealAny(sa *sad.SA, seq uint64, buf []byte, off, n int) (start int, pkt []byte, err error) {
	if sa.Proto() == sad.AH && sa.Transport() {
		// The outbound policy matched the packet to the SA's host-to-host
		// selectors; the packet's own header becomes the AH packet's.
		return ah.SealTransport(sa.Cipher(), sa.SPI(), seq, sa.ESN(), buf, off, n)
	}
	if sa.Proto() == sad.AH {
		return ah.SealTunnel(sa.Cipher(), sa.SPI(), seq, sa.ESN(), sa.Local().Addr(), sa.Remote().Addr(), buf, off, n)
	}
	return SealPacket(sa.Cipher(), sa.SPI(), seq, sa.ESN(), buf, off, n)
}

// sealAnyBatch is sealAny with ESP's encryption left to b (sealed once
// b.Flush returns); AH is sealed at once.
func sealAnyBatch(b *transform.SealBatch, sa *sad.SA, seq uint64, buf []byte, off, n int) (start int, pkt []byte, err error) {
	if sa.Proto() == sad.AH {
		return sealAny(sa, seq, buf, off, n)
	}
	return sealPacketBatch(b, sa.Cipher(), sa.SPI(), seq, sa.ESN(), buf, off, n)
}

// OpenAH is Open for AH: pkt is a whole IP packet carrying tunnel-mode AH
// (as the IPv4 raw socket delivers it). It authenticates it with the SA of
// its SPI, checks the replay window before and records the number after,
// and checks the inner packet against the SA's selectors. The inner packet
// is pkt[off:off+n].
func OpenAH(t *sad.Table, pkt []byte) (sa *sad.SA, off, n int, r sad.DropReason) {
	sa, seq, off, n, r := openAHPending(t, pkt)
	if sa == nil || r == sad.DropAuthFailed || r == sad.DropReplay || r == sad.DropNoSA {
		return sa, 0, 0, r
	}
	if r = accept(sa, seq, n, r); r != sad.NotDropped {
		return sa, 0, 0, r
	}
	return sa, off, n, r
}

// ahSPI returns the SPI of an AH packet: in a whole IP packet, or at the
// start of pkt when the IPv6 header was stripped (headerless).
func ahSPI(pkt []byte, headerless bool) (uint32, bool) {
	if headerless {
		if len(pkt) < ah.HeaderLen {
			return 0, false
		}
		return binary.BigEndian.Uint32(pkt[4:]), true
	}
	_, spi, _, err := ah.Parse(pkt)
	return spi, err == nil
}

// openAHPending is openPending for a whole IP packet carrying AH.
func openAHPending(t *sad.Table, pkt []byte) (sa *sad.SA, seq uint64, off, n int, r sad.DropReason) {
	spi, ok := ahSPI(pkt, false)
	if !ok {
		return nil, 0, 0, 0, sad.DropMalformed
	}
	sa = t.Inbound(spi)
	if sa == nil || !sa.Acquire() {
		return nil, 0, 0, 0, sad.DropNoSA
	}
	seq, off, n, r = openAHSA(sa, pkt)
	sa.Release()
	switch r {
	case sad.DropNoSA, sad.DropReplay, sad.DropAuthFailed:
		sa.Drop(r)
	}
	return sa, seq, off, n, r
}

// openAH6 opens an AH packet that an IPv6 raw socket delivered without
// its fixed header: the packet is buf[at:at+n] (AH header first), and
// there are at least 40 bytes in front of it, where the header is rebuilt
// from the source src and the local address of the SA the SPI names.
// start is where the rebuilt IP packet begins; off is relative to it.
func openAH6(t *sad.Table, buf []byte, at, n int, src netip.Addr) (sa *sad.SA, seq uint64, start, off, inner int, r sad.DropReason) {
	spi, ok := ahSPI(buf[at:at+n], true)
	if !ok {
		return nil, 0, at, 0, 0, sad.DropMalformed
	}
	sa = t.Inbound(spi)
	if sa == nil || !sa.Acquire() {
		return nil, 0, at, 0, 0, sad.DropNoSA
	}
	start, err := ah.BuildIPv6(buf, at, n, src.Unmap(), sa.Local().Addr())
	if err != nil {
		sa.Release()
		sa.Drop(sad.DropMalformed)
		return sa, 0, at, 0, 0, sad.DropAuthFailed
	}
	seq, off, inner, r = openAHSA(sa, buf[start:at+n])
	sa.Release()
	switch r {
	case sad.DropNoSA, sad.DropReplay, sad.DropAuthFailed:
		sa.Drop(r)
	}
	return sa, seq, start, off, inner, r
}

// openAHSA is openSA for AH: replay pre-check, ICV, Next Header and the
// traffic selectors. The packet to deliver is pkt[off:off+n]: the inner
// packet in tunnel mode, the packet with its AH header taken out in
// transport mode.
func openAHSA(sa *sad.SA, pkt []byte) (seq uint64, off, n int, r sad.DropReason) {
	if sa.Proto() != sad.AH {
		// An AH packet naming an ESP SA's SPI cannot be authentic.
		return 0, 0, 0, sad.DropAuthFailed
	}
	_, _, lo, err := ah.Parse(pkt)
	if err != nil {
		return 0, 0, 0, sad.DropAuthFailed
	}
	seq, r = sa.Check(lo)
	if r != sad.NotDropped {
		return 0, 0, 0, r
	}
	if sa.Transport() {
		off, n, err = openAHTransport(sa, seq, pkt)
	} else {
		off, n, err = ah.OpenTunnel(sa.Cipher(), seq, sa.ESN(), pkt)
	}
	switch {
	case err == nil:
	case errors.Is(err, transform.ErrClosed):
		return 0, 0, 0, sad.DropNoSA
	case errors.Is(err, ah.ErrNextHeader):
		// Authentic but not deliverable: record the number (as ESP does
		// for bad padding), so a replay of it is not processed twice.
		return seq, 0, 0, sad.DropMalformed
	default:
		// ErrAuth, and what makes the ICV impossible to check (a Payload
		// Len for another ICV size, a source-route option).
		return 0, 0, 0, sad.DropAuthFailed
	}
	if r := sa.CheckInner(pkt[off : off+n]); r != sad.NotDropped {
		return seq, 0, 0, r
	}
	return seq, off, n, sad.NotDropped
}

// openAHTransport verifies the transport-mode AH packet pkt and removes
// its AH header in place; the plain packet is pkt[off:off+n]. A Next
// Header of 4 or 41 (a whole IP packet) belongs to tunnel mode, and is
// refused as ErrNextHeader: the SA was negotiated for transport mode.
func openAHTransport(sa *sad.SA, seq uint64, pkt []byte) (off, n int, err error) {
	pOff, pN, next, err := ah.Open(sa.Cipher(), seq, sa.ESN(), pkt)
	if err != nil {
		return 0, 0, err
	}
	if next == header.ProtoIPv4 || next == header.ProtoIPv6 {
		return 0, 0, ah.ErrNextHeader
	}
	start := ah.RemoveTransport(pkt, pOff, pN, next)
	return start, pOff + pN - start, nil
}
