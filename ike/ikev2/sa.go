package ikev2

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
	"github.com/ipsecgw/ipsecgw/ike/shared"
	"github.com/ipsecgw/ipsecgw/spd"
	"github.com/ipsecgw/ipsecgw/transform"
)

// saState is the life cycle of an IKE SA.
type saState uint8

const (
	saInit        saState = iota // IKE_SA_INIT in progress
	saAuth                       // keys derived, IKE_AUTH in progress
	saEstablished                // authenticated
	saDeleting                   // our DELETE is outstanding
	saDead                       // loop finished
)

// child is an installed CHILD SA. The word-sized fields come first and
// the small ones last, so that none is padded: 288 B, a size class below
// the 320 B it took in declaration order.
type child struct {
	conn          *config.Conn // shared with the IKE SA and its tasks; never written
	local, remote []spd.TS
	established   time.Time
	timer         shared.Timer // the nearer of rekeyAt (until rekeyed) and expireAt
	rekeyAt       time.Time
	expireAt      time.Time
	// Rekey collisions (RFC 7296 §2.8.1): the smaller nonce of the
	// exchange that created this SA, whether we initiated that exchange
	// (ours), and the SAs that replaced this one.
	minNonce   []byte
	successors []*child

	inSPI, outSPI uint32
	reqID         uint32 // as installed (ChildSA.ReqID)
	timerGen      uint32 // counts arming and stopping of timer: tells its stale events
	alg           shared.Selection
	proto         shared.Protocol // ESP or AH
	encap         bool
	rekeyed       bool // a successor exists (ours or the peer's); no second rekey
	ours          bool
	// outHeld: installed inbound-only (ChildSA.KeepOutbound) as the
	// responder of the peer's rekey; traffic switches to it when the SA it
	// replaces goes (see switchOutbound in rekey.go).
	outHeld bool
	// deleting: our DELETE for it is on its way (downConn); until the
	// answer removes it, it no longer counts as the conn's CHILD SA, so
	// that an Up right after the Down (a reload) creates a new one.
	deleting bool
}

// ikeSA is one IKE SA and its event loop. Every field is owned by the
// loop's events, except the loop itself and the identifiers set before
// the first event. It keeps what lives as long as the SA; what one
// exchange needs lives in its task, and what IKE_SA_INIT hands to
// IKE_AUTH in hs until the SA is authenticated.
type ikeSA struct {
	e    *Engine
	log  *slog.Logger // logs's
	logs shared.SALog
	loop shared.Loop

	// Who and where (initiator is with the small fields below).
	spiI, spiR uint64
	local      netip.AddrPort
	remote     netip.AddrPort
	conn       *config.Conn   // the conn that created (initiator) or authorized (responder) the SA; never written through
	conns      shared.NameSet // names of the conns it serves
	localID    config.Identity
	remoteID   config.Identity

	// Life cycle.
	established instant
	replaces    *ikeSA // reauthentication: the SA to delete once this one carries traffic

	// Negotiated: algorithms (alg below), keys, NAT and fragmentation.
	prf  transform.PRF
	keys message.IKEKeys // each message's SK protector is built from them (protector.go)
	hs   *handshake      // IKE_SA_INIT → IKE_AUTH, nil once authenticated

	// Our requests (window size 1) and the peer's (exchange.go).
	pending *outstanding
	queue   []task
	lastRsp []byte
	rspAt   instant     // when lastRsp last went out (shared.AnswerGap)
	frags   *fragmented // RFC 7383: how the last request/response went out, while fragmented (frag.go)
	reasm   *reassembly // RFC 7383: fragments of a message being received, while there are any

	// rawRequest is the datagram of the request being answered, set only
	// while it is handled.
	rawRequest []byte

	// followups: the peer's CREATE_CHILD_SA exchanges waiting for their
	// IKE_FOLLOWUP_KE exchanges, by link (task_followupke.go).
	followups map[string]*followupState

	// Timers and liveness.
	lastRecv       instant
	lastInvalidSPI instant
	dpdTimer       shared.Timer
	rekeyTimer     shared.Timer
	rekeyAt        instant // when rekeyTimer fires (list-sas)
	openTimer      shared.Timer

	children []*child

	// The small fields, together at the end so that alignment does not
	// pad each of them to a word: with thousands of idle SAs, every
	// word of this struct counts (it sits in an allocation size class).
	alg      shared.Selection
	nextID   uint32 // our next request's message ID
	expectID uint32 // peer's next request ID
	timerGen uint32 // counts our requests' retransmission timers: tells their stale events
	// serving: the Host knows this SA as the one serving its conn's peer
	// (Host.ServePeer); a rekeyed or deleted SA no longer is.
	serving       bool
	initiator     bool
	state         saState
	failed        bool // a failure reason has been recorded; do not overwrite with "down"
	natLocal      bool // our address is translated (or we fake it)
	natRemote     bool // the peer's address is translated (or faked)
	fragmentation bool
	hasRsp        bool // lastRsp holds our answer to the peer's last request
}

