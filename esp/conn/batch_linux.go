package conn

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"
)

type sockKind uint8

const (
	sockIKE sockKind = iota
	sockNATT
	sockRaw4
	sockRaw6
	sockAH4
	sockAH6
)

// receiver is the state of one receiving goroutine: its buffers, its
// preallocated recvmmsg vector and the ESP batch it hands to the handler.
// Everything is allocated once in start.
//
// ESP packets are handed over in place, in the buffers they were received
// into; with GRO (NAT-T socket, Config.UDPOffload) one received datagram
// may hold many ESP packets of the same size, handed over as slices of it.
// The handler copies what it keeps, so nothing is copied here.
type receiver struct {
	c         *Conn
	rc        syscall.RawConn
	kind      sockKind
	localPort uint16
	gro       bool
	pktinfo   bool // learn each datagram's local address (wildcard bind)

	bufs  [][]byte // receive buffers, one per message
	m     *mmsgs
	batch []ESPPacket

	local netip.Addr // local address of the datagram being processed

	n      int
	errno  unix.Errno
	readFn func(fd uintptr) bool
}

// ahBatchSize is the most datagrams per recvmmsg on the raw AH socket.
const ahBatchSize = 16

// maxUDPPayload is the largest datagram a socket can return, which is
// what a GRO-coalesced read can be.
const maxUDPPayload = 65535

func (c *Conn) start(rc syscall.RawConn, kind sockKind) {
	r := &receiver{c: c, rc: rc, kind: kind, gro: kind == sockNATT && c.gro,
		pktinfo: c.pktinfo && (kind == sockIKE || kind == sockNATT)}
	switch kind {
	case sockIKE:
		r.localPort = c.IKEPort()
	case sockNATT:
		r.localPort = c.NATTPort()
	}
	bs := c.cfg.BatchSize
	if kind == sockAH4 || kind == sockAH6 {
		// AH is the rare protocol: its receiver keeps fewer of the
		// 64 KiB buffers.
		bs = min(bs, ahBatchSize)
	}
	size := c.cfg.BufSize
	if r.gro {
		size = max(size, ReadOffset+maxUDPPayload)
	}
	r.bufs = make([][]byte, bs)
	for i := range r.bufs {
		r.bufs[i] = make([]byte, size)
	}
	r.m = newMmsgs(bs, 1)
	if r.gro || r.pktinfo {
		for i := range bs {
			r.m.wantControl(i)
		}
	}
	r.batch = make([]ESPPacket, 0, max(bs, ESPBatchSize))
	// One closure for the receiver's lifetime: building it per call
	// would allocate.
	r.readFn = func(fd uintptr) bool {
		for {
			r.n, r.errno = recvmmsg(fd, r.m, len(r.bufs))
			if r.errno != unix.EINTR {
				return r.errno != unix.EAGAIN
			}
		}
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		r.loop()
	}()
}

func (r *receiver) loop() {
	for i, b := range r.bufs {
		r.m.setBuf(i, b[ReadOffset:])
	}
	for {
		r.m.resetForRecv(len(r.bufs))
		if err := r.rc.Read(r.readFn); err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			r.c.c.recvErrors.Add(1)
			continue
		}
		if r.errno != 0 {
			r.c.c.recvErrors.Add(1)
			continue
		}
		r.process(r.n)
	}
}

func (r *receiver) process(n int) {
	r.batch = r.batch[:0]
	for i := range n {
		h := &r.m.hdrs[i]
		if h.Hdr.Flags&unix.MSG_TRUNC != 0 {
			r.c.c.drops[DropTruncated].Add(1)
			continue
		}
		data := r.bufs[i][ReadOffset : ReadOffset+int(h.Len)]
		seg := 0
		if r.gro || r.pktinfo {
			seg, r.local = r.m.control(i)
		}
		if seg <= 0 || seg >= len(data) {
			r.datagram(i, data)
			continue
		}
		r.c.c.coalesced.Add(uint64((len(data) + seg - 1) / seg))
		for len(data) > 0 {
			k := min(seg, len(data))
			r.datagram(i, data[:k])
			data = data[k:]
		}
	}
	r.flush()
}

