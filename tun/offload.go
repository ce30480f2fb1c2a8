package tun

// Our side of the TUN device's virtio-net offloads. With IFF_VNET_HDR every
// packet crossing the device carries a virtio_net_hdr
// (include/uapi/linux/virtio_net.h) in front:
//
//   - reading, the kernel hands over TCP (and, since Linux 6.2, UDP)
//     super-packets of up to 64 KiB with a partial checksum, which the
//     segmenter cuts into MTU-sized packets with full checksums;
//   - writing, the coalescer merges consecutive packets of one TCP or UDP
//     flow into one super-packet that the kernel takes in a single writev
//     and forwards (or segments again) as one, which is what makes TCP
//     through the tunnel cheap for the kernel on the receiving side.
//
// We do this ourselves rather than through golang.zx2c4.com/wireguard/tun's
// Read and Write because profiles of a tunnel at full speed showed those two
// spending about 13 % of the machine's CPU, mostly in a scalar checksum
// loop and in copying payloads together: here checksums use
// internal/checksum's vector code, and coalesced payloads are never copied,
// the kernel gathers them from our buffers (writev).

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ipsecgw/ipsecgw/header"
	"github.com/ipsecgw/ipsecgw/internal/checksum"
)

// virtio_net_hdr flags and GSO types.
const (
	vnetFlagNeedsCsum = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM: csum_start/offset describe a partial checksum

	gsoNone  = 0 // VIRTIO_NET_HDR_GSO_NONE
	gsoTCPv4 = 1 // VIRTIO_NET_HDR_GSO_TCPV4
	gsoUDPL4 = 5 // VIRTIO_NET_HDR_GSO_UDP_L4
	gsoTCPv6 = 4 // VIRTIO_NET_HDR_GSO_TCPV6
)

const (
	// maxIPLen bounds a coalesced packet: the IPv4 total length field (and
	// IPv6's payload length, less its header) is 16 bits.
	maxIPLen = header.IPv4MaxTotalLen
	// maxSegments bounds the packets merged into one: the kernel refuses
	// UDP GSO packets of more than UDP_MAX_SEGMENTS (64 in older kernels).
	maxSegments = 64
)

// virtioHdr is struct virtio_net_hdr. The TUN device uses the host's byte
// order for it (legacy virtio on a little-endian host, and we never ask
// for TUNSETVNETBE).
type virtioHdr struct {
	flags      uint8
	gsoType    uint8
	hdrLen     uint16
	gsoSize    uint16
	csumStart  uint16
	csumOffset uint16
}

func (h *virtioHdr) decode(b []byte) {
	h.flags = b[0]
	h.gsoType = b[1]
	h.hdrLen = binary.NativeEndian.Uint16(b[2:])
	h.gsoSize = binary.NativeEndian.Uint16(b[4:])
	h.csumStart = binary.NativeEndian.Uint16(b[6:])
	h.csumOffset = binary.NativeEndian.Uint16(b[8:])
}

func (h *virtioHdr) encode(b []byte) {
	b[0] = h.flags
	b[1] = h.gsoType
	binary.NativeEndian.PutUint16(b[2:], h.hdrLen)
	binary.NativeEndian.PutUint16(b[4:], h.gsoSize)
	binary.NativeEndian.PutUint16(b[6:], h.csumStart)
	binary.NativeEndian.PutUint16(b[8:], h.csumOffset)
}

// errMalformedOffload is wrapped by every segmenter error: the kernel
// handed over something we cannot cut up, and the packet is dropped.
var errMalformedOffload = errors.New("tun: malformed offloaded packet")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errMalformedOffload}, args...)...)
}

// --- reading: segmentation --------------------------------------------------

