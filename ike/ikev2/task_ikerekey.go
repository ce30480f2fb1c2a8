package ikev2

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
	"github.com/ipsecgw/ipsecgw/ike/shared"
	"github.com/ipsecgw/ipsecgw/transform"
)

// IKE SA rekeying with CREATE_CHILD_SA (RFC 7296 §1.3.2, §2.8.2, §2.18):
// the ikeRekeyTask of either role, what it produces (ikeRekeyed), the
// hand-over of the CHILD SAs and the resolution of collisions.

// RekeyedIKELinger is how long an IKE SA replaced by a rekey waits for the
// peer's DELETE before it is dropped anyway.
const rekeyedIKELinger = time.Minute

// ikeRekeyTask rekeys the IKE SA with CREATE_CHILD_SA (RFC 7296 §1.3.2,
// §2.18), for either role: a new IKE SA with fresh SPIs, nonces and key
// exchange, keyed from the old SK_d, inherits every CHILD SA. The rekey's
// initiator is the original initiator of the new SA and deletes the old
// one.
type ikeRekeyTask struct {
	responder bool
	nsa       *ikeSA
	offer     []shared.Proposal
	ke        transform.KeyExchange
	ni        []byte
	// passive is the peer's rekey of the same IKE SA that crossed ours
	// (RFC 7296 §2.8.2), kept until the nonces can be compared.
	passive *ikeRekeyed
	// Responder: what the exchange produced, our KE value, and whether it
	// crossed our own rekey.
	made     *ikeRekeyed
	pub      []byte
	collided bool
	// With additional key exchanges (RFC 9370 §2.2.4): the new SA waiting
	// for them to run in IKE_FOLLOWUP_KE exchanges, the first shared
	// secret (initiator), and the link of our answer (responder).
	waiting *ikeRekeyed
	gir     []byte
	link    []byte
}

func (*ikeRekeyTask) exchange() message.ExchangeType { return message.CREATE_CHILD_SA }

func (t *ikeRekeyTask) build(sa *ikeSA) ([]message.Payload, error) {
	if t.responder {
		return t.buildResponse(sa), nil
	}
	if sa.state != saEstablished {
		return nil, fmt.Errorf("IKE SA not established")
	}
	nsa, err := sa.e.newSA(true, sa.local, sa.remote)
	if err != nil {
		return nil, err
	}
	t.nsa = nsa
	// Additional key exchanges are offered as configured; they run in
	// IKE_FOLLOWUP_KE exchanges after this one (RFC 9370 §2.2.4).
	t.offer = shared.Offer(sa.conn.IKE, shared.ProtoIKE, binary.BigEndian.AppendUint64(nil, nsa.spiI), false)
	// The group negotiated before is proposed first, as strongSwan does.
	ke, err := transform.NewKeyExchange(sa.alg.KE.ID)
	if err != nil {
		nsa.post(func() { nsa.destroy() })
		return nil, err
	}
	t.ke = ke
	t.ni = newNonce()
	return []message.Payload{message.SA{Proposals: wireProposals(t.offer)}, message.Nonce{Data: t.ni}, message.KE{Group: sa.alg.KE.ID, Data: ke.PublicKey()}}, nil
}

func (t *ikeRekeyTask) fail(sa *ikeSA, _ shared.Cause, reason string) {
	t.abandon()
	if p := t.passive; p != nil && sa.state == saEstablished {
		// The peer's rekey crossed ours and succeeded; ours did not (the
		// peer did not see the collision, RFC 7296 §2.8.2): the peer's new
		// SA takes over, and the peer deletes this one.
		t.passive = nil
		sa.log.Info("IKE SA rekey collision: our rekey failed, the peer's new IKE SA takes over", "reason", reason)
		sa.handOver(p)
		sa.awaitPeerDelete()
		return
	}
	sa.log.Warn("IKE SA rekeying failed", "reason", reason)
	if sa.state == saEstablished {
		// Without a new attempt the IKE SA would never be rekeyed again
		// (the peer may have answered TEMPORARY_FAILURE because one of
		// its own exchanges was under way).
		d := retryDelay(sa.conn.Margin)
		sa.log.Info("IKE SA rekey will be retried", "in", d)
		sa.scheduleIKERekey(d)
	}
}

