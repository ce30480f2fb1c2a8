package ikev1

import (
	"bytes"
	"fmt"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev1/isakmp"
	"github.com/ipsecgw/ipsecgw/ike/ikev1/keymat"
	"github.com/ipsecgw/ipsecgw/ike/shared"
)

// Main mode (RFC 2409 §5, identity protection) with a pre-shared key,
// for either role:
//
//	1  I→R  SA, VID(DPD, NAT-T …)
//	2  R→I  SA (one transform), VID
//	3  I→R  KE, Ni, NAT-D, NAT-D
//	4  R→I  KE, Nr, NAT-D, NAT-D
//	5  I→R  [IDii, HASH_I, N(INITIAL-CONTACT)]   encrypted, from port 4500 after a NAT
//	6  R→I  [IDir, HASH_R]                       encrypted
//
// The responder knows the peer only by its address until message 5, so
// it finds the PSK by address (mainModePSK), as strongSwan does.

// mainMode is main mode for either role. round is the number of the
// message built or processed last.
type mainMode struct {
	responder bool
	p1
	round int
	conn  config.Conn
	saI   isakmp.SA // initiator: the SA payload we offered
	// Responder: the peer's SA payload, the chosen transform, the conns
	// that accept it (the first chosen tentatively) and the conn whose
	// PSK keyed the SA (nil: the PSK of the two addresses).
	peerSA isakmp.SA
	chosen isakmp.Phase1Offer
	cands  []config.Conn
	pskOf  *config.Conn
}

func (t *mainMode) exchange() isakmp.ExchangeType { return isakmp.ExchangeIdentityProtection }
func (t *mainMode) messageID(*isakmpSA) uint32    { return 0 }
func (t *mainMode) String() string                { return fmt.Sprintf("main mode message %d", t.round) }
func (t *mainMode) discard()                      { t.closeKE() }
func (t *mainMode) fail(sa *isakmpSA, cause shared.Cause, reason string) {
	t.closeKE()
	if !t.responder && t.round == 5 && cause == shared.CauseTimeout {
		reason += fmt.Sprintf("; a peer whose PSK for %s ↔ %s differs cannot decrypt message 5 and drops it", sa.localID, sa.remoteID)
	}
	sa.failPhase1(cause, reason)
}

func (t *mainMode) build(sa *isakmpSA) ([]byte, error) {
	t.round++
	if t.responder {
		return t.buildResponder(sa)
	}
	switch t.round {
	case 1:
		life := isakmp.Lifetime{Seconds: uint64(t.conn.IKELifetime / time.Second)}
		saI, err := isakmp.Phase1SA(t.conn.IKE, isakmp.AuthPSK, life)
		if err != nil {
			return nil, failure(shared.CauseConfig, "conn %s has no IKE proposal IKEv1 can use (ike=%s; IKEv1 takes 3DES or AES-CBC with MD5, SHA-1 or SHA-2)",
				t.conn.Name, shared.ConfigProposalsString(t.conn.IKE, config.ProtoIKE))
		}
		t.saI, t.saIBody = saI, saI.AppendTo(nil)
		return isakmp.AppendMessage(nil, sa.header(t.exchange(), 0), append([]isakmp.Payload{saI}, sa.vendorIDs()...)...), nil
	case 3:
		if err := t.newKE(sa.alg.KE.ID); err != nil {
			return nil, err
		}
		t.gxi, t.ni = bytes.Clone(t.ke.PublicKey()), newNonce()
		ps := []isakmp.Payload{isakmp.KE{Data: t.gxi}, isakmp.Nonce{Data: t.ni}}
		return isakmp.AppendMessage(nil, sa.header(t.exchange(), 0), append(ps, sa.natdPayloads(&t.p1)...)...), nil
	case 5:
		idi, err := idPayload(sa.localID)
		if err != nil {
			return nil, err
		}
		hash := sa.keys.HashI(t.gxi, t.gxr, sa.ckyI, sa.ckyR, t.saIBody, idi.AppendTo(nil))
		ps := []isakmp.Payload{idi, isakmp.Hash{Data: hash}}
		// No INITIAL-CONTACT when reauthenticating or while another SA
		// serves the peer: the peer must keep that one's IPsec SAs.
		if sa.replaces == nil && !sa.e.host.HasPeerSA(sa, t.conn) {
			ps = append(ps, isakmp.InitialContact(sa.ckyI, sa.ckyR))
			t.sentIC = true
		}
		return sa.encrypt(isakmp.AppendMessage(nil, sa.header(t.exchange(), 0), ps...), 0)
	}
	return nil, fmt.Errorf("main mode: no message %d to build", t.round)
}

