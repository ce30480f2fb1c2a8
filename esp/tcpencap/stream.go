package tcpencap

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipsecgw/ipsecgw/esp/conn"
)

const (
	// readBufSize holds several maximum-size frames, so that one read
	// usually yields a batch of ESP packets.
	readBufSize = 256 << 10
	// DefaultWriteTimeout bounds a write: a stream whose peer or proxy
	// stopped reading is closed, and redialled by its owner, instead of
	// stalling the dataplane behind it.
	DefaultWriteTimeout = 5 * time.Second
	// DefaultPrefixTimeout bounds how long an accepted connection may
	// take to send the "IKETCP" prefix.
	DefaultPrefixTimeout = 10 * time.Second
)

// ErrNoPrefix: an accepted connection did not start with "IKETCP".
var ErrNoPrefix = errors.New("tcpencap: stream does not start with the IKETCP prefix")

// Stats are a stream's counters.
type Stats struct {
	IKEIn, IKEOut, ESPIn, ESPOut, KeepalivesIn uint64
	// Drops counts received frames that were neither IKE nor ESP, by
	// reason (as esp/conn counts datagrams).
	Drops uint64
	// BytesIn and BytesOut are the stream's bytes, framing included.
	BytesIn, BytesOut uint64
}

// Handler receives what a stream carries.
type Handler struct {
	// IKE gets each IKE message (without marker). The slice is reused
	// after it returns: copy what is kept.
	IKE func(msg []byte)
	// ESP gets batches of ESP packets, as from the UDP sockets. Nil drops
	// them.
	ESP conn.ESPHandler
	// Src is reported as the sender of every ESP packet (ESPPacket.Src),
	// with ESPPacket.UDP set: to the dataplane the stream is one more
	// ESP-in-UDP path.
	Src netip.AddrPort
}

// Stream is one RFC 9329 connection. Writes may come from several
// goroutines (IKE and the dataplane's senders); Serve reads.
type Stream struct {
	c            net.Conn
	writeTimeout time.Duration

	wmu  sync.Mutex
	wbuf []byte

	rbuf  []byte
	batch []conn.ESPPacket

	ikeIn, ikeOut, espIn, espOut, kaIn, drops, bytesIn, bytesOut atomic.Uint64

	closeOnce sync.Once
	done      chan struct{}
}

func newStream(c net.Conn) *Stream {
	return &Stream{c: c, writeTimeout: DefaultWriteTimeout, done: make(chan struct{})}
}

// Client starts the initiating side on an established connection: it
// sends the prefix. c may be a connection through a proxy.
func Client(c net.Conn) (*Stream, error) {
	s := newStream(c)
	_ = c.SetWriteDeadline(time.Now().Add(s.writeTimeout))
	if _, err := io.WriteString(c, Prefix); err != nil {
		c.Close()
		return nil, fmt.Errorf("tcpencap: sending prefix: %w", err)
	}
	s.bytesOut.Add(uint64(len(Prefix)))
	return s, nil
}

// Server starts the accepting side: it reads and checks the prefix within
// timeout (0: DefaultPrefixTimeout). On an error c is closed.
func Server(c net.Conn, timeout time.Duration) (*Stream, error) {
	if timeout <= 0 {
		timeout = DefaultPrefixTimeout
	}
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	var p [len(Prefix)]byte
	if _, err := io.ReadFull(c, p[:]); err != nil {
		c.Close()
		return nil, fmt.Errorf("tcpencap: reading prefix: %w", err)
	}
	if string(p[:]) != Prefix {
		c.Close()
		return nil, ErrNoPrefix
	}
	_ = c.SetReadDeadline(time.Time{})
	s := newStream(c)
	s.bytesIn.Add(uint64(len(Prefix)))
	return s, nil
}

// SetWriteTimeout changes the bound on one write (before use).
func (s *Stream) SetWriteTimeout(d time.Duration) { s.writeTimeout = d }

// LocalAddr and RemoteAddr are the TCP connection's ends (with a proxy:
// ours and the proxy's).
func (s *Stream) LocalAddr() net.Addr  { return s.c.LocalAddr() }
func (s *Stream) RemoteAddr() net.Addr { return s.c.RemoteAddr() }

// Done is closed when the stream is closed.
func (s *Stream) Done() <-chan struct{} { return s.done }

// Close closes the connection; Serve returns.
func (s *Stream) Close() error {
	var err error
	s.closeOnce.Do(func() {
		err = s.c.Close()
		close(s.done)
	})
	return err
}

