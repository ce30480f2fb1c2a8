package ikev2

import (
	"fmt"

	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
	"github.com/ipsecgw/ipsecgw/ike/shared"
	"github.com/ipsecgw/ipsecgw/transform"
)

// IKE_INTERMEDIATE (RFC 9242) carrying one additional key exchange of the
// IKE SA (RFC 9370 §2.2.1): ML-KEM, or a Diffie-Hellman group, after
// IKE_SA_INIT's and before IKE_AUTH. Each exchange mixes its shared secret
// into all IKE SA keys (updateKeys); IKE_AUTH then signs both directions'
// messages through the IntAuth chains, so that a man in the middle cannot
// strip an exchange.
//
//	Initiator                         Responder
//	HDR, SK {KEi(n)}          -->
//	                          <--     HDR, SK {KEr(n)}

// intermediateTask is one IKE_INTERMEDIATE exchange for either role.
type intermediateTask struct {
	responder bool
	ke        transform.Transform // the ADDKE transform (its ID is a KE method)
	// Initiator: our side of the exchange.
	kx transform.KeyExchange
	// Responder: our answer's key exchange data, the shared secret (applied
	// once the answer is out) and the request's message ID.
	pub, shared []byte
	id          uint32
}

func (*intermediateTask) exchange() message.ExchangeType { return message.IKE_INTERMEDIATE }

func (t *intermediateTask) build(sa *ikeSA) ([]message.Payload, error) {
	if t.responder {
		ps := []message.Payload{message.KE{Group: t.ke.ID, Data: t.pub}}
		sa.chainIntAuth(false, message.IntermediateAuthDataOf(sa.header(message.IKE_INTERMEDIATE, t.id, true), ps...))
		return ps, nil
	}
	if t.kx == nil {
		var err error
		if transform.IsKEM(t.ke.ID) {
			t.kx, err = transform.NewKEM(t.ke.ID, nil)
		} else {
			t.kx, err = transform.NewKeyExchange(t.ke.ID)
		}
		if err != nil {
			return nil, configError(fmt.Errorf("additional key exchange %s: %w", t.ke, err))
		}
	}
	ps := []message.Payload{message.KE{Group: t.ke.ID, Data: t.kx.PublicKey()}}
	sa.chainIntAuth(true, message.IntermediateAuthDataOf(sa.header(message.IKE_INTERMEDIATE, sa.nextID, false), ps...))
	return ps, nil
}

func (t *intermediateTask) process(sa *ikeSA, m *message.Message) error {
	if t.responder {
		return t.processRequest(sa, m)
	}
	t.processResponse(sa, m)
	return nil
}

func (t *intermediateTask) fail(sa *ikeSA, cause shared.Cause, reason string) {
	t.discard()
	sa.failPhase1(cause, reason)
}

func (t *intermediateTask) discard() {
	if t.kx != nil {
		t.kx.Close()
		t.kx = nil
	}
	clear(t.shared)
}

// receivedKE finds the KE payload of an IKE_INTERMEDIATE message.
func receivedKE(m *message.Message) (message.KE, bool) {
	p, ok := payload(m.Inner, message.PayloadKE)
	if !ok {
		return message.KE{}, false
	}
	ke, _, err := message.ParseKE(p.Body)
	return ke, err == nil
}

func (t *intermediateTask) processResponse(sa *ikeSA, m *message.Message) {
	defer t.discard()
	if n, ok := firstError(notifies(m.Inner)); ok {
		t.fail(sa, shared.CausePeerRefused, fmt.Sprintf("peer refused the additional key exchange %s with %s", t.ke, n.Type))
		return
	}
	ke, ok := receivedKE(m)
	if !ok || ke.Group != t.ke.ID {
		t.fail(sa, shared.CausePeerRefused, fmt.Sprintf("peer's IKE_INTERMEDIATE response lacks a KE payload of %s", t.ke))
		return
	}
	secret, err := t.kx.SharedSecret(ke.Data)
	if err != nil {
		t.fail(sa, shared.CausePeerRefused, fmt.Sprintf("peer's %s key exchange data is invalid: %v", t.ke, err))
		return
	}
	defer clear(secret)
	sa.chainIntAuth(false, message.IntermediateAuthDataOfMessage(m))
	if err := sa.addKeyExchange(secret); err != nil {
		t.fail(sa, shared.CauseInternal, err.Error())
		return
	}
	sa.log.Debug("additional key exchange done", "method", t.ke.String(), "exchange", sa.hs.intermediates)
}