// abandon releases the key exchange and the new SA of an exchange that
// produced nothing.
func (t *ikeRekeyTask) abandon() {
	if t.ke != nil {
		t.ke.Close()
		t.ke = nil
	}
	clear(t.gir)
	t.gir, t.waiting = nil, nil
	if t.nsa != nil {
		nsa := t.nsa
		nsa.post(func() { nsa.destroy() })
	}
}

func (t *ikeRekeyTask) process(sa *ikeSA, m *message.Message) error {
	if t.responder {
		return t.processRequest(sa, m)
	}
	defer t.ke.Close()
	in := m.Inner
	if n, ok := firstError(notifies(in)); ok {
		t.fail(sa, shared.CausePeerRefused, "peer refused: "+n.Type.String())
		return nil
	}
	sap, _ := payload(in, message.PayloadSA)
	np, _ := payload(in, message.PayloadNonce)
	kp, _ := payload(in, message.PayloadKE)
	got, _, err1 := message.ParseSA(sap.Body)
	nonce, _, err2 := message.ParseNonce(np.Body)
	ke, _, err3 := message.ParseKE(kp.Body)
	if err1 != nil || err2 != nil || err3 != nil {
		t.fail(sa, shared.CausePeerRefused, "malformed response")
		return nil
	}
	sel, ok := shared.Accept(t.offer, proposals(got), shared.ProtoIKE, false)
	if !ok || len(got.Proposals[0].SPI) != 8 || sel.KE.ID != t.ke.Group() || ke.Group != t.ke.Group() {
		t.fail(sa, shared.CausePeerRefused, "peer chose "+shared.ProposalsString(proposals(got))+", not one of ours")
		return nil
	}
	spiR := binary.BigEndian.Uint64(got.Proposals[0].SPI)
	gir, err := t.ke.SharedSecret(ke.Data)
	if err != nil {
		t.fail(sa, shared.CausePeerRefused, "invalid key exchange value")
		return nil
	}
	defer clear(gir)
	ours := &ikeRekeyed{nsa: t.nsa, sel: sel, ni: t.ni, nr: bytes.Clone(nonce.Data), peerSPI: spiR}
	if adds := sel.AdditionalKEs(); len(adds) > 0 {
		// Keyed once the IKE_FOLLOWUP_KE exchanges are done.
		t.waiting, t.gir = ours, bytes.Clone(gir)
		sa.startFollowups(t, adds, in)
		return nil
	}
	if err := ours.deriveKeys(sa, gir); err != nil {
		t.fail(sa, shared.CausePeerRefused, "key derivation: "+err.Error())
		return nil
	}
	t.resolve(sa, ours)
	return nil
}

// followupsDone keys the new IKE SA from all the exchanges' shared
// secrets and completes the rekey.
func (t *ikeRekeyTask) followupsDone(sa *ikeSA, secrets [][]byte) {
	ours, gir := t.waiting, t.gir
	t.waiting, t.gir = nil, nil
	defer clear(gir)
	if err := ours.deriveKeys(sa, gir, secrets...); err != nil {
		t.fail(sa, shared.CauseInternal, "key derivation: "+err.Error())
		return
	}
	t.resolve(sa, ours)
}

// followupFailed abandons the rekey whose additional key exchanges did not
// complete; it is tried again like any failed rekey.
func (t *ikeRekeyTask) followupFailed(sa *ikeSA, cause shared.Cause, reason string) {
	t.fail(sa, cause, reason)
}

// resolve hands the CHILD SAs to the new SA of our rekey and deletes the
// old one, or, when the peer's rekey crossed ours, to the new SA the
// nonces choose.
func (t *ikeRekeyTask) resolve(sa *ikeSA, ours *ikeRekeyed) {
	if p := t.passive; p != nil {
		// A rekey collision (RFC 7296 §2.8.2): the new SA whose exchange
		// has the lowest of the four nonces is deleted by the side that
		// initiated that exchange; the CHILD SAs go to the other one, and
		// the initiator of the surviving SA deletes the old one.
		t.passive = nil
		if bytes.Compare(ours.lowNonce(), p.lowNonce()) < 0 {
			sa.log.Info("IKE SA rekey collision lost: the peer's new IKE SA takes over, ours is deleted")
			sa.handOver(p)
			ours.redundant(sa, true)
			sa.awaitPeerDelete()
			return
		}
		sa.log.Info("IKE SA rekey collision won: our new IKE SA takes over, the peer deletes its own")
		p.redundant(sa, false)
	}
	sa.handOver(ours)
	// The rekey initiator deletes the old IKE SA (RFC 7296 §1.3.2); its
	// CHILD SAs have moved, so nothing else goes with it.
	sa.queue = nil
	sa.state = saEstablished
	sa.deleteIKE("")
}