// segmenter cuts what one read from the TUN returned into packets. A
// super-packet with more segments than the caller has buffers for stays
// pending, and the next Read continues it, so nothing is lost to a small
// batch.
type segmenter struct {
	pkt     []byte // the packet or super-packet, from its IP header on; nil when done
	gso     bool   // pkt is a super-packet to cut into gsoSize pieces
	isV6    bool
	proto   uint8
	iphLen  int    // IP header (with IPv6 extension headers), = csum_start
	hdrLen  int    // IP + TCP/UDP header
	gsoSize int    // payload bytes per segment
	next    int    // offset in pkt of the next segment's payload
	seq     uint32 // TCP sequence number of the first segment
	id      uint16 // IPv4 ID of the first segment
	ipSum   uint64 // IPv4 header sum without length, ID and checksum
	pseudo  uint64 // pseudo-header sum without the length
	csumOff int    // offset of the checksum field from iphLen
}

func (s *segmenter) pending() bool { return s.pkt != nil }

// load parses one read: a virtio header and the packet behind it. A
// packet that needs its checksum completed (CHECKSUM_PARTIAL, not
// segmented) gets it here.
func (s *segmenter) load(in []byte) error {
	s.pkt = nil
	if len(in) < VirtioNetHdrLen {
		return malformed("%d bytes, shorter than the virtio header", len(in))
	}
	var h virtioHdr
	h.decode(in)
	pkt := in[VirtioNetHdrLen:]
	if len(pkt) == 0 {
		return malformed("empty packet")
	}
	if h.gsoType == gsoNone {
		if h.flags&vnetFlagNeedsCsum != 0 {
			at := int(h.csumStart) + int(h.csumOffset)
			if at+2 > len(pkt) {
				return malformed("checksum at %d+%d outside a %d-byte packet", h.csumStart, h.csumOffset, len(pkt))
			}
			// The field holds the pseudo-header sum; the checksum
			// covers it and everything from csum_start on.
			binary.BigEndian.PutUint16(pkt[at:], checksum.Checksum(pkt[h.csumStart:], 0))
		}
		s.pkt, s.gso = pkt, false
		return nil
	}
	return s.loadGSO(h, pkt)
}

func (s *segmenter) loadGSO(h virtioHdr, pkt []byte) error {
	version := header.IPVersion(pkt)
	s.isV6 = version == 6
	switch {
	case h.gsoType == gsoTCPv4 && version == 4, h.gsoType == gsoTCPv6 && s.isV6:
		s.proto, s.csumOff = header.ProtoTCP, header.TCPChecksumOffset
	case h.gsoType == gsoUDPL4 && (version == 4 || s.isV6):
		s.proto, s.csumOff = header.ProtoUDP, header.UDPChecksumOffset
	default:
		return malformed("GSO type %d with IP version %d", h.gsoType, version)
	}
	// csum_start is where the transport header begins; the header length
	// the kernel reports is not trusted (on the forwarding path it can be
	// the whole first segment), the transport header says it instead. The
	// kernel built the IP header, so its lengths are not checked further.
	s.iphLen = int(h.csumStart)
	minIP := header.IPv4MinLen
	if s.isV6 {
		minIP = header.IPv6Len
	} else if hl := header.IPv4(pkt).HeaderLength(); s.iphLen != hl {
		return malformed("csum_start %d is not the IPv4 header length %d", s.iphLen, hl)
	}
	// TCPMinLen bytes hold the fixed part of either transport header.
	if s.iphLen < minIP || int(h.csumOffset) != s.csumOff || len(pkt) < s.iphLen+header.TCPMinLen {
		return malformed("csum_start %d, csum_offset %d in a %d-byte packet", h.csumStart, h.csumOffset, len(pkt))
	}
	if s.proto == header.ProtoTCP {
		tcp := header.TCP(pkt[s.iphLen:])
		thLen := tcp.DataOffset()
		if thLen < header.TCPMinLen {
			return malformed("TCP header length %d", thLen)
		}
		s.hdrLen = s.iphLen + thLen
		s.seq = tcp.SeqNumber()
	} else {
		s.hdrLen = s.iphLen + header.UDPLen
	}
	if h.gsoSize == 0 || len(pkt) <= s.hdrLen {
		return malformed("GSO size %d, headers %d bytes of %d", h.gsoSize, s.hdrLen, len(pkt))
	}
	if !s.isV6 {
		// Segments differ from the super-packet's IPv4 header only in
		// length, ID and checksum: sum the rest once.
		ip := header.IPv4(pkt)
		s.id = ip.ID()
		ip.SetTotalLength(0)
		ip.SetID(0)
		ip.SetChecksum(0)
		s.ipSum = checksum.Sum(pkt[:s.iphLen], 0)
	}
	src, dst := header.Addrs(pkt, s.isV6)
	s.pseudo = checksum.PseudoHeaderSum(s.proto, src, dst, 0)
	s.pkt, s.gso, s.gsoSize, s.next = pkt, true, int(h.gsoSize), s.hdrLen
	return nil
}