func (t *mainMode) process(sa *isakmpSA, m *isakmp.Message) (step, error) {
	t.round++
	if t.responder {
		return t.processResponder(sa, m)
	}
	switch t.round {
	case 2:
		if err := t.acceptAnswer(sa, m); err != nil {
			return 0, err
		}
		return stepMore, nil
	case 4:
		kep, ok1 := one(m, isakmp.PayloadKE)
		np, ok2 := one(m, isakmp.PayloadNonce)
		if _, _, err := isakmp.ParseNonce(np.Body); !ok1 || !ok2 || err != nil {
			return 0, failure(shared.CausePeerRefused, "peer's main mode message 4 lacks a valid KE or nonce")
		}
		t.gxr, t.nr = bytes.Clone(kep.Body), bytes.Clone(np.Body)
		sa.checkNATD(m)
		psk, ok := sa.e.host.PSK(sa.localID, sa.remoteID)
		if !ok {
			return 0, failure(shared.CauseConfig, "no PSK in ipsec.secrets for IDs %s ↔ %s", sa.localID, sa.remoteID)
		}
		err := sa.deriveKeys(&t.p1, psk)
		clear(psk)
		t.closeKE()
		if err != nil {
			return 0, err
		}
		sa.floatPorts()
		sa.publish()
		return stepMore, nil
	case 6:
		idp, ok1 := one(m, isakmp.PayloadID)
		hp, ok2 := one(m, isakmp.PayloadHash)
		if !ok1 || !ok2 {
			return 0, failure(shared.CausePeerRefused, "peer's main mode message 6 lacks its ID or HASH")
		}
		if err := t.authenticate(sa, idp.Body, hp.Body, m); err != nil {
			return 0, err
		}
		sa.establish(&t.p1)
		return stepDone, nil
	}
	return 0, fmt.Errorf("main mode: unexpected message %d", t.round)
}

// acceptAnswer checks the responder's choice in message 2 against our
// offer and takes the responder's cookie and Vendor IDs.
func (t *mainMode) acceptAnswer(sa *isakmpSA, m *isakmp.Message) error {
	if m.Header.CookieR == 0 {
		return failure(shared.CausePeerRefused, "peer answered without a responder cookie")
	}
	sap, ok := one(m, isakmp.PayloadSA)
	if !ok {
		return failure(shared.CausePeerRefused, "peer's answer to our phase 1 proposal has no SA payload")
	}
	answer, _, err := isakmp.ParseSA(sap.Body)
	if err != nil {
		return failure(shared.CausePeerRefused, "peer's SA payload is malformed: %v", err)
	}
	got, err := isakmp.Phase1Answer(t.saI, answer)
	if err != nil {
		offered, _, _ := isakmp.Phase1Offers(t.saI)
		chosen, _, _ := isakmp.Phase1Offers(answer)
		return failure(shared.CauseNoProposal, "peer chose %s, which is not among our proposals (%s)",
			shared.ProposalsString(isakmp.Proposals1(chosen)), shared.ProposalsString(isakmp.Proposals1(offered)))
	}
	sa.ckyR = m.Header.CookieR
	if err := sa.setAlgorithms(selection1(got.Proposal)); err != nil {
		return err
	}
	sa.lifetime = phase1Lifetime(t.conn, got.Life)
	sa.learnVendorIDs(&t.p1, m)
	sa.publish()
	return nil
}

