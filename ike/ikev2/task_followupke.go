package ikev2

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
	"github.com/ipsecgw/ipsecgw/ike/shared"
	"github.com/ipsecgw/ipsecgw/transform"
)

// Additional key exchanges in CREATE_CHILD_SA (RFC 9370 §2.2.3, §2.2.4):
// when the chosen proposal of an IKE SA rekey or of a CHILD SA has ADDKE
// transforms, CREATE_CHILD_SA carries the first key exchange (transform
// type 4) and each additional one runs in an IKE_FOLLOWUP_KE exchange of
// its own, on the IKE SA that carried the CREATE_CHILD_SA. The responder
// links them with an opaque value in an ADDITIONAL_KEY_EXCHANGE notify:
// its CREATE_CHILD_SA response and every IKE_FOLLOWUP_KE response but the
// last carry one, the initiator's next request returns it. Nothing is
// keyed before the last exchange; then the keys derive from all shared
// secrets in order (message.RekeySKEYSEED, message.DeriveChildKeys).
//
//	Initiator                               Responder
//	HDR, SK {SA, Ni, KEi(0), [TSi, TSr]} -->
//	                                     <-- HDR, SK {SA, Nr, KEr(0), N(ADDITIONAL_KEY_EXCHANGE)(link1), [TSi, TSr]}
//	HDR(IKE_FOLLOWUP_KE), SK {KEi(1), N(ADDITIONAL_KEY_EXCHANGE)(link1)} -->
//	                                     <-- HDR(IKE_FOLLOWUP_KE), SK {KEr(1), N(ADDITIONAL_KEY_EXCHANGE)(link2)}
//	...
//	HDR(IKE_FOLLOWUP_KE), SK {KEi(n), N(ADDITIONAL_KEY_EXCHANGE)(linkn)} -->
//	                                     <-- HDR(IKE_FOLLOWUP_KE), SK {KEr(n)}
//
// The initiator's CREATE_CHILD_SA task (childTask, ikeRekeyTask) owns the
// exchange throughout; followupTask runs one IKE_FOLLOWUP_KE for it, put
// at the head of the queue so that nothing of ours comes in between. The
// responder keeps what the CREATE_CHILD_SA produced in a followupState
// under its link, bounded in number (maxFollowups) and time
// (FollowupKETimeout): the peer's exchange is refused or forgotten, never
// kept for good.

// FollowupKETimeout is how long a responder keeps the state of a
// CREATE_CHILD_SA whose next IKE_FOLLOWUP_KE has not come. The initiator
// sends it as soon as it has our answer; this outlasts its whole
// retransmission schedule with strongSwan's defaults (165 s), after which
// a peer that still has not got through is declared dead anyway.
const FollowupKETimeout = 3 * time.Minute

// maxFollowups bounds the peer's CREATE_CHILD_SA exchanges waiting for
// their IKE_FOLLOWUP_KE on one IKE SA. With window size 1 a peer has one
// at a time; a peer with a larger window may have a few.
const maxFollowups = 4

// followupOwner is the initiator's CREATE_CHILD_SA task whose exchange
// continues in IKE_FOLLOWUP_KE exchanges.
type followupOwner interface {
	task
	discarder
	// followupsDone completes the exchange with the shared secrets of the
	// additional key exchanges, in order.
	followupsDone(sa *ikeSA, secrets [][]byte)
	// followupFailed abandons it: the peer refused an exchange, did not
	// answer, or the answer was wrong.
	followupFailed(sa *ikeSA, cause shared.Cause, reason string)
}

// followupTask is one IKE_FOLLOWUP_KE exchange, for either role.
type followupTask struct {
	responder bool
	// Initiator: the CREATE_CHILD_SA task, the key exchanges still to run
	// (this one first), the shared secrets of those done, the link of the
	// responder's last answer and our side of this exchange.
	owner   followupOwner
	methods []transform.Transform
	secrets [][]byte
	link    []byte
	kx      transform.KeyExchange
	// Responder: the state of the peer's exchange, our KE data, and the
	// payloads that end the exchange (the last answer) or the next link.
	state *followupState
	pub   []byte
	next  []byte
	final []message.Payload
	took  bool // the request was taken (not refused with a notify)
}