// fill puts the next packets into bufs[i][offset:], their lengths into
// sizes, and returns how many. If a super-packet has more segments than
// bufs, the rest stays pending.
func (s *segmenter) fill(bufs [][]byte, sizes []int, offset int) (int, error) {
	if !s.gso {
		pkt := s.pkt
		s.pkt = nil
		if len(pkt) > len(bufs[0])-offset {
			return 0, fmt.Errorf("tun: %d-byte packet does not fit a %d-byte buffer", len(pkt), len(bufs[0])-offset)
		}
		sizes[0] = copy(bufs[0][offset:], pkt)
		return 1, nil
	}
	in := s.pkt
	n := 0
	for ; n < len(bufs) && s.next < len(in); n++ {
		index := (s.next - s.hdrLen) / s.gsoSize
		end := min(s.next+s.gsoSize, len(in))
		total := s.hdrLen + end - s.next
		if total > len(bufs[n])-offset {
			s.pkt = nil
			return n, fmt.Errorf("tun: %d-byte segment does not fit a %d-byte buffer", total, len(bufs[n])-offset)
		}
		out := bufs[n][offset : offset+total]
		copy(out, in[:s.hdrLen])
		copy(out[s.hdrLen:], in[s.next:end])
		if s.isV6 {
			header.IPv6(out).SetPayloadLength(uint16(total - header.IPv6Len))
		} else {
			ip := header.IPv4(out)
			id := s.id + uint16(index)
			ip.SetTotalLength(uint16(total))
			ip.SetID(id)
			ip.SetChecksum(^checksum.Fold(s.ipSum + uint64(total) + uint64(id)))
		}
		l4 := out[s.iphLen:]
		pseudo := s.pseudo + uint64(len(l4))
		if s.proto == header.ProtoTCP {
			tcp := header.TCP(l4)
			tcp.SetSeqNumber(s.seq + uint32(s.next-s.hdrLen))
			flags := tcp.Flags()
			if index > 0 {
				flags &^= header.TCPFlagCWR // congestion window reduced: said once, in the first
			}
			if end < len(in) {
				flags &^= header.TCPFlagFIN | header.TCPFlagPSH // these belong to the last segment
			}
			tcp.SetFlags(flags)
			tcp.UpdateChecksum(pseudo)
		} else {
			udp := header.UDP(l4)
			udp.SetLength(uint16(len(l4)))
			udp.UpdateChecksum(pseudo)
		}
		sizes[n] = total
		s.next = end
	}
	if s.next >= len(in) {
		s.pkt = nil
	}
	return n, nil
}

// --- writing: coalescing ----------------------------------------------------

// groPacket is what the coalescer knows about one packet of a batch.
type groPacket struct {
	role   groRole
	next   int // the packet merged after this one, or -1
	group  int // for a head: index into coalescer.groups, or -1
	pktLen int
}

type groRole uint8

const (
	groSingle groRole = iota // written as it is
	groHead                  // first packet of a group, which others may join
	groMember                // merged into an earlier head; not written itself
)

// groGroup is a head packet and the packets merged behind it.
type groGroup struct {
	head, tail int
	segs       int // packets, head included
	isV6       bool
	proto      uint8
	iphLen     int
	hdrLen     int    // IP + transport header
	gsoSize    int    // payload of the head; later ones are no larger
	total      int    // IP length of the merged packet
	nextSeq    uint32 // TCP: the sequence number that may follow
	closed     bool   // a short or PSH segment ended it
	checked    bool   // the head's checksum was verified
	psh        bool
}

