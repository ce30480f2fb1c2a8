package ikev2

import (
	"net/netip"

	"bytes"
	"encoding/binary"
	"fmt"
	mrand "math/rand/v2"
	"slices"
	"time"

	"github.com/ipsecgw/ipsecgw/config"

	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
	"github.com/ipsecgw/ipsecgw/ike/shared"
	"github.com/ipsecgw/ipsecgw/transform"
)

// RekeyedIKELinger is how long an IKE SA replaced by a rekey waits for the
// peer's DELETE before it is dropped anyway.
const rekeyedIKELinger = time.Minute

// respondRekeyIKE is the responder side of IKE SA rekeying (RFC 7296
// §1.3.2, §2.18): a new IKE SA with fresh SPIs, nonces and key exchange,
// keyed from the old SK_d, inherits every CHILD SA. The peer, which
// initiated the rekey, is the original initiator of the new SA and deletes
// the old one.
func (sa *ikeSA) respondRekeyIKE(id uint32, in []message.RawPayload, peerSA message.SA, ni []byte) {
	reply := func(ps ...message.Payload) { sa.sendResponse(message.CREATE_CHILD_SA, id, ps) }
	if sa.pending != nil && childWork(sa.pending.t) {
		// Our CHILD SA exchange on this IKE SA is outstanding: its answer
		// would arrive on an SA that no longer holds the CHILD SAs. As
		// strongSwan does (and RFC 7296 §2.25.2 allows), the peer is asked
		// to retry the IKE rekey later.
		sa.log.Info("IKE SA rekey by the peer deferred: a CHILD SA exchange is outstanding", "exchange", sa.pending.t.exchange())
		reply(message.Notify{Type: message.TEMPORARY_FAILURE})
		return
	}
	kp, ok := payload(in, message.PayloadKE)
	ke, _, err := message.ParseKE(kp.Body)
	if !ok || err != nil {
		reply(message.Notify{Type: message.INVALID_SYNTAX})
		return
	}
	ours := shared.Offer(sa.conn.IKE, shared.ProtoIKE, nil, false)
	sel, ok := shared.Select(ours, proposals(peerSA), shared.ProtoIKE, false, ke.Group)
	if !ok {
		sa.log.Warn("IKE SA rekey: no acceptable proposal", "peer", shared.ProposalsString(proposals(peerSA)), "ours", shared.ProposalsString(ours))
		reply(message.Notify{Type: message.NO_PROPOSAL_CHOSEN})
		return
	}
	var spiI uint64
	for _, p := range peerSA.Proposals {
		if p.Number == sel.Number && p.Protocol == message.ProtoIKE && len(p.SPI) == 8 {
			spiI = binary.BigEndian.Uint64(p.SPI)
		}
	}
	if spiI == 0 {
		reply(message.Notify{Type: message.INVALID_SYNTAX})
		return
	}
	if sel.KE.ID != ke.Group {
		var g [2]byte
		binary.BigEndian.PutUint16(g[:], uint16(sel.KE.ID))
		reply(message.Notify{Type: message.INVALID_KE_PAYLOAD, Data: g[:]})
		return
	}
	kx, err := transform.NewKeyExchange(sel.KE.ID)
	if err != nil {
		reply(message.Notify{Type: message.NO_PROPOSAL_CHOSEN})
		return
	}
	gir, err := kx.SharedSecret(ke.Data)
	pub := kx.PublicKey()
	defer kx.Close()
	if err != nil {
		reply(message.Notify{Type: message.INVALID_SYNTAX})
		return
	}
	defer clear(gir)
	nsa, err := sa.e.newSA(false, sa.local, sa.remote)
	if err != nil {
		reply(message.Notify{Type: message.NO_ADDITIONAL_SAS})
		return
	}
	nr := newNonce()
	seed := message.RekeySKEYSEED(sa.prf, sa.keys.SKd, gir, ni, nr)
	defer clear(seed)
	prf, err := transform.NewPRF(sel.PRF.ID)
	var keys message.IKEKeys
	if err == nil {
		keys, err = message.DeriveIKEKeys(prf, sel.Encr, sel.Integ, seed, ni, nr, spiI, nsa.spiR)
	}
	var out, inP *transform.Protector
	if err == nil {
		out, inP, err = keys.Protectors(sel.Encr, sel.Integ, false)
	}
	if err != nil {
		keys.Zero()
		sa.log.Warn("IKE SA rekey: key derivation", "err", err)
		nsa.post(func() { nsa.destroy() })
		reply(message.Notify{Type: message.NO_PROPOSAL_CHOSEN})
		return
	}
	r := &ikeRekeyed{nsa: nsa, sel: sel, prf: prf, keys: keys, out: out, in: inP, ni: ni, nr: nr, peerSPI: spiI}
	rsp := []message.Payload{
		message.SA{Proposals: []message.Proposal{wireProposal(sel.Proposal(shared.ProtoIKE, binary.BigEndian.AppendUint64(nil, nsa.spiR)))}},
		message.Nonce{Data: nr},
		message.KE{Group: sel.KE.ID, Data: pub},
	}
	if t := sa.ikeRekeyPending(); t != nil {
		// Both sides rekey at once (RFC 7296 §2.8.2). The peer's new SA is
		// created but not used yet: when our own exchange completes, the
		// nonces decide which new SA survives (ikeRekeyTask.process), as
		// strongSwan decides on its side.
		sa.log.Info("IKE SA rekey collision: the peer rekeys while our rekey is outstanding")
		if t.passive != nil {
			t.passive.discard()
		}
		t.passive = r
		o := *sa
		nsa.post(func() {
			// Keyed now, so that the peer's DELETE of it (it lost and saw
			// so first) is understood even before we decided.
			r.key(nsa, &o)
			// Should the decision never come, the unused SA goes.
			nsa.openTimer = nsa.after(rekeyedIKELinger, func() {
				if nsa.state < saEstablished {
					nsa.destroy()
				}
			})
		})
		reply(rsp...)
		return
	}
	// Hand everything over to the new SA; from now on the old one only
	// answers retransmissions and waits for the peer's DELETE.
	sa.handOver(r)
	reply(rsp...)
	sa.awaitPeerDelete()
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
	t, _ := sa.pending.t.(*ikeRekeyTask)
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
	out, in *transform.Protector
	ni, nr  []byte
	peerSPI uint64 // the peer's SPI of the new SA
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
func (r *ikeRekeyed) key(nsa, old *ikeSA) {
	r.setPeerSPI(nsa)
	nsa.alg, nsa.prf, nsa.keys, nsa.out, nsa.in = r.sel, r.prf, r.keys, r.out, r.in
	nsa.conn, nsa.candidates = old.conn, old.candidates
	nsa.localID, nsa.remoteID = old.localID, old.remoteID
	nsa.natLocal, nsa.natRemote, nsa.fragmentation = old.natLocal, old.natRemote, old.fragmentation
	nsa.ni, nsa.nr = r.ni, r.nr
}

// discard drops a new SA that will never be used.
func (r *ikeRekeyed) discard() {
	r.keys.Zero()
	r.out.Close()
	r.in.Close()
	nsa := r.nsa
	nsa.post(func() { nsa.destroy() })
}

// redundant starts the new SA of a lost collision without CHILD SAs or
// conns: the side that created it (ours: we initiated its exchange)
// deletes it at once, the other side waits for that DELETE (RFC 7296
// §2.8.2).
func (r *ikeRekeyed) redundant(old *ikeSA, ours bool) {
	nsa := r.nsa
	o := *old
	nsa.post(func() {
		if nsa.state == saDead {
			return // the peer deleted it already
		}
		r.key(nsa, &o)
		nsa.state, nsa.established = saEstablished, nsa.e.clock.Now()
		if ours {
			nsa.log.Info("deleting the redundant IKE SA of a rekey collision", "rekeyed_spi", fmt.Sprintf("%016x", o.ourSPI()))
			nsa.deleteIKE("")
			return
		}
		nsa.log.Info("waiting for the peer to delete its redundant IKE SA of a rekey collision", "rekeyed_spi", fmt.Sprintf("%016x", o.ourSPI()))
		nsa.awaitPeerDelete()
	})
}

// armIKERekey schedules the renewal of the IKE SA at ikelifetime - margin -
// random(margin × rekeyfuzz): rekeying with CREATE_CHILD_SA for reauth=no
// conns, reauthentication (a new IKE SA, then the old one deleted) for
// reauth=yes, strongSwan's ipsec.conf default. Either side rekeys (the one
// whose timer expires first, as with strongSwan); when both do at once,
// the collision is resolved by the nonces (RFC 7296 §2.8.2). Only the
// original initiator reauthenticates: two reauthentications would build
// two independent IKE SAs, which nothing resolves.
func (sa *ikeSA) armIKERekey() {
	c := sa.conn
	if (c.Reauth && !sa.initiator) || !c.Rekey || c.IKELifetime <= c.Margin {
		return
	}
	d := c.IKELifetime - c.Margin
	if fuzz := time.Duration(float64(c.Margin) * float64(c.RekeyFuzz) / 100); fuzz > 0 {
		d -= time.Duration(mrand.Int64N(int64(fuzz) + 1))
	}
	sa.scheduleIKERekey(d)
}

func (sa *ikeSA) scheduleIKERekey(d time.Duration) {
	c := sa.conn
	if sa.rekeyTimer != nil {
		sa.rekeyTimer.Stop()
	}
	sa.rekeyTimer = sa.after(d, func() {
		if sa.state != saEstablished {
			return
		}
		if c.Reauth {
			sa.reauthenticate()
		} else {
			sa.log.Info("rekeying IKE SA", "conn", c.Name)
			sa.enqueue(&ikeRekeyTask{})
		}
	})
}

// retryDelay is how long a refused or failed rekey waits before it is tried
// again: strongSwan's 15 s less up to 10 s of jitter, but at most half the
// margin so that the retry still comes before the SA expires.
func retryDelay(margin time.Duration) time.Duration {
	d := 15*time.Second - time.Duration(mrand.Int64N(int64(10*time.Second)+1))
	if margin > 0 && d > margin/2 {
		d = margin / 2
	}
	return max(d, time.Second)
}

// reauthenticate builds a new IKE SA for the conns this one serves, make
// before break: the old SA stops taking new CHILD SAs now and is deleted
// once the new one has installed the first CHILD SA.
func (sa *ikeSA) reauthenticate() {
	names := map[string]bool{sa.conn.Name: true}
	for _, ch := range sa.children {
		names[ch.conn.Name] = true
	}
	cfgConns := map[string]config.Conn{}
	cfg := sa.e.host.Config()
	for n := range names {
		if c, ok := cfg.Conn(n); ok {
			cfgConns[n] = c
		}
	}
	main, ok := cfgConns[sa.conn.Name]
	if !ok {
		return // the conn was removed by a reload; let the SA live out
	}
	nsa, err := sa.e.newSA(true, netip.AddrPortFrom(sa.local.Addr(), 500), netip.AddrPortFrom(sa.remote.Addr(), 500))
	if err != nil {
		return
	}
	sa.log.Info("reauthenticating IKE SA", "conn", main.Name)
	sa.servePeer(nil)
	// Said to the Host at once, so that Up of a conn with the same peer
	// finds the new SA; the new SA learns it in its own loop.
	sa.e.host.ServePeer(nsa, &main)
	old := sa
	nsa.post(func() {
		nsa.serving = true
		nsa.replaces = old
		nsa.startInitiator(main)
		for n, c := range cfgConns {
			if n != main.Name {
				nsa.upChild(c)
			}
		}
	})
}

// ikeRekeyTask rekeys the IKE SA with CREATE_CHILD_SA (RFC 7296 §1.3.2).
type ikeRekeyTask struct {
	nsa   *ikeSA
	offer []shared.Proposal
	ke    transform.KeyExchange
	ni    []byte
	// passive is the peer's rekey of the same IKE SA that crossed ours
	// (RFC 7296 §2.8.2), kept until the nonces can be compared.
	passive *ikeRekeyed
}

func (*ikeRekeyTask) exchange() message.ExchangeType { return message.CREATE_CHILD_SA }

func (t *ikeRekeyTask) build(sa *ikeSA) ([]message.Payload, error) {
	if sa.state != saEstablished {
		return nil, fmt.Errorf("IKE SA not established")
	}
	nsa, err := sa.e.newSA(true, sa.local, sa.remote)
	if err != nil {
		return nil, err
	}
	t.nsa = nsa
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
	}
	if t.nsa != nil {
		nsa := t.nsa
		nsa.post(func() { nsa.destroy() })
	}
}

