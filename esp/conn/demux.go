// Package conn is the outer edge of the ESP dataplane: the UDP sockets on
// the IKE port (500) and the NAT-T port (4500), and a raw IP protocol 50
// socket for plain ESP. Port 4500 carries both IKE and ESP-in-UDP; they are
// told apart by the non-ESP marker (RFC 3948). IKE goes to a bounded queue
// that drops when full, so a flood of IKE can never stall ESP; ESP goes in
// batches to a caller-supplied handler, from pooled fixed-size buffers,
// without allocating per packet.
//
// Privileges: binding ports below 1024 (500) needs CAP_NET_BIND_SERVICE
// (or a lowered net.ipv4.ip_unprivileged_port_start), the raw ESP socket
// needs CAP_NET_RAW, and socket buffers beyond net.core.rmem_max/wmem_max
// need CAP_NET_ADMIN (SO_RCVBUFFORCE); without it the buffers are silently
// capped at those limits. Tests bind port 0 on loopback and need none of
// these except the raw socket test.
package conn

import (
	"encoding/binary"

	"github.com/ipsecgw/ipsecgw/header"
)

// Kind is what a received datagram turned out to be.
type Kind uint8

const (
	// KindDrop: malformed; the DropReason says why.
	KindDrop Kind = iota
	// KindIKE: an IKE message (the non-ESP marker, if any, removed).
	KindIKE
	// KindESP: an ESP packet starting with its SPI.
	KindESP
	// KindKeepalive: a NAT-keepalive (RFC 3948 section 2.3), dropped.
	KindKeepalive
)

// DropReason says why a datagram was dropped; each has its own counter.
type DropReason uint8

const (
	DropNone DropReason = iota
	// DropEmpty: a zero-length datagram.
	DropEmpty
	// DropShortMarker: 1 to 3 bytes on port 4500 that are not a
	// keepalive: too short for either the marker or an SPI.
	DropShortMarker
	// DropShortIKE: shorter than the 28-byte IKE header.
	DropShortIKE
	// DropShortESP: shorter than SPI and sequence number (8 bytes).
	DropShortESP
	// DropBadIPHeader: the IPv4 header in front of a raw ESP packet is
	// not one we can parse.
	DropBadIPHeader
	// DropTruncated: the datagram was larger than the receive buffer.
	DropTruncated
	numDropReasons
)

var dropNames = [numDropReasons]string{
	DropNone:        "none",
	DropEmpty:       "empty datagram",
	DropShortMarker: "short non-ESP marker",
	DropShortIKE:    "IKE message shorter than its header",
	DropShortESP:    "ESP packet shorter than SPI and sequence number",
	DropBadIPHeader: "malformed IPv4 header on raw ESP",
	DropTruncated:   "datagram larger than the receive buffer",
}

func (r DropReason) String() string {
	if int(r) < len(dropNames) {
		return dropNames[r]
	}
	return "unknown"
}

const (
	ikeHeaderLen = 28 // RFC 7296 section 3.1
	markerLen    = 4  // non-ESP marker, RFC 3948 section 2.2
	espMinLen    = 8  // SPI + sequence number, RFC 4303 section 2
)

// ClassifyNATT sorts a datagram received on the NAT-T port (4500):
// a single 0xFF byte is a keepalive; four zero bytes are the non-ESP
// marker in front of an IKE message; anything else is ESP, whose first
// four bytes are a non-zero SPI. off is where the IKE message or ESP
// packet starts in b.
func ClassifyNATT(b []byte) (k Kind, off int, why DropReason) {
	switch {
	case len(b) == 0:
		return KindDrop, 0, DropEmpty
	case len(b) == 1 && b[0] == 0xFF:
		return KindKeepalive, 0, DropNone
	case len(b) < markerLen:
		return KindDrop, 0, DropShortMarker
	case binary.BigEndian.Uint32(b) == 0:
		if len(b)-markerLen < ikeHeaderLen {
			return KindDrop, 0, DropShortIKE
		}
		return KindIKE, markerLen, DropNone
	case len(b) < espMinLen:
		return KindDrop, 0, DropShortESP
	}
	return KindESP, 0, DropNone
}

// ClassifyIKE checks a datagram received on the IKE port (500), which
// carries IKE only and without a marker.
func ClassifyIKE(b []byte) (k Kind, off int, why DropReason) {
	if len(b) == 0 {
		return KindDrop, 0, DropEmpty
	}
	if len(b) < ikeHeaderLen {
		return KindDrop, 0, DropShortIKE
	}
	return KindIKE, 0, DropNone
}

// ClassifyRawESP4 handles what an IPv4 raw socket for protocol 50
// delivers: the IP header (with options) followed by the ESP packet.
// The ESP packet is b[off:off+n].
func ClassifyRawESP4(b []byte) (k Kind, off, n int, why DropReason) {
	ip := header.IPv4(b)
	if !ip.Valid() {
		return KindDrop, 0, 0, DropBadIPHeader
	}
	hl, total := ip.HeaderLength(), ip.TotalLength()
	if total-hl < espMinLen {
		return KindDrop, 0, 0, DropShortESP
	}
	return KindESP, hl, total - hl, DropNone
}

// ClassifyRawAH4 handles what an IPv4 raw socket for protocol 51
// delivers: a whole IP packet, kept whole (the AH ICV covers the header).
// n is the packet's length by its header.
func ClassifyRawAH4(b []byte) (k Kind, n int, why DropReason) {
	ip := header.IPv4(b)
	if !ip.Valid() {
		return KindDrop, 0, DropBadIPHeader
	}
	if ip.TotalLength()-ip.HeaderLength() < espMinLen {
		return KindDrop, 0, DropShortESP
	}
	return KindESP, ip.TotalLength(), DropNone
}

// ClassifyRawESP6 handles an IPv6 raw socket, which delivers the ESP
// packet without the IPv6 header.
func ClassifyRawESP6(b []byte) (k Kind, off int, why DropReason) {
	if len(b) == 0 {
		return KindDrop, 0, DropEmpty
	}
	if len(b) < espMinLen {
		return KindDrop, 0, DropShortESP
	}
	return KindESP, 0, DropNone
}