// groCandidate is a parsed TCP or UDP packet.
type groCandidate struct {
	isV6     bool
	proto    uint8
	iphLen   int
	hdrLen   int
	payload  int
	seq      uint32
	flags    uint8
	mergable bool // a data packet that may join a group
}

// maxOpenGroups is how many flows one batch can coalesce at a time; a
// batch is read from one SA, usually carrying a handful of flows.
const maxOpenGroups = 8

// coalescer merges packets of a batch about to be written. It keeps its
// scratch space between batches so that a batch costs no allocation.
type coalescer struct {
	pkts   []groPacket
	groups []groGroup
	open   [maxOpenGroups]int // indices into groups; -1 for free
	nOpen  int
	udp    bool // the kernel takes UDP GSO packets (Linux ≥ 6.2)
}

// parse reports whether pkt is TCP or UDP over IPv4/IPv6 without IPv4
// options or IPv6 extension headers, and whether it is a data packet
// that may be coalesced.
func (c *coalescer) parse(pkt []byte) (groCandidate, bool) {
	var g groCandidate
	// Whole packets only (the length fields give exactly len(pkt)), with
	// room for a UDP header at least.
	if ip := header.IPv4(pkt); ip.Valid() {
		if ip.HeaderLength() != header.IPv4MinLen || ip.TotalLength() != len(pkt) || ip.IsFragment() ||
			len(pkt) < header.IPv4MinLen+header.UDPLen {
			return g, false
		}
		g.iphLen, g.proto = header.IPv4MinLen, ip.Protocol()
	} else if ip := header.IPv6(pkt); ip.Valid() {
		if header.IPv6Len+ip.PayloadLength() != len(pkt) || len(pkt) < header.IPv6Len+header.UDPLen {
			return g, false
		}
		g.isV6, g.iphLen, g.proto = true, header.IPv6Len, ip.NextHeader()
	} else {
		return g, false
	}
	switch g.proto {
	case header.ProtoTCP:
		tcp := header.TCP(pkt[g.iphLen:])
		if !tcp.Valid() {
			return g, false
		}
		g.hdrLen = g.iphLen + tcp.DataOffset()
		g.seq = tcp.SeqNumber()
		g.flags = tcp.Flags()
		g.payload = len(pkt) - g.hdrLen
		g.mergable = g.payload > 0 && g.flags&^header.TCPFlagPSH == header.TCPFlagACK
	case header.ProtoUDP:
		udp := header.UDP(pkt[g.iphLen:])
		g.hdrLen = g.iphLen + header.UDPLen
		g.payload = len(pkt) - g.hdrLen
		g.mergable = c.udp && g.payload > 0 && udp.Length() == len(udp) &&
			udp.Checksum() != 0 // no checksum: nothing to vouch for the data
	default:
		return g, false
	}
	return g, true
}

// sameFlow reports whether pkt (parsed as g) belongs to the group whose
// head is head: same addresses, protocol and ports.
func sameFlow(head []byte, gr *groGroup, pkt []byte, g *groCandidate) bool {
	if g.isV6 != gr.isV6 || g.proto != gr.proto || g.iphLen != gr.iphLen {
		return false
	}
	hs, hd := header.Addrs(head, gr.isV6)
	ps, pd := header.Addrs(pkt, g.isV6)
	return string(hs) == string(ps) && string(hd) == string(pd) &&
		string(head[gr.iphLen:gr.iphLen+header.PortsLen]) == string(pkt[g.iphLen:g.iphLen+header.PortsLen])
}

