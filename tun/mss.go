package tun

import (
	"encoding/binary"
	"math/bits"

	"github.com/ipsecgw/ipsecgw/header"
)

// TCP MSS clamping. A TCP end system derives its MSS from its own
// interface MTU, not from the tunnel's, and path MTU discovery across a
// tunnel often fails (ICMP filtered on the way back), so a connection
// through a 1419-byte tunnel stalls on its first full-sized segment. A
// gateway therefore lowers the MSS option of the SYNs that cross it, as
// iptables' TCPMSS target does (--clamp-mss-to-pmtu, --set-mss): both ends
// announce it in their SYN and SYN-ACK, and each sends segments no larger
// than what the other announced, so clamping both directions makes every
// segment fit the tunnel.

// MSS header overheads: the smallest IP header plus the TCP header without
// options (RFC 9293 §3.7.1 counts the MSS from there; RFC 8200 §8.3).
const (
	MSSOverheadIPv4 = header.IPv4MinLen + header.TCPMinLen // 40
	MSSOverheadIPv6 = header.IPv6Len + header.TCPMinLen    // 60
)

// MSSFromMTU given to SetClampMSS clamps to the device's MTU minus
// MSSOverheadIPv4 or MSSOverheadIPv6; the MTU is read when the packet
// passes, so a changed MTU applies at once.
const MSSFromMTU = -1

// TCP option kinds (RFC 9293 §3.2).
const (
	tcpOptEnd    = 0
	tcpOptNOP    = 1
	tcpOptMSS    = 2
	tcpOptMSSLen = 4
)

// ClampMSS lowers the MSS option of a TCP segment with SYN set (a SYN or a
// SYN-ACK) in the IP packet pkt to max4 for IPv4 or max6 for IPv6, and
// updates the TCP checksum incrementally (RFC 1624). Options at or below
// the limit, segments without SYN or without an MSS option, non-first
// fragments and anything malformed are left as they are. It returns the
// MSS the packet carried and whether it lowered it. It does not allocate.
func ClampMSS(pkt []byte, max4, max6 uint16) (old uint16, clamped bool) {
	var (
		seg   []byte
		limit uint16
	)
	switch header.IPVersion(pkt) {
	case 4:
		ip := header.IPv4(pkt)
		if !ip.Valid() || ip.Protocol() != header.ProtoTCP || ip.FragmentOffset() != 0 {
			return 0, false
		}
		seg, limit = ip.Payload(), max4
	case 6:
		ip := header.IPv6(pkt)
		if !ip.Valid() {
			return 0, false
		}
		next, rest := ip.NextHeader(), ip.Payload()
		for n := 0; header.IsIPv6Extension(next); n++ {
			var first, ok bool
			if n == header.MaxIPv6Extensions {
				return 0, false
			}
			if next, rest, first, ok = header.IPv6Extension(rest).Next(next); !ok || !first {
				return 0, false
			}
		}
		if next != header.ProtoTCP {
			return 0, false
		}
		seg, limit = rest, max6
	default:
		return 0, false
	}
	tcp := header.TCP(seg)
	if !tcp.Valid() || tcp.Flags()&header.TCPFlagSYN == 0 {
		return 0, false
	}
	opts := tcp.Options()
	for i := 0; i < len(opts); {
		switch opts[i] {
		case tcpOptEnd:
			return 0, false
		case tcpOptNOP:
			i++
			continue
		}
		if i+1 >= len(opts) {
			return 0, false
		}
		n := int(opts[i+1])
		if n < 2 || i+n > len(opts) {
			return 0, false
		}
		if opts[i] != tcpOptMSS || n != tcpOptMSSLen {
			i += n
			continue
		}
		old = binary.BigEndian.Uint16(opts[i+2:])
		if old <= limit {
			return old, false
		}
		binary.BigEndian.PutUint16(opts[i+2:], limit)
		// The checksum sums 16-bit words from the segment's start
		// (header.TCPMinLen is even); a value at an odd offset lies
		// across two words, which is the same as summing it with its
		// bytes swapped (RFC 1071 §2(B)).
		o, m := old, limit
		if i&1 == 1 {
			o, m = bits.ReverseBytes16(o), bits.ReverseBytes16(m)
		}
		tcp.SetChecksum(checksumReplace(tcp.Checksum(), o, m))
		return old, true
	}
	return 0, false
}

// checksumReplace is the Internet checksum sum after one 16-bit word of
// the data changed from old to new: HC' = ~(~HC + ~m + m'), RFC 1624
// eqn. 3, which unlike eqn. 2 never yields 0xffff for a non-zero sum.
func checksumReplace(sum, old, new uint16) uint16 {
	s := uint32(^sum) + uint32(^old) + uint32(new)
	s = s&0xffff + s>>16
	s = s&0xffff + s>>16
	return ^uint16(s)
}

// mssLimits are the clamps for a device of MTU mtu under setting c (0 off,
// MSSFromMTU, or a fixed MSS).
func mssLimits(c, mtu int) (max4, max6 uint16) {
	if c > 0 {
		return uint16(c), uint16(c)
	}
	return uint16(max(mtu-MSSOverheadIPv4, 0)), uint16(max(mtu-MSSOverheadIPv6, 0))
}