// handOver moves this SA's CHILD SAs, conns and identity to nsa, keyed by
// a rekey, and makes nsa the SA that serves the peer.
func (sa *ikeSA) handOver(r *ikeRekeyed) {
	nsa, sel, prf, keys := r.nsa, r.sel, r.prf, r.keys
	children, conns := sa.children, sa.conns
	for _, ch := range children {
		ch.stopTimers()
	}
	sa.children, sa.conns = nil, nil
	if sa.dpdTimer != nil {
		sa.dpdTimer.Stop()
	}
	if sa.rekeyTimer != nil {
		sa.rekeyTimer.Stop()
	}
	sa.servePeer(nil)
	// CHILD SA work queued behind the IKE rekey moves too: a CHILD rekey
	// that fell due while the IKE rekey was outstanding, a CHILD delete, a
	// new conn's CHILD SA. Dropping a queued CHILD rekey left its CHILD SA
	// marked as being rekeyed with nothing doing so, and it ran into its
	// hard lifetime with the conn down for good. The tasks are not built
	// yet, so they run unchanged on the new SA, after any already there.
	var moved []task
	for _, t := range sa.queue {
		if childWork(t) {
			moved = append(moved, t)
		}
	}
	sa.queue = slices.DeleteFunc(sa.queue, childWork)
	old := sa.heritage()
	// Reported here, in the old SA's loop, so that it comes before the old
	// SA's end (the new SA's loop may run later).
	newInfo := sa.info()
	newInfo.Initiator = nsa.initiator
	newInfo.SPIi, newInfo.SPIr = r.spis()
	newInfo.Algorithms, newInfo.Established = sel.String(), sa.e.clock.Now()
	newInfo.RekeyAt = time.Time{} // the new SA arms its own timer (published then)
	sa.e.host.Emit(shared.IKERekeyed{Names: connNames(old.conn.Name, conns), Old: sa.info(), New: newInfo})
	nsa.post(func() {
		r.setPeerSPI(nsa)
		nsa.alg, nsa.prf, nsa.keys = sel, prf, keys
		// A rekeyed SA authenticates nothing: its SK_pi/SK_pr are unused.
		nsa.keys.DropAuthKeys()
		old.passTo(nsa)
		nsa.conns = conns
		nsa.children = children
		for _, ch := range children {
			nsa.armChildTimers(ch)
		}
		nsa.establish(true)
		nsa.log.Info("IKE SA rekeyed", "old_spi", fmt.Sprintf("%016x", old.spi))
		if len(moved) > 0 {
			nsa.log.Info("CHILD SA exchanges moved to the rekeyed IKE SA", "count", len(moved))
			nsa.queue = append(nsa.queue, moved...)
			nsa.kick()
		}
	})
}

// discard releases what an exchange that will never be answered holds
// (the SA it belongs to ends).
func (t *ikeRekeyTask) discard() {
	t.abandon()
	if t.passive != nil {
		t.passive.discard()
		t.passive = nil
	}
}

