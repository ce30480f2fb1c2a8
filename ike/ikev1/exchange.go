package ikev1

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/ipsecgw/ipsecgw/ike/ikev1/isakmp"
	"github.com/ipsecgw/ipsecgw/ike/ikev1/keymat"
	"github.com/ipsecgw/ipsecgw/ike/shared"
)

// Exchanges: tasks for either role, our own exchanges one at a time
// (informational messages aside, which nobody answers), retransmission
// of cached bytes, and retransmitted messages answered from the cache
// before anything is decrypted (strongSwan's task_manager_v1 rules):
//
//   - the initiator of an exchange resends its last message on timeout
//     (shared.RetransmitDelay, Retransmit.Tries times); the responder
//     answers a repeated request with its cached answer;
//   - in the three-message exchanges (aggressive and quick mode) the
//     responder has no later request to wait for, so it resends message
//     2 itself until message 3 arrives, and the initiator keeps message 3
//     and resends it whenever message 2 arrives again (its message 3 was
//     lost);
//   - a message moves the IV chain only once it verified (keymat.IVChain).

// step says what follows once a task processed the peer's message.
type step uint8

const (
	// stepMore: build and send our next message; the peer sends another.
	stepMore step = iota
	// stepLast: build and send our last message; the exchange is complete.
	stepLast
	// stepDone: nothing more to send; the exchange is complete.
	stepDone
)

// task is one exchange for either role (strongSwan's task_t). The
// initiator's task builds the first message; then each message of the
// peer is processed and answered by build, as process's step says. A task
// owns its exchange's scratch state; the ISAKMP SA keeps what outlives it.
type task interface {
	exchange() isakmp.ExchangeType
	// messageID is the exchange's message ID: 0 in phase 1, a fresh
	// random one for a quick mode we initiate (assigned on first call),
	// the peer's for one it initiated.
	messageID(sa *isakmpSA) uint32
	// build returns our next message as it goes on the wire (encrypted
	// where the exchange requires it, moving the IV chain).
	build(sa *isakmpSA) ([]byte, error)
	// process handles the peer's message, decrypted and validated. An
	// error fails the exchange; a notifyError also tells the peer.
	process(sa *isakmpSA, m *isakmp.Message) (step, error)
	// fail is told when the exchange failed or was abandoned (no answer,
	// refused, or the SA went away before it started).
	fail(sa *isakmpSA, cause shared.Cause, reason string)
}

// discarder is a task holding secrets or dataplane state to release when
// it is dropped because its SA ends.
type discarder interface{ discard() }

// undecryptable is a task that can say what a message of its exchange
// that did not decrypt means (in main mode 5 and 6: a PSK mismatch).
type undecryptable interface {
	undecryptable(sa *isakmpSA, err error) error
}

func discard(t task) {
	if d, ok := t.(discarder); ok {
		d.discard()
	}
}

// notifyError fails an exchange and tells the peer with an informational
// notification (RFC 2408 §3.14): the notify, and the failure in words.
type notifyError struct {
	n     isakmp.NotifyType
	cause shared.Cause
	text  string
}

func (e notifyError) Error() string { return e.text }

// causeError is an error with the cause it is reported under.
type causeError struct {
	cause shared.Cause
	err   error
}

func (e causeError) Error() string { return e.err.Error() }
func (e causeError) Unwrap() error { return e.err }

// failure is an error with its cause, in words that say what to change.
func failure(cause shared.Cause, format string, args ...any) error {
	return causeError{cause, fmt.Errorf(format, args...)}
}

// refusal is a failure the peer is told about with notify n.
func refusal(n isakmp.NotifyType, cause shared.Cause, format string, args ...any) error {
	return notifyError{n: n, cause: cause, text: fmt.Sprintf(format, args...)}
}

// causeOf is the cause an error carries, CauseInternal when none.
func causeOf(err error) shared.Cause {
	var ne notifyError
	if errors.As(err, &ne) {
		return ne.cause
	}
	var ce causeError
	if errors.As(err, &ce) {
		return ce.cause
	}
	return shared.CauseInternal
}

// outstanding is our message awaiting the peer's answer.
type outstanding struct {
	t     task
	mid   uint32
	pkt   []byte
	tries int // retransmissions done
	gen   uint64
	timer shared.Timer
	start time.Time
}

