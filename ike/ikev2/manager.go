package ikev2

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
)

// Manager owns every IKE SA of the daemon. All methods are safe for
// concurrent use.
type Manager struct {
	opts  Options
	log   *slog.Logger
	clock Clock
	rt    config.RetransmitSettings

	cookies cookieJar
	wg      sync.WaitGroup
	// halfOpenRefused counts IKE_SA_INIT requests dropped because
	// Options.HalfOpenLimit half-open SAs existed; queueDrops counts
	// messages dropped because their IKE SA's event queue was full.
	halfOpenRefused atomic.Uint64
	queueDrops      atomic.Uint64

	mu       sync.Mutex
	cfg      *config.Config
	sas      map[uint64]*ikeSA  // by our SPI
	halfOpen map[halfKey]*ikeSA // responder SAs by peer address and SPIi
	status   map[string]*connState
	reqids   map[string]uint32
	nextReq  uint32
	attempts map[string]int  // keyingtries: initiations that went unanswered
	holds    map[string]bool // conns with a trap policy of dpdaction/closeaction=hold (dpd.go)
	closed   bool
}

// halfKey identifies an IKE_SA_INIT exchange before our SPI is known to
// the peer.
type halfKey struct {
	remote netip.AddrPort
	spiI   uint64
}

// connState is what Status reports for a conn.
type connState struct {
	state    State
	reason   string
	ike      ikeInfo
	children []ChildStatus
}

type ikeInfo struct {
	initiator         bool
	spiI, spiR        uint64
	local, remote     netip.AddrPort
	localID, remoteID string
	algs              string
	nat               bool
	natLocal          bool
	established       time.Time
	sa                *ikeSA
}

// NewManager checks the options and returns a Manager; call Start to bring
// up auto=start and auto=route conns.
func NewManager(opts Options) (*Manager, error) {
	if opts.Config == nil || opts.Send == nil || opts.Installer == nil {
		return nil, errors.New("ike: Options need Config, Send and Installer")
	}
	m := &Manager{
		opts:     opts,
		log:      opts.Logger,
		clock:    opts.Clock,
		rt:       opts.Retransmit,
		cfg:      opts.Config,
		sas:      map[uint64]*ikeSA{},
		halfOpen: map[halfKey]*ikeSA{},
		status:   map[string]*connState{},
		reqids:   map[string]uint32{},
		attempts: map[string]int{},
		holds:    map[string]bool{},
	}
	if m.log == nil {
		m.log = slog.Default()
	}
	if m.clock == nil {
		m.clock = realClock{}
	}
	if m.rt.Timeout <= 0 {
		m.rt.Timeout = 4e9
	}
	if m.rt.Base < 1 {
		m.rt.Base = 1.8
	}
	if m.rt.Tries <= 0 {
		m.rt.Tries = 5
	}
	if m.opts.CookieThreshold == 0 {
		m.opts.CookieThreshold = DefaultCookieThreshold
	}
	if m.opts.HalfOpenTimeout <= 0 {
		m.opts.HalfOpenTimeout = DefaultHalfOpenTimeout
	}
	if m.opts.HalfOpenLimit <= 0 {
		m.opts.HalfOpenLimit = MaxHalfOpen
	}
	return m, nil
}

// Counters are the Manager's figures about its IKE SAs and the requests
// it turned away, for the daemon's status (denial-of-service visibility).
type Counters struct {
	// IKESAs is the number of IKE SAs, half-open ones included.
	IKESAs int
	// HalfOpen is the number of responder IKE SAs that have not completed
	// IKE_AUTH; HalfOpenLimit the most that are kept.
	HalfOpen, HalfOpenLimit int
	// CookiesSent counts COOKIE notifies sent in answer to IKE_SA_INIT
	// requests (RFC 7296 §2.6).
	CookiesSent uint64
	// HalfOpenRefused counts IKE_SA_INIT requests dropped unanswered
	// because HalfOpenLimit half-open SAs existed.
	HalfOpenRefused uint64
	// QueueDrops counts IKE messages dropped because the event queue of
	// their IKE SA was full (the peer retransmits them).
	QueueDrops uint64
}

