package daemon

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/esp/conn"
	"github.com/ipsecgw/ipsecgw/esp/tcpencap"
)

// IKE and ESP over TCP (RFC 9329), beside the UDP sockets.
//
// The IKE Manager and the dataplane do not know about TCP: the transport
// sits between them and the sockets and decides per peer address. A conn
// with enable-tcp=yes sends everything for its peer over a TCP stream it
// dials (and redials, with bounded back-off, whenever the stream drops:
// RFC 9329 §6 keeps the IKE SA independent of the TCP connection); with
// enable-tcp=fallback it sends over UDP until its IKE_SA_INIT went
// unanswered once (the first retransmission), then switches to TCP. The
// responder accepts streams on the TCP port (tcp.port, 4500) while a loaded
// conn sets enable-tcp, and answers every peer over the stream its messages
// came on.
//
// To IKE a dialled stream looks like UDP port 4500 at both ends: received
// messages are handed over as from the peer's port 4500 to our 4500, the
// ports the initiator moves to after NAT detection (which the TCP ports
// always trigger, the responder seeing an ephemeral source port); ESP from
// the stream arrives as ESP in UDP from that same endpoint, so that the
// CHILD SAs' peer endpoint and the packets' source agree. An accepted stream
// is presented with its real TCP endpoints: several peers may come through
// one proxy address, and a peer that redials shows up from a new port,
// which IKE follows as a NAT mapping change.

// tcpRedial bounds the back-off between dials of a lost stream.
const (
	tcpRedialMin   = 250 * time.Millisecond
	tcpRedialMax   = 30 * time.Second
	tcpDialTimeout = 10 * time.Second
	// tcpStableStream: a stream that lived this long resets the back-off;
	// the first redial after it drops is immediate.
	tcpStableStream = 5 * time.Second
	// tcpPendingMax is how many IKE messages wait for a stream being
	// dialled; IKE retransmits what is lost beyond it.
	tcpPendingMax = 8
)

// tcpRoutes is the read-only table the packet path consults per batch: one
// atomic load and map lookups, no lock, no allocation.
type tcpRoutes struct {
	// exact: accepted streams by the peer's TCP endpoint.
	exact map[netip.AddrPort]*tcpencap.Stream
	// dialled: our streams by peer address.
	dialled map[netip.Addr]*tcpencap.Stream
	// accepted: the most recent accepted stream of a peer address, for an
	// SA that still names the endpoint of a stream the peer replaced.
	accepted map[netip.Addr]*tcpencap.Stream
	// tcpOnly: peers that use TCP; ESP for them while their stream is down
	// is dropped rather than sent over UDP.
	tcpOnly map[netip.Addr]bool
}

// stream returns the stream for dst, and whether dst is a TCP peer at all.
func (r *tcpRoutes) stream(dst netip.AddrPort) (*tcpencap.Stream, bool) {
	if r == nil {
		return nil, false
	}
	if s := r.exact[dst]; s != nil {
		return s, true
	}
	a := dst.Addr().Unmap()
	if s := r.dialled[a]; s != nil {
		return s, true
	}
	if s := r.accepted[a]; s != nil {
		return s, true
	}
	return nil, r.tcpOnly[a]
}