func (*followupTask) exchange() message.ExchangeType { return message.IKE_FOLLOWUP_KE }

// startFollowups puts the first IKE_FOLLOWUP_KE of owner's exchange at the
// head of the queue; link is the responder's from its CREATE_CHILD_SA
// answer (in), checked to be there.
func (sa *ikeSA) startFollowups(owner followupOwner, methods []transform.Transform, in []message.RawPayload) bool {
	n, ok := findNotify(notifies(in), message.ADDITIONAL_KEY_EXCHANGE)
	if !ok || len(n.Data) == 0 {
		owner.followupFailed(sa, shared.CausePeerRefused, fmt.Sprintf("peer chose additional key exchanges (%s) but sent no ADDITIONAL_KEY_EXCHANGE notify to continue them", methodsString(methods)))
		return false
	}
	sa.log.Debug("CREATE_CHILD_SA continues in IKE_FOLLOWUP_KE", "methods", methodsString(methods))
	sa.queue = append([]task{&followupTask{owner: owner, methods: methods, link: bytes.Clone(n.Data)}}, sa.queue...)
	return true
}

func methodsString(ts []transform.Transform) string {
	var b []byte
	for i, t := range ts {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, t.String()...)
	}
	return string(b)
}

func (t *followupTask) build(sa *ikeSA) ([]message.Payload, error) {
	if t.responder {
		if t.final != nil {
			return t.final, nil
		}
		ps := []message.Payload{message.KE{Group: t.state.methods[0].ID, Data: t.pub}}
		if t.next != nil {
			ps = append(ps, message.Notify{Type: message.ADDITIONAL_KEY_EXCHANGE, Data: t.next})
		}
		return ps, nil
	}
	if sa.state != saEstablished {
		return nil, fmt.Errorf("IKE SA not established")
	}
	if t.kx == nil {
		kx, err := initiatorKE(t.methods[0].ID)
		if err != nil {
			return nil, configError(fmt.Errorf("additional key exchange %s: %w", t.methods[0], err))
		}
		t.kx = kx
	}
	return []message.Payload{
		message.KE{Group: t.methods[0].ID, Data: t.kx.PublicKey()},
		message.Notify{Type: message.ADDITIONAL_KEY_EXCHANGE, Data: t.link},
	}, nil
}

// initiatorKE is the initiator's side of a key exchange method: a KEM's
// key pair (its public key is the encapsulation key) or a DH key.
func initiatorKE(id transform.ID) (transform.KeyExchange, error) {
	if transform.IsKEM(id) {
		return transform.NewKEM(id, nil)
	}
	return transform.NewKeyExchange(id)
}

// responderKE is the responder's side: a KEM's ciphertext for the peer's
// encapsulation key, or our DH value; and the shared secret.
func responderKE(id transform.ID, peer []byte) (pub, secret []byte, err error) {
	if transform.IsKEM(id) {
		return transform.Encapsulate(id, peer)
	}
	kx, err := transform.NewKeyExchange(id)
	if err != nil {
		return nil, nil, err
	}
	defer kx.Close()
	if secret, err = kx.SharedSecret(peer); err != nil {
		return nil, nil, err
	}
	return bytes.Clone(kx.PublicKey()), secret, nil
}

func (t *followupTask) process(sa *ikeSA, m *message.Message) error {
	if t.responder {
		return t.processRequest(sa, m)
	}
	t.processResponse(sa, m)
	return nil
}

