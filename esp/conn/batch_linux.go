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
)

// receiver is the state of one receiving goroutine: its buffers, its
// preallocated recvmmsg vector and the ESP batch it hands to the handler.
// Everything is allocated once in start.
type receiver struct {
	c         *Conn
	rc        syscall.RawConn
	kind      sockKind
	localPort uint16

	bufs  [][]byte
	m     *mmsgs
	batch []ESPPacket
	slot  []int // batch index -> buffer index

	n      int
	errno  unix.Errno
	readFn func(fd uintptr) bool
}

func (c *Conn) start(rc syscall.RawConn, kind sockKind) {
	r := &receiver{c: c, rc: rc, kind: kind}
	switch kind {
	case sockIKE:
		r.localPort = c.IKEPort()
	case sockNATT:
		r.localPort = c.NATTPort()
	}
	bs := c.cfg.BatchSize
	r.bufs = make([][]byte, bs)
	for i := range r.bufs {
		r.bufs[i] = make([]byte, c.cfg.BufSize)
	}
	r.m = newMmsgs(bs)
	r.batch = make([]ESPPacket, 0, bs)
	r.slot = make([]int, 0, bs)
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
	c := r.c
	r.batch = r.batch[:0]
	r.slot = r.slot[:0]
	for i := range n {
		h := &r.m.hdrs[i]
		if h.Hdr.Flags&unix.MSG_TRUNC != 0 {
			c.c.drops[DropTruncated].Add(1)
			continue
		}
		data := r.bufs[i][ReadOffset : ReadOffset+int(h.Len)]
		var (
			k   Kind
			off int
			why DropReason
		)
		size := len(data)
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
		}
		switch k {
		case KindDrop:
			c.c.drops[why].Add(1)
		case KindKeepalive:
			c.c.keepalives.Add(1)
		case KindIKE:
			c.queueIKE(data[off:], r.m.addr(i), r.localPort)
		case KindESP:
			c.c.esp.Add(1)
			src := r.m.addr(i)
			r.batch = append(r.batch, ESPPacket{
				Buf: r.bufs[i], Off: ReadOffset + off, Len: size - off,
				Src: src, UDP: r.kind == sockNATT,
			})
			r.slot = append(r.slot, i)
		}
	}
	if len(r.batch) == 0 {
		return
	}
	if c.cfg.ESP == nil {
		c.c.espUnhandled.Add(uint64(len(r.batch)))
		return
	}
	c.cfg.ESP(r.batch)
	// Take back whatever buffers the handler left or swapped in.
	for j, i := range r.slot {
		b := r.batch[j].Buf
		if len(b) != c.cfg.BufSize {
			b = make([]byte, c.cfg.BufSize)
		}
		if &b[0] != &r.bufs[i][0] {
			r.bufs[i] = b
			r.m.setBuf(i, b[ReadOffset:])
		}
		r.batch[j] = ESPPacket{}
	}
}

// queueIKE copies an IKE message into the queue, or drops it when the
// queue is full. The fullness check comes first so that a flood costs no
// allocation; two receivers racing for the last slot can waste one copy.
func (c *Conn) queueIKE(msg []byte, src netip.AddrPort, port uint16) {
	if len(c.ikeQ) == cap(c.ikeQ) {
		c.c.ikeQueueDrops.Add(1)
		return
	}
	p := IKEPacket{Data: append([]byte(nil), msg...), Src: src, LocalPort: port}
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
}

// Sender sends batches of ESP packets with sendmmsg. A Sender is not safe
// for concurrent use; give each sending goroutine its own.
type Sender struct {
	c       *Conn
	m       *mmsgs
	from    int
	cnt     int
	sent    int
	err     error
	writeFn func(fd uintptr) bool
}

// NewSender returns a Sender for batches of up to BatchSize packets per
// syscall (larger slices are sent in several syscalls).
func (c *Conn) NewSender() *Sender {
	s := &Sender{c: c, m: newMmsgs(c.cfg.BatchSize)}
	s.writeFn = func(fd uintptr) bool {
		for s.from < s.cnt {
			n, e := sendmmsg(fd, s.m, s.from, s.cnt)
			switch e {
			case 0:
				s.from += n
				s.sent += n
			case unix.EINTR:
			case unix.EAGAIN:
				return false
			default:
				// The first message of the rest failed (too big, no
				// route...): count it, skip it, keep going.
				s.c.c.sendErrors.Add(1)
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
	for len(pkts) > 0 {
		// A run of packets for the same socket, at most one batch.
		udp := pkts[0].UDP
		n := 0
		for n < len(pkts) && n < len(s.m.hdrs) && pkts[n].UDP == udp {
			n++
		}
		var rc syscall.RawConn
		if udp {
			rc = s.c.nattRC
		} else {
			rc = s.c.rawRC
		}
		s.cnt = 0
		for _, p := range pkts[:n] {
			dst := p.Dst
			if !udp {
				dst = netip.AddrPortFrom(dst.Addr(), 0)
			}
			if !s.m.setAddr(s.cnt, s.c.family, dst) {
				s.c.c.sendErrors.Add(1)
				if s.err == nil {
					s.err = errWrongFamily
				}
				continue
			}
			s.m.setBuf(s.cnt, p.B)
			s.cnt++
		}
		pkts = pkts[n:]
		if s.cnt == 0 {
			continue
		}
		if rc == nil {
			s.c.c.sendErrors.Add(uint64(s.cnt))
			if s.err == nil {
				s.err = errNoRaw
			}
			continue
		}
		s.from = 0
		if err := rc.Write(s.writeFn); err != nil {
			s.c.c.sendErrors.Add(uint64(s.cnt - s.from))
			return s.sent, err
		}
	}
	return s.sent, s.err
}

var errNoRaw = errors.New("conn: plain ESP needs the raw socket (Config.RawESP)")
