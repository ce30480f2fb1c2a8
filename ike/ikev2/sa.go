package ikev2

import (
	"errors"
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

// task is one exchange we initiate: build makes the request payloads,
// process handles the response (decrypted and validated), fail is told
// when the exchange is abandoned (no answer, or the SA goes away).
type task interface {
	exchange() message.ExchangeType
	build(sa *ikeSA) ([]message.Payload, error)
	process(sa *ikeSA, m *message.Message) error
	fail(sa *ikeSA, cause shared.Cause, reason string)
}

// outstanding is our request awaiting its response.
type outstanding struct {
	t     task
	id    uint32
	pkt   []byte
	tries int // retransmissions done
	gen   uint64
	timer shared.Timer
	start time.Time
}

// child is an installed CHILD SA.
type child struct {
	conn          config.Conn
	inSPI, outSPI uint32
	alg           shared.Selection
	local, remote []spd.TS
	established   time.Time
	encap         bool
	rekeyed       bool           // a successor exists (ours or the peer's); no second rekey
	timers        []shared.Timer // rekey and hard expiry
	rekeyAt       time.Time
	expireAt      time.Time
	// Rekey collisions (RFC 7296 §2.8.1): the smaller nonce of the
	// exchange that created this SA, whether we initiated that exchange,
	// and the SAs that replaced this one.
	minNonce   []byte
	ours       bool
	successors []*child
	// outHeld: installed inbound-only (ChildSA.KeepOutbound) as the
	// responder of the peer's rekey; traffic switches to it when the SA it
	// replaces goes (see switchOutbound in rekey.go).
	outHeld bool
}

// ikeSA is one IKE SA and its event loop. Every field is owned by the loop
// goroutine, except events/done (channels) and the identifiers set before
// the loop starts.
type ikeSA struct {
	e      *Engine
	log    *slog.Logger
	events chan func()
	done   chan struct{}

	initiator  bool
	spiI, spiR uint64
	local      netip.AddrPort
	remote     netip.AddrPort
	conn       config.Conn   // the conn that created (initiator) or authorized (responder) the SA
	candidates []config.Conn // responder: conns acceptable for the addresses
	conns      map[string]bool
	remoteInit netip.AddrPort // responder: where the IKE_SA_INIT came from (half-open key)
	// serving: the Host knows this SA as the one serving its conn's peer
	// (Host.ServePeer); a rekeyed or deleted SA no longer is.
	serving bool
	// ids is the local|remote identity pair once authenticated.
	ids string

	lastInvalidSPI time.Time
	replaces       *ikeSA // reauthentication: the SA to delete once this one carries traffic
	state          saState
	established    time.Time
	failed         bool // a failure reason has been recorded; do not overwrite with "down"
	// endCause and endText say why the SA ends, for the IKEDown event
	// (set just before destroy; CauseNone for an ordinary end).
	endCause shared.Cause
	endText  string

	// IKE_SA_INIT
	alg              shared.Selection
	offered          []shared.Proposal
	ke               transform.KeyExchange
	keGroup          transform.ID
	ni, nr           []byte
	initReq, initRsp []byte
	cookie           []byte
	cookieTries      int
	keRetried        bool
	natLocal         bool // our address is translated (or we fake it)
	natRemote        bool // the peer's address is translated (or faked)
	fragmentation    bool
	frags            fragmented // RFC 7383: how the last request/response went out (frag.go)
	localID          config.Identity
	remoteID         config.Identity

	// keys
	prf     transform.PRF
	keys    message.IKEKeys
	out, in *transform.Protector

	// exchanges
	nextID     uint32 // our next request's message ID
	pending    *outstanding
	queue      []task
	expectID   uint32 // peer's next request ID
	lastRsp    []byte
	hasRsp     bool
	timerGen   uint64
	lastRecv   time.Time
	dpdTimer   shared.Timer
	rekeyTimer shared.Timer
	openTimer  shared.Timer
	frag       *message.Reassembly
	fragID     uint32
	fragBytes  int // bytes held by frag, bounded by maxReassembly

	children []*child
}

var _ shared.SA = (*ikeSA)(nil)

func (sa *ikeSA) ourSPI() uint64 {
	if sa.initiator {
		return sa.spiI
	}
	return sa.spiR
}

// run is the event loop.
func (sa *ikeSA) run() {
	for sa.state != saDead {
		ev := <-sa.events
		ev()
	}
}

// post hands an event to the loop; it returns false when the SA is gone.
func (sa *ikeSA) post(ev func()) bool {
	select {
	case sa.events <- ev:
		return true
	case <-sa.done:
		return false
	}
}

// tryPost is post for the packet path: it never blocks, and drops when the
// queue is full (the peer retransmits).
func (sa *ikeSA) tryPost(ev func()) bool {
	select {
	case sa.events <- ev:
		return true
	case <-sa.done:
		return false
	default:
		return false
	}
}

// after arms a timer whose expiry runs f in the loop.
func (sa *ikeSA) after(d time.Duration, f func()) shared.Timer {
	return sa.e.clock.AfterFunc(d, func() { sa.post(f) })
}

// enqueue adds a task and starts it when no request is outstanding.
func (sa *ikeSA) enqueue(t task) {
	sa.queue = append(sa.queue, t)
	sa.kick()
}

// kick sends the next queued request if the window is free.
func (sa *ikeSA) kick() {
	for sa.pending == nil && len(sa.queue) > 0 && sa.state != saDead {
		t := sa.queue[0]
		sa.queue = sa.queue[1:]
		if err := sa.sendRequest(t); err != nil {
			t.fail(sa, causeOf(err), err.Error())
		}
	}
}

func (sa *ikeSA) header(ex message.ExchangeType, id uint32, response bool) message.Header {
	h := message.Header{SPIi: sa.spiI, SPIr: sa.spiR, MajorVersion: 2, Exchange: ex, MessageID: id}
	if sa.initiator {
		h.Flags |= message.FlagInitiator
	}
	if response {
		h.Flags |= message.FlagResponse
	}
	return h
}

// encode builds a message: IKE_SA_INIT in clear, everything else in an SK
// payload.
func (sa *ikeSA) encode(h message.Header, payloads []message.Payload) ([]byte, error) {
	if h.Exchange == message.IKE_SA_INIT {
		return message.AppendMessage(nil, h, payloads...), nil
	}
	if sa.out == nil {
		return nil, errors.New("no keys for a protected message")
	}
	pkt, err := message.AppendEncrypted(nil, h, sa.out, payloads...)
	if err != nil {
		return nil, err
	}
	if err := sa.fragmentIfNeeded(h, payloads, pkt); err != nil {
		return nil, err
	}
	return pkt, nil
}

func (sa *ikeSA) send(pkt []byte) {
	if parts := sa.fragmentsOf(pkt); parts != nil {
		for _, p := range parts {
			if err := sa.e.cfg.Send(sa.local, sa.remote, p); err != nil {
				sa.log.Debug("send failed", "remote", sa.remote, "err", err)
			}
		}
		return
	}
	if err := sa.e.cfg.Send(sa.local, sa.remote, pkt); err != nil {
		sa.log.Debug("send failed", "remote", sa.remote, "err", err)
	}
}

// sendRequest encodes a task's request once, sends it and arms the
// retransmission timer.
func (sa *ikeSA) sendRequest(t task) error {
	payloads, err := t.build(sa)
	if err != nil {
		return err
	}
	ex := t.exchange()
	pkt, err := sa.encode(sa.header(ex, sa.nextID, false), payloads)
	if err != nil {
		return err
	}
	if ex == message.IKE_SA_INIT {
		sa.initReq = pkt
	}
	sa.timerGen++
	o := &outstanding{t: t, id: sa.nextID, pkt: pkt, gen: sa.timerGen, start: sa.e.clock.Now()}
	sa.pending = o
	sa.send(pkt)
	sa.armRetransmit(o)
	return nil
}

func (sa *ikeSA) armRetransmit(o *outstanding) {
	gen := o.gen
	o.timer = sa.after(shared.RetransmitDelay(sa.e.rt, o.tries), func() { sa.retransmit(gen) })
}

func (sa *ikeSA) retransmit(gen uint64) {
	o := sa.pending
	if o == nil || o.gen != gen || sa.state == saDead {
		return // stale: the exchange finished
	}
	if o.tries >= sa.e.rt.Tries {
		sa.pending = nil
		reason := fmt.Sprintf("no response from %s to our %s request after %d retransmissions (%s)",
			sa.remote, o.t.exchange(), o.tries, sa.e.clock.Now().Sub(o.start).Round(time.Second))
		sa.log.Info("giving up", "exchange", o.t.exchange(), "tries", o.tries)
		if sa.initiator && sa.state < saEstablished && sa.retryKeying(reason) {
			return
		}
		o.t.fail(sa, shared.CauseTimeout, reason)
		if sa.state == saEstablished {
			// A peer that stops answering on an established SA is dead.
			sa.peerDead(reason)
		}
		sa.kick()
		return
	}
	o.tries++
	sa.log.Debug("retransmit", "exchange", o.t.exchange(), "msgid", o.id, "try", o.tries)
	sa.send(o.pkt)
	sa.armRetransmit(o)
}

// sendResponse encodes, caches and sends our response to request id.
func (sa *ikeSA) sendResponse(ex message.ExchangeType, id uint32, payloads []message.Payload) {
	pkt, err := sa.encode(sa.header(ex, id, true), payloads)
	if err != nil {
		sa.log.Warn("cannot encode response", "exchange", ex, "err", err)
		return
	}
	sa.lastRsp, sa.hasRsp = pkt, true
	sa.send(pkt)
}

// handle processes one datagram (a private copy) for this SA.
func (sa *ikeSA) handle(local, remote netip.AddrPort, pkt []byte) {
	if sa.state == saDead {
		return
	}
	m, _, err := message.ParseMessage(pkt)
	if err == nil {
		err = message.Validate(&m)
	}
	if err != nil {
		sa.log.Debug("malformed message", "remote", remote, "err", err)
		// An IKE_SA_INIT request is answered (unauthenticated) with the
		// error the codec names, e.g. UNSUPPORTED_CRITICAL_PAYLOAD (RFC
		// 7296 §2.5, §2.21.1); anything else is dropped.
		var me *message.Error
		h, _, herr := message.ParseHeader(pkt)
		if herr == nil && errors.As(err, &me) && me.Notify != message.NotifyNone &&
			h.Exchange == message.IKE_SA_INIT && !h.IsResponse() && !sa.initiator && sa.state == saInit {
			sa.reject(message.Notify{Type: me.Notify, Data: me.Data})
		}
		return
	}
	h := m.Header
	if h.IsResponse() {
		sa.handleResponse(local, remote, &m)
		return
	}
	sa.handleRequest(local, remote, &m)
}

// decrypt opens the SK payload (reassembling SKF fragments, RFC 7383); it
// reports false while fragments are missing or when the message must be
// dropped.
func (sa *ikeSA) decrypt(m *message.Message) (bool, error) {
	if m.Header.Exchange == message.IKE_SA_INIT {
		return true, nil
	}
	if sa.in == nil {
		return false, errors.New("no keys yet")
	}
	sk, ok := m.Encrypted()
	if !ok {
		return false, errors.New("no SK payload")
	}
	if sk.Type == message.PayloadSKF {
		fh, part, err := message.DecryptFragment(m, sa.in)
		if err != nil {
			return false, err
		}
		if sa.frag == nil || sa.fragID != m.Header.MessageID {
			sa.frag, sa.fragID, sa.fragBytes = new(message.Reassembly), m.Header.MessageID, 0
		}
		if err := sa.limitReassembly(fh.Total, len(m.Raw)); err != nil {
			sa.frag = nil
			return false, err
		}
		complete, err := sa.frag.Add(m, fh, part)
		if err != nil || !complete {
			return false, err
		}
		inner, err := sa.frag.Payloads(nil)
		sa.frag = nil
		if err != nil {
			return false, err
		}
		m.Inner, m.Decrypted = inner, true
	} else if err := message.Decrypt(m, sa.in); err != nil {
		return false, err
	}
	if err := message.Validate(m); err != nil {
		return false, err
	}
	return true, nil
}

func (sa *ikeSA) handleResponse(local, remote netip.AddrPort, m *message.Message) {
	o := sa.pending
	if o == nil || m.Header.MessageID != o.id || m.Header.Exchange != o.t.exchange() {
		sa.log.Debug("unexpected response dropped", "msgid", m.Header.MessageID)
		return
	}
	// The response must come from the responder (I flag clear when we are
	// the original initiator, set otherwise).
	if m.Header.IsInitiator() == sa.initiator {
		return
	}
	ok, err := sa.decrypt(m)
	if !ok {
		if err != nil {
			sa.log.Debug("response dropped", "err", err)
		}
		return
	}
	o.timer.Stop()
	sa.pending = nil
	sa.nextID++
	sa.lastRecv = sa.e.clock.Now()
	if sa.state == saEstablished {
		// A response proves the peer's endpoint as well as a request does
		// (RFC 7296 §2.23 speaks of any validated packet); replayed old
		// responses never get here, their message ID is not outstanding.
		sa.followPeer(local, remote)
	}
	if err := o.t.process(sa, m); err != nil {
		sa.log.Debug("response processing", "exchange", m.Header.Exchange, "err", err)
	}
	sa.kick()
}

func (sa *ikeSA) handleRequest(local, remote netip.AddrPort, m *message.Message) {
	if m.Header.IsInitiator() != !sa.initiator {
		return // a request must come from the other side
	}
	id := m.Header.MessageID
	if sa.hasRsp && id+1 == sa.expectID {
		// A retransmitted request: answer with the cached bytes, never
		// process it twice (RFC 7296 §2.1).
		sa.log.Debug("retransmitted request answered from cache", "msgid", id)
		sa.send(sa.lastRsp)
		return
	}
	if id != sa.expectID {
		sa.log.Debug("request with unexpected message ID dropped", "msgid", id, "want", sa.expectID)
		return
	}
	ok, err := sa.decrypt(m)
	if !ok {
		var me *message.Error
		// Only errors found after the integrity check carry a notify
		// (failed checks are NotifyNone): those are answered, so that the
		// peer learns what it sent wrong (RFC 7296 §2.21.2).
		if errors.As(err, &me) && me.Notify != message.NotifyNone && m.Header.Exchange != message.IKE_SA_INIT {
			sa.expectID++
			sa.sendResponse(m.Header.Exchange, id, []message.Payload{message.Notify{Type: me.Notify, Data: me.Data}})
		} else if err != nil {
			sa.log.Debug("request dropped", "err", err)
		}
		return
	}
	sa.lastRecv = sa.e.clock.Now()
	sa.log.Debug("request", "exchange", m.Header.Exchange, "msgid", id, "payloads", innerTypes(m))
	if m.Header.Exchange != message.IKE_SA_INIT {
		sa.followPeer(local, remote)
	}
	sa.expectID++
	switch m.Header.Exchange {
	case message.IKE_SA_INIT:
		sa.respondInit(m)
	case message.IKE_AUTH:
		sa.respondAuth(m)
	case message.CREATE_CHILD_SA:
		sa.respondCreateChild(m)
	case message.INFORMATIONAL:
		sa.respondInformational(m)
	default:
		sa.sendResponse(m.Header.Exchange, id, nil)
	}
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
func connNames(main string, conns map[string]bool) []string {
	names := []string{}
	if main != "" {
		names = append(names, main)
	}
	for n := range conns {
		if n != main {
			names = append(names, n)
		}
	}
	return names
}

// destroy removes every CHILD SA, unregisters the SA and ends its loop.
func (sa *ikeSA) destroy() {
	if sa.state == saDead {
		return
	}
	var gone []shared.ChildInfo
	for _, c := range sa.children {
		c.stopTimers()
		if err := sa.e.cfg.Installer.Remove(c.conn.Name, c.inSPI, c.outSPI); err != nil {
			sa.log.Warn("removing CHILD SA", "conn", c.conn.Name, "err", err)
		}
		gone = append(gone, c.info())
	}
	sa.children = nil
	if sa.pending != nil {
		sa.pending.timer.Stop()
		sa.pending = nil
	}
	// Queued tasks are dropped without their fail hooks: the conns they
	// serve get their state from the reason already recorded, or go down.
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
	if sa.ke != nil {
		sa.ke.Close()
	}
	if sa.out != nil {
		sa.out.Close()
		sa.in.Close()
	}
	sa.keys.Zero()
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
	close(sa.done)
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
		Established: sa.established,
	}
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