// canAppend reports whether pkt may follow the group's last packet, by
// the rules of the kernel's own GRO (net/ipv4/tcp_offload.c,
// tcp_gro_receive): IP fields that GSO would copy to every segment must be
// equal, and so must the TCP acknowledgment, flags, window and options;
// the data must continue the sequence, and no segment may be larger than
// the first.
func canAppend(head []byte, gr *groGroup, pkt []byte, g *groCandidate) bool {
	if gr.closed || !g.mergable || g.hdrLen != gr.hdrLen || g.payload > gr.gsoSize ||
		gr.total+g.payload > maxIPLen || gr.segs >= maxSegments {
		return false
	}
	if gr.isV6 {
		h, p := header.IPv6(head), header.IPv6(pkt)
		if h.TrafficClass() != p.TrafficClass() || h.FlowLabel() != p.FlowLabel() ||
			h.NextHeader() != p.NextHeader() || h.HopLimit() != p.HopLimit() {
			return false
		}
	} else {
		h, p := header.IPv4(head), header.IPv4(pkt)
		if h.TOS() != p.TOS() || h.Flags() != p.Flags() || h.TTL() != p.TTL() {
			return false
		}
		// Segmenting gives the packets consecutive IDs. That is only
		// harmless when they already had them or cannot be fragmented
		// (DF: the ID then means nothing, RFC 6864).
		if h.Flags()&header.IPv4DontFragment == 0 && p.ID() != h.ID()+uint16(gr.segs) {
			return false
		}
	}
	if gr.proto == header.ProtoTCP {
		if g.seq != gr.nextSeq {
			return false
		}
		// Everything but the sequence number, the checksum and PSH.
		h, p := header.TCP(head[gr.iphLen:gr.hdrLen]), header.TCP(pkt[g.iphLen:g.hdrLen])
		if h.AckNumber() != p.AckNumber() || h.DataOffset() != p.DataOffset() || h.Reserved() != p.Reserved() ||
			h.Flags()&^header.TCPFlagPSH != p.Flags()&^header.TCPFlagPSH || h.Window() != p.Window() ||
			h.UrgentPointer() != p.UrgentPointer() || string(h.Options()) != string(p.Options()) {
			return false
		}
	}
	return true
}

// l4Valid reports whether the TCP/UDP checksum of pkt is right: a merged
// packet is handed to the kernel as checksum-partial, so a corrupt one
// would no longer be caught by the receiver.
func l4Valid(pkt []byte, isV6 bool, proto uint8, iphLen int) bool {
	src, dst := header.Addrs(pkt, isV6)
	l4 := pkt[iphLen:]
	return checksum.Checksum(l4, checksum.PseudoHeaderSum(proto, src, dst, len(l4))) == 0
}

// plan decides, for the packets bufs[i][offset:], which are written as
// they are and which are merged into groups. It only reads the packets.
func (c *coalescer) plan(bufs [][]byte, offset int) {
	c.pkts = c.pkts[:0]
	c.groups = c.groups[:0]
	c.nOpen = 0
	for i := range bufs {
		pkt := bufs[i][offset:]
		c.pkts = append(c.pkts, groPacket{role: groSingle, next: -1, group: -1, pktLen: len(pkt)})
		g, ok := c.parse(pkt)
		if !ok {
			continue
		}
		// The flow's open group, if any.
		slot := -1
		for k := range c.nOpen {
			gr := &c.groups[c.open[k]]
			if sameFlow(bufs[gr.head][offset:], gr, pkt, &g) {
				slot = k
				break
			}
		}
		if slot >= 0 {
			gi := c.open[slot]
			gr := &c.groups[gi]
			head := bufs[gr.head][offset:]
			if canAppend(head, gr, pkt, &g) && c.verify(bufs, offset, gr, pkt, &g) {
				c.pkts[gr.tail].next = i
				c.pkts[i].role = groMember
				gr.tail = i
				gr.segs++
				gr.total += g.payload
				gr.nextSeq = g.seq + uint32(g.payload)
				gr.psh = g.flags&header.TCPFlagPSH != 0
				gr.closed = gr.psh || g.payload < gr.gsoSize
				continue
			}
			// Whatever comes later must not overtake this packet: the
			// flow's group takes no more.
			c.nOpen--
			c.open[slot] = c.open[c.nOpen]
		}
		if !g.mergable {
			continue
		}
		c.pkts[i].role = groHead
		c.pkts[i].group = len(c.groups)
		c.groups = append(c.groups, groGroup{
			head: i, tail: i, segs: 1, isV6: g.isV6, proto: g.proto, iphLen: g.iphLen, hdrLen: g.hdrLen,
			gsoSize: g.payload, total: len(pkt), nextSeq: g.seq + uint32(g.payload),
			psh: g.flags&header.TCPFlagPSH != 0, closed: g.flags&header.TCPFlagPSH != 0,
		})
		if c.nOpen == maxOpenGroups {
			// Too many flows at once: the oldest stops taking packets.
			copy(c.open[:], c.open[1:])
			c.nOpen--
		}
		c.open[c.nOpen] = len(c.groups) - 1
		c.nOpen++
	}
}

