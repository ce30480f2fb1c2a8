// Package tun is the inner edge of the ESP dataplane: a Linux TUN device
// (created through golang.zx2c4.com/wireguard/tun) behind a small batched
// interface, our own handling of its virtio-net offloads (offload.go:
// cutting TSO/USO super-packets on read, GRO-style merging into gather
// writes), plus the netlink plumbing that puts addresses and routes for
// remote subnets on it.
//
// # Buffer layout
//
// ESP is applied in place, so every packet buffer handed to Device.Read has
// room in front of the inner packet for the outer headers and room behind
// it for the ESP trailer:
//
//	0          Headroom                 Headroom+len            cap
//	| headroom | inner IP packet (≤ MTU) | tailroom (pad, ICV)...  |
//
// Headroom covers the largest outer framing we build (IPv6 40 + UDP 8 +
// ESP header 8 + IV 16 = 72 bytes) with spare, and it also satisfies
// Write's need for VirtioNetHdrLen bytes in front of each packet. Tailroom
// covers padding to a 16-byte block boundary, the pad-length and
// next-header bytes and an ICV of up to 32 bytes.
//
// Reading at offset Headroom lets the encrypting side write the ESP header
// and IV at buf[Headroom-espHdr-ivLen:Headroom], the outer UDP/IP headers
// before that, and the trailer after the packet, without copying the
// payload. On the receive side the decrypted inner packet lies somewhere
// after the outer headers; Device.Write takes a single offset for the whole
// batch, so the caller re-slices each buffer from the front
// (bufs[i] = buf[start-off:]) so that every inner packet starts at the same
// offset off ≥ VirtioNetHdrLen. Write merges consecutive packets of a flow
// without copying them (the kernel gathers the head and the payloads behind
// it from their own buffers), so buffers need no spare capacity.
package tun

import (
	"errors"
	"fmt"

	"github.com/ipsecgw/ipsecgw/header"
)

const (
	// VirtioNetHdrLen is the length of the virtio-net header the
	// wireguard TUN writes in front of every packet when offloads are on;
	// Write needs at least this many bytes of headroom.
	VirtioNetHdrLen = 10

	// Headroom is the recommended read offset: room for outer IPv6 (40),
	// UDP (8), ESP header (8) and a 16-byte IV, rounded up to 128 so that
	// the inner packet starts on a cache line when the buffer does.
	Headroom = 128

	// Tailroom is room kept behind the largest packet for the ESP
	// trailer: up to 15 bytes of padding, pad length, next header and an
	// ICV of up to 32 bytes (HMAC-SHA2-512/256), rounded up.
	Tailroom = 64

	// MaxPacketSize is the largest IP packet the TUN can hand over in one
	// piece (an offloaded super-packet before splitting, or a coalesced
	// one after GRO).
	MaxPacketSize = 65535

	// DefaultPathMTU is the path MTU assumed when none is configured.
	DefaultPathMTU = 1500
)

// ESP sizes used by the overhead computation (the outer IP and UDP
// headers' come from package header).
const (
	espHeaderLen  = 8 // SPI + sequence number
	espTrailerMin = 2 // pad length + next header
)

// ESPFraming describes how inner packets are wrapped, which is all the MTU
// computation needs to know about an SA.
type ESPFraming struct {
	// OuterIPv6 is true when the outer (tunnel) header is IPv6.
	OuterIPv6 bool
	// UDPEncap is true for ESP-in-UDP (RFC 3948, NAT traversal).
	UDPEncap bool
	// IVLen is the length of the explicit IV carried in each packet
	// (8 for AES-GCM and ChaCha20-Poly1305, 16 for AES-CBC).
	IVLen int
	// BlockSize is the cipher block size the padded payload must be a
	// multiple of (16 for AES-CBC, 1 for AEADs in counter mode). ESP
	// always aligns to 4 bytes regardless.
	BlockSize int
	// ICVLen is the integrity check value length (16 for AES-GCM-16,
	// 12 for HMAC-SHA1-96, 16 for HMAC-SHA2-256-128, ...).
	ICVLen int
}

// DefaultFraming is AES-GCM-16 in ESP-in-UDP over IPv4: the common case,
// and the one that costs an extra 8 bytes of UDP.
var DefaultFraming = ESPFraming{UDPEncap: true, IVLen: 8, BlockSize: 1, ICVLen: 16}

func (f ESPFraming) validate() error {
	if f.IVLen < 0 || f.IVLen > 16 {
		return fmt.Errorf("tun: IV length %d out of range 0..16", f.IVLen)
	}
	if f.BlockSize < 1 || f.BlockSize > 16 || f.BlockSize&(f.BlockSize-1) != 0 {
		return fmt.Errorf("tun: cipher block size %d must be a power of two in 1..16", f.BlockSize)
	}
	if f.ICVLen < 0 || f.ICVLen > 32 {
		return fmt.Errorf("tun: ICV length %d out of range 0..32", f.ICVLen)
	}
	return nil
}

// align is the boundary the ESP payload+trailer must end on.
func (f ESPFraming) align() int {
	return max(f.BlockSize, 4)
}

// fixed is the per-packet overhead that does not depend on the inner length.
func (f ESPFraming) fixed() int {
	n := header.IPv4MinLen
	if f.OuterIPv6 {
		n = header.IPv6Len
	}
	if f.UDPEncap {
		n += header.UDPLen
	}
	return n + espHeaderLen + f.IVLen + f.ICVLen
}

// Overhead returns how many bytes ESP framing adds to an inner packet of
// innerLen bytes: outer IP, optional UDP, ESP header, IV, padding, the two
// trailer bytes and the ICV.
func (f ESPFraming) Overhead(innerLen int) (int, error) {
	if err := f.validate(); err != nil {
		return 0, err
	}
	if innerLen < 0 {
		return 0, errors.New("tun: negative packet length")
	}
	a := f.align()
	padded := (innerLen + espTrailerMin + a - 1) / a * a
	return f.fixed() + padded - innerLen, nil
}

// InnerMTU returns the largest inner packet that fits in pathMTU once
// framed as f: the MTU to give the TUN device so the kernel fragments or
// sends ICMP "packet too big" before we would have to fragment the outer
// packet.
func InnerMTU(pathMTU int, f ESPFraming) (int, error) {
	if err := f.validate(); err != nil {
		return 0, err
	}
	a := f.align()
	avail := pathMTU - f.fixed()
	mtu := avail/a*a - espTrailerMin
	// 68 is the smallest MTU an IPv4 link may have (RFC 791).
	if mtu < 68 {
		return 0, fmt.Errorf("tun: path MTU %d leaves only %d bytes for inner packets", pathMTU, mtu)
	}
	return mtu, nil
}