// Counters returns the current figures; they count from the Manager's
// start.
func (m *Manager) Counters() Counters {
	m.mu.Lock()
	c := Counters{IKESAs: len(m.sas), HalfOpen: len(m.halfOpen), HalfOpenLimit: m.opts.HalfOpenLimit}
	m.mu.Unlock()
	c.CookiesSent = m.cookies.issued.Load()
	c.HalfOpenRefused = m.halfOpenRefused.Load()
	c.QueueDrops = m.queueDrops.Load()
	return c
}

// deliver hands a received message to its IKE SA's loop without waiting,
// counting it when the loop's queue is full (not when the SA is gone: that
// is an ordinary message for an SA that just ended).
func (m *Manager) deliver(sa *ikeSA, ev func()) {
	if sa.tryPost(ev) {
		return
	}
	select {
	case <-sa.done:
	default:
		m.queueDrops.Add(1)
		m.log.Debug("IKE SA event queue full: message dropped", "remote", sa.remote)
	}
}

// ikev2Conns are the conns this package negotiates (ikev2 or "ike"), not
// ignored.
func ikev2(c config.Conn) bool { return c.Version != config.IKEv1 && c.Auto != config.AutoIgnore }

// Start initiates every auto=start conn and installs the trap policies of
// every auto=route conn.
func (m *Manager) Start() {
	m.mu.Lock()
	cfg := m.cfg
	m.mu.Unlock()
	for _, c := range cfg.Conns() {
		if !ikev2(c) {
			continue
		}
		switch c.Auto {
		case config.AutoStart:
			if err := m.Up(c.Name); err != nil {
				m.log.Warn("cannot initiate", "conn", c.Name, "err", err)
			}
		case config.AutoRoute:
			if err := m.opts.Installer.InstallTrap(c); err != nil {
				m.log.Warn("cannot install trap policy", "conn", c.Name, "err", err)
			}
		}
	}
}

func randomSPI() uint64 {
	var b [8]byte
	for {
		rand.Read(b[:])
		if s := binary.BigEndian.Uint64(b[:]); s != 0 {
			return s
		}
	}
}

func (m *Manager) reqid(c config.Conn) uint32 {
	if c.ReqID != 0 {
		return c.ReqID
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if r, ok := m.reqids[c.Name]; ok {
		return r
	}
	m.nextReq++
	r := 0x10000 + m.nextReq // above hand-written reqids
	m.reqids[c.Name] = r
	return r
}

// newSA creates an IKE SA, registers it and starts its loop.
func (m *Manager) newSA(initiator bool, local, remote netip.AddrPort) (*ikeSA, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errors.New("ike: manager closed")
	}
	sa := &ikeSA{
		m:          m,
		events:     make(chan func(), 64),
		done:       make(chan struct{}),
		initiator:  initiator,
		local:      local,
		remote:     remote,
		remoteAddr: remote.Addr().Unmap(),
		conns:      map[string]bool{},
	}
	spi := randomSPI()
	for m.sas[spi] != nil {
		spi = randomSPI()
	}
	if initiator {
		sa.spiI = spi
	} else {
		sa.spiR = spi
	}
	sa.log = m.log.With("ike_spi", fmt.Sprintf("%016x", spi))
	m.sas[spi] = sa
	m.wg.Add(1)
	go sa.run()
	return sa, nil
}

func (m *Manager) unregister(sa *ikeSA) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.sas[sa.ourSPI()] == sa {
		delete(m.sas, sa.ourSPI())
	}
	if !sa.initiator {
		k := halfKey{sa.remoteInit, sa.spiI}
		if m.halfOpen[k] == sa {
			delete(m.halfOpen, k)
		}
	}
	for name, st := range m.status {
		if st.ike.sa != sa {
			continue
		}
		st.ike = ikeInfo{}
		st.children = nil
		if !sa.failed && (st.state == StateEstablished || st.state == StateConnecting) {
			st.state = StateDown
		}
		_ = name
	}
	sa.peerConn = nil
}

// setPeerConn records (or with nil, withdraws) the conn whose peer an IKE
// SA serves, so that Up can add CHILD SAs of conns with the same peer to it.
func (m *Manager) setPeerConn(sa *ikeSA, c *config.Conn) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c != nil {
		cc := c.Clone()
		c = &cc
	}
	sa.peerConn = c
}

