package ikev1

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev1/isakmp"
	"github.com/ipsecgw/ipsecgw/ike/ikev1/keymat"
	"github.com/ipsecgw/ipsecgw/ike/shared"
	"github.com/ipsecgw/ipsecgw/transform"
)

// Aggressive mode (RFC 2409 §5) with a pre-shared key, for either role:
//
//	1  I→R  SA, KE, Ni, IDii, VID
//	2  R→I  SA, KE, Nr, IDir, HASH_R, VID, NAT-D, NAT-D
//	3  I→R  [HASH_I, NAT-D, NAT-D, N(INITIAL-CONTACT)]   encrypted (strongSwan, Libreswan)
//
// The identities travel in clear and message 2 carries a hash of the PSK
// that anyone who sees it can attack offline, so a responder answers
// only for conns with aggressive=yes (config warns about it), and finds
// the PSK by the initiator's ID. All our transforms offer the group of
// the KE payload that goes with them.

// aggressiveMode is aggressive mode for either role; round is the number
// of the message built or processed last.
type aggressiveMode struct {
	responder bool
	p1
	round int
	conn  config.Conn
	saI   isakmp.SA
	idB   []byte // our ID payload body (IDii_b or IDir_b)
	// Responder: the peer's SA payload, the chosen transform and the
	// peer's ID payload body.
	peerSA  isakmp.SA
	chosen  isakmp.Phase1Offer
	peerIDB []byte
}

func (t *aggressiveMode) exchange() isakmp.ExchangeType { return isakmp.ExchangeAggressive }
func (t *aggressiveMode) messageID(*isakmpSA) uint32    { return 0 }
func (t *aggressiveMode) String() string                { return fmt.Sprintf("aggressive mode message %d", t.round) }
func (t *aggressiveMode) discard()                      { t.closeKE() }
func (t *aggressiveMode) fail(sa *isakmpSA, cause shared.Cause, reason string) {
	t.closeKE()
	sa.failPhase1(cause, reason)
}

// groupProposals restricts configured IKE proposals to key exchange
// group g: an aggressive mode offer sends one KE payload, so every
// transform must use its group.
func groupProposals(ps []config.Proposal, g transform.ID) []config.Proposal {
	var out []config.Proposal
	for _, p := range ps {
		q := p
		q.Transforms = slices.DeleteFunc(slices.Clone(p.Transforms), func(t config.Transform) bool {
			return t.Type == config.TransformKE && transform.ID(t.ID) != g
		})
		if len(q.Of(config.TransformKE)) > 0 {
			out = append(out, q)
		}
	}
	return out
}

func (t *aggressiveMode) build(sa *isakmpSA) ([]byte, error) {
	t.round++
	switch {
	case t.round == 1 && !t.responder:
		return t.buildFirst(sa)
	case t.round == 2 && t.responder:
		answer, err := t.peerSA.Answer(t.chosen.ProposalNumber, t.chosen.TransformNumber, nil)
		if err != nil {
			return nil, err
		}
		idr, err := idPayload(sa.localID)
		if err != nil {
			return nil, err
		}
		t.idB = idr.AppendTo(nil)
		hash := sa.keys.HashR(t.gxi, t.gxr, sa.ckyI, sa.ckyR, t.saIBody, t.idB)
		ps := []isakmp.Payload{answer, isakmp.KE{Data: t.gxr}, isakmp.Nonce{Data: t.nr}, idr, isakmp.Hash{Data: hash}}
		ps = append(ps, sa.vendorIDs()...)
		return isakmp.AppendMessage(nil, sa.header(t.exchange(), 0), append(ps, sa.natdPayloads(&t.p1)...)...), nil
	case t.round == 3 && !t.responder:
		hash := sa.keys.HashI(t.gxi, t.gxr, sa.ckyI, sa.ckyR, t.saIBody, t.idB)
		ps := append([]isakmp.Payload{isakmp.Hash{Data: hash}}, sa.natdPayloads(&t.p1)...)
		if sa.replaces == nil && !sa.e.host.HasPeerSA(sa, t.conn) {
			ps = append(ps, isakmp.InitialContact(sa.ckyI, sa.ckyR))
			t.sentIC = true
		}
		t.closeKE()
		return sa.encrypt(isakmp.AppendMessage(nil, sa.header(t.exchange(), 0), ps...), 0)
	}
	return nil, fmt.Errorf("aggressive mode: no message %d to build", t.round)
}