var _ shared.SA = (*ikeSA)(nil)

func (sa *ikeSA) ourSPI() uint64 {
	if sa.initiator {
		return sa.spiI
	}
	return sa.spiR
}

// post hands an event to the loop; it returns false when the SA is gone.
func (sa *ikeSA) post(ev func()) bool { return sa.loop.Post(ev) }

// tryPost is post for the packet path: it never blocks, and drops when the
// queue is full (the peer retransmits).
func (sa *ikeSA) tryPost(ev func()) bool { return sa.loop.TryPost(ev) }

// after arms a timer whose expiry runs f in the loop.
func (sa *ikeSA) after(d time.Duration, f func()) shared.Timer {
	return sa.loop.After(sa.e.clock, d, f)
}

// followPeer moves the IKE SA and its CHILD SAs to the endpoints of an
// authenticated message (not IKE_SA_INIT, which proves nothing) that came
// from another address or port than the SA uses.
//
// Before the SA is established this is the peer floating to port 4500
// after NAT detection, always followed. Once established it is a NAT in
// front of the peer that changed its mapping (rebooted, or its entry
// timed out): RFC 7296 §2.23 says a host not behind a NAT SHOULD follow,
// and one behind a NAT SHOULD NOT (a single forged-source copy of a valid
// packet would otherwise redirect the tunnel). As strongSwan does
// (ike_sa.c update_hosts), we follow when the peer is behind a NAT and we
// are either not, or are the responder (then our NAT is a static port
// forward, which does not change). The CHILD SAs follow with the IKE SA,
// so that ESP and IKE go to the same place; the NAT keepalives use the
// IKE SA's endpoint from the published status.
func (sa *ikeSA) followPeer(local, remote netip.AddrPort) {
	if remote == sa.remote && local == sa.local {
		return
	}
	if sa.state >= saEstablished && !(sa.natRemote && (!sa.natLocal || !sa.initiator)) {
		sa.log.Debug("not following the peer to a new endpoint", "from", sa.remote, "to", remote,
			"nat_local", sa.natLocal, "nat_remote", sa.natRemote, "initiator", sa.initiator)
		return
	}
	old := sa.remote
	sa.local, sa.remote = local, remote
	if sa.state < saEstablished {
		return // no CHILD SA yet; establish publishes the endpoints
	}
	if remote != old {
		sa.log.Info("peer moved to a new endpoint (its NAT mapping changed)", "from", old, "to", remote, "children", len(sa.children))
		for _, c := range sa.children {
			if err := sa.e.cfg.Installer.UpdateRemote(c.conn.Name, c.inSPI, c.outSPI, remote); err != nil {
				sa.log.Warn("moving CHILD SA to the peer's new endpoint", "conn", c.conn.Name,
					"in_spi", fmt.Sprintf("%08x", c.inSPI), "err", err)
			}
		}
	}
	if sa.state == saEstablished {
		sa.publish()
	}
}

