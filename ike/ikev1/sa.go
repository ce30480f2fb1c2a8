package ikev1

import (
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev1/isakmp"
	"github.com/ipsecgw/ipsecgw/ike/ikev1/keymat"
	"github.com/ipsecgw/ipsecgw/ike/shared"
)

// saState is the life cycle of an ISAKMP SA.
type saState uint8

const (
	saPhase1      saState = iota // main or aggressive mode in progress
	saEstablished                // authenticated
	saDeleting                   // replaced by a reauthentication, or going
	saDead                       // loop finished
)

// isakmpSA is one ISAKMP SA (IKEv1 phase 1) and its event loop. Every
// field is owned by the loop's events, except the loop itself and what is
// set before the first event. It keeps what lives as long as the
// SA; what an exchange needs lives in its task.
type isakmpSA struct {
	e    *Engine
	log  *slog.Logger
	loop shared.Loop

	// Who and where. initiator is the role in phase 1; quick modes have
	// their own initiator, whoever starts them.
	initiator  bool
	ckyI, ckyR uint64
	local      netip.AddrPort
	remote     netip.AddrPort
	remoteInit netip.AddrPort // responder: where the first message came from (half-open key)
	conn       config.Conn    // the conn that created (initiator) or authorized (responder) the SA
	conns      map[string]bool
	localID    config.Identity
	remoteID   config.Identity
	ids        string // "local|remote" once authenticated (INITIAL-CONTACT, reauthentication)
	aggressive bool
	// serving: the Host knows this SA as the one serving its conn's peer.
	serving bool

	// Life cycle.
	state       saState
	established time.Time
	lifetime    time.Duration // of the ISAKMP SA: ours, or the peer's when shorter
	replaces    *isakmpSA     // reauthentication: the SA whose IPsec SAs this one adopts
	// After our reauthentication: the adopted IPsec SAs whose rekey here
	// is still to complete, and what deletes the replaced SA then.
	retiring map[*child]bool
	retire   func()
	failed   bool // a failure was reported; the end does not overwrite it
	endCause shared.Cause
	endText  string

	// Negotiated: algorithms, keys, IVs, NAT traversal, DPD support.
	alg       shared.Selection
	suite     keymat.Suite
	keys      *keymat.Keys
	iv        *keymat.IVChain
	natt      isakmp.NATTVersion
	natLocal  bool // our address is translated (or we fake it)
	natRemote bool // the peer's address is translated (or faked)
	peerDPD   bool // the peer announced RFC 3706 DPD

	// Exchanges (exchange.go): the phase 1 task, our own exchange in
	// flight and those waiting, the peer's quick modes awaiting their
	// third message, and what spots retransmissions.
	p1       task
	pending  *outstanding
	queue    []task
	timerGen uint64
	final    *finalMsg
	answers  [2][32]byte // hashes of the last answers to our requests
	passive  map[uint32]*passiveEx
	switches []shared.Timer    // outbound switches after quick modes we initiated
	waiting  map[uint32]*child // quick modes of ours whose responder set the commit bit

	// Liveness (dpd.go) and timers.
	lastRecv       time.Time
	lastInvalidSPI time.Time
	dpdSeq         uint32 // sequence number of our last R-U-THERE
	// peerDPDSeq is the sequence number of the peer's last R-U-THERE
	// (valid with peerDPDSeen); infoSeen the message IDs of its last
	// protected informational messages: replays of both are dropped.
	peerDPDSeq   uint32
	peerDPDSeen  bool
	infoSeen     [infoReplayWindow]uint32
	infoNext     int
	dpdSince     time.Time // first R-U-THERE not answered yet
	dpdTimer     shared.Timer
	dpdDeadTimer shared.Timer
	rekeyTimer   shared.Timer
	expireTimer  shared.Timer
	openTimer    shared.Timer

	children []*child
}

var _ shared.SA = (*isakmpSA)(nil)

func (sa *isakmpSA) ourCookie() uint64 {
	if sa.initiator {
		return sa.ckyI
	}
	return sa.ckyR
}