// sameIdentities lists the other IKE SAs authenticated with the same pair
// of IDs (for INITIAL_CONTACT, RFC 7296 §2.4).
func (m *Manager) sameIdentities(sa *ikeSA, key string) []*ikeSA {
	m.mu.Lock()
	defer m.mu.Unlock()
	sa.peerKey = key
	var out []*ikeSA
	for _, o := range m.sas {
		if o != sa && o.peerKey == key {
			out = append(out, o)
		}
	}
	return out
}

// hasPeerSA reports whether another IKE SA serves the same peer as c.
func (m *Manager) hasPeerSA(sa *ikeSA, c config.Conn) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range m.sas {
		if o != sa && o.peerConn != nil && samePeer(*o.peerConn, c) {
			return true
		}
	}
	return false
}

// halfOpenCount is the number of responder SAs that have not completed
// IKE_AUTH.
func (m *Manager) halfOpenCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.halfOpen)
}

func (m *Manager) leaveHalfOpen(sa *ikeSA) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k := halfKey{sa.remoteInit, sa.spiI}
	if m.halfOpen[k] == sa {
		delete(m.halfOpen, k)
	}
}

func (m *Manager) st(name string) *connState {
	s := m.status[name]
	if s == nil {
		s = &connState{state: StateDown}
		m.status[name] = s
	}
	return s
}

func (m *Manager) setFailed(name string, state State, reason string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.st(name)
	s.state, s.reason = state, reason
}

func (m *Manager) setState(name string, state State) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.st(name)
	s.state = state
	if state == StateEstablished {
		s.reason = ""
	}
}

func (m *Manager) setIKE(name string, info ikeInfo, children []ChildStatus) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.st(name)
	s.ike, s.children = info, children
}

// HandlePacket takes one received IKE datagram (without the non-ESP marker)
// that arrived at local from remote. It copies pkt and hands it to the event
// loop of its IKE SA; it never waits for processing.
func (m *Manager) HandlePacket(local, remote netip.AddrPort, pkt []byte) {
	h, _, err := message.ParseHeader(pkt)
	if err != nil {
		m.log.Debug("not an IKEv2 message", "remote", remote, "err", err)
		return
	}
	if !local.Addr().IsValid() || local.Addr().IsUnspecified() {
		// A wildcard socket that could not tell the destination address:
		// NAT detection and conn matching need a real one.
		for _, a := range m.opts.LocalAddrs {
			if a.Is4() == remote.Addr().Unmap().Is4() {
				local = netip.AddrPortFrom(a, local.Port())
				break
			}
		}
	}
	buf := append([]byte(nil), pkt[:h.Length]...)
	// Our SPI is the initiator's when the sender is the responder.
	ours := h.SPIr
	if !h.IsInitiator() {
		ours = h.SPIi
	}
	if h.Exchange == message.IKE_SA_INIT && !h.IsResponse() && h.SPIr == 0 && h.MessageID == 0 {
		m.handleInitRequest(local, remote, h, buf)
		return
	}
	m.mu.Lock()
	sa := m.sas[ours]
	m.mu.Unlock()
	if sa == nil {
		m.log.Debug("message for unknown IKE SA dropped", "remote", remote, "spi", fmt.Sprintf("%016x", ours), "exchange", h.Exchange)
		return
	}
	m.deliver(sa, func() { sa.handle(local, remote, buf) })
}