// PeerMoved implements shared.SA: an ESP-in-UDP packet for our inbound
// SPI inSPI authenticated and passed the replay window but came from src,
// not from where the CHILD SA sends: the NAT in front of the peer changed
// its mapping. Such a packet proves the peer's new endpoint as well as an
// authenticated IKE message does (strongSwan follows the kernel's mapping
// report the same way), and often comes much sooner: the peer may not
// send any IKE message until its next rekey. If this SA holds the CHILD
// SA, it applies the rules of followPeer and moves itself and all its
// CHILD SAs.
func (sa *ikeSA) PeerMoved(inSPI uint32, src netip.AddrPort) bool {
	return sa.tryPost(func() {
		if sa.state != saEstablished || !src.Addr().IsValid() {
			return
		}
		for _, ch := range sa.children {
			if ch.inSPI == inSPI && ch.encap {
				sa.log.Debug("authenticated ESP from a new endpoint", "conn", ch.conn.Name,
					"in_spi", fmt.Sprintf("%08x", inSPI), "from", src, "known", sa.remote)
				sa.followPeer(sa.local, src)
				return
			}
		}
	})
}

// noConn is the conn of an SA before it has one (a responder before
// IKE_SA_INIT picked it); never written.
var noConn config.Conn

// notifies returns the notify payloads among raw payloads; malformed ones
// are skipped.
func notifies(ps []message.RawPayload) []message.Notify {
	var out []message.Notify
	for _, p := range ps {
		if p.Type != message.PayloadN {
			continue
		}
		if n, _, err := message.ParseNotify(p.Body); err == nil {
			out = append(out, n)
		}
	}
	return out
}

func findNotify(ns []message.Notify, t message.NotifyType) (message.Notify, bool) {
	for _, n := range ns {
		if n.Type == t {
			return n, true
		}
	}
	return message.Notify{}, false
}

// firstError returns the first error notification, if any.
func firstError(ns []message.Notify) (message.Notify, bool) {
	for _, n := range ns {
		if n.Type.IsError() {
			return n, true
		}
	}
	return message.Notify{}, false
}

func payload(ps []message.RawPayload, t message.PayloadType) (message.RawPayload, bool) {
	for _, p := range ps {
		if p.Type == t {
			return p, true
		}
	}
	return message.RawPayload{}, false
}

// payloads of a message: the outer ones for IKE_SA_INIT, the inner ones
// otherwise.
func body(m *message.Message) []message.RawPayload {
	if m.Decrypted {
		return m.Inner
	}
	return m.Payloads
}

// failPhase1 records an IKE SA failure for the SA's conns and destroys it.
func (sa *ikeSA) failPhase1(cause shared.Cause, reason string) {
	if sa.state == saDead {
		return
	}
	sa.log.Warn("IKE SA failed", "reason", reason)
	sa.failConns(shared.StatePhase1Failed, cause, reason)
	sa.destroy()
}

// failConns reports a failure for every conn of the SA; the SA's end will
// not overwrite the state it leaves them in.
func (sa *ikeSA) failConns(state shared.State, cause shared.Cause, reason string) {
	for _, c := range sa.connNames() {
		sa.e.host.Emit(shared.Failure{Conn: c, State: state, Cause: cause, Text: reason})
	}
	sa.failed = true
}

func (sa *ikeSA) connNames() []string { return connNames(sa.conn.Name, sa.conns) }

// connNames lists an IKE SA's conns: the one that created it first.
func connNames(main string, conns shared.NameSet) []string {
	names := []string{}
	if main != "" {
		names = append(names, main)
	}
	for _, n := range conns {
		if n != main {
			names = append(names, n)
		}
	}
	return names
}

// destroy removes every CHILD SA, unregisters the SA and ends its loop:
// an ordinary end.
func (sa *ikeSA) destroy() { sa.destroyFor(shared.CauseNone, "") }