// post hands an event to the loop; false when the SA is gone. After each
// event the next queued exchange of ours starts if none is in flight
// (kick, the loop's afterEach): tasks only queue work, so that nothing
// is sent between processing a message and moving the IV chain.
func (sa *isakmpSA) post(ev func()) bool { return sa.loop.Post(ev) }

// tryPost is post for the packet path: it never blocks, and drops when the
// queue is full (the peer retransmits).
func (sa *isakmpSA) tryPost(ev func()) bool { return sa.loop.TryPost(ev) }

// after arms a timer whose expiry runs f in the loop.
func (sa *isakmpSA) after(d time.Duration, f func()) shared.Timer {
	return sa.loop.After(sa.e.clock, d, f)
}

// candidates are the Host's conns a responder may use for the SA's
// addresses (Host.Candidates), as copies of our own.
func (sa *isakmpSA) candidates() []config.Conn {
	cs := sa.e.host.Candidates(1, sa.local, sa.remote)
	out := make([]config.Conn, len(cs))
	for i, c := range cs {
		out[i] = *c
	}
	return out
}

func (sa *isakmpSA) connNames() []string {
	names := []string{}
	if sa.conn.Name != "" {
		names = append(names, sa.conn.Name)
	}
	for n := range sa.conns {
		if n != sa.conn.Name {
			names = append(names, n)
		}
	}
	return names
}

// info describes the SA for events.
func (sa *isakmpSA) info() shared.IKEInfo {
	return shared.IKEInfo{
		Version:     1,
		Initiator:   sa.initiator,
		SPIi:        sa.ckyI,
		SPIr:        sa.ckyR,
		Local:       sa.local,
		Remote:      sa.remote,
		LocalID:     sa.localID.String(),
		RemoteID:    sa.remoteID.String(),
		Algorithms:  sa.alg.String(),
		NATLocal:    sa.natLocal,
		NATRemote:   sa.natRemote,
		Established: sa.established,
	}
}

// publish reports a change of what is known of the SA (cookies,
// endpoints, NAT) for the status of its conns.
func (sa *isakmpSA) publish() {
	sa.e.host.Emit(shared.IKEUpdated{Names: sa.connNames(), IKE: sa.info()})
}

// failPhase1 reports a phase 1 failure for the SA's conns and destroys it.
func (sa *isakmpSA) failPhase1(cause shared.Cause, reason string) {
	if sa.state == saDead {
		return
	}
	sa.log.Warn("ISAKMP SA failed", "reason", reason)
	sa.failConns(shared.StatePhase1Failed, cause, reason)
	sa.destroy()
}

// failConns reports a failure for every conn of the SA; the SA's end will
// not overwrite the state it leaves them in.
func (sa *isakmpSA) failConns(state shared.State, cause shared.Cause, reason string) {
	for _, c := range sa.connNames() {
		sa.e.host.Emit(shared.Failure{Conn: c, State: state, Cause: cause, Text: reason})
	}
	sa.failed = true
}

// peerDead ends an established SA whose peer stopped answering (DPD, or
// an exchange abandoned after all retransmissions); the Manager applies
// each conn's dpdaction when it sees the IKEDown.
func (sa *isakmpSA) peerDead(reason string) {
	if sa.state == saDead {
		return
	}
	text := "peer is not answering: " + reason
	sa.failConns(shared.StateDown, shared.CausePeerDead, text)
	sa.endCause, sa.endText = shared.CausePeerDead, text
	sa.destroy()
}