// handleInitRequest routes an IKE_SA_INIT request: a retransmission goes
// to the half-open SA it created; above the cookie threshold a request
// without a valid cookie is answered statelessly; otherwise a responder SA
// is created.
func (m *Manager) handleInitRequest(local, remote netip.AddrPort, h message.Header, buf []byte) {
	m.mu.Lock()
	sa := m.halfOpen[halfKey{remote, h.SPIi}]
	closed := m.closed
	m.mu.Unlock()
	if closed {
		return
	}
	if sa != nil {
		m.deliver(sa, func() { sa.handle(local, remote, buf) })
		return
	}
	if m.halfOpenCount() >= m.opts.HalfOpenLimit {
		m.refuseHalfOpen(remote)
		return
	}
	if m.needCookie(remote.Addr()) {
		msg, _, err := message.ParseMessage(buf)
		if err != nil {
			return
		}
		ns := notifies(msg.Payloads)
		np, ok := payload(msg.Payloads, message.PayloadNonce)
		if !ok {
			return
		}
		c, has := findNotify(ns, message.COOKIE)
		if !has || !m.cookies.valid(m.clock.Now(), c.Data, np.Body, remote.Addr(), h.SPIi) {
			cookie := m.cookies.make(m.clock.Now(), np.Body, remote.Addr(), h.SPIi)
			rh := message.Header{SPIi: h.SPIi, MajorVersion: 2, Exchange: message.IKE_SA_INIT, Flags: message.FlagResponse}
			rsp := message.AppendMessage(nil, rh, message.Notify{Type: message.COOKIE, Data: cookie})
			m.log.Debug("half-open SAs above threshold: asking for a cookie", "remote", remote)
			m.cookies.issued.Add(1)
			if err := m.opts.Send(local, remote, rsp); err != nil {
				m.log.Debug("send failed", "err", err)
			}
			return
		}
	}
	sa, err := m.newSA(false, local, remote)
	if err != nil {
		return
	}
	sa.spiI = h.SPIi
	sa.remoteInit = remote
	m.mu.Lock()
	// Checked again under the lock: two receive goroutines (IPv4, IPv6)
	// may both have passed the first check.
	full := len(m.halfOpen) >= m.opts.HalfOpenLimit
	if !full {
		m.halfOpen[halfKey{remote, h.SPIi}] = sa
	}
	m.mu.Unlock()
	if full {
		m.refuseHalfOpen(remote)
		sa.post(sa.destroy)
		return
	}
	sa.post(func() {
		sa.armHalfOpen()
		sa.handle(local, remote, buf)
		if sa.state == saInit {
			// The request was dropped without an answer: no state kept.
			sa.destroy()
		}
	})
}

// refuseHalfOpen counts and logs an IKE_SA_INIT request dropped at the
// half-open limit. The log is at debug level: in a flood it would be one
// line per packet.
func (m *Manager) refuseHalfOpen(remote netip.AddrPort) {
	m.halfOpenRefused.Add(1)
	m.log.Debug("half-open IKE SA limit reached: IKE_SA_INIT dropped", "remote", remote, "limit", m.opts.HalfOpenLimit)
}