// verify checks the checksums a merge relies on: the head's (once) and
// pkt's. A head that fails stays a single packet and its group closes.
func (c *coalescer) verify(bufs [][]byte, offset int, gr *groGroup, pkt []byte, g *groCandidate) bool {
	if !gr.checked {
		if !l4Valid(bufs[gr.head][offset:], gr.isV6, gr.proto, gr.iphLen) {
			c.pkts[gr.head].role = groSingle
			return false
		}
		gr.checked = true
	}
	return l4Valid(pkt, g.isV6, g.proto, g.iphLen)
}

// finish rewrites the head of a group of more than one packet into the
// header of the merged packet, and returns its virtio header: the kernel
// gets a checksum-partial super-packet to forward or segment.
func (gr *groGroup) finish(head []byte) virtioHdr {
	h := virtioHdr{
		flags:     vnetFlagNeedsCsum,
		hdrLen:    uint16(gr.hdrLen),
		gsoSize:   uint16(gr.gsoSize),
		csumStart: uint16(gr.iphLen),
	}
	if gr.isV6 {
		header.IPv6(head).SetPayloadLength(uint16(gr.total - header.IPv6Len))
	} else {
		ip := header.IPv4(head)
		ip.SetTotalLength(uint16(gr.total))
		ip.UpdateChecksum()
	}
	l4 := head[gr.iphLen:]
	l4Len := gr.total - gr.iphLen
	// A partial checksum holds the pseudo-header sum, not complemented;
	// whoever finishes it adds the rest.
	src, dst := header.Addrs(head, gr.isV6)
	partial := checksum.Fold(checksum.PseudoHeaderSum(gr.proto, src, dst, l4Len))
	if gr.proto == header.ProtoTCP {
		h.gsoType, h.csumOffset = gsoTCPv4, header.TCPChecksumOffset
		if gr.isV6 {
			h.gsoType = gsoTCPv6
		}
		tcp := header.TCP(l4)
		if gr.psh {
			tcp.SetFlags(tcp.Flags() | header.TCPFlagPSH)
		}
		tcp.SetChecksum(partial)
	} else {
		h.gsoType, h.csumOffset = gsoUDPL4, header.UDPChecksumOffset
		udp := header.UDP(l4)
		udp.SetLength(uint16(l4Len))
		udp.SetChecksum(partial)
	}
	return h
}

// frame prepares packet i of a planned batch for writing and appends to
// pieces what the kernel gets for it, in order: the virtio header with the
// packet, then, for the head of a merged group, the payload of each packet
// merged behind it. It returns the pieces and how many packets they carry
// (0 for a merged packet: its head carries it).
func (c *coalescer) frame(bufs [][]byte, offset, i int, pieces [][]byte) ([][]byte, int) {
	p := &c.pkts[i]
	buf := bufs[i]
	switch {
	case p.role == groMember:
		return pieces, 0
	case p.role == groHead && c.groups[p.group].segs > 1:
		gr := &c.groups[p.group]
		h := gr.finish(buf[offset:])
		h.encode(buf[offset-VirtioNetHdrLen:])
		pieces = append(pieces, buf[offset-VirtioNetHdrLen:offset+p.pktLen])
		for j := p.next; j >= 0; j = c.pkts[j].next {
			pieces = append(pieces, bufs[j][offset+gr.hdrLen:offset+c.pkts[j].pktLen])
		}
		return pieces, gr.segs
	default:
		clear(buf[offset-VirtioNetHdrLen : offset]) // GSO none, checksum complete
		return append(pieces, buf[offset-VirtioNetHdrLen:offset+p.pktLen]), 1
	}
}