// buildFirst is message 1: the proposals of the first configured group,
// our key exchange for it, our nonce and identity.
func (t *aggressiveMode) buildFirst(sa *isakmpSA) ([]byte, error) {
	var g transform.ID
	for _, p := range shared.Offer(t.conn.IKE, shared.ProtoIKE, nil, false) {
		if g = p.FirstGroup(); g != 0 {
			break
		}
	}
	life := isakmp.Lifetime{Seconds: uint64(t.conn.IKELifetime / time.Second)}
	saI, err := isakmp.Phase1SA(groupProposals(t.conn.IKE, g), isakmp.AuthPSK, life)
	if err != nil {
		return nil, failure(shared.CauseConfig, "conn %s has no IKE proposal IKEv1 can use (ike=%s; IKEv1 takes 3DES or AES-CBC with MD5, SHA-1 or SHA-2)",
			t.conn.Name, shared.ConfigProposalsString(t.conn.IKE, config.ProtoIKE))
	}
	if err := t.newKE(g); err != nil {
		return nil, err
	}
	idi, err := idPayload(sa.localID)
	if err != nil {
		return nil, err
	}
	t.saI, t.saIBody, t.idB = saI, saI.AppendTo(nil), idi.AppendTo(nil)
	t.gxi, t.ni = bytes.Clone(t.ke.PublicKey()), newNonce()
	ps := []isakmp.Payload{saI, isakmp.KE{Data: t.gxi}, isakmp.Nonce{Data: t.ni}, idi}
	return isakmp.AppendMessage(nil, sa.header(t.exchange(), 0), append(ps, sa.vendorIDs()...)...), nil
}

func (t *aggressiveMode) process(sa *isakmpSA, m *isakmp.Message) (step, error) {
	t.round++
	switch {
	case t.round == 1 && t.responder:
		return t.processFirst(sa, m)
	case t.round == 2 && !t.responder:
		return t.processSecond(sa, m)
	case t.round == 3 && t.responder:
		hp, ok := one(m, isakmp.PayloadHash)
		if !ok {
			return 0, refusal(isakmp.PAYLOAD_MALFORMED, shared.CausePeerRefused, "peer's aggressive mode message 3 lacks its HASH")
		}
		if !keymat.Equal(sa.keys.HashI(t.gxi, t.gxr, sa.ckyI, sa.ckyR, t.saIBody, t.peerIDB), hp.Body) {
			return 0, refusal(isakmp.INVALID_HASH_INFORMATION, shared.CauseAuthFailed, "peer's HASH_I did not verify: the PSK for IDs %s ↔ %s differs between the two sides", sa.localID, sa.remoteID)
		}
		sa.checkNATD(m)
		t.initialContact = hasInitialContact(m)
		t.closeKE()
		sa.establish(&t.p1)
		return stepDone, nil
	}
	return 0, fmt.Errorf("aggressive mode: unexpected message %d", t.round)
}

