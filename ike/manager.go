package ike

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
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev1"
	"github.com/ipsecgw/ipsecgw/ike/ikev1/isakmp"
	"github.com/ipsecgw/ipsecgw/ike/ikev2"
	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
	"github.com/ipsecgw/ipsecgw/ike/shared"
)

// Options configure a Manager.
type Options struct {
	// Config holds the connections and the PSKs. Required.
	Config *config.Config
	// Send transmits one IKE message. local is the address and port it must
	// leave from (port 500, or 4500 once NAT-T is in use: the caller then
	// prepends the non-ESP marker), remote where it goes. It must not keep
	// pkt after returning and must not block for long. Required.
	Send func(local, remote netip.AddrPort, pkt []byte) error
	// Installer receives negotiated CHILD SAs and trap policies. Required.
	Installer ChildInstaller
	// Clock provides time and timers; nil means the real clock.
	Clock Clock
	// Logger receives the log; nil means slog.Default().
	Logger *slog.Logger
	// Retransmit sets retransmission timing; zero fields take strongSwan's
	// defaults (4 s, ×1.8, 5 tries).
	Retransmit shared.Retransmit
	// LocalAddrs are the host's addresses. They pick the local address of
	// conns whose local end is %any/%defaultroute, and which conns a
	// responder may use for a request arriving on an address.
	LocalAddrs []netip.Addr
	// CookieThreshold is the number of half-open responder IKE SAs from
	// which IKE_SA_INIT requests must carry a COOKIE (RFC 7296 §2.6);
	// 0 means DefaultCookieThreshold, a negative value disables cookies.
	CookieThreshold int
	// CookieThresholdIP is the number of half-open responder IKE SAs from
	// one peer address from which that address must send a COOKIE, even
	// while the total is below CookieThreshold; 0 means
	// DefaultCookieThresholdIP, a negative value disables this check.
	CookieThresholdIP int
	// HalfOpenTimeout is how long a responder keeps an IKE SA that never
	// completed IKE_AUTH; 0 means DefaultHalfOpenTimeout (strongSwan's 30 s).
	HalfOpenTimeout time.Duration
	// HalfOpenLimit is the most half-open responder IKE SAs kept at once;
	// further IKE_SA_INIT requests are dropped unanswered and counted
	// (Counters.HalfOpenRefused). 0 means MaxHalfOpen.
	HalfOpenLimit int
	// KeyingRetryInterval: when an auto=start conn has used up its
	// keyingtries without an answer, try once more every interval instead
	// of giving up (0, the default, gives up as strongSwan does).
	KeyingRetryInterval time.Duration
	// FragmentSize is the largest IP datagram of an IKE message we send to
	// a peer that supports IKE fragmentation (RFC 7383); larger messages go
	// out as fragments. 0 means DefaultFragmentSize.
	FragmentSize int
	// Encapsulation chooses between raw ESP and ESP in UDP (RFC 3948) when
	// no NAT forces UDP; the zero value is EncapNAT, RFC 7296's behaviour.
	Encapsulation Encapsulation
}

// Defaults of Options fields left zero.
const (
	DefaultCookieThreshold = 30 // strongSwan 5.9 charon.cookie_threshold
	// DefaultCookieThresholdIP is strongSwan 5.9's charon.cookie_threshold_ip.
	DefaultCookieThresholdIP = 3
	DefaultHalfOpenTimeout   = 30 * time.Second
	// MaxHalfOpen is the default of Options.HalfOpenLimit: IKE_SA_INIT
	// requests beyond it are dropped (cookies normally stop floods first).
	MaxHalfOpen = 10000
	// DefaultFragmentSize is the largest IP datagram an IKE fragment may
	// fill (strongSwan's charon.fragment_size).
	DefaultFragmentSize = ikev2.DefaultFragmentSize
	// DNSTimeout bounds the lookup of a peer given by name.
	DNSTimeout = 5 * time.Second
)