// destroy removes every IPsec SA still held, unregisters the SA and ends
// its loop.
func (sa *isakmpSA) destroy() {
	if sa.state == saDead {
		return
	}
	var gone []shared.ChildInfo
	for _, c := range sa.children {
		c.stopTimers()
		if err := sa.e.cfg.Installer.Remove(c.conn.Name, c.inSPI, c.outSPI); err != nil {
			sa.log.Warn("removing IPsec SA", "conn", c.conn.Name, "err", err)
		}
		gone = append(gone, c.info())
	}
	sa.children = nil
	for mid, p := range sa.passive {
		p.abandon(sa)
		delete(sa.passive, mid)
	}
	if sa.pending != nil {
		sa.pending.timer.Stop()
		discard(sa.pending.t)
		sa.pending = nil
	}
	if sa.p1 != nil {
		discard(sa.p1)
	}
	for _, t := range sa.queue {
		discard(t)
	}
	sa.queue = nil
	for _, t := range append(sa.switches, sa.dpdTimer, sa.dpdDeadTimer, sa.rekeyTimer, sa.expireTimer, sa.openTimer) {
		if t != nil {
			t.Stop()
		}
	}
	if sa.keys != nil {
		sa.keys.Zero()
		sa.keys = nil
	}
	sa.state = saDead
	if !sa.initiator {
		sa.e.host.LeaveHalfOpen(sa)
	}
	if sa.serving {
		sa.e.host.ServePeer(sa, nil)
	}
	sa.e.host.Unregister(sa)
	sa.e.host.Emit(shared.IKEDown{Names: sa.connNames(), IKE: sa.info(), Children: gone,
		Cause: sa.endCause, Text: sa.endText, Failed: sa.failed})
	sa.loop.Stop()
}

// servePeer tells the Host whether this SA serves its conn's peer (c, or
// nil when it stops: reauthenticated, deleted).
func (sa *isakmpSA) servePeer(c *config.Conn) {
	sa.serving = c != nil
	sa.e.host.ServePeer(sa, c)
}

// retryKeying applies keyingtries when the peer did not answer our phase
// 1: strongSwan starts over with a new ISAKMP SA until keyingtries
// attempts are used up (0 = %forever). It reports whether a new attempt
// was started.
func (sa *isakmpSA) retryKeying(reason string) bool {
	n, limit, retry := sa.e.host.RetryKeying(sa.conn)
	if !retry {
		return false
	}
	names := sa.connNames()
	sa.failConns(shared.StateConnecting, shared.CauseTimeout, fmt.Sprintf("%s; trying again (attempt %d/%s)", reason, n+1, limit))
	sa.destroy()
	for _, name := range names {
		if err := sa.e.host.Up(name); err != nil {
			sa.log.Warn("keyingtries: cannot initiate again", "conn", name, "err", err)
		}
	}
	return true
}

// armHalfOpen limits the life of a responder SA whose phase 1 does not
// complete.
func (sa *isakmpSA) armHalfOpen() {
	sa.openTimer = sa.after(sa.e.cfg.HalfOpenTimeout, func() {
		if sa.state == saPhase1 {
			sa.log.Info("half-open ISAKMP SA timed out", "remote", sa.remote)
			sa.destroy()
		}
	})
}

// followPeer moves the SA and its IPsec SAs to the endpoints of an
// authenticated message that came from another address or port. During
// phase 1 this is the peer floating to port 4500 after NAT detection,
// always followed. Once established it is a NAT in front of the peer that
// changed its mapping, followed as the IKEv2 engine does (RFC 7296 §2.23's
// rule, which strongSwan applies to IKEv1 too): when the peer is behind a
// NAT and we are either not, or are the phase 1 responder.
func (sa *isakmpSA) followPeer(local, remote netip.AddrPort) {
	if remote == sa.remote && local == sa.local {
		return
	}
	if sa.state >= saEstablished && !(sa.natRemote && (!sa.natLocal || !sa.initiator)) {
		sa.log.Debug("not following the peer to a new endpoint", "from", sa.remote, "to", remote)
		return
	}
	old := sa.remote
	sa.local, sa.remote = local, remote
	if sa.state < saEstablished {
		return
	}
	if remote != old {
		sa.log.Info("peer moved to a new endpoint (its NAT mapping changed)", "from", old, "to", remote, "children", len(sa.children))
		for _, c := range sa.children {
			if err := sa.e.cfg.Installer.UpdateRemote(c.conn.Name, c.inSPI, c.outSPI, remote); err != nil {
				sa.log.Warn("moving IPsec SA to the peer's new endpoint", "conn", c.conn.Name, "in_spi", spiHex(c.inSPI), "err", err)
			}
		}
	}
	sa.publish()
}

func spiHex(spi uint32) string { return fmt.Sprintf("%08x", spi) }

func portOf(ap netip.AddrPort, port uint16) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr(), port)
}