// processRequest is the responder's half: our proposal, the key exchange,
// the new SA and its keys. Nothing is handed over yet.
func (t *ikeRekeyTask) processRequest(sa *ikeSA, m *message.Message) error {
	in := m.Inner
	if sa.pending != nil && childWork(sa.pending.t) {
		// Our CHILD SA exchange on this IKE SA is outstanding: its answer
		// would arrive on an SA that no longer holds the CHILD SAs. As
		// strongSwan does (and RFC 7296 §2.25.2 allows), the peer is asked
		// to retry the IKE rekey later.
		sa.log.Info("IKE SA rekey by the peer deferred: a CHILD SA exchange is outstanding", "exchange", sa.pending.t.exchange())
		return notifyError{Notify: message.Notify{Type: message.TEMPORARY_FAILURE}}
	}
	sap, _ := payload(in, message.PayloadSA)
	peerSA, _, err := message.ParseSA(sap.Body)
	np, _ := payload(in, message.PayloadNonce)
	nonce, _, err2 := message.ParseNonce(np.Body)
	kp, ok := payload(in, message.PayloadKE)
	ke, _, err3 := message.ParseKE(kp.Body)
	if !ok || err != nil || err2 != nil || err3 != nil {
		return notifyError{Notify: message.Notify{Type: message.INVALID_SYNTAX}}
	}
	ni := bytes.Clone(nonce.Data)
	ours := shared.Offer(sa.conn.IKE, shared.ProtoIKE, nil, false)
	sel, ok := shared.Select(ours, proposals(peerSA), shared.ProtoIKE, false, ke.Group)
	if !ok {
		sa.log.Warn("IKE SA rekey: no acceptable proposal", "peer", shared.ProposalsString(proposals(peerSA)), "ours", shared.ProposalsString(ours))
		return notifyError{Notify: message.Notify{Type: message.NO_PROPOSAL_CHOSEN}}
	}
	var spiI uint64
	for _, p := range peerSA.Proposals {
		if p.Number == sel.Number && p.Protocol == message.ProtoIKE && len(p.SPI) == 8 {
			spiI = binary.BigEndian.Uint64(p.SPI)
		}
	}
	if spiI == 0 {
		return notifyError{Notify: message.Notify{Type: message.INVALID_SYNTAX}}
	}
	if sel.KE.ID != ke.Group {
		var g [2]byte
		binary.BigEndian.PutUint16(g[:], uint16(sel.KE.ID))
		return notifyError{Notify: message.Notify{Type: message.INVALID_KE_PAYLOAD, Data: g[:]}}
	}
	kx, err := transform.NewKeyExchange(sel.KE.ID)
	if err != nil {
		return notifyError{Notify: message.Notify{Type: message.NO_PROPOSAL_CHOSEN}}
	}
	defer kx.Close()
	gir, err := kx.SharedSecret(ke.Data)
	if err != nil {
		return notifyError{Notify: message.Notify{Type: message.INVALID_SYNTAX}}
	}
	defer clear(gir)
	t.pub = bytes.Clone(kx.PublicKey())
	nsa, err := sa.e.newSA(false, sa.local, sa.remote)
	if err != nil {
		return notifyError{Notify: message.Notify{Type: message.NO_ADDITIONAL_SAS}}
	}
	t.made = &ikeRekeyed{nsa: nsa, sel: sel, ni: ni, nr: newNonce(), peerSPI: spiI}
	if adds := sel.AdditionalKEs(); len(adds) > 0 {
		link, ok := sa.expectFollowups(t.followups(bytes.Clone(gir), adds))
		if !ok {
			nsa.post(func() { nsa.destroy() })
			t.made = nil
			return notifyError{Notify: message.Notify{Type: message.TEMPORARY_FAILURE}}
		}
		t.link = link
		return nil
	}
	if err := t.made.deriveKeys(sa, gir); err != nil {
		sa.log.Warn("IKE SA rekey: key derivation", "err", err)
		nsa.post(func() { nsa.destroy() })
		t.made = nil
		return notifyError{Notify: message.Notify{Type: message.NO_PROPOSAL_CHOSEN}}
	}
	return nil
}

// buildResponse hands everything over to the new SA before the answer
// leaves (the peer may use the new SA as soon as it has it), unless the
// rekey crossed our own: then the nonces decide later.
func (t *ikeRekeyTask) buildResponse(sa *ikeSA) []message.Payload {
	r := t.made
	rsp := []message.Payload{
		message.SA{Proposals: []message.Proposal{wireProposal(r.sel.Proposal(shared.ProtoIKE, binary.BigEndian.AppendUint64(nil, r.nsa.spiR)))}},
		message.Nonce{Data: r.nr},
		message.KE{Group: r.sel.KE.ID, Data: t.pub},
	}
	if t.link != nil {
		// Nothing is keyed before the IKE_FOLLOWUP_KE exchanges are done.
		return append(rsp, message.Notify{Type: message.ADDITIONAL_KEY_EXCHANGE, Data: t.link})
	}
	t.settle(sa)
	return rsp
}