// tcpTransport owns the TCP streams.
type tcpTransport struct {
	log       *slog.Logger
	port      uint16 // listening port (0 in tests: the kernel's choice)
	noListen  bool   // tcp.port: 0
	dialer    tcpencap.Dialer
	keepalive time.Duration // keepalive frames on idle dialled streams; 0: none
	handleIKE func(local, remote netip.AddrPort, pkt []byte)
	handleESP conn.ESPHandler

	routes atomic.Pointer[tcpRoutes]
	// espDrops counts ESP for a TCP peer whose stream was down.
	espDrops atomic.Uint64

	mu       sync.Mutex
	ln       net.Listener
	tlsCfg   *tls.Config             // accepted streams in TLS (RFC 9329 §8)
	tlsDial  bool                    // the streams we dial are in TLS
	peers    map[netip.Addr]*tcpPeer // conns with enable-tcp, by peer address
	exact    map[netip.AddrPort]*tcpencap.Stream
	accepted map[netip.Addr]*tcpencap.Stream
	closed   bool
	stop     chan struct{}
	// ctx ends with close: it cancels dials under way.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// tcpPeer is the TCP state of one peer address that conns with enable-tcp
// initiate to.
type tcpPeer struct {
	t     *tcpTransport
	addr  netip.AddrPort // the peer's TCP endpoint (tcp-remoteport)
	mode  config.TCPMode
	conns []string

	// Guarded by t.mu.
	useTCP      bool   // TCP chosen (yes, or fallback after UDP failed)
	reason      string // why this transport
	udpInitSent bool   // fallback: an IKE_SA_INIT went over UDP
	heardUDP    bool   // fallback: the peer answered over UDP
	stream      *tcpencap.Stream
	dialing     bool
	pending     [][]byte
	since       time.Time // when the current stream came up
	reconnects  int
	lastErr     string
	removed     bool
}

func newTCPTransport(port uint16, keepalive time.Duration, log *slog.Logger,
	ike func(local, remote netip.AddrPort, pkt []byte), esp conn.ESPHandler) *tcpTransport {
	t := &tcpTransport{
		log: log, port: port, keepalive: keepalive, handleIKE: ike, handleESP: esp,
		dialer:   &net.Dialer{Timeout: tcpDialTimeout, KeepAlive: 20 * time.Second},
		peers:    map[netip.Addr]*tcpPeer{},
		exact:    map[netip.AddrPort]*tcpencap.Stream{},
		accepted: map[netip.Addr]*tcpencap.Stream{},
		stop:     make(chan struct{}),
	}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	t.noListen = port == 0
	t.publish()
	return t
}

// usesTCP reports whether a configuration needs the TCP transport.
func usesTCP(cfg *config.Config) bool {
	for _, c := range cfg.Conns() {
		if c.Auto != config.AutoIgnore && c.TCP != config.TCPNo {
			return true
		}
	}
	return false
}

// configure takes the conns of a (re)loaded configuration: peers of conns
// that no longer use TCP stop redialling, new ones start on first use; the
// listener opens with the first conn that sets enable-tcp and stays.
func (t *tcpTransport) configure(cfg *config.Config) error {
	want := map[netip.Addr]*tcpPeer{}
	for _, c := range cfg.Conns() {
		a := c.Remote.Addr.Unmap()
		if c.Auto == config.AutoIgnore || c.TCP == config.TCPNo || !a.IsValid() || a.IsUnspecified() {
			continue
		}
		p := want[a]
		if p == nil {
			p = &tcpPeer{t: t, addr: netip.AddrPortFrom(a, c.TCPRemotePort), mode: c.TCP}
			want[a] = p
		}
		p.conns = append(p.conns, c.Name)
		// One peer, several conns: yes wins over fallback.
		if c.TCP == config.TCPYes {
			p.mode = config.TCPYes
		}
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for a, old := range t.peers {
		if n := want[a]; n != nil && n.addr == old.addr && n.mode == old.mode {
			old.conns = n.conns
			want[a] = old
			continue
		}
		old.removed = true
		if old.stream != nil {
			old.stream.Close()
		}
	}
	for _, p := range want {
		if p.mode == config.TCPYes && p.reason == "" {
			p.useTCP, p.reason = true, "enable-tcp=yes"
		}
		if p.mode == config.TCPFallback && p.reason == "" {
			p.reason = "enable-tcp=fallback: UDP first"
		}
	}
	t.peers = want
	t.publishLocked()
	if len(want) > 0 || usesTCP(cfg) {
		return t.listenLocked()
	}
	return nil
}

// listenLocked opens the listener once.
func (t *tcpTransport) listenLocked() error {
	if t.ln != nil || t.closed || t.noListen {
		return nil
	}
	cfg, err := tcpencap.ServerTLSConfig()
	if err != nil {
		return fmt.Errorf("TLS certificate for streams in TLS: %w", err)
	}
	t.tlsCfg = cfg
	ln, err := net.Listen("tcp", fmt.Sprintf(":%d", t.port))
	if err != nil {
		return fmt.Errorf("TCP listener for IKE/ESP over TCP (RFC 9329) on port %d: %w", t.port, err)
	}
	t.ln = ln
	if t.port == 0 { // tests: the kernel chose
		t.port = addrPortOf(ln.Addr()).Port()
	}
	t.log.Info("accepting IKE and ESP over TCP (RFC 9329)", "port", t.port)
	t.wg.Add(1)
	go t.acceptLoop(ln)
	return nil
}

func (t *tcpTransport) publish() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.publishLocked()
}

// publishLocked rebuilds the packet path's table.
func (t *tcpTransport) publishLocked() {
	r := &tcpRoutes{
		exact:    make(map[netip.AddrPort]*tcpencap.Stream, len(t.exact)),
		dialled:  map[netip.Addr]*tcpencap.Stream{},
		accepted: make(map[netip.Addr]*tcpencap.Stream, len(t.accepted)),
		tcpOnly:  map[netip.Addr]bool{},
	}
	for k, s := range t.exact {
		r.exact[k] = s
	}
	for k, s := range t.accepted {
		r.accepted[k] = s
	}
	for a, p := range t.peers {
		if p.useTCP {
			r.tcpOnly[a] = true
			if p.stream != nil {
				r.dialled[a] = p.stream
			}
		}
	}
	t.routes.Store(r)
}

// isInitRequest reports whether pkt is an IKEv2 IKE_SA_INIT request or
// the first IKEv1 message (responder cookie zero): what fallback watches
// for an answer.
func isInitRequest(pkt []byte) bool {
	if len(pkt) < 28 {
		return false
	}
	spiR := binary.BigEndian.Uint64(pkt[8:16])
	if pkt[17]>>4 == 1 {
		return spiR == 0
	}
	const ikeSAInit, flagResponse = 34, 0x20
	return pkt[18] == ikeSAInit && pkt[19]&flagResponse == 0 && spiR == 0
}

// sendIKE sends an IKE message over TCP when remote is a TCP peer and
// reports whether it did (false: the caller sends over UDP).
func (t *tcpTransport) sendIKE(remote netip.AddrPort, pkt []byte) (bool, error) {
	// A stream that exists is used, whoever dialled it: a responder
	// answers on the stream the peer dialled and never dials itself
	// while it has one (RFC 9329 §6).
	r := t.routes.Load()
	a := remote.Addr().Unmap()
	for _, s := range []*tcpencap.Stream{r.exact[remote], r.dialled[a], r.accepted[a]} {
		if s != nil {
			return true, s.WriteIKE(pkt)
		}
	}
	t.mu.Lock()
	p := t.peers[a]
	if p == nil {
		t.mu.Unlock()
		return false, nil
	}
	if !p.useTCP {
		if isInitRequest(pkt) {
			if p.udpInitSent && !p.heardUDP {
				p.useTCP = true
				p.reason = "enable-tcp=fallback: no answer over UDP to IKE_SA_INIT"
				t.log.Warn("no answer over UDP: falling back to TCP (RFC 9329)", "peer", p.addr, "conns", p.conns)
				t.publishLocked()
			} else {
				p.udpInitSent = true
			}
		}
		if !p.useTCP {
			t.mu.Unlock()
			return false, nil
		}
	}
	s := p.stream
	if s == nil {
		if len(p.pending) < tcpPendingMax {
			p.pending = append(p.pending, append([]byte(nil), pkt...))
		}
		p.dialLocked()
		t.mu.Unlock()
		return true, nil
	}
	t.mu.Unlock()
	return true, s.WriteIKE(pkt)
}

// heardUDP notes that a peer answered over UDP (fallback stays on UDP).
func (t *tcpTransport) heardUDP(remote netip.AddrPort) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.peers[remote.Addr().Unmap()]; p != nil && !p.useTCP && !p.heardUDP {
		p.heardUDP = true
		p.reason = "enable-tcp=fallback: the peer answers over UDP"
	}
}