// finalMsg is the last message of a three-message exchange we initiated
// (aggressive mode 3, quick mode 3), resent when the peer repeats the
// message it answers (answer is that message's hash).
type finalMsg struct {
	mid    uint32
	pkt    []byte
	answer [32]byte
	sentAt time.Time // when pkt last went out (shared.AnswerGap)
}

// passiveEx is an exchange the peer initiated (message ID 0: phase 1 as
// responder), with what answers its retransmissions: the hash of the
// last request processed and our answer to it. In aggressive and quick
// mode our message 2 is retransmitted by us until message 3 arrives.
type passiveEx struct {
	t      task
	mid    uint32
	req    [32]byte
	rsp    []byte
	rspAt  time.Time // when rsp last went out (shared.AnswerGap)
	done   bool
	doneAt time.Time
	// Our own retransmission of rsp.
	tries int
	gen   uint64
	timer shared.Timer
	start time.Time
}

// passiveKeep is how long a completed passive exchange is remembered, so
// that a late retransmission of its last message is recognised.
const passiveKeep = time.Minute

func (p *passiveEx) stop() {
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
}

// abandon ends a passive exchange whose SA goes away.
func (p *passiveEx) abandon(*isakmpSA) {
	p.stop()
	if !p.done {
		discard(p.t)
	}
}

// header is the ISAKMP header of a message of exchange ex on this SA.
func (sa *isakmpSA) header(ex isakmp.ExchangeType, mid uint32) isakmp.Header {
	return isakmp.Header{CookieI: sa.ckyI, CookieR: sa.ckyR, Exchange: ex, MessageID: mid}
}

// encrypt encrypts a plaintext message of exchange mid with the IV chain
// and moves the chain (a sent message always counts).
func (sa *isakmpSA) encrypt(plain []byte, mid uint32) ([]byte, error) {
	if sa.keys == nil {
		return nil, errors.New("no keys for an encrypted message")
	}
	out, next, err := sa.keys.Encrypt(plain, sa.iv.IV(mid))
	if err != nil {
		return nil, err
	}
	sa.iv.Update(mid, next)
	return out, nil
}

// hashedMessage builds an encrypted quick mode or informational message
// whose first payload is a HASH over the rest (RFC 2409 §5.5, §5.7).
func (sa *isakmpSA) hashedMessage(ex isakmp.ExchangeType, mid uint32, hash func(rest []byte) []byte, payloads ...isakmp.Payload) ([]byte, error) {
	plain, err := isakmp.AppendHashedMessage(nil, sa.header(ex, mid), sa.suite.HashSize(), hash, payloads...)
	if err != nil {
		return nil, err
	}
	return sa.encrypt(plain, mid)
}

// open decrypts an encrypted message with the IV of its exchange and
// validates its payloads; it returns the block that moves the chain once
// the message verified (nil for a message sent in clear).
func (sa *isakmpSA) open(m *isakmp.Message) ([]byte, error) {
	if !m.Encrypted() {
		return nil, nil
	}
	if sa.keys == nil {
		return nil, errNoKeys
	}
	next, err := sa.keys.Decrypt(m, sa.iv.IV(m.Header.MessageID))
	if err != nil {
		return nil, err
	}
	if err := isakmp.Validate(m); err != nil {
		return nil, err
	}
	return next, nil
}

// errNoKeys: an encrypted message arrived before the SA has keys.
var errNoKeys = errors.New("encrypted message before the keys are known")

// openDropReason is the drop reason of a message open refused with err,
// or that a task refused with errDrop (its HASH did not verify): in IKEv1
// a message under other keys shows as payloads that do not parse after
// decryption (the codec's PAYLOAD_MALFORMED wrapping the parse error), as
// there is no integrity check of its own.
func openDropReason(err error) shared.DropReason {
	var ie *isakmp.Error
	switch {
	case errors.Is(err, errNoKeys):
		return shared.DropWrongState
	case errors.Is(err, errDrop), errors.As(err, &ie) && ie.Notify == isakmp.PAYLOAD_MALFORMED && ie.Err != nil:
		return shared.DropAuthFailed
	}
	return shared.DropMalformed
}

// verifyHash checks the HASH payload that starts a quick mode or
// informational message against want(rest).
func verifyHash(m *isakmp.Message, want func(rest []byte) []byte) bool {
	h, ok := m.First(isakmp.PayloadHash)
	if !ok {
		return false
	}
	rest, err := m.AfterHash()
	if err != nil {
		return false
	}
	return keymat.Equal(want(rest), h.Body)
}