// authenticate checks the responder's ID and HASH_R (message 6).
func (t *mainMode) authenticate(sa *isakmpSA, idBody, hash []byte, m *isakmp.Message) error {
	peerID, err := peerIdentity(idBody)
	if err != nil {
		return err
	}
	if !shared.IDMatches(t.conn.Remote.ID, peerID) {
		return failure(shared.CauseIDMismatch, "peer identified itself as %s, but rightid=%s", peerID, t.conn.Remote.ID)
	}
	if !keymat.Equal(sa.keys.HashR(t.gxi, t.gxr, sa.ckyI, sa.ckyR, t.saIBody, idBody), hash) {
		return failure(shared.CauseAuthFailed, "peer's HASH_R did not verify: the PSK for IDs %s ↔ %s differs between the two sides", sa.localID, sa.remoteID)
	}
	if t.conn.Remote.ID.Type == config.IDAny {
		sa.remoteID = peerID
	}
	t.initialContact = hasInitialContact(m)
	return nil
}

// undecryptable: a message 6 (or an informational answering message 5)
// we cannot decrypt was encrypted with other keys, which with the same
// key exchange means another PSK.
func (t *mainMode) undecryptable(sa *isakmpSA, err error) error {
	if t.responder {
		if t.round < 4 {
			return failure(shared.CausePeerRefused, "peer's main mode message did not decrypt: %v", err)
		}
		return refusal(isakmp.PAYLOAD_MALFORMED, shared.CauseAuthFailed, "peer's main mode message 5 did not decrypt: the PSK for %s differs between the two sides", t.pskIDs(sa))
	}
	return failure(shared.CauseAuthFailed, "peer's answer to our main mode message 5 did not decrypt: the PSK for IDs %s ↔ %s differs between the two sides", sa.localID, sa.remoteID)
}

// refused is a notification the peer answered our phase 1 with.
func (t *mainMode) refused(sa *isakmpSA, n isakmp.NotifyType, protected bool) error {
	return phase1Refused(sa, t.saI, t.round >= 5, n, protected)
}

// phase1Refused words an error notification in answer to our phase 1.
func phase1Refused(sa *isakmpSA, offered isakmp.SA, authSent bool, n isakmp.NotifyType, protected bool) error {
	how := ""
	if !protected {
		how = ", unauthenticated"
	}
	switch {
	case n == isakmp.NO_PROPOSAL_CHOSEN && !authSent:
		ours, _, _ := isakmp.Phase1Offers(offered)
		return failure(shared.CauseNoProposal, "peer accepted none of our IKE proposals (NO-PROPOSAL-CHOSEN%s); we offered %s", how, shared.ProposalsString(isakmp.Proposals1(ours)))
	case n == isakmp.INVALID_ID_INFORMATION:
		return failure(shared.CauseIDMismatch, "peer does not accept our ID %s (INVALID-ID-INFORMATION%s): check leftid= here and rightid= there", sa.localID, how)
	case n == isakmp.AUTHENTICATION_FAILED, n == isakmp.INVALID_HASH_INFORMATION, n == isakmp.PAYLOAD_MALFORMED && authSent, n == isakmp.INVALID_KEY_INFORMATION:
		return failure(shared.CauseAuthFailed, "peer rejected our authentication (%s%s): the PSK for IDs %s ↔ %s differs between the two sides, or the peer does not accept our ID %s",
			n, how, sa.localID, sa.remoteID, sa.localID)
	}
	return failure(shared.CausePeerRefused, "peer refused our phase 1 with %s%s", n, how)
}