// dialLocked starts the peer's dial loop unless it runs.
func (p *tcpPeer) dialLocked() {
	t := p.t
	if p.dialing || p.removed || t.closed {
		return
	}
	p.dialing = true
	t.wg.Add(1)
	go func() {
		defer t.wg.Done()
		p.run()
	}()
}

// run dials the peer and serves the stream, redialling with bounded
// back-off whenever it drops, until the peer is removed or the transport
// closes.
func (p *tcpPeer) run() {
	t := p.t
	backoff := tcpRedialMin
	for {
		t.mu.Lock()
		if p.removed || t.closed {
			p.dialing = false
			t.mu.Unlock()
			return
		}
		t.mu.Unlock()
		ctx, cancel := context.WithTimeout(t.ctx, tcpDialTimeout)
		s, err := tcpencap.Dial(ctx, t.dialer, p.addr.String())
		cancel()
		if err != nil {
			t.mu.Lock()
			p.lastErr = err.Error()
			t.mu.Unlock()
			t.log.Warn("TCP connection to the peer failed; retrying", "peer", p.addr, "in", backoff, "err", err)
			select {
			case <-t.stop:
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, tcpRedialMax)
			continue
		}
		start := time.Now()
		p.serve(s)
		// A stream that dropped at once (a proxy that accepts and then
		// refuses, a peer that closes) must not make this loop spin.
		if time.Since(start) < tcpStableStream {
			select {
			case <-t.stop:
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, tcpRedialMax)
		} else {
			backoff = tcpRedialMin
		}
	}
}