// Manager owns every IKE SA of the daemon. All methods are safe for
// concurrent use.
type Manager struct {
	opts  Options
	log   *slog.Logger
	clock Clock
	v1    *ikev1.Engine
	v2    *ikev2.Engine

	wg sync.WaitGroup
	// drops counts received messages dropped, by reason, for both engines
	// (the half-open limit and full IKE SA queues among them).
	drops *shared.Drops

	mu       sync.Mutex
	cfg      *config.Config
	conns    []*config.Conn        // cfg's own conns (SharedConns), shared by the SAs (Host.Candidates); never written
	sas      map[uint64]*entry     // by our SPI
	entries  map[shared.SA]*entry  // the same, by handle
	halfOpen map[halfKey]*entry    // responder SAs by peer endpoint and SPIi
	status   map[string]*connState // by conn name
	reqids   map[string]uint32
	nextReq  uint32
	attempts map[string]int  // keyingtries: initiations that went unanswered
	refused  map[string]int  // keyingtries=%forever: initiations refused in a row (refusedRetry)
	holds    map[string]bool // conns with a trap policy of dpdaction/closeaction=hold
	subs     []*Subscription
	closed   bool
	// deleted holds, by our SPI, the answered DELETEs of IKE SAs the peer
	// ended, for their retransmissions (deleted.go); deletedOrder is their
	// arrival order.
	deleted      map[uint64]*deletedAnswer
	deletedOrder []uint64

	// byIDs holds the authenticated SAs by their local|remote ID pair
	// (entry.ids), so that establishing an SA finds the others of its
	// pair (INITIAL_CONTACT, Host.Authenticated) without a walk over all
	// SAs: a burst of N setups would otherwise cost N² comparisons.
	byIDs map[string][]*entry
	// byPeer holds the SAs serving a conn's peer (entry.peerConn set) by
	// that conn's version and configured remote address, the fields
	// samePeer compares first: finding the SA that serves a peer (Up of
	// each of thousands of conns, INITIAL_CONTACT) looks at these only.
	byPeer map[servedPeer][]*entry
	// servingFrom holds the same SAs by the peer's actual address
	// (entry.remote), for the dataplane's reports of unknown SPIs.
	servingFrom map[netip.Addr][]*entry
}

// entry is the Manager's record of one IKE SA.
type entry struct {
	sa        shared.SA
	spi       uint64 // ours
	initiator bool
	remote    netip.Addr // the peer's address, fixed at creation
	// peerConn is the conn whose peer the SA serves (nil while it cannot
	// take new CHILD SAs); ids the authenticated local|remote ID pair.
	peerConn *config.Conn
	ids      string
	half     *halfKey // set while the SA is half-open
}

// halfKey identifies an IKE_SA_INIT exchange before our SPI is known to
// the peer.
type halfKey struct {
	remote netip.AddrPort
	spiI   uint64
}