func (sa *isakmpSA) send(pkt []byte) {
	if err := sa.e.cfg.Send(sa.local, sa.remote, pkt); err != nil {
		sa.log.Debug("send failed", "remote", sa.remote, "err", err)
	}
}

// enqueue queues one of our exchanges; the loop starts it when none is in
// flight (run).
func (sa *isakmpSA) enqueue(t task) { sa.queue = append(sa.queue, t) }

// isPhase1 reports whether t is a main or aggressive mode task.
func isPhase1(t task) bool {
	ex := t.exchange()
	return ex == isakmp.ExchangeIdentityProtection || ex == isakmp.ExchangeAggressive
}

// kick starts the next queued exchange when none is in flight. Quick
// modes wait for phase 1.
func (sa *isakmpSA) kick() {
	for sa.pending == nil && len(sa.queue) > 0 && sa.state != saDead {
		t := sa.queue[0]
		if sa.state != saEstablished && !isPhase1(t) {
			if sa.state == saDeleting {
				sa.queue = sa.queue[1:]
				t.fail(sa, shared.CauseAdmin, "the ISAKMP SA is being deleted")
				continue
			}
			return
		}
		sa.queue = sa.queue[1:]
		if err := sa.startExchange(t); err != nil {
			t.fail(sa, causeOf(err), err.Error())
		}
	}
}

// startExchange builds an exchange's first message, sends it and arms
// its retransmission.
func (sa *isakmpSA) startExchange(t task) error {
	mid := t.messageID(sa)
	pkt, err := t.build(sa)
	if err != nil {
		return err
	}
	sa.pending = &outstanding{t: t, mid: mid, start: sa.e.clock.Now()}
	sa.sendRequest(pkt)
	return nil
}

// sendRequest sends our next message of the pending exchange, caches it
// and (re)arms its retransmission.
func (sa *isakmpSA) sendRequest(pkt []byte) {
	o := sa.pending
	o.pkt, o.tries = pkt, 0
	sa.timerGen++
	o.gen = sa.timerGen
	// Armed before the message leaves: the peer's answer (and its own
	// retransmission timer) may come before send returns, and timers that
	// fall due at one instant fire in the order they were armed.
	sa.armRetransmit(o)
	sa.send(pkt)
}

func (sa *isakmpSA) armRetransmit(o *outstanding) {
	gen := o.gen
	o.timer = sa.after(shared.RetransmitDelay(sa.e.rt, o.tries), func() { sa.retransmit(gen) })
}

// describe names the message a task last sent, for failure texts.
func describe(t task) string {
	if s, ok := t.(fmt.Stringer); ok {
		return s.String()
	}
	return t.exchange().String()
}

func (sa *isakmpSA) retransmit(gen uint64) {
	o := sa.pending
	if o == nil || o.gen != gen || sa.state == saDead {
		return // stale: the exchange moved on
	}
	if o.tries >= sa.e.rt.Tries {
		sa.pending = nil
		reason := fmt.Sprintf("no response from %s to our %s after %d retransmissions (%s)",
			sa.remote, describe(o.t), o.tries, sa.e.clock.Now().Sub(o.start).Round(time.Second))
		sa.log.Info("giving up", "exchange", describe(o.t), "tries", o.tries)
		if sa.initiator && sa.state == saPhase1 && sa.retryKeying(reason) {
			discard(o.t)
			return
		}
		o.t.fail(sa, shared.CauseTimeout, reason)
		if sa.state == saEstablished {
			// A peer that stops answering on an established SA is dead.
			sa.peerDead(reason)
		}
		return
	}
	o.tries++
	sa.log.Debug("retransmit", "exchange", describe(o.t), "msgid", o.mid, "try", o.tries)
	sa.send(o.pkt)
	sa.armRetransmit(o)
}

// retransmitAnswer starts our own retransmission of a passive exchange's
// answer (aggressive and quick mode message 2).
func (sa *isakmpSA) retransmitAnswer(p *passiveEx) {
	sa.timerGen++
	p.gen, p.tries, p.start = sa.timerGen, 0, sa.e.clock.Now()
	sa.armPassive(p)
}