func (t *followupTask) processResponse(sa *ikeSA, m *message.Message) {
	method := t.methods[0]
	kx := t.kx
	t.kx = nil
	defer kx.Close()
	if n, ok := firstError(notifies(m.Inner)); ok {
		t.failed(sa, shared.CausePeerRefused, fmt.Sprintf("peer refused the additional key exchange %s (IKE_FOLLOWUP_KE) with %s", method, n.Type))
		return
	}
	ke, ok := receivedKE(m)
	if !ok || ke.Group != method.ID {
		t.failed(sa, shared.CausePeerRefused, fmt.Sprintf("peer's IKE_FOLLOWUP_KE response lacks a KE payload of %s", method))
		return
	}
	secret, err := kx.SharedSecret(ke.Data)
	if err != nil {
		t.failed(sa, shared.CausePeerRefused, fmt.Sprintf("peer's %s key exchange data is invalid: %v", method, err))
		return
	}
	secrets := append(t.secrets, secret)
	rest := t.methods[1:]
	if len(rest) == 0 {
		sa.log.Debug("additional key exchanges of CREATE_CHILD_SA done", "count", len(secrets))
		t.owner.followupsDone(sa, secrets)
		clearAll(secrets)
		return
	}
	n, ok := findNotify(notifies(m.Inner), message.ADDITIONAL_KEY_EXCHANGE)
	if !ok || len(n.Data) == 0 {
		clearAll(secrets)
		t.failed(sa, shared.CausePeerRefused, fmt.Sprintf("peer's IKE_FOLLOWUP_KE response has no ADDITIONAL_KEY_EXCHANGE notify for the next key exchange (%s)", rest[0]))
		return
	}
	sa.queue = append([]task{&followupTask{owner: t.owner, methods: rest, secrets: secrets, link: bytes.Clone(n.Data)}}, sa.queue...)
}

// failed ends the exchange for the owner, with what this task holds.
func (t *followupTask) failed(sa *ikeSA, cause shared.Cause, reason string) {
	clearAll(t.secrets)
	t.secrets = nil
	t.owner.followupFailed(sa, cause, reason)
}

func (t *followupTask) fail(sa *ikeSA, cause shared.Cause, reason string) {
	t.release()
	t.owner.followupFailed(sa, cause, reason)
}

// release drops what this exchange holds: its key exchange and the shared
// secrets of the exchanges before it.
func (t *followupTask) release() {
	if t.kx != nil {
		t.kx.Close()
		t.kx = nil
	}
	clearAll(t.secrets)
	t.secrets = nil
}

func (t *followupTask) discard() {
	t.release()
	if t.owner != nil {
		t.owner.discard()
	}
}

func clearAll(bs [][]byte) {
	for _, b := range bs {
		clear(b)
	}
}

// followupState is what the responder keeps of the peer's CREATE_CHILD_SA
// between its exchanges.
type followupState struct {
	link    string
	methods []transform.Transform // still to run, the next one first
	secrets [][]byte              // SK(1) ... so far (SK(0) stays with the owner)
	timer   shared.Timer
	// complete ends the exchange with the shared secrets of all
	// additional key exchanges: the CHILD SA installed, the IKE SA keyed.
	// An error notify answers the last request instead of the KE.
	complete func(sa *ikeSA, secrets [][]byte) *message.Notify
	// answered runs once the last answer is out.
	answered func(sa *ikeSA)
	// abandon releases what the exchange made when it never completes;
	// why is empty when the IKE SA ends.
	abandon func(sa *ikeSA, why string)
}

// expectFollowups keeps the state of the peer's CREATE_CHILD_SA, which
// continues in IKE_FOLLOWUP_KE exchanges, and returns the link to send in
// our answer; ok is false when the peer already has too many under way.
func (sa *ikeSA) expectFollowups(st *followupState) (link []byte, ok bool) {
	if len(sa.followups) >= maxFollowups {
		return nil, false
	}
	if sa.followups == nil {
		sa.followups = map[string]*followupState{}
	}
	link = newLink()
	sa.linkFollowup(st, link)
	return link, true
}

// linkFollowup files st under link and (re)arms its timeout.
func (sa *ikeSA) linkFollowup(st *followupState, link []byte) {
	st.link = string(link)
	sa.followups[st.link] = st
	if st.timer != nil {
		st.timer.Stop()
	}
	key := st.link
	st.timer = sa.after(FollowupKETimeout, func() {
		if cur, ok := sa.followups[key]; ok && cur == st {
			sa.dropFollowup(st, fmt.Sprintf("no IKE_FOLLOWUP_KE within %s", FollowupKETimeout))
		}
	})
}