// datagram classifies one datagram that came in message i and queues,
// batches or counts it.
func (r *receiver) datagram(i int, data []byte) {
	c := r.c
	var (
		k    Kind
		off  int
		why  DropReason
		size = len(data)
	)
	switch r.kind {
	case sockIKE:
		k, off, why = ClassifyIKE(data)
	case sockNATT:
		k, off, why = ClassifyNATT(data)
	case sockRaw4:
		k, off, size, why = ClassifyRawESP4(data)
		size += off
	case sockRaw6:
		k, off, why = ClassifyRawESP6(data)
	case sockAH4:
		k, size, why = ClassifyRawAH4(data)
	case sockAH6:
		k, off, why = ClassifyRawESP6(data) // the AH header is as long as ESP's minimum
	}
	switch k {
	case KindDrop:
		c.c.drops[why].Add(1)
		return
	case KindKeepalive:
		c.c.keepalives.Add(1)
		return
	case KindIKE:
		local := r.c.cfg.Addr
		if r.local.IsValid() {
			local = r.local.Unmap()
		}
		c.queueIKE(data[off:], r.m.addr(i), netip.AddrPortFrom(local, r.localPort))
		return
	}
	c.c.esp.Add(1)
	// data is a slice of r.bufs[i] (a GRO segment, or the whole datagram):
	// its offset there is what its capacity lacks.
	start := cap(r.bufs[i]) - cap(data)
	r.batch = append(r.batch, ESPPacket{Buf: r.bufs[i], Off: start + off, Len: size - off, Src: r.m.addr(i), UDP: r.kind == sockNATT,
		AH: r.kind == sockAH4 || r.kind == sockAH6})
	if len(r.batch) == cap(r.batch) {
		r.flush()
	}
}

// flush hands the batch to the handler.
func (r *receiver) flush() {
	c := r.c
	if len(r.batch) == 0 {
		return
	}
	if c.cfg.ESP == nil {
		c.c.espUnhandled.Add(uint64(len(r.batch)))
	} else {
		c.cfg.ESP(r.batch)
	}
	clear(r.batch)
	r.batch = r.batch[:0]
}

// queueIKE copies an IKE message into the queue, or drops it when the
// queue is full. The fullness check comes first so that a flood costs no
// allocation; two receivers racing for the last slot can waste one copy.
func (c *Conn) queueIKE(msg []byte, src, local netip.AddrPort) {
	if len(c.ikeQ) == cap(c.ikeQ) {
		c.c.ikeQueueDrops.Add(1)
		return
	}
	p := IKEPacket{Data: append([]byte(nil), msg...), Src: src, Local: local, LocalPort: local.Port()}
	select {
	case c.ikeQ <- p:
		c.c.ike.Add(1)
	default:
		c.c.ikeQueueDrops.Add(1)
	}
}

// OutPacket is one ESP packet to send.
type OutPacket struct {
	// B is the ESP packet, SPI first. For ESP-in-UDP no marker is added:
	// a non-zero SPI is what tells the peer it is ESP.
	B []byte
	// Dst is the peer; the port is used for ESP-in-UDP only.
	Dst netip.AddrPort
	// UDP sends from the NAT-T socket; otherwise the raw ESP socket.
	UDP bool
	// AH sends B, a whole IP packet (header first) carrying AH, on the
	// raw AH socket (Config.RawAH) as it is; UDP must be false.
	AH bool
}

// Sender sends batches of ESP packets with sendmmsg. A Sender is not safe
// for concurrent use; give each sending goroutine its own.
//
// With UDP GSO (Config.UDPOffload and kernel support), consecutive
// ESP-in-UDP packets to the same peer of the same length (the last may be
// shorter) are gathered into one message that the kernel splits
// (UDP_SEGMENT), straight from the caller's buffers.
type Sender struct {
	c       *Conn
	m       *mmsgs
	segs    []int // packets in each message
	from    int
	cnt     int
	sent    int
	err     error
	gsoErr  bool
	writeFn func(fd uintptr) bool
}

const (
	// maxGSOSegments is the kernel's UDP_MAX_SEGMENTS on older kernels.
	maxGSOSegments = 64
	// maxGSOBytes keeps a gathered message within one IPv6 UDP datagram.
	maxGSOBytes = 65000
)