// localAddr picks our address for a conn.
func (m *Manager) localAddr(c config.Conn) (netip.Addr, error) {
	if c.Local.Addr.IsValid() && !c.Local.Addr.IsUnspecified() {
		return c.Local.Addr, nil
	}
	for _, a := range m.opts.LocalAddrs {
		if a.Is4() == c.Remote.Addr.Is4() {
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("conn %s: no local address of the family of %s (set left=)", c.Name, c.Remote.Addr)
}

// samePeer reports whether a CHILD SA of conn b may be negotiated under an
// IKE SA created for conn a: same peer, same IDs and IKE settings (the way
// strongSwan merges ipsec.conf conns into one peer config).
func samePeer(a, b config.Conn) bool {
	if a.Remote.Addr != b.Remote.Addr || !a.Local.ID.Equal(b.Local.ID) || !a.Remote.ID.Equal(b.Remote.ID) {
		return false
	}
	if len(a.IKE) != len(b.IKE) {
		return false
	}
	for i := range a.IKE {
		if !a.IKE[i].Equal(b.IKE[i]) {
			return false
		}
	}
	return a.Local.Auth == b.Local.Auth && a.Remote.Auth == b.Remote.Auth
}

// Up initiates a conn: a CHILD SA under an established IKE SA with the same
// peer when there is one, otherwise a new IKE SA with its first CHILD SA.
func (m *Manager) Up(name string) error {
	m.mu.Lock()
	c, ok := m.cfg.Conn(name)
	if !ok {
		m.mu.Unlock()
		return fmt.Errorf("ike: no conn %q", name)
	}
	var shared *ikeSA
	for _, sa := range m.sas {
		if sa.peerConn != nil && samePeer(*sa.peerConn, c) {
			shared = sa
			break
		}
	}
	m.mu.Unlock()
	if !c.Remote.Addr.IsValid() && !c.Remote.IsAny() && !strings.HasPrefix(c.Remote.Host, "%") {
		a, err := m.resolve(c.Remote.Host)
		if err != nil {
			m.setFailed(name, StatePhase1Failed, err.Error())
			return err
		}
		c.Remote.Addr = a
		if shared == nil {
			m.mu.Lock()
			for _, sa := range m.sas {
				if sa.peerConn != nil && samePeer(*sa.peerConn, c) {
					shared = sa
					break
				}
			}
			m.mu.Unlock()
		}
	}
	if !c.Remote.Addr.IsValid() || c.Remote.Addr.IsUnspecified() {
		return fmt.Errorf("ike: conn %q has right=%s: cannot initiate to an unknown peer", name, c.Remote.Host)
	}
	if c.Version == config.IKEv1 {
		return fmt.Errorf("ike: conn %q is IKEv1", name)
	}
	m.setState(name, StateConnecting)
	if shared != nil {
		if shared.post(func() { shared.upChild(c) }) {
			return nil
		}
	}
	la, err := m.localAddr(c)
	if err != nil {
		m.setFailed(name, StatePhase1Failed, err.Error())
		return err
	}
	sa, err := m.newSA(true, netip.AddrPortFrom(la, 500), netip.AddrPortFrom(c.Remote.Addr, 500))
	if err != nil {
		return err
	}
	m.setPeerConn(sa, &c)
	sa.post(func() { sa.startInitiator(c) })
	return nil
}

// Acquire is called by the dataplane when traffic hits the trap policy of
// an auto=route conn: it initiates unless the conn is already up or being
// negotiated.
func (m *Manager) Acquire(name string) {
	m.mu.Lock()
	s := m.status[name]
	busy := s != nil && (s.state == StateConnecting || s.state == StateEstablished)
	m.mu.Unlock()
	if busy {
		return
	}
	if err := m.Up(name); err != nil {
		m.log.Warn("acquire", "conn", name, "err", err)
	}
}

// Down deletes the conn's CHILD SAs, and its IKE SA when that serves no
// other conn.
func (m *Manager) Down(name string) error {
	var sas []*ikeSA
	m.mu.Lock()
	for _, sa := range m.sas {
		sas = append(sas, sa)
	}
	m.mu.Unlock()
	found := false
	for _, sa := range sas {
		done := make(chan bool, 1)
		if !sa.post(func() { done <- sa.downConn(name) }) {
			continue
		}
		select {
		case ok := <-done:
			found = found || ok
		case <-sa.done:
			// The SA may have finished (e.g. our DELETE was answered at
			// once) after answering: both channels are ready then.
			select {
			case ok := <-done:
				found = found || ok
			default:
			}
		}
	}
	m.setFailed(name, StateDown, "")
	// Brought down on purpose: traffic must not bring it back through a
	// trap policy of dpdaction/closeaction=hold.
	if m.held(name) {
		m.releaseHold(name)
		found = true
	}
	if !found {
		return fmt.Errorf("ike: conn %q has no SA", name)
	}
	return nil
}

// Status reports every IKEv2 conn, in configuration order.
func (m *Manager) Status() []ConnStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []ConnStatus
	for _, c := range m.cfg.Conns() {
		if c.Version == config.IKEv1 {
			continue
		}
		cs := ConnStatus{Name: c.Name, State: StateDown}
		if s := m.status[c.Name]; s != nil {
			cs.State, cs.Reason = s.state, s.reason
			i := s.ike
			cs.Initiator, cs.SPIi, cs.SPIr = i.initiator, i.spiI, i.spiR
			cs.Local, cs.Remote, cs.LocalID, cs.RemoteID = i.local, i.remote, i.localID, i.remoteID
			cs.IKEAlgorithms, cs.NATDetected, cs.Established = i.algs, i.nat, i.established
			cs.NATLocal = i.natLocal
			cs.Children = append([]ChildStatus(nil), s.children...)
		}
		out = append(out, cs)
	}
	return out
}

// ReloadConfig switches to a new configuration: SAs of conns that are gone
// are taken down, trap policies follow auto=route; established SAs of
// remaining conns are left alone.
func (m *Manager) ReloadConfig(cfg *config.Config) {
	m.mu.Lock()
	old := m.cfg
	m.cfg = cfg
	m.mu.Unlock()
	for _, c := range old.Conns() {
		nc, ok := cfg.Conn(c.Name)
		if c.Auto == config.AutoRoute && (!ok || nc.Auto != config.AutoRoute) {
			if err := m.opts.Installer.RemoveTrap(c.Name); err != nil {
				m.log.Warn("removing trap", "conn", c.Name, "err", err)
			}
		}
		if !ok {
			_ = m.Down(c.Name)
			m.mu.Lock()
			delete(m.status, c.Name)
			m.mu.Unlock()
		}
		if ok && nc.Auto == config.AutoRoute {
			// Its trap is now the auto=route one: not ours to remove.
			m.mu.Lock()
			delete(m.holds, c.Name)
			m.mu.Unlock()
		}
	}
	for _, c := range cfg.Conns() {
		oc, ok := old.Conn(c.Name)
		if c.Auto == config.AutoRoute && ikev2(c) && (!ok || oc.Auto != config.AutoRoute) {
			if err := m.opts.Installer.InstallTrap(c); err != nil {
				m.log.Warn("installing trap", "conn", c.Name, "err", err)
			}
		}
		if c.Auto == config.AutoStart && ikev2(c) && !ok {
			_ = m.Up(c.Name)
		}
	}
}

// Close sends a DELETE for every IKE SA, waits for the answers until ctx is
// done, then removes every CHILD SA and trap policy and stops all loops.
func (m *Manager) Close(ctx context.Context) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	var sas []*ikeSA
	for _, sa := range m.sas {
		sas = append(sas, sa)
	}
	cfg := m.cfg
	m.mu.Unlock()
	for _, sa := range sas {
		sa.post(func() { sa.deleteIKE("daemon shutting down") })
	}
	for _, sa := range sas {
		select {
		case <-sa.done:
		case <-ctx.Done():
		}
	}
	for _, sa := range sas {
		sa.post(func() { sa.destroy() })
	}
	for _, c := range cfg.Conns() {
		if c.Auto == config.AutoRoute && ikev2(c) {
			if err := m.opts.Installer.RemoveTrap(c.Name); err != nil {
				m.log.Warn("removing trap", "conn", c.Name, "err", err)
			}
		}
	}
	m.mu.Lock()
	var held []string
	for n := range m.holds {
		held = append(held, n)
	}
	m.mu.Unlock()
	for _, n := range held {
		m.releaseHold(n)
	}
	m.wg.Wait()
	return ctx.Err()
}