// pskIDs names the pair of identities the responder's PSK was looked up
// for, for failure texts.
func (t *mainMode) pskIDs(sa *isakmpSA) string {
	if t.pskOf == nil {
		return fmt.Sprintf("%s ↔ %s", sa.local.Addr(), sa.remote.Addr())
	}
	c := *t.pskOf
	return fmt.Sprintf("IDs %s ↔ %s", shared.EffectiveID(c.Local.ID, sa.local.Addr()), configuredRemoteID(c))
}

// processResponder is the responder's side: message 1 picks the conn and
// transform, message 3 keys the SA, message 5 authenticates the peer.
func (t *mainMode) processResponder(sa *isakmpSA, m *isakmp.Message) (step, error) {
	switch t.round {
	case 1:
		cands := sa.candidates()
		if len(cands) == 0 {
			sa.log.Info("main mode from a peer no conn accepts", "remote", sa.remote, "local", sa.local)
			return 0, refusal(isakmp.NO_PROPOSAL_CHOSEN, shared.CauseConfig, "no conn for %s", sa.remote.Addr())
		}
		sap, ok := one(m, isakmp.PayloadSA)
		if !ok {
			return 0, refusal(isakmp.PAYLOAD_MALFORMED, shared.CausePeerRefused, "main mode message 1 without an SA payload")
		}
		peerSA, _, err := isakmp.ParseSA(sap.Body)
		if err != nil {
			sa.conn = cands[0]
			return 0, refusal(notifyOf(err), shared.CausePeerRefused, "peer's phase 1 SA payload is malformed: %v", err)
		}
		offers, refused, _ := isakmp.Phase1Offers(peerSA)
		c, chosen, found := selectPhase1(cands, offers, func(config.Conn) bool { return true })
		if !found {
			return 0, noProposal(sa, cands[0], offers, refused)
		}
		sel := selection1(chosen.Proposal)
		t.cands = []config.Conn{c}
		for _, o := range cands {
			if o.Name != c.Name && acceptsPhase1(o, sel) {
				t.cands = append(t.cands, o)
			}
		}
		t.peerSA, t.chosen, t.saIBody = peerSA, chosen, bytes.Clone(sap.Body)
		sa.conn = c
		if err := sa.setAlgorithms(sel); err != nil {
			return 0, err
		}
		sa.lifetime = phase1Lifetime(c, chosen.Life)
		sa.learnVendorIDs(&t.p1, m)
		return stepMore, nil
	case 3:
		kep, ok1 := one(m, isakmp.PayloadKE)
		np, ok2 := one(m, isakmp.PayloadNonce)
		if _, _, err := isakmp.ParseNonce(np.Body); !ok1 || !ok2 || err != nil {
			return 0, refusal(isakmp.PAYLOAD_MALFORMED, shared.CausePeerRefused, "peer's main mode message 3 lacks a valid KE or nonce")
		}
		t.gxi, t.ni = bytes.Clone(kep.Body), bytes.Clone(np.Body)
		sa.checkNATD(m)
		if err := t.newKE(sa.alg.KE.ID); err != nil {
			return 0, err
		}
		t.gxr, t.nr = bytes.Clone(t.ke.PublicKey()), newNonce()
		psk, from := sa.mainModePSK(t.cands)
		if psk == nil {
			return 0, refusal(isakmp.INVALID_KEY_INFORMATION, shared.CauseConfig,
				"no PSK in ipsec.secrets for %s ↔ %s or the IDs of conn %s (main mode finds the PSK before it learns the peer's ID)",
				sa.local.Addr(), sa.remote.Addr(), sa.conn.Name)
		}
		t.pskOf = from
		err := sa.deriveKeys(&t.p1, psk)
		clear(psk)
		if err != nil {
			return 0, err
		}
		return stepMore, nil
	case 5:
		idp, ok1 := one(m, isakmp.PayloadID)
		hp, ok2 := one(m, isakmp.PayloadHash)
		if !ok1 || !ok2 {
			return 0, refusal(isakmp.PAYLOAD_MALFORMED, shared.CausePeerRefused, "peer's main mode message 5 lacks its ID or HASH")
		}
		peerID, err := peerIdentity(idp.Body)
		if err != nil {
			return 0, err
		}
		if !keymat.Equal(sa.keys.HashI(t.gxi, t.gxr, sa.ckyI, sa.ckyR, t.saIBody, idp.Body), hp.Body) {
			return 0, refusal(isakmp.INVALID_HASH_INFORMATION, shared.CauseAuthFailed, "peer's HASH_I did not verify: the PSK for %s differs between the two sides", t.pskIDs(sa))
		}
		var conn *config.Conn
		for i, c := range t.cands {
			if c.UsesPSK() && shared.IDMatches(c.Remote.ID, peerID) {
				conn = &t.cands[i]
				break
			}
		}
		if conn == nil {
			return 0, refusal(isakmp.INVALID_ID_INFORMATION, shared.CauseIDMismatch, "peer's ID %s matches no PSK conn for %s (rightid=%s)", peerID, sa.remote.Addr(), t.cands[0].Remote.ID)
		}
		sa.conn = *conn
		sa.localID = shared.EffectiveID(conn.Local.ID, sa.local.Addr())
		sa.remoteID = peerID
		t.initialContact = hasInitialContact(m)
		sa.establish(&t.p1)
		return stepLast, nil
	}
	return 0, fmt.Errorf("main mode: unexpected message %d", t.round)
}