func (t *ikeRekeyTask) process(sa *ikeSA, m *message.Message) error {
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
	nr := bytes.Clone(nonce.Data)
	seed := message.RekeySKEYSEED(sa.prf, sa.keys.SKd, gir, t.ni, nr)
	defer clear(seed)
	prf, err := transform.NewPRF(sel.PRF.ID)
	var keys message.IKEKeys
	if err == nil {
		keys, err = message.DeriveIKEKeys(prf, sel.Encr, sel.Integ, seed, t.ni, nr, t.nsa.spiI, spiR)
	}
	var out, inP *transform.Protector
	if err == nil {
		out, inP, err = keys.Protectors(sel.Encr, sel.Integ, true)
	}
	if err != nil {
		keys.Zero()
		t.fail(sa, shared.CausePeerRefused, "key derivation: "+err.Error())
		return nil
	}
	ours := &ikeRekeyed{nsa: t.nsa, sel: sel, prf: prf, keys: keys, out: out, in: inP, ni: t.ni, nr: nr, peerSPI: spiR}
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
			return nil
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
	return nil
}

// handOver moves this SA's CHILD SAs, conns and identity to nsa, keyed by
// a rekey, and makes nsa the SA that serves the peer.
func (sa *ikeSA) handOver(r *ikeRekeyed) {
	nsa, sel, prf, keys, out, in, ni, nr := r.nsa, r.sel, r.prf, r.keys, r.out, r.in, r.ni, r.nr
	children, conns := sa.children, sa.conns
	for _, ch := range children {
		ch.stopTimers()
	}
	sa.children, sa.conns = nil, map[string]bool{}
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
	old := *sa
	// Reported here, in the old SA's loop, so that it comes before the old
	// SA's end (the new SA's loop may run later).
	newInfo := sa.info()
	newInfo.Initiator = nsa.initiator
	newInfo.SPIi, newInfo.SPIr = r.spis()
	newInfo.Algorithms, newInfo.Established = sel.String(), sa.e.clock.Now()
	sa.e.host.Emit(shared.IKERekeyed{Names: connNames(old.conn.Name, conns), Old: sa.info(), New: newInfo})
	nsa.post(func() {
		r.setPeerSPI(nsa)
		nsa.alg, nsa.prf, nsa.keys, nsa.out, nsa.in = sel, prf, keys, out, in
		nsa.conn, nsa.candidates, nsa.conns = old.conn, old.candidates, conns
		nsa.localID, nsa.remoteID = old.localID, old.remoteID
		nsa.natLocal, nsa.natRemote, nsa.fragmentation = old.natLocal, old.natRemote, old.fragmentation
		nsa.ni, nsa.nr = ni, nr
		nsa.children = children
		for _, ch := range children {
			nsa.armChildTimers(ch)
		}
		nsa.establish(true)
		nsa.log.Info("IKE SA rekeyed", "old_spi", fmt.Sprintf("%016x", old.ourSPI()))
		if len(moved) > 0 {
			nsa.log.Info("CHILD SA exchanges moved to the rekeyed IKE SA", "count", len(moved))
			nsa.queue = append(nsa.queue, moved...)
			nsa.kick()
		}
	})
}

