package ikev2

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
	"github.com/ipsecgw/ipsecgw/ike/shared"
)

// Exchanges (RFC 7296 §2.1–§2.3): tasks for either role, our requests
// with window size 1 (one outstanding, the rest queued), retransmission
// of the cached request, and the peer's requests answered once each, a
// retransmitted one from the cached response.

// task is one exchange, for either role (strongSwan's task_t). The
// initiator's task builds the request and processes the response; the
// responder's processes the request and builds the response. A task owns
// the scratch state of its exchange (key exchanges, nonces, offers); the
// IKE SA keeps what outlives the exchange.
type task interface {
	exchange() message.ExchangeType
	// build makes the payloads of our message: the request, or the
	// response to the request process has just handled.
	build(sa *ikeSA) ([]message.Payload, error)
	// process handles the peer's message, decrypted and validated: the
	// response, or the request. A responder returns a notifyError to
	// answer with that notification instead of what build would make.
	process(sa *ikeSA, m *message.Message) error
	// fail is told when an exchange we initiated is abandoned (no answer,
	// or the SA goes away before it is sent).
	fail(sa *ikeSA, cause shared.Cause, reason string)
}

// answerer is a responder task with work to do once its response is on
// its way: what the peer may rely on only after our answer (a CHILD SA
// rekey collision resolved, the old IKE SA left to the peer's DELETE) and
// the end of an SA the request asked to end.
type answerer interface {
	answered(sa *ikeSA)
}

// sender is an initiator task that keeps the bytes of its request
// (IKE_SA_INIT: the AUTH payloads sign them).
type sender interface {
	sent(sa *ikeSA, pkt []byte)
}

// discarder is a task holding secrets (a key exchange, a new IKE SA) to
// release when it is dropped unsent or unanswered because its SA ends.
type discarder interface {
	discard()
}

// notifyError answers a request with one error notification (RFC 7296
// §2.21): the responder task refuses what was asked.
type notifyError struct {
	message.Notify
}

func (e notifyError) Error() string { return "answered with " + e.Type.String() }