// destroyFor is destroy with the reason of the end for the IKEDown event
// (cause and text; the Manager applies dpdaction and closeaction by it).
func (sa *ikeSA) destroyFor(cause shared.Cause, text string) {
	if sa.state == saDead {
		return
	}
	sa.dropAllFollowups()
	var gone []shared.ChildInfo
	for _, c := range sa.children {
		c.stopTimers()
		if err := sa.e.cfg.Installer.Remove(c.conn.Name, c.inSPI, c.outSPI); err != nil {
			sa.log.Warn("removing CHILD SA", "conn", c.conn.Name, "err", err)
		}
		gone = append(gone, c.info())
	}
	sa.children = nil
	// Pending and queued tasks are dropped without their fail hooks (the
	// conns they serve get their state from the reason already recorded,
	// or go down), but what they hold is released.
	if sa.pending != nil {
		sa.pending.timer.Stop()
		discard(sa.pending.t)
		sa.pending = nil
	}
	for _, t := range sa.queue {
		discard(t)
	}
	sa.queue = nil
	if sa.dpdTimer != nil {
		sa.dpdTimer.Stop()
	}
	if sa.rekeyTimer != nil {
		sa.rekeyTimer.Stop()
	}
	if sa.openTimer != nil {
		sa.openTimer.Stop()
	}
	sa.keys.Zero()
	sa.hs = nil
	sa.state = saDead
	if !sa.initiator {
		sa.e.host.LeaveHalfOpen(sa)
	}
	if sa.serving {
		sa.e.host.ServePeer(sa, nil)
	}
	sa.e.host.Unregister(sa)
	sa.e.host.Emit(shared.IKEDown{Names: sa.connNames(), IKE: sa.info(), Children: gone,
		Cause: cause, Text: text, Failed: sa.failed})
	sa.loop.Stop()
}

// info describes the SA for events.
func (sa *ikeSA) info() shared.IKEInfo {
	return shared.IKEInfo{
		Version:     2,
		Initiator:   sa.initiator,
		SPIi:        sa.spiI,
		SPIr:        sa.spiR,
		Local:       sa.local,
		Remote:      sa.remote,
		LocalID:     sa.localID.String(),
		RemoteID:    sa.remoteID.String(),
		Algorithms:  sa.alg.String(),
		NATLocal:    sa.natLocal,
		NATRemote:   sa.natRemote,
		Established: sa.e.time(sa.established),
		RekeyAt:     sa.e.time(sa.rekeyAt),
	}
}

// Probe implements shared.Prober: answer runs in the loop, after the
// events queued before it.
func (sa *ikeSA) Probe(answer func()) bool { return sa.post(answer) }

// ExportKeys implements shared.KeyExporter: deliver gets copies of the
// SA's keys once IKE_SA_INIT has derived them.
func (sa *ikeSA) ExportKeys(deliver func(shared.IKEKeys, bool)) bool {
	return sa.post(func() {
		if sa.state == saDead || sa.keys.SKei == nil {
			deliver(shared.IKEKeys{}, false)
			return
		}
		cp := bytes.Clone
		deliver(shared.IKEKeys{Version: 2, SPIi: sa.spiI, SPIr: sa.spiR, Encr: sa.alg.Encr, Integ: sa.alg.Integ,
			SKei: cp(sa.keys.SKei), SKer: cp(sa.keys.SKer), SKai: cp(sa.keys.SKai), SKar: cp(sa.keys.SKar)}, true)
	})
}

// publish reports a change of what is known of the SA (endpoints, SPIs,
// NAT) to the Host, for the status of its conns.
func (sa *ikeSA) publish() {
	sa.e.host.Emit(shared.IKEUpdated{Names: sa.connNames(), IKE: sa.info()})
}

// retryKeying applies keyingtries when the peer did not answer our
// IKE_SA_INIT or IKE_AUTH: strongSwan starts over with a new IKE SA until
// keyingtries attempts are used up (0 = %forever). It reports whether a
// new attempt was started.
func (sa *ikeSA) retryKeying(reason string) bool {
	n, limit, retry := sa.e.host.RetryKeying(*sa.conn)
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

// innerTypes lists the payload types of a (decrypted) message for logs.
func innerTypes(m *message.Message) string {
	var b []byte
	for i, p := range body(m) {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, p.Type.String()...)
		if p.Type == message.PayloadN {
			if n, _, err := message.ParseNotify(p.Body); err == nil {
				b = append(b, '(')
				b = append(b, n.Type.String()...)
				b = append(b, ')')
			}
		}
	}
	return string(b)
}

// discard releases what a dropped task holds.
func discard(t task) {
	if d, ok := t.(discarder); ok {
		d.discard()
	}
}