// write sends the framed buffer, closing the stream when the write
// fails: a partial frame would leave the peer's decoder out of step.
// Called with wmu held.
func (s *Stream) write() error {
	if s.writeTimeout > 0 {
		_ = s.c.SetWriteDeadline(time.Now().Add(s.writeTimeout))
	}
	n, err := s.c.Write(s.wbuf)
	s.bytesOut.Add(uint64(n))
	if err != nil {
		s.Close()
		return err
	}
	return nil
}

// WriteIKE sends one IKE message.
func (s *Stream) WriteIKE(msg []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var err error
	if s.wbuf, err = AppendIKE(s.wbuf[:0], msg); err != nil {
		return err
	}
	if err := s.write(); err != nil {
		return err
	}
	s.ikeOut.Add(1)
	return nil
}

// WriteKeepalive sends one keepalive frame.
func (s *Stream) WriteKeepalive() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.wbuf = AppendKeepalive(s.wbuf[:0])
	return s.write()
}

// Send frames a batch of ESP packets and writes it with one system call
// (it implements esp.Sender; Dst and UDP are ignored: the stream has one
// peer). It returns the number of packets sent.
func (s *Stream) Send(pkts []conn.OutPacket) (int, error) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	s.wbuf = s.wbuf[:0]
	n := 0
	for _, p := range pkts {
		b, err := AppendESP(s.wbuf, p.B)
		if err != nil {
			continue // cannot happen for ESP from a 64 KiB TUN packet; not sent
		}
		s.wbuf = b
		n++
	}
	if n == 0 {
		return 0, nil
	}
	if err := s.write(); err != nil {
		return 0, err
	}
	s.espOut.Add(uint64(n))
	return n, nil
}

// Serve reads the stream until it fails or is closed, handing IKE
// messages and batches of ESP packets to h. It returns the error that
// ended the stream (io.EOF when the peer closed it) and closes the
// stream.
func (s *Stream) Serve(h Handler) error {
	defer s.Close()
	if s.rbuf == nil {
		s.rbuf = make([]byte, readBufSize)
		s.batch = make([]conn.ESPPacket, 0, conn.ESPBatchSize)
	}
	start, end := 0, 0
	for {
		n, err := s.c.Read(s.rbuf[end:])
		end += n
		s.bytesIn.Add(uint64(n))
		if n > 0 {
			var perr error
			start, perr = s.process(h, start, end)
			if perr != nil {
				return perr
			}
			// Move the partial frame to the front, so that there is
			// always room for a whole one behind it.
			if start > 0 {
				end = copy(s.rbuf, s.rbuf[start:end])
				start = 0
			}
		}
		if err != nil {
			select {
			case <-s.done:
				return net.ErrClosed
			default:
			}
			return err
		}
	}
}

// process handles every whole frame in rbuf[start:end] and returns where
// the unparsed rest begins.
func (s *Stream) process(h Handler, start, end int) (int, error) {
	s.batch = s.batch[:0]
	defer s.flush(h)
	for {
		f, size, err := Next(s.rbuf[start:end])
		if err != nil {
			return start, err
		}
		if size == 0 {
			return start, nil
		}
		switch f.Kind {
		case conn.KindIKE:
			s.ikeIn.Add(1)
			// ESP received before the IKE message goes first: the
			// stream's order is kept.
			s.flush(h)
			if h.IKE != nil {
				h.IKE(s.rbuf[start+f.Off : start+f.Off+f.Len])
			}
		case conn.KindESP:
			s.espIn.Add(1)
			if len(s.batch) == cap(s.batch) {
				s.flush(h)
			}
			s.batch = append(s.batch, conn.ESPPacket{Buf: s.rbuf, Off: start + f.Off, Len: f.Len, Src: h.Src, UDP: true})
		case conn.KindKeepalive:
			s.kaIn.Add(1)
		default:
			s.drops.Add(1)
		}
		start += size
	}
}

func (s *Stream) flush(h Handler) {
	if len(s.batch) == 0 {
		return
	}
	if h.ESP != nil {
		h.ESP(s.batch)
	}
	clear(s.batch)
	s.batch = s.batch[:0]
}

// Stats returns a snapshot of the counters.
func (s *Stream) Stats() Stats {
	return Stats{
		IKEIn: s.ikeIn.Load(), IKEOut: s.ikeOut.Load(), ESPIn: s.espIn.Load(), ESPOut: s.espOut.Load(),
		KeepalivesIn: s.kaIn.Load(), Drops: s.drops.Load(), BytesIn: s.bytesIn.Load(), BytesOut: s.bytesOut.Load(),
	}
}