func (sa *isakmpSA) armPassive(p *passiveEx) {
	gen := p.gen
	p.timer = sa.after(shared.RetransmitDelay(sa.e.rt, p.tries), func() { sa.retransmitPassive(p, gen) })
}

func (sa *isakmpSA) retransmitPassive(p *passiveEx, gen uint64) {
	if sa.state == saDead || p.gen != gen || p.done || sa.passive[p.mid] != p {
		return
	}
	if p.tries >= sa.e.rt.Tries {
		delete(sa.passive, p.mid)
		reason := fmt.Sprintf("the peer %s did not confirm our %s after %d retransmissions (%s)",
			sa.remote, describe(p.t), p.tries, sa.e.clock.Now().Sub(p.start).Round(time.Second))
		sa.log.Info("giving up", "exchange", describe(p.t), "tries", p.tries)
		p.t.fail(sa, shared.CauseTimeout, reason)
		if sa.state == saEstablished {
			sa.peerDead(reason)
		}
		return
	}
	p.tries++
	sa.log.Debug("retransmit", "exchange", describe(p.t), "msgid", p.mid, "try", p.tries)
	p.rspAt = sa.e.clock.Now()
	sa.send(p.rsp)
	sa.armPassive(p)
}

// handle processes one datagram (a private copy) for this SA.
func (sa *isakmpSA) handle(local, remote netip.AddrPort, pkt []byte) {
	if sa.state == saDead {
		return
	}
	// Retransmissions are recognised by their bytes, before anything is
	// decrypted in place.
	sum := sha256.Sum256(pkt)
	m, _, err := isakmp.ParseMessage(pkt)
	if err == nil {
		err = isakmp.Validate(&m)
	}
	if err != nil {
		sa.e.drops.Drop(sa.log, shared.DropMalformed, "malformed message dropped", "remote", remote, "err", err)
		return
	}
	if sa.repeatedAnswer(sum, m.Header.MessageID) {
		return
	}
	switch m.Header.Exchange {
	case isakmp.ExchangeIdentityProtection, isakmp.ExchangeAggressive:
		if sa.initiator {
			sa.handleAnswer(local, remote, &m, sum)
			return
		}
		sa.handleRequest(local, remote, &m, sum, sa.newPhase1Responder)
	case isakmp.ExchangeQuickMode:
		if sa.handleAnswer(local, remote, &m, sum) {
			return
		}
		if sa.connected(&m) {
			return
		}
		if sa.state != saEstablished {
			sa.e.drops.Drop(sa.log, shared.DropWrongState, "quick mode before phase 1 completed dropped", "msgid", m.Header.MessageID)
			return
		}
		sa.handleRequest(local, remote, &m, sum, sa.newQuickResponder)
	case isakmp.ExchangeInformational:
		sa.handleInformational(local, remote, &m)
	}
}

// repeatedAnswer recognises an answer to one of our messages that was
// processed already: when it is the one answered by the final message of
// an exchange we completed, that final message was lost and is resent.
func (sa *isakmpSA) repeatedAnswer(sum [32]byte, mid uint32) bool {
	if sum != sa.answers[0] && sum != sa.answers[1] {
		return false
	}
	if f := sa.final; f != nil && f.answer == sum && f.mid == mid {
		now := sa.e.clock.Now()
		if !shared.AnswerDue(f.sentAt, now) {
			sa.e.drops.Drop(sa.log, shared.DropRetransmitLimited, "peer repeated its answer within the answer gap: dropped", "msgid", mid)
			return true
		}
		sa.e.drops.Drop(sa.log, shared.DropRetransmission, "peer repeated its answer: resending our last message", "msgid", mid)
		f.sentAt = now
		sa.send(f.pkt)
		return true
	}
	sa.e.drops.Count(shared.DropRetransmission)
	return true
}

func (sa *isakmpSA) recordAnswer(sum [32]byte) {
	sa.answers[1] = sa.answers[0]
	sa.answers[0] = sum
}