func (t *intermediateTask) processRequest(sa *ikeSA, m *message.Message) error {
	if sa.state != saAuth || sa.hs == nil || len(sa.hs.addKEs) == 0 {
		return notifyError{Notify: message.Notify{Type: message.INVALID_SYNTAX}}
	}
	t.ke, t.id = sa.hs.addKEs[0], m.Header.MessageID
	ke, ok := receivedKE(m)
	if !ok {
		return notifyError{Notify: message.Notify{Type: message.INVALID_SYNTAX}}
	}
	if ke.Group != t.ke.ID {
		// RFC 9370 §2.2.1: the exchanges run in the order of the
		// transform types; another method is answered with the one due.
		g := []byte{byte(t.ke.ID >> 8), byte(t.ke.ID)}
		return notifyError{Notify: message.Notify{Type: message.INVALID_KE_PAYLOAD, Data: g}}
	}
	var err error
	if transform.IsKEM(t.ke.ID) {
		t.pub, t.shared, err = transform.Encapsulate(t.ke.ID, ke.Data)
	} else {
		var kx transform.KeyExchange
		if kx, err = transform.NewKeyExchange(t.ke.ID); err == nil {
			t.shared, err = kx.SharedSecret(ke.Data)
			t.pub = kx.PublicKey()
			kx.Close()
		}
	}
	if err != nil {
		sa.log.Info("peer's additional key exchange data is invalid", "method", t.ke.String(), "err", err)
		return notifyError{Notify: message.Notify{Type: message.INVALID_SYNTAX}}
	}
	sa.chainIntAuth(true, message.IntermediateAuthDataOfMessage(m))
	return nil
}

// answered applies the shared secret once the answer, still protected
// with the keys before it, is out.
func (t *intermediateTask) answered(sa *ikeSA) {
	if t.shared == nil || sa.hs == nil {
		return // refused
	}
	defer t.discard()
	sa.hs.addKEs = sa.hs.addKEs[1:]
	if err := sa.addKeyExchange(t.shared); err != nil {
		sa.failPhase1(shared.CauseInternal, err.Error())
		return
	}
	sa.log.Debug("additional key exchange done", "method", t.ke.String(), "exchange", sa.hs.intermediates)
}

// chainIntAuth extends the IntAuth chain of the initiator's messages
// (fromInitiator) or the responder's with one IKE_INTERMEDIATE message,
// under the SK_pi or SK_pr in force (RFC 9242 §3.3.2).
func (sa *ikeSA) chainIntAuth(fromInitiator bool, data []byte) {
	if fromInitiator {
		sa.hs.intI = message.ChainIntAuth(sa.prf, sa.keys.SKpi, sa.hs.intI, data)
		return
	}
	sa.hs.intR = message.ChainIntAuth(sa.prf, sa.keys.SKpr, sa.hs.intR, data)
}

// addKeyExchange mixes the shared secret of an additional key exchange
// into the IKE SA's keys (RFC 9370 §2.2.2):
//
//	SKEYSEED(n) = prf(SK_d(n-1), SK(n) | Ni | Nr)
//	{SK_d(n) | SK_ai(n) | ... | SK_pr(n)} = prf+(SKEYSEED(n), Ni | Nr | SPIi | SPIr)
func (sa *ikeSA) addKeyExchange(secret []byte) error {
	seed := message.RekeySKEYSEED(sa.prf, sa.keys.SKd, secret, sa.hs.ni, sa.hs.nr)
	defer clear(seed)
	keys, err := message.DeriveIKEKeys(sa.prf, sa.alg.Encr, sa.alg.Integ, seed, sa.hs.ni, sa.hs.nr, sa.spiI, sa.spiR)
	if err != nil {
		return fmt.Errorf("IKE key update after an additional key exchange: %w", err)
	}
	sa.keys.Zero()
	sa.keys = keys
	sa.hs.intermediates++
	return nil
}

// intAuth is what IKE_AUTH's signed octets end with (RFC 9242 §3.3.2):
// empty without IKE_INTERMEDIATE exchanges.
func (sa *ikeSA) intAuth(authMsgID uint32) []byte {
	if sa.hs == nil || sa.hs.intermediates == 0 {
		return nil
	}
	return message.IntAuth(sa.hs.intI, sa.hs.intR, authMsgID)
}