// processSecond is the initiator's check of message 2: the responder's
// choice, its key exchange and identity, and its HASH_R, which keys the
// SA and authenticates the responder at once.
func (t *aggressiveMode) processSecond(sa *isakmpSA, m *isakmp.Message) (step, error) {
	if m.Header.CookieR == 0 {
		return 0, failure(shared.CausePeerRefused, "peer answered without a responder cookie")
	}
	sap, ok1 := one(m, isakmp.PayloadSA)
	kep, ok2 := one(m, isakmp.PayloadKE)
	np, ok3 := one(m, isakmp.PayloadNonce)
	idp, ok4 := one(m, isakmp.PayloadID)
	hp, ok5 := one(m, isakmp.PayloadHash)
	if _, _, err := isakmp.ParseNonce(np.Body); !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || err != nil {
		return 0, failure(shared.CausePeerRefused, "peer's aggressive mode message 2 lacks SA, KE, nonce, ID or HASH")
	}
	answer, _, err := isakmp.ParseSA(sap.Body)
	if err != nil {
		return 0, failure(shared.CausePeerRefused, "peer's SA payload is malformed: %v", err)
	}
	got, err := isakmp.Phase1Answer(t.saI, answer)
	if err != nil || selection1(got.Proposal).KE.ID != t.ke.Group() {
		offered, _, _ := isakmp.Phase1Offers(t.saI)
		chosen, _, _ := isakmp.Phase1Offers(answer)
		return 0, failure(shared.CauseNoProposal, "peer chose %s, which is not among our proposals (%s)",
			shared.ProposalsString(isakmp.Proposals1(chosen)), shared.ProposalsString(isakmp.Proposals1(offered)))
	}
	sa.ckyR = m.Header.CookieR
	if err := sa.setAlgorithms(selection1(got.Proposal)); err != nil {
		return 0, err
	}
	sa.lifetime = phase1Lifetime(t.conn, got.Life)
	sa.learnVendorIDs(&t.p1, m)
	peerID, err := peerIdentity(idp.Body)
	if err != nil {
		return 0, err
	}
	if !shared.IDMatches(t.conn.Remote.ID, peerID) {
		return 0, failure(shared.CauseIDMismatch, "peer identified itself as %s, but rightid=%s", peerID, t.conn.Remote.ID)
	}
	if t.conn.Remote.ID.Type == config.IDAny {
		sa.remoteID = peerID
	}
	t.gxr, t.nr = bytes.Clone(kep.Body), bytes.Clone(np.Body)
	psk, ok := sa.e.host.PSK(sa.localID, sa.remoteID)
	if !ok {
		return 0, failure(shared.CauseConfig, "no PSK in ipsec.secrets for IDs %s ↔ %s", sa.localID, sa.remoteID)
	}
	err = sa.deriveKeys(&t.p1, psk)
	clear(psk)
	if err != nil {
		return 0, err
	}
	if !keymat.Equal(sa.keys.HashR(t.gxi, t.gxr, sa.ckyI, sa.ckyR, t.saIBody, idp.Body), hp.Body) {
		return 0, failure(shared.CauseAuthFailed, "peer's HASH_R did not verify: the PSK for IDs %s ↔ %s differs between the two sides", sa.localID, sa.remoteID)
	}
	sa.checkNATD(m)
	sa.floatPorts()
	t.initialContact = hasInitialContact(m)
	sa.establish(&t.p1)
	return stepLast, nil
}