// handleAnswer processes the peer's answer to our pending exchange; it
// reports false when the message is not one.
func (sa *isakmpSA) handleAnswer(local, remote netip.AddrPort, m *isakmp.Message, sum [32]byte) bool {
	o := sa.pending
	if o == nil || o.mid != m.Header.MessageID || o.t.exchange() != m.Header.Exchange {
		return false
	}
	next, err := sa.open(m)
	if err != nil {
		if u, ok := o.t.(undecryptable); ok {
			sa.failPending(o, u.undecryptable(sa, err))
			return true
		}
		sa.e.drops.Drop(sa.log, openDropReason(err), "answer dropped", "exchange", m.Header.Exchange, "err", err)
		return true
	}
	st, err := o.t.process(sa, m)
	if errors.Is(err, errDrop) {
		sa.e.drops.Drop(sa.log, openDropReason(err), "answer dropped", "exchange", m.Header.Exchange, "msgid", o.mid, "err", err)
		return true
	}
	if err != nil {
		sa.failPending(o, err)
		return true
	}
	if next != nil {
		sa.iv.Update(o.mid, next)
	}
	o.timer.Stop()
	sa.recordAnswer(sum)
	sa.alive()
	if m.Encrypted() {
		sa.followPeer(local, remote)
	}
	switch st {
	case stepMore:
		pkt, err := o.t.build(sa)
		if err != nil {
			sa.failPending(o, err)
			return true
		}
		sa.sendRequest(pkt)
	case stepLast:
		sa.pending = nil
		pkt, err := o.t.build(sa)
		if err != nil {
			o.t.fail(sa, causeOf(err), err.Error())
			return true
		}
		sa.final = &finalMsg{mid: o.mid, pkt: pkt, answer: sum, sentAt: sa.e.clock.Now()}
		sa.send(pkt)
	case stepDone:
		sa.pending = nil
	}
	return true
}

// failPending ends our pending exchange with err (telling the peer when
// err is a notifyError).
func (sa *isakmpSA) failPending(o *outstanding, err error) {
	o.timer.Stop()
	if sa.pending == o {
		sa.pending = nil
	}
	var ne notifyError
	if errors.As(err, &ne) {
		sa.sendNotify(isakmp.Notify{DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtoISAKMP, Type: ne.n, SPI: isakmp.CookieSPI(sa.ckyI, sa.ckyR)})
	}
	o.t.fail(sa, causeOf(err), err.Error())
}

// handleRequest processes a message of an exchange the peer initiated:
// a repeated request is answered from the cache, a new one starts a task
// (newTask; nil drops the message).
func (sa *isakmpSA) handleRequest(local, remote netip.AddrPort, m *isakmp.Message, sum [32]byte, newTask func(m *isakmp.Message) task) {
	mid := m.Header.MessageID
	p := sa.passive[mid]
	if p != nil && p.req == sum {
		if p.rsp != nil {
			now := sa.e.clock.Now()
			if !shared.AnswerDue(p.rspAt, now) {
				sa.e.drops.Drop(sa.log, shared.DropRetransmitLimited, "retransmitted request within the answer gap dropped", "exchange", m.Header.Exchange, "msgid", mid)
				return
			}
			sa.e.drops.Drop(sa.log, shared.DropRetransmission, "retransmitted request answered from cache", "exchange", m.Header.Exchange, "msgid", mid)
			p.rspAt = now
			sa.send(p.rsp)
		} else {
			sa.e.drops.Count(shared.DropRetransmission)
		}
		return
	}
	fresh := p == nil
	if !fresh && p.t.exchange() != m.Header.Exchange {
		sa.e.drops.Drop(sa.log, shared.DropUnexpectedMsgID, "message of another exchange with a message ID in use dropped", "exchange", m.Header.Exchange, "msgid", mid)
		return
	}
	if fresh {
		t := newTask(m)
		if t == nil {
			return
		}
		sa.prunePassive()
		p = &passiveEx{t: t, mid: mid}
	} else if p.done {
		sa.e.drops.Drop(sa.log, shared.DropUnexpectedMsgID, "message for a completed exchange dropped", "exchange", m.Header.Exchange, "msgid", mid)
		return
	}
	next, err := sa.open(m)
	if err != nil {
		if u, ok := p.t.(undecryptable); ok && !fresh {
			sa.failPassive(p, u.undecryptable(sa, err))
			return
		}
		sa.e.drops.Drop(sa.log, openDropReason(err), "request dropped", "exchange", m.Header.Exchange, "msgid", mid, "err", err)
		if fresh && mid != 0 {
			// Opening it made an IV entry for its message ID: a flood of
			// forged new exchanges must not push out the IVs of genuine
			// ones in progress.
			sa.iv.Forget(mid)
		}
		return
	}
	if fresh {
		sa.passive[mid] = p
	}
	if sa.state == saPhase1 {
		// The peer floats to port 4500 in phase 1 once a NAT is seen,
		// whichever side it is on: our answers follow it.
		sa.followPeer(local, remote)
	}
	st, err := p.t.process(sa, m)
	if errors.Is(err, errDrop) {
		sa.e.drops.Drop(sa.log, openDropReason(err), "request dropped", "exchange", m.Header.Exchange, "msgid", mid, "err", err)
		if fresh {
			delete(sa.passive, mid)
			sa.iv.Forget(mid)
		}
		return
	}
	if err != nil {
		sa.failPassive(p, err)
		return
	}
	if next != nil {
		sa.iv.Update(mid, next)
	}
	p.stop()
	sa.alive()
	if m.Encrypted() {
		sa.followPeer(local, remote)
	}
	p.req = sum
	switch st {
	case stepMore, stepLast:
		pkt, err := p.t.build(sa)
		if err != nil {
			sa.failPassive(p, err)
			return
		}
		p.rsp, p.rspAt = pkt, sa.e.clock.Now()
		sa.send(pkt)
		if st == stepLast {
			p.finish(sa)
		} else if ex := m.Header.Exchange; ex == isakmp.ExchangeAggressive || ex == isakmp.ExchangeQuickMode {
			sa.retransmitAnswer(p)
		}
	case stepDone:
		p.rsp = nil
		p.finish(sa)
	}
}