// serve publishes a dialled stream, sends what waited for it, and reads it
// until it drops.
func (p *tcpPeer) serve(s *tcpencap.Stream) {
	t := p.t
	local := netip.AddrPortFrom(addrOf(s.LocalAddr()), conn.DefaultNATTPort)
	remote := netip.AddrPortFrom(p.addr.Addr(), conn.DefaultNATTPort)
	t.mu.Lock()
	if p.removed || t.closed {
		t.mu.Unlock()
		s.Close()
		return
	}
	if !p.since.IsZero() {
		p.reconnects++
	}
	p.stream, p.since, p.lastErr = s, time.Now(), ""
	pending := p.pending
	p.pending = nil
	t.publishLocked()
	t.mu.Unlock()
	t.log.Info("TCP stream to the peer up (RFC 9329)", "peer", p.addr, "local", s.LocalAddr().String(), "via", s.RemoteAddr().String(), "tls", t.tlsDial)
	for _, m := range pending {
		if err := s.WriteIKE(m); err != nil {
			break
		}
	}
	var done chan struct{}
	if t.keepalive > 0 {
		done = make(chan struct{})
		go keepStreamAlive(s, t.keepalive, done)
	}
	err := s.Serve(tcpencap.Handler{
		Src: remote,
		IKE: func(m []byte) { t.handleIKE(local, remote, m) },
		ESP: t.handleESP,
	})
	if done != nil {
		close(done)
	}
	t.mu.Lock()
	if p.stream == s {
		p.stream = nil
		if !errors.Is(err, net.ErrClosed) {
			p.lastErr = err.Error()
		}
		t.publishLocked()
	}
	t.mu.Unlock()
	if !errors.Is(err, net.ErrClosed) {
		t.log.Warn("TCP stream to the peer lost; redialling (the IKE SA stays)", "peer", p.addr, "err", err)
	}
}

// keepStreamAlive sends a keepalive frame whenever the stream sent
// nothing for an interval, so that proxies and NATs on the way, which
// see only the TCP connection, do not drop it as idle. RFC 9329 §4 advises
// against NAT-keepalives over TCP on NATs' account but makes receivers
// drop them, so they are safe; a proxy's idle timer is what they are for.
func keepStreamAlive(s *tcpencap.Stream, every time.Duration, done <-chan struct{}) {
	tick := time.NewTicker(every)
	defer tick.Stop()
	last := s.Stats().BytesOut
	for {
		select {
		case <-done:
			return
		case <-tick.C:
		}
		if n := s.Stats().BytesOut; n != last {
			last = n
			continue
		}
		if s.WriteKeepalive() != nil {
			return
		}
		last = s.Stats().BytesOut
	}
}

// acceptLoop accepts streams until the listener closes.
func (t *tcpTransport) acceptLoop(ln net.Listener) {
	defer t.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			t.log.Warn("TCP accept", "err", err)
			select {
			case <-t.stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			continue
		}
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			t.serveAccepted(c)
		}()
	}
}

// serveAccepted runs one accepted stream.
func (t *tcpTransport) serveAccepted(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetKeepAlive(true)
		_ = tc.SetKeepAlivePeriod(20 * time.Second)
	}
	t.mu.Lock()
	cfg := t.tlsCfg
	t.mu.Unlock()
	s, inTLS, err := tcpencap.Accept(c, cfg, 0)
	if err != nil {
		t.log.Debug("TCP connection is not an RFC 9329 stream", "remote", c.RemoteAddr().String(), "err", err)
		return
	}
	remote := addrPortOf(c.RemoteAddr())
	local := netip.AddrPortFrom(addrOf(c.LocalAddr()), t.port)
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		s.Close()
		return
	}
	t.exact[remote] = s
	t.accepted[remote.Addr()] = s
	t.publishLocked()
	t.mu.Unlock()
	t.log.Info("TCP stream from a peer accepted (RFC 9329)", "remote", remote, "tls", inTLS)
	err = s.Serve(tcpencap.Handler{
		Src: remote,
		IKE: func(m []byte) { t.handleIKE(local, remote, m) },
		ESP: t.handleESP,
	})
	t.mu.Lock()
	delete(t.exact, remote)
	if t.accepted[remote.Addr()] == s {
		delete(t.accepted, remote.Addr())
	}
	t.publishLocked()
	t.mu.Unlock()
	if !errors.Is(err, net.ErrClosed) {
		t.log.Info("TCP stream from a peer closed", "remote", remote, "err", err)
	}
}