func (t *mainMode) buildResponder(sa *isakmpSA) ([]byte, error) {
	switch t.round {
	case 2:
		answer, err := t.peerSA.Answer(t.chosen.ProposalNumber, t.chosen.TransformNumber, nil)
		if err != nil {
			return nil, err
		}
		return isakmp.AppendMessage(nil, sa.header(t.exchange(), 0), append([]isakmp.Payload{answer}, sa.vendorIDs()...)...), nil
	case 4:
		ps := []isakmp.Payload{isakmp.KE{Data: t.gxr}, isakmp.Nonce{Data: t.nr}}
		return isakmp.AppendMessage(nil, sa.header(t.exchange(), 0), append(ps, sa.natdPayloads(&t.p1)...)...), nil
	case 6:
		t.closeKE()
		idr, err := idPayload(sa.localID)
		if err != nil {
			return nil, err
		}
		hash := sa.keys.HashR(t.gxi, t.gxr, sa.ckyI, sa.ckyR, t.saIBody, idr.AppendTo(nil))
		return sa.encrypt(isakmp.AppendMessage(nil, sa.header(t.exchange(), 0), idr, isakmp.Hash{Data: hash}), 0)
	}
	return nil, fmt.Errorf("main mode: no message %d to build", t.round)
}

// one returns the single payload of type typ, false when there is none
// or more than one.
func one(m *isakmp.Message, typ isakmp.PayloadType) (isakmp.RawPayload, bool) {
	ps := m.Find(typ)
	if len(ps) != 1 {
		return isakmp.RawPayload{}, false
	}
	return ps[0], true
}

// hasInitialContact reports whether a message carries INITIAL-CONTACT.
func hasInitialContact(m *isakmp.Message) bool {
	for _, p := range m.Find(isakmp.PayloadN) {
		if n, _, err := isakmp.ParseNotify(p.Body); err == nil && n.Type == isakmp.INITIAL_CONTACT {
			return true
		}
	}
	return false
}

// notifyOf is the notification a codec error names, PAYLOAD-MALFORMED
// when it names none.
func notifyOf(err error) isakmp.NotifyType {
	if e, ok := err.(*isakmp.Error); ok && e.Notify != isakmp.NotifyNone {
		return e.Notify
	}
	return isakmp.PAYLOAD_MALFORMED
}