// followups is what the rekey keeps while the peer's additional key
// exchanges run: the new SA is keyed after the last one, and handed over
// (or the collision with ours decided) as an answer without them would.
func (t *ikeRekeyTask) followups(gir []byte, adds []transform.Transform) *followupState {
	return &followupState{
		methods: adds,
		complete: func(sa *ikeSA, add [][]byte) *message.Notify {
			defer clear(gir)
			if sa.pending != nil && childWork(sa.pending.t) {
				// A CHILD SA exchange of ours started between the peer's
				// CREATE_CHILD_SA and this last IKE_FOLLOWUP_KE: its answer
				// would come to an SA without CHILD SAs. Refused as
				// processRequest refuses it (RFC 7296 §2.25.2); the peer
				// tries again later.
				sa.log.Info("IKE SA rekey by the peer deferred: a CHILD SA exchange is outstanding", "exchange", sa.pending.t.exchange())
				t.abandonMade()
				return &message.Notify{Type: message.TEMPORARY_FAILURE}
			}
			if err := t.made.deriveKeys(sa, gir, add...); err != nil {
				sa.log.Warn("IKE SA rekey: key derivation", "err", err)
				t.abandonMade()
				return &message.Notify{Type: message.NO_PROPOSAL_CHOSEN}
			}
			t.settle(sa)
			return nil
		},
		answered: func(sa *ikeSA) {
			if t.made != nil && !t.collided {
				sa.awaitPeerDelete()
			}
		},
		abandon: func(sa *ikeSA, _ string) {
			clear(gir)
			t.abandonMade()
		},
	}
}

// abandonMade drops the new SA of the peer's rekey that will not be
// completed.
func (t *ikeRekeyTask) abandonMade() {
	if t.made != nil {
		nsa := t.made.nsa
		nsa.post(func() { nsa.destroy() })
		t.made = nil
	}
}

// settle hands everything over to the new SA of the peer's rekey, now
// keyed, unless the rekey crossed our own: then the nonces decide later.
func (t *ikeRekeyTask) settle(sa *ikeSA) {
	r := t.made
	if ours := sa.ikeRekeyPending(); ours != nil {
		// Both sides rekey at once (RFC 7296 §2.8.2). The peer's new SA is
		// created but not used yet: when our own exchange completes, the
		// nonces decide which new SA survives (ikeRekeyTask.process), as
		// strongSwan decides on its side.
		sa.log.Info("IKE SA rekey collision: the peer rekeys while our rekey is outstanding")
		t.collided = true
		if ours.passive != nil {
			ours.passive.discard()
		}
		ours.passive = r
		o, nsa := sa.heritage(), r.nsa
		nsa.post(func() {
			// Keyed now, so that the peer's DELETE of it (it lost and saw
			// so first) is understood even before we decided.
			r.key(nsa, o)
			// Should the decision never come, the unused SA goes.
			nsa.openTimer = nsa.after(rekeyedIKELinger, func() {
				if nsa.state < saEstablished {
					nsa.destroy()
				}
			})
		})
		return
	}
	// Hand everything over to the new SA; from now on the old one only
	// answers retransmissions and waits for the peer's DELETE.
	sa.handOver(r)
}

// answered leaves the old SA to the peer's DELETE (unless the rekey
// crossed ours, which decides when it completes, or the additional key
// exchanges are still to come).
func (t *ikeRekeyTask) answered(sa *ikeSA) {
	if t.made != nil && !t.collided && t.link == nil {
		sa.awaitPeerDelete()
	}
}

// awaitPeerDelete leaves a rekeyed IKE SA to the peer, which initiated the
// surviving new SA and deletes this one (RFC 7296 §1.3.2, §2.8.2); if it
// does not, the SA goes after rekeyedIKELinger.
func (sa *ikeSA) awaitPeerDelete() {
	sa.state = saDeleting
	if sa.openTimer != nil {
		sa.openTimer.Stop()
	}
	sa.openTimer = sa.after(rekeyedIKELinger, func() { sa.destroy() })
}

// ikeRekeyPending returns our IKE rekey exchange when its request is
// outstanding on this SA.
func (sa *ikeSA) ikeRekeyPending() *ikeRekeyTask {
	if sa.pending == nil {
		return nil
	}
	pt := sa.pending.t
	if f, ok := pt.(*followupTask); ok && f.owner != nil {
		// Our rekey is in its IKE_FOLLOWUP_KE exchanges.
		pt = f.owner
	}
	t, _ := pt.(*ikeRekeyTask)
	if t == nil || t.nsa == nil {
		return nil
	}
	return t
}

// ikeRekeyed is what one IKE SA rekey exchange produced: the new IKE SA
// (its loop running, nothing handed to it yet) and its keys.
type ikeRekeyed struct {
	nsa     *ikeSA
	sel     shared.Selection
	prf     transform.PRF
	keys    message.IKEKeys
	ni, nr  []byte
	peerSPI uint64 // the peer's SPI of the new SA
}