// childWork reports whether a task is about CHILD SAs (creating, rekeying
// or deleting one), i.e. work that follows the CHILD SAs to a rekeyed IKE
// SA instead of dying with the old one.
func childWork(t task) bool {
	switch x := t.(type) {
	case *childTask:
		return true
	case *infoTask:
		for _, p := range x.payloads {
			if d, ok := p.(message.Delete); ok && d.Protocol == message.ProtoESP {
				return true
			}
		}
	}
	return false
}

// softLimit is the byte or packet count at which a CHILD SA of c is
// rekeyed: life - margin - random(margin × rekeyfuzz), the formula
// strongSwan uses for rekey_bytes/rekey_packets. With no margin configured
// a tenth of the limit is used, so that a volume limit still leads to a
// rekey before the hard limit deletes the SA; 0 (no soft limit) when the
// conn has no such limit or does not rekey.
func softLimit(c config.Conn, life, margin uint64) uint64 {
	if life == 0 || !c.Rekey {
		return 0
	}
	if margin == 0 {
		margin = life / 10
	}
	if margin >= life {
		return 1 // rekey on the first packet, as strongSwan would
	}
	soft := life - margin
	if fuzz := uint64(float64(margin) * float64(c.RekeyFuzz) / 100); fuzz > 0 {
		soft -= min(mrand.Uint64N(fuzz+1), soft-1)
	}
	return soft
}