// processFirst is the responder's side of message 1: only conns with
// aggressive=yes whose rightid matches the initiator's ID are candidates;
// the PSK is the one of the two IDs.
func (t *aggressiveMode) processFirst(sa *isakmpSA, m *isakmp.Message) (step, error) {
	cands := sa.candidates()
	if len(cands) == 0 {
		sa.log.Info("aggressive mode from a peer no conn accepts", "remote", sa.remote, "local", sa.local)
		return 0, refusal(isakmp.NO_PROPOSAL_CHOSEN, shared.CauseConfig, "no conn for %s", sa.remote.Addr())
	}
	sap, ok1 := one(m, isakmp.PayloadSA)
	kep, ok2 := one(m, isakmp.PayloadKE)
	np, ok3 := one(m, isakmp.PayloadNonce)
	idp, ok4 := one(m, isakmp.PayloadID)
	if _, _, err := isakmp.ParseNonce(np.Body); !ok1 || !ok2 || !ok3 || !ok4 || err != nil {
		return 0, refusal(isakmp.PAYLOAD_MALFORMED, shared.CausePeerRefused, "aggressive mode message 1 lacks SA, KE, nonce or ID")
	}
	peerID, err := peerIdentity(idp.Body)
	if err != nil {
		return 0, err
	}
	var allowed []config.Conn
	var refusedBy *config.Conn
	for i, c := range cands {
		if !c.UsesPSK() || !shared.IDMatches(c.Remote.ID, peerID) {
			continue
		}
		if !c.Aggressive {
			if refusedBy == nil {
				refusedBy = &cands[i]
			}
			continue
		}
		allowed = append(allowed, c)
	}
	if len(allowed) == 0 {
		if refusedBy != nil {
			// Not answered with message 2: its HASH_R would hand the
			// initiator (or anyone listening) material to crack the PSK.
			sa.conn = *refusedBy
			return 0, refusal(isakmp.AUTHENTICATION_FAILED, shared.CauseConfig,
				"peer %s (ID %s) tried aggressive mode, which conn %s does not allow: use main mode there, or set aggressive=yes here (it exposes a crackable hash of the PSK)",
				sa.remote.Addr(), peerID, refusedBy.Name)
		}
		sa.conn = cands[0]
		return 0, refusal(isakmp.INVALID_ID_INFORMATION, shared.CauseIDMismatch, "peer's ID %s matches no aggressive mode PSK conn for %s (rightid=%s)", peerID, sa.remote.Addr(), cands[0].Remote.ID)
	}
	peerSA, _, err := isakmp.ParseSA(sap.Body)
	if err != nil {
		sa.conn = allowed[0]
		return 0, refusal(notifyOf(err), shared.CausePeerRefused, "peer's phase 1 SA payload is malformed: %v", err)
	}
	offers, refused, _ := isakmp.Phase1Offers(peerSA)
	c, chosen, found := selectPhase1(allowed, offers, func(config.Conn) bool { return true })
	if !found {
		return 0, noProposal(sa, allowed[0], offers, refused)
	}
	sa.conn = c
	sa.aggressive = true
	sa.localID = shared.EffectiveID(c.Local.ID, sa.local.Addr())
	sa.remoteID = peerID
	if err := sa.setAlgorithms(selection1(chosen.Proposal)); err != nil {
		return 0, err
	}
	sa.lifetime = phase1Lifetime(c, chosen.Life)
	sa.learnVendorIDs(&t.p1, m)
	t.peerSA, t.chosen = peerSA, chosen
	t.saIBody, t.peerIDB = bytes.Clone(sap.Body), bytes.Clone(idp.Body)
	t.gxi, t.ni = bytes.Clone(kep.Body), bytes.Clone(np.Body)
	if err := t.newKE(sa.alg.KE.ID); err != nil {
		return 0, err
	}
	t.gxr, t.nr = bytes.Clone(t.ke.PublicKey()), newNonce()
	psk, ok := sa.e.host.PSK(sa.localID, peerID)
	if !ok {
		return 0, refusal(isakmp.INVALID_KEY_INFORMATION, shared.CauseConfig, "no PSK in ipsec.secrets for IDs %s ↔ %s", sa.localID, peerID)
	}
	err = sa.deriveKeys(&t.p1, psk)
	clear(psk)
	if err != nil {
		return 0, err
	}
	return stepMore, nil
}

// undecryptable: an encrypted message 3 that does not decrypt was
// encrypted with keys from another PSK.
func (t *aggressiveMode) undecryptable(sa *isakmpSA, err error) error {
	if t.responder {
		return refusal(isakmp.PAYLOAD_MALFORMED, shared.CauseAuthFailed, "peer's aggressive mode message 3 did not decrypt: the PSK for IDs %s ↔ %s differs between the two sides", sa.localID, sa.remoteID)
	}
	return failure(shared.CausePeerRefused, "peer's aggressive mode answer did not decrypt: %v", err)
}

// refused is a notification the peer answered our phase 1 with.
func (t *aggressiveMode) refused(sa *isakmpSA, n isakmp.NotifyType, protected bool) error {
	if n == isakmp.AUTHENTICATION_FAILED && t.round < 3 && !protected {
		return failure(shared.CauseAuthFailed, "peer refused our aggressive mode (AUTHENTICATION-FAILED, unauthenticated): it allows aggressive mode for our ID %s only with aggressive=yes there, or the ID does not match", sa.localID)
	}
	return phase1Refused(sa, t.saI, t.round >= 3, n, protected)
}