// NewSender returns a Sender for batches of up to BatchSize messages per
// syscall (larger slices are sent in several syscalls).
func (c *Conn) NewSender() *Sender {
	per := 1
	if c.gso.Load() {
		per = maxGSOSegments
	}
	s := &Sender{c: c, m: newMmsgs(c.cfg.BatchSize, per), segs: make([]int, c.cfg.BatchSize)}
	s.writeFn = func(fd uintptr) bool {
		for s.from < s.cnt {
			n, e := sendmmsg(fd, s.m, s.from, s.cnt)
			switch e {
			case 0:
				for _, k := range s.segs[s.from : s.from+n] {
					s.sent += k
				}
				s.from += n
			case unix.EINTR:
			case unix.EAGAIN:
				return false
			default:
				// The first message of the rest failed (too big, no
				// route...): count it, skip it, keep going. EIO on a
				// segmented message means the device cannot do UDP
				// GSO: stop using it.
				if e == unix.EIO && s.segs[s.from] > 1 {
					s.gsoErr = true
				}
				s.c.c.sendErrors.Add(uint64(s.segs[s.from]))
				if s.err == nil {
					s.err = fmt.Errorf("conn: send ESP: %w", e)
				}
				s.from++
			}
		}
		return true
	}
	return s
}

// errWrongFamily is preallocated so that the send path does not allocate
// even when it fails.
var errWrongFamily = errors.New("conn: destination address family does not match the socket")

// Send sends pkts and returns how many went out and the first error.
func (s *Sender) Send(pkts []OutPacket) (int, error) {
	s.sent, s.err = 0, nil
	gso := s.m.iovPer > 1 && s.c.gso.Load()
	for len(pkts) > 0 {
		udp, ah := pkts[0].UDP, pkts[0].AH
		var rc syscall.RawConn
		switch {
		case ah:
			udp, rc = false, s.c.ahRC
		case udp:
			rc = s.c.nattRC
		default:
			rc = s.c.rawRC
		}
		// Fill up to one batch of messages from a run of packets for the
		// same socket.
		s.cnt = 0
		used := 0
		var (
			segSize, segBytes int
			lastDst           netip.AddrPort
		)
		for used < len(pkts) && pkts[used].AH == ah && (ah || pkts[used].UDP == udp) && s.cnt < len(s.m.hdrs) {
			p := &pkts[used]
			used++
			dst := p.Dst
			if !udp {
				dst = netip.AddrPortFrom(dst.Addr(), 0)
			}
			if gso && udp && s.cnt > 0 {
				k := s.segs[s.cnt-1]
				if dst == lastDst && k < maxGSOSegments && len(p.B) <= segSize &&
					segBytes+len(p.B) <= maxGSOBytes && segBytes == k*segSize {
					s.m.addBuf(s.cnt-1, k, p.B)
					s.segs[s.cnt-1] = k + 1
					s.m.setSegment(s.cnt-1, segSize)
					segBytes += len(p.B)
					continue
				}
			}
			if !s.m.setAddr(s.cnt, s.c.family, dst) {
				s.c.c.sendErrors.Add(1)
				if s.err == nil {
					s.err = errWrongFamily
				}
				continue
			}
			s.m.setBuf(s.cnt, p.B)
			s.m.setSegment(s.cnt, 0)
			s.segs[s.cnt] = 1
			s.cnt++
			lastDst, segSize, segBytes = dst, len(p.B), len(p.B)
		}
		pkts = pkts[used:]
		if s.cnt == 0 {
			continue
		}
		if rc == nil {
			s.c.c.sendErrors.Add(uint64(s.cnt))
			if s.err == nil {
				s.err = errNoRaw
				if ah {
					s.err = errNoAH
				}
			}
			continue
		}
		s.from = 0
		if err := rc.Write(s.writeFn); err != nil {
			for _, k := range s.segs[s.from:s.cnt] {
				s.c.c.sendErrors.Add(uint64(k))
			}
			return s.sent, err
		}
		if s.gsoErr {
			s.c.gso.Store(false)
			gso = false
		}
	}
	return s.sent, s.err
}

var (
	errNoRaw = errors.New("conn: plain ESP needs the raw socket (Config.RawESP)")
	errNoAH  = errors.New("conn: AH needs the raw AH socket (Config.RawAH)")
)