// outstanding is our request awaiting its response.
type outstanding struct {
	t     task
	id    uint32
	pkt   []byte
	tries int // retransmissions done
	gen   uint32
	timer shared.Timer
	start time.Time
	// dpd: an empty INFORMATIONAL request, the liveness check of RFC
	// 7296 §2.4 (reported as such in ExchangeDone).
	dpd bool
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
		// The queue's array outlives the task otherwise (sa.queue[1:] of
		// a one-task queue still points at it): an established SA kept
		// its IKE_AUTH task, and all the task held, until it ended.
		sa.queue[0] = nil
		sa.queue = sa.queue[1:]
		if len(sa.queue) == 0 {
			sa.queue = nil
		}
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
	if !sa.keys.Derived() {
		return nil, errors.New("no keys for a protected message")
	}
	out, err := sa.protector(true)
	if err != nil {
		return nil, err
	}
	defer out.Close()
	pkt, err := message.AppendEncrypted(nil, h, out, payloads...)
	if err != nil {
		return nil, err
	}
	if err := sa.fragmentIfNeeded(h, out, payloads, pkt); err != nil {
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
	if s, ok := t.(sender); ok {
		s.sent(sa, pkt)
	}
	sa.timerGen++
	o := &outstanding{t: t, id: sa.nextID, pkt: pkt, gen: sa.timerGen, start: sa.e.clock.Now(),
		dpd: ex == message.INFORMATIONAL && len(payloads) == 0}
	sa.pending = o
	sa.send(pkt)
	sa.armRetransmit(o)
	return nil
}

func (sa *ikeSA) armRetransmit(o *outstanding) {
	gen := o.gen
	d := shared.RetransmitDelay(sa.e.rt, o.tries)
	if deadline, ok := sa.livenessDeadline(); ok {
		// Look again at the deadline, whatever the schedule says.
		d = min(d, max(deadline.Sub(sa.e.clock.Now()), 0))
	}
	o.timer = sa.after(d, func() { sa.retransmit(gen) })
}

// livenessDeadline is when an established SA whose conn runs DPD gives up
// on a peer that answers nothing: dpdtimeout after the last message we
// received from it. strongSwan 5.9 ignores dpdtimeout for IKEv2 and waits
// for the whole retransmission schedule (~165 s by default); Libreswan
// bounds the wait by it, as users of templates setting dpdtimeout=30s
// expect, and so do we.
func (sa *ikeSA) livenessDeadline() (time.Time, bool) {
	c := sa.conn
	if sa.state != saEstablished || c.DPDAction == config.ActionNone || c.DPDDelay <= 0 || c.DPDTimeout <= 0 {
		return time.Time{}, false
	}
	return sa.e.time(sa.lastRecv).Add(c.DPDTimeout), true
}

func (sa *ikeSA) retransmit(gen uint32) {
	o := sa.pending
	if o == nil || o.gen != gen || sa.state == saDead {
		return // stale: the exchange finished
	}
	if deadline, ok := sa.livenessDeadline(); ok && !sa.e.clock.Now().Before(deadline) {
		sa.pending = nil
		reason := fmt.Sprintf("no answer from %s for %s (dpdtimeout) to our %s request", sa.remote, sa.conn.DPDTimeout, o.t.exchange())
		sa.log.Info("giving up: dpdtimeout reached", "exchange", o.t.exchange(), "tries", o.tries)
		o.t.fail(sa, shared.CauseTimeout, reason)
		sa.peerDead(reason)
		return
	}
	if o.tries >= sa.e.rt.Tries {
		sa.pending = nil
		reason := fmt.Sprintf("no response from %s to our %s request after %d retransmissions (%s)",
			sa.remote, o.t.exchange(), o.tries, sa.e.clock.Now().Sub(o.start).Round(time.Second))
		sa.log.Info("giving up", "exchange", o.t.exchange(), "tries", o.tries)
		sa.exchangeDone(o, true)
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

// exchangeDone reports the end of our request o: answered, or given up
// after every retransmission (timedOut). The round trip counts only when
// the first transmission was answered.
func (sa *ikeSA) exchangeDone(o *outstanding, timedOut bool) {
	ev := shared.ExchangeDone{Names: sa.connNames(), IKE: sa.info(), Exchange: o.t.exchange().String(),
		DPD: o.dpd, Retransmits: o.tries, TimedOut: timedOut}
	if !timedOut && o.tries == 0 {
		ev.RTT = sa.e.clock.Now().Sub(o.start)
	}
	sa.e.host.Emit(ev)
}

// sendResponse encodes, caches and sends our response to request id.
func (sa *ikeSA) sendResponse(ex message.ExchangeType, id uint32, payloads []message.Payload) {
	pkt, err := sa.encode(sa.header(ex, id, true), payloads)
	if err != nil {
		sa.log.Warn("cannot encode response", "exchange", ex, "err", err)
		return
	}
	sa.lastRsp, sa.hasRsp, sa.rspAt = pkt, true, sa.e.now()
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
		sa.e.drops.Drop(sa.log, parseDropReason(err), "malformed message dropped", "remote", remote, "err", err)
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
	if h.Exchange == message.INFORMATIONAL {
		// A copy of the datagram as it arrived (decryption works in
		// place) is kept while the request is answered: a DELETE of the
		// IKE SA leaves it and the answer to the Host (infoTask.answered).
		sa.rawRequest = bytes.Clone(pkt)
		defer func() { sa.rawRequest = nil }()
	}
	sa.handleRequest(local, remote, &m)
}

// errNoKeys: a protected message arrived before the SA has keys.
var errNoKeys = errors.New("no keys yet")

// parseDropReason is the drop reason of a message that does not parse or
// validate.
func parseDropReason(err error) shared.DropReason {
	if errors.Is(err, message.ErrUnsupportedCriticalPayload) {
		return shared.DropUnsupportedCritical
	}
	return shared.DropMalformed
}

// decryptDropReason is the drop reason of message m that decrypt refused
// with err: a fragment (SKF) that failed is a bad fragment whatever the
// check; otherwise the integrity check or decryption (codec errors naming
// no notify that wrap the transform's error), missing keys, or the syntax.
func (sa *ikeSA) decryptDropReason(m *message.Message, err error) shared.DropReason {
	var me *message.Error
	switch {
	case errors.Is(err, errNoKeys):
		return shared.DropWrongState
	case isFragment(m):
		return shared.DropBadFragment
	case errors.As(err, &me) && me.Notify == message.NotifyNone && me.Err != nil:
		return shared.DropAuthFailed
	}
	return parseDropReason(err)
}

func isFragment(m *message.Message) bool {
	sk, ok := m.Encrypted()
	return ok && sk.Type == message.PayloadSKF
}

// verifyRetransmission checks the integrity of a repeated request without
// processing it: a fragment on its own (not fed to the reassembly, whose
// message was answered), a whole message by opening its SK payload. An
// IKE_SA_INIT request (message ID 0) has no integrity to check; its answer
// goes only to the half-open peer's address.
func (sa *ikeSA) verifyRetransmission(m *message.Message) error {
	if m.Header.Exchange == message.IKE_SA_INIT && m.Header.MessageID == 0 {
		return nil
	}
	in, err := sa.protector(false)
	if err != nil {
		return err
	}
	defer in.Close()
	sk, ok := m.Encrypted()
	if !ok {
		return errors.New("no SK payload")
	}
	if sk.Type == message.PayloadSKF {
		_, _, err := message.DecryptFragment(m, in)
		return err
	}
	return message.Decrypt(m, in)
}

// decrypt opens the SK payload (reassembling SKF fragments, RFC 7383); it
// reports false while fragments are missing or when the message must be
// dropped.
func (sa *ikeSA) decrypt(m *message.Message) (bool, error) {
	if m.Header.Exchange == message.IKE_SA_INIT {
		return true, nil
	}
	in, err := sa.protector(false)
	if err != nil {
		return false, err
	}
	defer in.Close()
	sk, ok := m.Encrypted()
	if !ok {
		return false, errors.New("no SK payload")
	}
	if sk.Type == message.PayloadSKF {
		fh, part, err := message.DecryptFragment(m, in)
		if err != nil {
			return false, err
		}
		if sa.reasm == nil {
			sa.reasm = new(reassembly)
		}
		complete, err := sa.reasm.add(m, fh, part)
		if err != nil || complete {
			// Nothing is held between messages (add reset it): no
			// reassembly state on an SA that is not receiving fragments.
			sa.reasm = nil
		}
		if err != nil || !complete {
			return false, err
		}
	} else if err := message.Decrypt(m, in); err != nil {
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
		sa.e.drops.Drop(sa.log, shared.DropUnexpectedResponse, "unexpected response dropped", "msgid", m.Header.MessageID)
		return
	}
	// The response must come from the responder (I flag clear when we are
	// the original initiator, set otherwise).
	if m.Header.IsInitiator() == sa.initiator {
		sa.e.drops.Drop(sa.log, shared.DropUnexpectedResponse, "response with the initiator's flag dropped", "msgid", m.Header.MessageID)
		return
	}
	ok, err := sa.decrypt(m)
	if !ok {
		if err != nil {
			sa.e.drops.Drop(sa.log, sa.decryptDropReason(m, err), "response dropped", "msgid", m.Header.MessageID, "err", err)
		}
		return
	}
	o.timer.Stop()
	sa.pending = nil
	sa.nextID++
	sa.lastRecv = sa.e.now()
	sa.exchangeDone(o, false)
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
		// A request must come from the other side.
		sa.e.drops.Drop(sa.log, shared.DropMalformed, "request with our own initiator flag dropped", "msgid", m.Header.MessageID)
		return
	}
	id := m.Header.MessageID
	if sa.hasRsp && id+1 == sa.expectID {
		// A retransmitted request: answer with the cached bytes, never
		// process it twice (RFC 7296 §2.1); but only once it passes the
		// integrity check. The message ID and SPIs are in clear: answering
		// forged copies would let anyone make us send our cached response
		// (maybe a larger one, or many fragments) to the peer at will.
		// Nor are copies answered faster than shared.AnswerGap, checked
		// first: only verified copies move rspAt, and the check saves
		// verifying a flood of replays.
		now := sa.e.clock.Now()
		if !shared.AnswerDue(sa.e.time(sa.rspAt), now) {
			sa.e.drops.Drop(sa.log, shared.DropRetransmitLimited, "retransmitted request within the answer gap dropped", "msgid", id)
			return
		}
		if err := sa.verifyRetransmission(m); err != nil {
			sa.e.drops.Drop(sa.log, sa.decryptDropReason(m, err), "retransmitted request dropped", "msgid", id, "err", err)
			return
		}
		sa.e.drops.Drop(sa.log, shared.DropRetransmission, "retransmitted request answered from cache", "msgid", id)
		sa.rspAt = sa.e.instant(now)
		sa.send(sa.lastRsp)
		return
	}
	if id != sa.expectID {
		sa.e.drops.Drop(sa.log, shared.DropUnexpectedMsgID, "request with unexpected message ID dropped", "msgid", id, "want", sa.expectID)
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
			sa.e.drops.Drop(sa.log, sa.decryptDropReason(m, err), "request dropped", "msgid", id, "err", err)
		}
		return
	}
	sa.lastRecv = sa.e.now()
	sa.log.Debug("request", "exchange", m.Header.Exchange, "msgid", id, "payloads", innerTypes(m))
	if m.Header.Exchange != message.IKE_SA_INIT {
		sa.followPeer(local, remote)
	}
	sa.expectID++
	sa.respond(m)
}

// respond runs the responder task for a request: process, then build the
// answer (or answer with the error notify process chose), send it, and
// let the task finish what follows the answer.
func (sa *ikeSA) respond(m *message.Message) {
	ex, id := m.Header.Exchange, m.Header.MessageID
	t, refusal := sa.responder(m)
	if t == nil {
		sa.sendResponse(ex, id, refusal)
		return
	}
	var ne notifyError
	err := t.process(sa, m)
	switch {
	case errors.As(err, &ne) && ex == message.IKE_SA_INIT:
		// Refused before any state is kept: answered statelessly, the
		// SA ends (RFC 7296 §2.6 style).
		sa.reject(ne.Notify)
		return
	case errors.As(err, &ne):
		sa.sendResponse(ex, id, []message.Payload{ne.Notify})
	case err != nil:
		sa.log.Warn("request not processed", "exchange", ex, "err", err)
		return
	default:
		ps, err := t.build(sa)
		if err != nil {
			sa.log.Warn("cannot build the response", "exchange", ex, "err", err)
			return
		}
		sa.sendResponse(ex, id, ps)
	}
	if a, ok := t.(answerer); ok {
		a.answered(sa)
	}
}

// responder returns the task answering a request, or, when the request
// cannot be taken at all, the payloads to answer it with.
func (sa *ikeSA) responder(m *message.Message) (task, []message.Payload) {
	switch m.Header.Exchange {
	case message.IKE_SA_INIT:
		return &initTask{responder: true}, nil
	case message.IKE_INTERMEDIATE:
		return &intermediateTask{responder: true}, nil
	case message.IKE_AUTH:
		return &authTask{responder: true}, nil
	case message.INFORMATIONAL:
		return &infoTask{responder: true}, nil
	case message.IKE_FOLLOWUP_KE:
		return &followupTask{responder: true}, nil
	case message.CREATE_CHILD_SA:
		switch {
		case sa.state == saDeleting:
			// Rekeyed or being deleted: RFC 7296 §2.25 asks for
			// TEMPORARY_FAILURE (NO_ADDITIONAL_SAS makes strongSwan fall
			// back to reauthentication).
			return nil, []message.Payload{message.Notify{Type: message.TEMPORARY_FAILURE}}
		case sa.state != saEstablished:
			return nil, []message.Payload{message.Notify{Type: message.NO_ADDITIONAL_SAS}}
		}
		sap, _ := payload(m.Inner, message.PayloadSA)
		peerSA, _, err := message.ParseSA(sap.Body)
		if err != nil || len(peerSA.Proposals) == 0 {
			return nil, []message.Payload{message.Notify{Type: message.INVALID_SYNTAX}}
		}
		if peerSA.Proposals[0].Protocol == message.ProtoIKE {
			return &ikeRekeyTask{responder: true}, nil
		}
		return &childTask{responder: true}, nil
	}
	return nil, nil // an exchange we do not know: an empty answer
}