// dropFollowup forgets the peer's unfinished exchange and releases what it
// made.
func (sa *ikeSA) dropFollowup(st *followupState, why string) {
	delete(sa.followups, st.link)
	if st.timer != nil {
		st.timer.Stop()
	}
	clearAll(st.secrets)
	st.secrets = nil
	reason := why
	if reason == "" {
		reason = "the IKE SA ends"
	}
	sa.log.Info("peer's CREATE_CHILD_SA with additional key exchanges abandoned", "reason", reason)
	st.abandon(sa, why)
}

// dropAllFollowups abandons every unfinished exchange of the peer: the
// IKE SA ends, which says enough (why is empty for abandon).
func (sa *ikeSA) dropAllFollowups() {
	for _, st := range sa.followups {
		sa.dropFollowup(st, "")
	}
}

// rekeyingChild reports whether an exchange of ours rekeying ch is
// outstanding or queued.
func (sa *ikeSA) rekeyingChild(ch *child) bool {
	is := func(t task) bool {
		if f, ok := t.(*followupTask); ok && f.owner != nil {
			t = f.owner
		}
		x, ok := t.(*childTask)
		return ok && x.offer.rekey == ch
	}
	if sa.pending != nil && is(sa.pending.t) {
		return true
	}
	for _, t := range sa.queue {
		if is(t) {
			return true
		}
	}
	return false
}

// newLink is the opaque value linking the exchanges: random, so that it
// names one exchange of one IKE SA and cannot be guessed.
func newLink() []byte {
	b := make([]byte, 8)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return b
}

// processRequest runs one additional key exchange of the peer's: the link
// names the exchange (STATE_NOT_FOUND when it names none, RFC 9370 §2.2.4),
// the KE payload must be of the method due (INVALID_KE_PAYLOAD naming it
// otherwise, and the exchange fails).
func (t *followupTask) processRequest(sa *ikeSA, m *message.Message) error {
	n, ok := findNotify(notifies(m.Inner), message.ADDITIONAL_KEY_EXCHANGE)
	var st *followupState
	if ok {
		st = sa.followups[string(n.Data)]
	}
	if st == nil || sa.state != saEstablished {
		sa.log.Info("IKE_FOLLOWUP_KE for no exchange of ours", "has_link", ok)
		return notifyError{Notify: message.Notify{Type: message.STATE_NOT_FOUND}}
	}
	t.state = st
	method := st.methods[0]
	ke, ok := receivedKE(m)
	if !ok {
		sa.dropFollowup(st, "IKE_FOLLOWUP_KE without a KE payload")
		return notifyError{Notify: message.Notify{Type: message.INVALID_SYNTAX}}
	}
	if ke.Group != method.ID {
		sa.dropFollowup(st, fmt.Sprintf("peer sent key exchange method %d where %s was negotiated", ke.Group, method))
		g := []byte{byte(method.ID >> 8), byte(method.ID)}
		return notifyError{Notify: message.Notify{Type: message.INVALID_KE_PAYLOAD, Data: g}}
	}
	pub, secret, err := responderKE(method.ID, ke.Data)
	if err != nil {
		sa.dropFollowup(st, fmt.Sprintf("peer's %s key exchange data is invalid: %v", method, err))
		return notifyError{Notify: message.Notify{Type: message.INVALID_SYNTAX}}
	}
	t.pub, t.took = pub, true
	st.secrets = append(st.secrets, secret)
	if len(st.methods) > 1 {
		// More to come: the next request carries a new link, so that a
		// replay of this one finds nothing.
		delete(sa.followups, st.link)
		t.next = newLink()
		sa.linkFollowup(st, t.next)
		return nil
	}
	delete(sa.followups, st.link)
	st.timer.Stop()
	secrets := st.secrets
	st.secrets = nil
	defer clearAll(secrets)
	if refusal := st.complete(sa, secrets); refusal != nil {
		t.final = []message.Payload{*refusal}
		return nil
	}
	return nil
}

// answered moves on once our answer is out: to the next key exchange, or,
// after the last one, to what the complete exchange asks.
func (t *followupTask) answered(sa *ikeSA) {
	st := t.state
	if st == nil || !t.took {
		return
	}
	if t.next != nil {
		st.methods = st.methods[1:]
		return
	}
	if t.final == nil {
		st.answered(sa)
	}
}