// deriveKeys keys the new SA from the old one's SK_d, the exchange's
// nonces and shared secret gir (RFC 7296 §2.18), and those of the
// additional key exchanges, add (RFC 9370 §2.2.4).
func (r *ikeRekeyed) deriveKeys(old *ikeSA, gir []byte, add ...[]byte) error {
	seed := message.RekeySKEYSEED(old.prf, old.keys.SKd, gir, r.ni, r.nr, add...)
	defer clear(seed)
	prf, err := transform.NewPRF(r.sel.PRF.ID)
	if err != nil {
		return err
	}
	spiI, spiR := r.spis()
	keys, err := message.DeriveIKEKeys(prf, r.sel.Encr, r.sel.Integ, seed, r.ni, r.nr, spiI, spiR)
	if err != nil {
		return err
	}
	r.prf, r.keys = prf, keys
	return nil
}

// spis are the new SA's SPIs (initiator's, responder's).
func (r *ikeRekeyed) spis() (spiI, spiR uint64) {
	if r.nsa.initiator {
		return r.nsa.spiI, r.peerSPI
	}
	return r.peerSPI, r.nsa.spiR
}

// setPeerSPI gives the new SA (in its own loop) the peer's SPI.
func (r *ikeRekeyed) setPeerSPI(nsa *ikeSA) {
	if nsa.initiator {
		nsa.spiR = r.peerSPI
	} else {
		nsa.spiI = r.peerSPI
	}
}

// lowNonce is the lower of the exchange's two nonces, which decides a
// rekey collision (RFC 7296 §2.8.2).
func (r *ikeRekeyed) lowNonce() []byte {
	if bytes.Compare(r.nr, r.ni) < 0 {
		return r.nr
	}
	return r.ni
}

// key gives the new SA (from its own loop) its keys and the identity of
// the SA it replaces, without CHILD SAs or conns.
func (r *ikeRekeyed) key(nsa *ikeSA, old heritage) {
	r.setPeerSPI(nsa)
	nsa.alg, nsa.prf, nsa.keys = r.sel, r.prf, r.keys
	old.passTo(nsa)
}

// heritage is what a rekeyed IKE SA passes on to its successor, taken in
// the old SA's loop for the new SA's (which may run after the old one
// has changed or ended).
type heritage struct {
	spi                 uint64 // the old SA's, ours (for the log)
	conn                *config.Conn
	localID, remoteID   config.Identity
	natLocal, natRemote bool
	fragmentation       bool
}

func (sa *ikeSA) heritage() heritage {
	return heritage{spi: sa.ourSPI(), conn: sa.conn, localID: sa.localID, remoteID: sa.remoteID,
		natLocal: sa.natLocal, natRemote: sa.natRemote, fragmentation: sa.fragmentation}
}

// passTo gives nsa the old SA's conn, identities, NAT and fragmentation
// state.
func (h heritage) passTo(nsa *ikeSA) {
	nsa.conn = h.conn
	nsa.localID, nsa.remoteID = h.localID, h.remoteID
	nsa.natLocal, nsa.natRemote, nsa.fragmentation = h.natLocal, h.natRemote, h.fragmentation
}

// discard drops a new SA that will never be used.
func (r *ikeRekeyed) discard() {
	r.keys.Zero()
	nsa := r.nsa
	nsa.post(func() { nsa.destroy() })
}

// redundant starts the new SA of a lost collision without CHILD SAs or
// conns: the side that created it (ours: we initiated its exchange)
// deletes it at once, the other side waits for that DELETE (RFC 7296
// §2.8.2).
func (r *ikeRekeyed) redundant(old *ikeSA, ours bool) {
	nsa := r.nsa
	o := old.heritage()
	nsa.post(func() {
		if nsa.state == saDead {
			return // the peer deleted it already
		}
		r.key(nsa, o)
		nsa.state, nsa.established = saEstablished, nsa.e.now()
		if ours {
			nsa.log.Info("deleting the redundant IKE SA of a rekey collision", "rekeyed_spi", fmt.Sprintf("%016x", o.spi))
			nsa.deleteIKE("")
			return
		}
		nsa.log.Info("waiting for the peer to delete its redundant IKE SA of a rekey collision", "rekeyed_spi", fmt.Sprintf("%016x", o.spi))
		nsa.awaitPeerDelete()
	})
}