// close stops the listener, every stream and every dial loop.
func (t *tcpTransport) close() {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return
	}
	t.closed = true
	close(t.stop)
	t.cancel()
	if t.ln != nil {
		t.ln.Close()
	}
	for _, p := range t.peers {
		if p.stream != nil {
			p.stream.Close()
		}
	}
	for _, s := range t.exact {
		s.Close()
	}
	t.mu.Unlock()
	t.wg.Wait()
}

// status is the TCP part of a conn's status (nil for conns without
// enable-tcp); remote is its IKE SA's peer endpoint, if it has one.
func (t *tcpTransport) status(c config.Conn, remote netip.AddrPort) *control.TCPStatus {
	if c.TCP == config.TCPNo {
		return nil
	}
	st := &control.TCPStatus{Mode: c.TCP.String(), Transport: "udp"}
	t.mu.Lock()
	defer t.mu.Unlock()
	p := t.peers[c.Remote.Addr.Unmap()]
	// A stream the peer dialled carries the IKE SA (we answer on it).
	s := t.exact[remote]
	if s == nil && remote.IsValid() {
		s = t.accepted[remote.Addr().Unmap()]
	}
	if s != nil && (p == nil || p.stream == nil) {
		st.Transport, st.State, st.Via = "tcp", "connected", s.RemoteAddr().String()
		st.Reason = "the peer dialled us"
		return st
	}
	if p == nil {
		st.Reason = "responder: answers over the stream a peer dials"
		return st
	}
	st.Remote, st.Reason, st.Reconnects, st.LastError = p.addr.String(), p.reason, p.reconnects, p.lastErr
	st.TLS = t.tlsDial
	if p.useTCP {
		st.Transport = "tcp"
		if p.dialing {
			st.State = "connecting"
		}
		if p.stream != nil {
			st.State = "connected"
			st.Via = p.stream.RemoteAddr().String()
			st.UpSeconds = int64(time.Since(p.since).Seconds())
		}
	}
	return st
}

func addrOf(a net.Addr) netip.Addr { return addrPortOf(a).Addr() }

func addrPortOf(a net.Addr) netip.AddrPort {
	if ta, ok := a.(*net.TCPAddr); ok {
		ap := ta.AddrPort()
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	return netip.AddrPort{}
}

// tcpSender sends each ESP packet over its peer's stream when the peer is
// a TCP peer, and the rest through the UDP/raw sockets. Without TCP peers
// (the usual case) a batch goes through unchanged after one atomic load;
// otherwise packets are split into reused slices, one run per stream, so
// sending does not allocate once they have grown.
type tcpSender struct {
	t   *tcpTransport
	udp interface {
		Send([]conn.OutPacket) (int, error)
	}
	rest []conn.OutPacket
	run  []conn.OutPacket
}

func (s *tcpSender) Send(pkts []conn.OutPacket) (int, error) {
	r := s.t.routes.Load()
	if r.empty() {
		return s.udp.Send(pkts)
	}
	s.rest, s.run = s.rest[:0], s.run[:0]
	var (
		cur  *tcpencap.Stream
		sent int
		errs []error
	)
	flush := func() {
		if len(s.run) == 0 {
			return
		}
		n, err := cur.Send(s.run)
		sent += n
		if err != nil {
			errs = append(errs, err)
		}
		clear(s.run)
		s.run = s.run[:0]
	}
	for _, p := range pkts {
		st, tcp := r.stream(p.Dst)
		switch {
		case !tcp:
			s.rest = append(s.rest, p)
		case st == nil:
			s.t.espDrops.Add(1) // the stream is being redialled
		default:
			if st != cur {
				flush()
				cur = st
			}
			s.run = append(s.run, p)
		}
	}
	flush()
	if len(s.rest) > 0 {
		n, err := s.udp.Send(s.rest)
		sent += n
		if err != nil {
			errs = append(errs, err)
		}
		clear(s.rest)
	}
	return sent, errors.Join(errs...)
}

// empty reports whether no peer uses TCP.
func (r *tcpRoutes) empty() bool {
	return r == nil || len(r.exact)+len(r.dialled)+len(r.accepted)+len(r.tcpOnly) == 0
}