// NewManager checks the options and returns a Manager; call Start to bring
// up auto=start and auto=route conns.
func NewManager(opts Options) (*Manager, error) {
	if opts.Config == nil || opts.Send == nil || opts.Installer == nil {
		return nil, errors.New("ike: Options need Config, Send and Installer")
	}
	m := &Manager{
		opts:        opts,
		log:         opts.Logger,
		clock:       opts.Clock,
		cfg:         opts.Config,
		sas:         map[uint64]*entry{},
		entries:     map[shared.SA]*entry{},
		halfOpen:    map[halfKey]*entry{},
		status:      map[string]*connState{},
		reqids:      map[string]uint32{},
		attempts:    map[string]int{},
		refused:     map[string]int{},
		holds:       map[string]bool{},
		byIDs:       map[string][]*entry{},
		byPeer:      map[servedPeer][]*entry{},
		servingFrom: map[netip.Addr][]*entry{},
	}
	m.conns = opts.Config.SharedConns()
	if m.log == nil {
		m.log = slog.Default()
	}
	if m.clock == nil {
		m.clock = shared.RealClock{}
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
	m.drops = shared.NewDrops(m.clock)
	v2, err := ikev2.NewEngine(ikev2.Config{
		Host: (*host)(m), Send: opts.Send, Installer: opts.Installer, Clock: m.clock, Logger: m.log, Drops: m.drops,
		Retransmit: opts.Retransmit, Encapsulation: opts.Encapsulation, FragmentSize: opts.FragmentSize,
		HalfOpenTimeout: m.opts.HalfOpenTimeout,
	})
	if err != nil {
		return nil, err
	}
	m.v2 = v2
	v1, err := ikev1.NewEngine(ikev1.Config{
		Host: (*host)(m), Send: opts.Send, Installer: opts.Installer, Clock: m.clock, Logger: m.log, Drops: m.drops,
		Retransmit: opts.Retransmit, Encapsulation: opts.Encapsulation, HalfOpenTimeout: m.opts.HalfOpenTimeout,
	})
	if err != nil {
		return nil, err
	}
	m.v1 = v1
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
	// Drops counts every received IKE message dropped without being acted
	// on, by reason (HalfOpenRefused and QueueDrops are two of them).
	Drops [shared.NumDropReasons]uint64
}

// Counters returns the current figures; they count from the Manager's
// start.
func (m *Manager) Counters() Counters {
	m.mu.Lock()
	c := Counters{IKESAs: len(m.sas), HalfOpen: len(m.halfOpen), HalfOpenLimit: m.opts.HalfOpenLimit}
	m.mu.Unlock()
	c.CookiesSent = m.v2.CookiesSent()
	c.Drops = m.drops.Snapshot()
	c.HalfOpenRefused = c.Drops[shared.DropHalfOpenLimit]
	c.QueueDrops = c.Drops[shared.DropQueueFull]
	return c
}

// deliver hands a received message to its IKE SA's loop (inline: in the
// caller's goroutine when the loop is idle, see ProcessPacket), counting
// it when the loop's queue is full (not when the SA is gone: that is an
// ordinary message for an SA that just ended).
func (m *Manager) deliver(sa shared.SA, local, remote netip.AddrPort, pkt []byte, inline bool) {
	if sa.Deliver(local, remote, pkt, inline) {
		return
	}
	select {
	case <-sa.Done():
	default:
		m.drops.Drop(m.log, shared.DropQueueFull, "IKE SA event queue full: message dropped", "remote", remote)
	}
}

// negotiates reports whether conn c is one the Manager negotiates: every
// conn that is not ignored (each IKE version has its engine).
func negotiates(c config.Conn) bool { return c.Auto != config.AutoIgnore }

// Start initiates every auto=start conn and installs the trap policies of
// every auto=route conn.
func (m *Manager) Start() {
	for _, c := range m.config().Conns() {
		if !negotiates(c) {
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

// sharedConn is the conn called name as the SAs share it: the Config's
// own (a responder SA used to keep a copy of its conn, 840 bytes each, and
// a hub's thousands of SAs all have the same one; the Manager kept a
// second copy of every conn before it shared the Config's).
func (m *Manager) sharedConn(name string) (*config.Conn, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cfg.SharedConn(name)
}

func (m *Manager) sharedConns() []*config.Conn {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.conns
}

func (m *Manager) config() *config.Config {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cfg
}

// HandlePacket takes one received IKE datagram (without the non-ESP marker)
// that arrived at local from remote. It copies pkt and hands it to the event
// loop of its IKE SA, of either version (the ISAKMP header's major version
// tells them apart, RFC 7296 §2.5); it never waits for processing.
func (m *Manager) HandlePacket(local, remote netip.AddrPort, pkt []byte) {
	m.receive(local, remote, pkt, false)
}

// ProcessPacket is HandlePacket for a receive loop that can lend its
// goroutine: when the IKE SA the message is for has no event running,
// the message is processed in the caller before ProcessPacket returns.
// That spares handing it to a new goroutine, a wake-up of another thread
// per message, which was most of the scheduler's share of a responder's
// CPU in a burst of setups. Processing may take long (a key exchange; a
// CRL fetch for certificate authentication), so the caller must keep
// another goroutine receiving meanwhile; messages of busy SAs are queued
// as by HandlePacket.
func (m *Manager) ProcessPacket(local, remote netip.AddrPort, pkt []byte) {
	m.receive(local, remote, pkt, true)
}

func (m *Manager) receive(local, remote netip.AddrPort, pkt []byte, inline bool) {
	local = m.localFor(local, remote)
	if len(pkt) > 17 && pkt[17]>>4 == 1 {
		m.handleV1(local, remote, pkt, inline)
		return
	}
	h, _, err := message.ParseHeader(pkt)
	if err != nil {
		m.drops.Drop(m.log, shared.DropMalformed, "not an IKE message", "remote", remote, "err", err)
		return
	}
	buf := append([]byte(nil), pkt[:h.Length]...)
	// Our SPI is the initiator's when the sender is the responder.
	ours := h.SPIr
	if !h.IsInitiator() {
		ours = h.SPIi
	}
	if h.Exchange == message.IKE_SA_INIT && !h.IsResponse() && h.SPIr == 0 && h.MessageID == 0 {
		m.handleInitRequest(local, remote, h, buf, inline)
		return
	}
	m.mu.Lock()
	e := m.sas[ours]
	var gone *deletedAnswer
	if e == nil && !h.IsResponse() && h.Exchange == message.INFORMATIONAL {
		gone = m.deleted[ours]
	}
	m.mu.Unlock()
	if e == nil {
		if gone != nil && m.answerDeleted(gone, ours, remote, buf) {
			return
		}
		m.drops.Drop(m.log, shared.DropUnknownSPI, "message for unknown IKE SA dropped", "remote", remote, "spi", fmt.Sprintf("%016x", ours), "exchange", h.Exchange)
		return
	}
	m.deliver(e.sa, local, remote, buf, inline)
}

// localFor fills in the address of a wildcard socket that could not tell
// the destination address: NAT detection and conn matching need a real
// one.
func (m *Manager) localFor(local, remote netip.AddrPort) netip.AddrPort {
	if local.Addr().IsValid() && !local.Addr().IsUnspecified() {
		return local
	}
	for _, a := range m.opts.LocalAddrs {
		if a.Is4() == remote.Addr().Unmap().Is4() {
			return netip.AddrPortFrom(a, local.Port())
		}
	}
	return local
}

// handleV1 routes an IKEv1 (ISAKMP) message: to its ISAKMP SA, found by
// our cookie (the initiator's when we initiated, the responder's
// otherwise; the header has no flag saying which, so the registry's role
// decides); a first main or aggressive mode message (responder cookie
// zero) to the half-open SA it created when it is a retransmission, or
// to the engine for a new SA, within the half-open limit.
func (m *Manager) handleV1(local, remote netip.AddrPort, pkt []byte, inline bool) {
	h, _, err := isakmp.ParseHeader(pkt)
	if err != nil {
		m.drops.Drop(m.log, shared.DropMalformed, "not an IKEv1 message", "remote", remote, "err", err)
		return
	}
	buf := append([]byte(nil), pkt[:h.Length]...)
	first := h.CookieR == 0 && h.MessageID == 0 && !h.Encrypted() &&
		(h.Exchange == isakmp.ExchangeIdentityProtection || h.Exchange == isakmp.ExchangeAggressive)
	m.mu.Lock()
	e := m.sas[h.CookieI]
	if e == nil || !e.initiator {
		e = m.sas[h.CookieR]
		if e != nil && e.initiator || h.CookieR == 0 {
			e = nil
		}
	}
	if e == nil && first {
		e = m.halfOpen[halfKey{remote, h.CookieI}]
	}
	closed, full := m.closed, len(m.halfOpen) >= m.opts.HalfOpenLimit
	m.mu.Unlock()
	switch {
	case e != nil:
		m.deliver(e.sa, local, remote, buf, inline)
	case !first:
		m.drops.Drop(m.log, shared.DropUnknownSPI, "message for unknown ISAKMP SA dropped", "remote", remote, "cookies",
			fmt.Sprintf("%016x/%016x", h.CookieI, h.CookieR), "exchange", h.Exchange.String())
	case closed:
	case full:
		m.refuseHalfOpen(remote)
	default:
		m.v1.HandleNew(local, remote, h, buf)
	}
}

// handleInitRequest routes an IKE_SA_INIT request: a retransmission goes
// to the half-open SA it created; beyond the half-open limit it is
// dropped; otherwise the engine answers it, with a COOKIE request when
// the cookie thresholds say so.
func (m *Manager) handleInitRequest(local, remote netip.AddrPort, h message.Header, buf []byte, inline bool) {
	m.mu.Lock()
	e := m.halfOpen[halfKey{remote, h.SPIi}]
	closed, full := m.closed, len(m.halfOpen) >= m.opts.HalfOpenLimit
	m.mu.Unlock()
	switch {
	case closed:
	case e != nil:
		m.deliver(e.sa, local, remote, buf, inline)
	case full:
		m.refuseHalfOpen(remote)
	default:
		m.v2.HandleInitRequest(local, remote, h, buf, m.needCookie(remote.Addr()), inline)
	}
}

// needCookie reports whether an IKE_SA_INIT request from ip must carry a
// valid COOKIE before we keep state for it: when the half-open responder
// SAs reach CookieThreshold, or the half-open SAs of that one address reach
// CookieThresholdIP (strongSwan's cookie_threshold_ip), so that a single
// flooding source is made to prove its address before the global threshold
// is reached and other peers are still served without the extra round trip.
func (m *Manager) needCookie(ip netip.Addr) bool {
	if m.opts.CookieThreshold < 0 {
		return false
	}
	perIP := m.opts.CookieThresholdIP
	if perIP == 0 {
		perIP = DefaultCookieThresholdIP
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.halfOpen) >= m.opts.CookieThreshold {
		return true
	}
	if perIP < 0 {
		return false
	}
	// Below the global threshold the map holds fewer than CookieThreshold
	// entries, so this walk is short.
	n := 0
	for k := range m.halfOpen {
		if k.remote.Addr() == ip {
			n++
		}
	}
	return n >= perIP
}

// refuseHalfOpen counts and logs a request for a new SA dropped at the
// half-open limit (rate-limited: a flood would be a line per packet).
func (m *Manager) refuseHalfOpen(remote netip.AddrPort) {
	m.drops.Drop(m.log, shared.DropHalfOpenLimit, "half-open IKE SA limit reached: request dropped", "remote", remote, "limit", m.opts.HalfOpenLimit)
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
	if a.Version != b.Version || a.Remote.Addr != b.Remote.Addr || !a.Local.ID.Equal(b.Local.ID) || !a.Remote.ID.Equal(b.Remote.ID) {
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

// servingSA returns an IKE SA that serves c's peer, if any.
func (m *Manager) servingSA(c config.Conn) shared.SA {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, e := range m.byPeer[servedPeerOf(&c)] {
		if samePeer(*e.peerConn, c) {
			return e.sa
		}
	}
	return nil
}

// Up initiates a conn: a CHILD SA under an established IKE SA with the same
// peer when there is one, otherwise a new IKE SA with its first CHILD SA.
func (m *Manager) Up(name string) error {
	sc, ok := m.sharedConn(name)
	if !ok {
		return fmt.Errorf("ike: no conn %q", name)
	}
	// The new IKE SA shares the Manager's copy of the conn, unless the
	// peer's name had to be resolved: then it gets one with the address.
	c := *sc
	if !c.Remote.Addr.IsValid() && !c.Remote.IsAny() && !strings.HasPrefix(c.Remote.Host, "%") {
		a, err := m.resolve(c.Remote.Host)
		if err != nil {
			m.emit(shared.Failure{Conn: name, State: StatePhase1Failed, Cause: shared.CauseResolve, Text: err.Error()})
			return err
		}
		c.Remote.Addr = a
		sc = &c
	}
	if !c.Remote.Addr.IsValid() || c.Remote.Addr.IsUnspecified() {
		return fmt.Errorf("ike: conn %q has right=%s: cannot initiate to an unknown peer", name, c.Remote.Host)
	}
	if sa := m.servingSA(c); sa != nil && sa.AddChild(c) {
		return nil // the SA reports Initiating unless the CHILD SA is up or on its way
	}
	m.emit(shared.Initiating{Conn: name})
	la, err := m.localAddr(c)
	if err != nil {
		m.emit(shared.Failure{Conn: name, State: StatePhase1Failed, Cause: shared.CauseConfig, Text: err.Error()})
		return err
	}
	from, to := netip.AddrPortFrom(la, 500), netip.AddrPortFrom(c.Remote.Addr, 500)
	if c.Version.Initiates() == config.IKEv1 {
		_, err = m.v1.Initiate(c, from, to)
	} else {
		_, err = m.v2.Initiate(sc, from, to)
	}
	return err
}

// Acquire is called by the dataplane when traffic hits the trap policy of
// an auto=route conn: it initiates unless the conn is already up or being
// negotiated.
func (m *Manager) Acquire(name string) {
	m.mu.Lock()
	s := m.status[name]
	busy := s != nil && (s.State == StateConnecting || s.State == StateEstablished)
	m.mu.Unlock()
	if busy {
		return
	}
	if err := m.Up(name); err != nil {
		m.log.Warn("acquire", "conn", name, "err", err)
	}
}

// allSAs is a snapshot of the registry's handles.
func (m *Manager) allSAs() []shared.SA {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]shared.SA, 0, len(m.sas))
	for _, e := range m.sas {
		out = append(out, e.sa)
	}
	return out
}

// Down deletes the conn's CHILD SAs, and its IKE SA when that serves no
// other conn.
func (m *Manager) Down(name string) error {
	// Said first, so that the SAs' ends read as what follows from it.
	m.emit(shared.Failure{Conn: name, State: StateDown, Cause: shared.CauseAdmin})
	found := false
	for _, sa := range m.allSAs() {
		if sa.DownConn(name) {
			found = true
		}
	}
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

// ReloadConfig switches to a new configuration: SAs of conns that are gone
// are taken down, trap policies follow auto=route; established SAs of
// remaining conns are left alone.
func (m *Manager) ReloadConfig(cfg *config.Config) {
	m.mu.Lock()
	old := m.cfg
	m.cfg = cfg
	m.conns = cfg.SharedConns()
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
		if c.Auto == config.AutoRoute && negotiates(c) && (!ok || oc.Auto != config.AutoRoute) {
			if err := m.opts.Installer.InstallTrap(c); err != nil {
				m.log.Warn("installing trap", "conn", c.Name, "err", err)
			}
		}
		if c.Auto == config.AutoStart && negotiates(c) && !ok {
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
	cfg := m.cfg
	m.mu.Unlock()
	sas := m.allSAs()
	for _, sa := range sas {
		sa.Delete("daemon shutting down")
	}
	for _, sa := range sas {
		select {
		case <-sa.Done():
		case <-ctx.Done():
		}
	}
	for _, sa := range sas {
		sa.Destroy()
	}
	for _, c := range cfg.Conns() {
		if c.Auto == config.AutoRoute && negotiates(c) {
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
	m.closeSubscriptions()
	return ctx.Err()
}

// ReportInvalidSPI is called by the dataplane when ESP arrives from remote
// with an SPI it does not know. If an established IKE SA with that peer
// exists, the peer is told with an INVALID_SPI notification (RFC 7296
// §2.21.4), rate-limited by the SA so that a stream of stray packets does
// not become a stream of IKE messages. It never blocks.
func (m *Manager) ReportInvalidSPI(remote netip.Addr, spi uint32) {
	m.mu.Lock()
	var target shared.SA
	if es := m.servingFrom[remote.Unmap()]; len(es) > 0 {
		target = es[0].sa
	}
	m.mu.Unlock()
	if target != nil {
		target.ReportInvalidSPI(spi)
	}
}

// DeleteChild deletes the CHILD SA with our inbound SPI inSPI, at the peer
// and here, without taking the rest of its conn or IKE SA down. It never
// blocks; it reports whether an IKE SA took the request.
func (m *Manager) DeleteChild(inSPI uint32) bool {
	taken := false
	for _, sa := range m.allSAs() {
		taken = sa.DeleteChild(inSPI) || taken
	}
	return taken
}

// RekeyChild asks for the CHILD SA with SPI spi (ours when inbound, the
// peer's otherwise) to be rekeyed now; the dataplane calls it when the SA
// reaches its soft byte or packet limit (ChildSA.SoftBytes/SoftPackets).
// It never blocks: the request is posted to the event loop of every IKE
// SA, and the one holding the CHILD SA acts on it (ignored when it is
// already being rekeyed). It reports whether any IKE SA took the request.
func (m *Manager) RekeyChild(spi uint32, inbound bool) bool {
	taken := false
	for _, sa := range m.allSAs() {
		taken = sa.RekeyChild(spi, inbound) || taken
	}
	return taken
}

// PeerMovedESP tells the Manager that an ESP-in-UDP packet for our inbound
// SPI inSPI authenticated and passed the replay window but came from src,
// not from where the CHILD SA sends: the NAT in front of the peer changed
// its mapping. The IKE SA holding the CHILD SA follows the peer there when
// RFC 7296 §2.23 allows (shared.SA.PeerMoved). It never blocks (the
// dataplane rate-limits the reports, see sad.SA.NewSource); it reports
// whether any IKE SA took the report.
func (m *Manager) PeerMovedESP(inSPI uint32, src netip.AddrPort) bool {
	taken := false
	for _, sa := range m.allSAs() {
		taken = sa.PeerMoved(inSPI, src) || taken
	}
	return taken
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

func randomSPI() uint64 {
	var b [8]byte
	for {
		rand.Read(b[:])
		if s := binary.BigEndian.Uint64(b[:]); s != 0 {
			return s
		}
	}
}