// finish marks a passive exchange complete; a quick mode's IVs are no
// longer needed.
func (p *passiveEx) finish(sa *isakmpSA) {
	p.done, p.doneAt = true, sa.e.clock.Now()
	if p.mid != 0 && sa.iv != nil {
		sa.iv.Forget(p.mid)
	}
}

// failPassive ends a passive exchange with err, telling the peer when err
// is a notifyError.
func (sa *isakmpSA) failPassive(p *passiveEx, err error) {
	p.stop()
	if sa.passive[p.mid] == p {
		delete(sa.passive, p.mid)
	}
	var ne notifyError
	if errors.As(err, &ne) {
		n := isakmp.Notify{DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtoISAKMP, Type: ne.n, SPI: isakmp.CookieSPI(sa.ckyI, sa.ckyR)}
		if q, ok := p.t.(*quickMode); ok && q.peerSPI != nil {
			// strongSwan names the refused quick mode by the initiator's SPI.
			n.Protocol, n.SPI = isakmp.ProtocolID(shared.ChildProtocol(q.conn)), q.peerSPI
		}
		sa.sendNotify(n)
	}
	if p.mid != 0 && sa.iv != nil {
		sa.iv.Forget(p.mid)
	}
	p.t.fail(sa, causeOf(err), err.Error())
}

// prunePassive forgets completed passive exchanges older than passiveKeep
// (phase 1's stays while the SA lives: a late main mode 5 is answered).
func (sa *isakmpSA) prunePassive() {
	now := sa.e.clock.Now()
	for mid, p := range sa.passive {
		if mid != 0 && p.done && now.Sub(p.doneAt) > passiveKeep {
			delete(sa.passive, mid)
		}
	}
}

// sendNotify sends one notification in an informational exchange of its
// own: protected once the SA has keys, in clear before (RFC 2409 §5.7).
func (sa *isakmpSA) sendNotify(n isakmp.Notify) {
	sa.log.Info("sending notification", "type", n.Type.String())
	sa.sendInformational(n)
}

// sendInformational sends payloads in an informational exchange of their
// own (one-way: nobody answers it, RFC 2409 §5.7).
func (sa *isakmpSA) sendInformational(payloads ...isakmp.Payload) {
	if sa.state == saDead {
		return
	}
	mid := sa.newMessageID()
	var pkt []byte
	if sa.keys == nil {
		pkt = isakmp.AppendMessage(nil, sa.header(isakmp.ExchangeInformational, mid), payloads...)
	} else {
		var err error
		pkt, err = sa.hashedMessage(isakmp.ExchangeInformational, mid, func(rest []byte) []byte { return sa.keys.InformationalHash(mid, rest) }, payloads...)
		sa.iv.Forget(mid)
		if err != nil {
			sa.log.Warn("cannot build an informational message", "err", err)
			return
		}
	}
	sa.send(pkt)
}