// ReportInvalidSPI is called by the dataplane when ESP arrives from remote
// with an SPI it does not know. If an established IKE SA with that peer
// exists, the peer is told with an INVALID_SPI notification (RFC 7296
// §2.21.4), at most once per SA every InvalidSPIInterval so that a stream
// of stray packets does not become a stream of IKE messages.
func (m *Manager) ReportInvalidSPI(remote netip.Addr, spi uint32) {
	m.mu.Lock()
	var target *ikeSA
	for _, sa := range m.sas {
		if sa.peerConn != nil && sa.remoteAddr == remote.Unmap() {
			target = sa
			break
		}
	}
	m.mu.Unlock()
	if target == nil {
		return
	}
	target.tryPost(func() {
		now := m.clock.Now()
		if target.state != saEstablished || (!target.lastInvalidSPI.IsZero() && now.Sub(target.lastInvalidSPI) < InvalidSPIInterval) {
			return
		}
		target.lastInvalidSPI = now
		target.enqueue(&infoTask{payloads: []message.Payload{message.Notify{Protocol: message.ProtoESP, Type: message.INVALID_SPI, Data: spiBytes(spi)}}})
	})
}

// keyingAttempt counts one more unanswered initiation of a conn and
// returns how many there were before it, counting the first as 1.
func (m *Manager) keyingAttempt(name string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.attempts[name]++
	return m.attempts[name]
}

func (m *Manager) resetKeying(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.attempts, name)
}

// resolve looks up a peer given by name (right=vpn.example.com), preferring
// the address family of our own addresses.
func (m *Manager) resolve(host string) (netip.Addr, error) {
	ctx, cancel := context.WithTimeout(context.Background(), DNSTimeout)
	defer cancel()
	addrs, err := net.DefaultResolver.LookupNetIP(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return netip.Addr{}, fmt.Errorf("cannot resolve the peer %q: %v", host, err)
	}
	for _, a := range addrs {
		for _, l := range m.opts.LocalAddrs {
			if a.Unmap().Is4() == l.Is4() {
				return a.Unmap(), nil
			}
		}
	}
	return addrs[0].Unmap(), nil
}