// losesCollision reports whether the SA about to be created by the
// exchange with nonces ni, nr as a successor of old is the redundant one
// of a rekey collision: old already has a successor, and the new
// exchange's lowest nonce is below that successor's (the rule succeeded
// applies, RFC 7296 §2.8.1). Such an SA is installed without taking over
// the outbound direction, so that deleting it leaves traffic on the winner.
func losesCollision(old *child, ni, nr []byte) bool {
	if len(old.successors) != 1 {
		return false
	}
	low := ni
	if bytes.Compare(nr, ni) < 0 {
		low = nr
	}
	return bytes.Compare(low, old.successors[0].minNonce) < 0
}

// switchOutbound is called before old leaves the dataplane: when the
// surviving successor of old (in a collision the one with the highest
// nonce, RFC 7296 §2.8.1) was installed inbound-only, traffic switches to
// it now. The peer deleting old, or our DELETE of old being answered,
// shows that the peer has the successor's inbound SA; at old's hard
// expiry nothing better is left. A redundant successor is never switched
// to.
func (sa *ikeSA) switchOutbound(old *child) {
	var win *child
	for _, s := range old.successors {
		if sa.hasChild(s) && (win == nil || bytes.Compare(s.minNonce, win.minNonce) > 0) {
			win = s
		}
	}
	if win == nil || !win.outHeld {
		return
	}
	win.outHeld = false
	if err := sa.e.cfg.Installer.SwitchOutbound(win.conn.Name, win.inSPI); err != nil {
		sa.log.Warn("switching to the rekeyed CHILD SA", "conn", win.conn.Name, "in_spi", fmt.Sprintf("%08x", win.inSPI), "err", err)
		return
	}
	sa.log.Info("outbound traffic switched to the rekeyed CHILD SA", "conn", win.conn.Name, "in_spi", fmt.Sprintf("%08x", win.inSPI), "out_spi", fmt.Sprintf("%08x", win.outSPI))
}
