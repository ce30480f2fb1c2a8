package ikev2

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
	"github.com/ipsecgw/ipsecgw/ike/shared"
	"github.com/ipsecgw/ipsecgw/spd"
	"github.com/ipsecgw/ipsecgw/transform"
)

// CHILD SA negotiation: the childTask of CREATE_CHILD_SA for either role,
// and the two halves of a CHILD SA negotiation that IKE_AUTH carries too
// (childOffer for the initiator, childResponse for the responder).

// childProto is the protocol of a conn's CHILD SAs: AH when it has ah=
// proposals (config.Conn.ChildProposals), ESP otherwise.
func childProto(c *config.Conn) shared.Protocol { return shared.ChildProtocol(*c) }

// protoName names a CHILD SA protocol for messages.
func protoName(p shared.Protocol) string {
	if p == shared.ProtoAH {
		return "AH"
	}
	return "ESP"
}

// childTask is CREATE_CHILD_SA for a CHILD SA (RFC 7296 §1.3.1, §2.8):
// a new one for another conn with the same peer, or a rekey (REKEY_SA).
// The initiator offers (offer); the responder picks the conn and installs
// the SA (response).
type childTask struct {
	responder bool
	conn      *config.Conn
	offer     childOffer
	// Responder: the request, the exchange's nonces and the CHILD SA the
	// peer rekeys, if any.
	in       []message.RawPayload
	ni, nr   []byte
	conns    []*config.Conn
	rekeyed  *child
	response childResponse
}

func (*childTask) exchange() message.ExchangeType { return message.CREATE_CHILD_SA }

func (t *childTask) build(sa *ikeSA) ([]message.Payload, error) {
	if t.responder {
		return t.buildResponse(sa), nil
	}
	if sa.state != saEstablished {
		return nil, fmt.Errorf("IKE SA not established")
	}
	return t.offer.build(sa, t.conn, true)
}

func (t *childTask) process(sa *ikeSA, m *message.Message) error {
	if t.responder {
		return t.processRequest(sa, m)
	}
	t.offer.process(sa, t.conn, m, true)
	if nc := t.offer.waiting; nc != nil {
		sa.startFollowups(t, nc.alg.AdditionalKEs(), body(m))
	}
	return nil
}

// followupsDone installs the CHILD SA keyed with the shared secrets of
// the additional key exchanges as well.
func (t *childTask) followupsDone(sa *ikeSA, secrets [][]byte) {
	nc := t.offer.waiting
	t.offer.waiting = nil
	t.offer.complete(sa, t.conn, *nc, true, secrets)
}

// followupFailed ends the CHILD SA negotiation whose additional key
// exchanges did not complete.
func (t *childTask) followupFailed(sa *ikeSA, cause shared.Cause, reason string) {
	t.offer.dropWaiting()
	t.offer.failed(sa, t.conn, true, cause, reason)
}

func (t *childTask) fail(sa *ikeSA, cause shared.Cause, reason string) {
	t.discard()
	if t.offer.rekey != nil {
		sa.log.Warn("CHILD SA rekeying failed", "conn", t.conn.Name, "reason", reason)
		sa.retryChildRekey(t.offer.rekey)
		return
	}
	sa.e.host.Emit(shared.Failure{Conn: t.conn.Name, State: shared.StatePhase2Failed, Cause: cause, Text: reason})
	sa.conns.Remove(t.conn.Name)
}

func (t *childTask) discard() { t.offer.discard() }

// processRequest finds the conns the new CHILD SA may belong to: the one
// of the CHILD SA the peer rekeys, or every conn of this peer.
func (t *childTask) processRequest(sa *ikeSA, m *message.Message) error {
	t.in = m.Inner
	np, _ := payload(t.in, message.PayloadNonce)
	nonce, _, err := message.ParseNonce(np.Body)
	if err != nil {
		return notifyError{Notify: message.Notify{Type: message.INVALID_SYNTAX}}
	}
	t.ni, t.nr = bytes.Clone(nonce.Data), newNonce()
	t.conns = sa.peerConns()
	if n, ok := findNotify(notifies(t.in), message.REKEY_SA); ok {
		old, _ := spiValue(n.SPI)
		t.conns = nil
		for _, ch := range sa.children {
			if ch.outSPI != old {
				continue
			}
			if replacedByUs(ch) {
				// Our own rekey of it succeeded and our DELETE of it is on
				// its way: RFC 7296 §2.25.1 asks for TEMPORARY_FAILURE
				// (strongSwan answers so too); a second successor would be
				// deleted by both sides.
				sa.log.Info("peer's rekey of a CHILD SA we are deleting refused", "conn", ch.conn.Name, "in_spi", spiHex(ch.inSPI))
				return notifyError{Notify: message.Notify{Type: message.TEMPORARY_FAILURE}}
			}
			t.conns = []*config.Conn{ch.conn}
			// The peer rekeys it: do not rekey it ourselves as well.
			ch.rekeyed = true
			t.rekeyed = ch
		}
		if t.conns == nil {
			return notifyError{Notify: message.Notify{Protocol: n.Protocol, Type: message.CHILD_SA_NOT_FOUND, SPI: n.SPI}}
		}
	}
	if len(t.conns) == 0 {
		return notifyError{Notify: message.Notify{Type: message.TS_UNACCEPTABLE}}
	}
	return nil
}

// buildResponse installs the CHILD SA and answers with it. The SA of the
// peer's rekey is installed inbound-only: the peer installs its inbound
// side only when it gets our answer, so traffic stays on the old SA until
// the peer deletes it (switchOutbound). A redundant SA of a collision is
// never switched to.
func (t *childTask) buildResponse(sa *ikeSA) []message.Payload {
	t.response = childResponse{conns: t.conns, ni: t.ni, nr: t.nr, nrOut: t.nr, replaces: t.rekeyed, keepOutbound: t.rekeyed != nil}
	return t.response.respond(sa, t.in)
}

// answered resolves a rekey collision, if any, once our answer is out.
func (t *childTask) answered(sa *ikeSA) {
	if t.rekeyed != nil {
		sa.succeeded(t.rekeyed, t.response.installed, t.ni, t.nr, false)
	}
}

// childOffer is the initiator's side of one CHILD SA negotiation, in
// IKE_AUTH or CREATE_CHILD_SA: our SPI, proposals, selectors and PFS key
// exchange.
type childOffer struct {
	inSPI         uint32
	offer         []shared.Proposal
	local, remote []spd.TS // proposed TSi (ours), TSr (theirs)
	ke            transform.KeyExchange
	group         transform.ID // PFS group to use (INVALID_KE_PAYLOAD retry)
	ni            []byte
	rekey         *child
	retried       bool // already retried after INVALID_KE_PAYLOAD
	// waiting is the peer's accepted choice while its additional key
	// exchanges run in IKE_FOLLOWUP_KE exchanges (RFC 9370 §2.2.4).
	waiting *acceptedChild
}

// build allocates our SPI and renders SA, TSi, TSr (and for
// CREATE_CHILD_SA Ni and KEi). The first CHILD SA (IKE_AUTH) has no KE
// (RFC 7296 §1.2): the conn's esp= group is used at rekeying only.
func (o *childOffer) build(sa *ikeSA, c *config.Conn, create bool) ([]message.Payload, error) {
	spi, err := sa.e.cfg.Installer.AllocateSPI()
	if err != nil {
		return nil, fmt.Errorf("allocating an SPI: %w", err)
	}
	o.inSPI = spi
	proto := childProto(c)
	o.offer = shared.Offer(c.ChildProposals(), proto, spiBytes(spi), !create)
	if len(o.offer) == 0 {
		return nil, configError(fmt.Errorf("conn %s has no %s proposal", c.Name, protoName(proto)))
	}
	o.local = shared.ConfTS(c.Local, sa.local.Addr())
	o.remote = shared.ConfTS(c.Remote, sa.remote.Addr())
	var ps []message.Payload
	if o.rekey != nil {
		ps = append(ps, message.Notify{Protocol: message.ProtocolID(o.rekey.proto), Type: message.REKEY_SA, SPI: spiBytes(o.rekey.inSPI)})
	}
	if c.Mode == config.ModeTransport {
		ps = append(ps, message.Notify{Type: message.USE_TRANSPORT_MODE})
	}
	ps = append(ps, message.SA{Proposals: wireProposals(o.offer)})
	if create {
		o.ni = newNonce()
		ps = append(ps, message.Nonce{Data: o.ni})
		if o.group == 0 {
			o.group = o.offer[0].FirstGroup()
		}
		if o.group != 0 && o.group != transform.KENone {
			ke, err := transform.NewKeyExchange(o.group)
			if err != nil {
				return nil, fmt.Errorf("PFS group %d: %w", o.group, err)
			}
			o.ke = ke
			ps = append(ps, message.KE{Group: o.group, Data: ke.PublicKey()})
		}
	}
	ps = append(ps, tsPayload(o.local, false), tsPayload(o.remote, true))
	return ps, nil
}

// process handles the CHILD SA part of a response: the peer's refusal,
// or its choice, which is checked against our offer and installed.
func (o *childOffer) process(sa *ikeSA, c *config.Conn, m *message.Message, create bool) {
	defer o.closeKE()
	in := body(m)
	if n, ok := firstError(notifies(in)); ok {
		o.refused(sa, c, n, create)
		return
	}
	nc, err := o.accept(sa, c, in, create)
	if err != nil {
		o.failed(sa, c, create, causeOf(err), err.Error())
		return
	}
	if create && len(nc.alg.AdditionalKEs()) > 0 {
		// Keyed and installed once the IKE_FOLLOWUP_KE exchanges are done.
		o.waiting = &nc
		return
	}
	o.complete(sa, c, nc, create, nil)
}

// complete keys the accepted CHILD SA from the exchange's shared secrets
// (the PFS one, then those of the additional key exchanges, add) and
// installs it; a rekey retires the old SA.
func (o *childOffer) complete(sa *ikeSA, c *config.Conn, nc acceptedChild, create bool, add [][]byte) {
	defer clear(nc.gir)
	keys, err := message.DeriveChildKeys(sa.prf, sa.keys.SKd, nc.alg.Encr, nc.alg.Integ, nc.gir, nc.ni, nc.nr, add...)
	if err != nil {
		o.failed(sa, c, create, shared.CauseInternal, "CHILD SA key derivation: "+err.Error())
		return
	}
	nc.keys = &keys
	lost := o.rekey != nil && losesCollision(o.rekey, nc.ni, nc.nr)
	nc.keepOutbound = lost
	ch, err := sa.installChild(nc.newChild)
	if err != nil {
		o.failed(sa, c, create, shared.CauseInternal, "the dataplane refused the CHILD SA: "+err.Error())
		return
	}
	if o.rekey != nil {
		sa.succeeded(o.rekey, ch, nc.ni, nc.nr, true)
		// Make-before-break: the new SA is installed (the peer, as
		// responder, installed its inbound side before answering); now
		// retire the old one (RFC 7296 §1.3.3: the rekey initiator deletes
		// it). When our SA lost a collision, the old one is deleted by
		// the peer, which initiated the surviving SA (§2.8.1): deleting
		// it here as well crossed the peer's own DELETE.
		if !lost && sa.hasChild(o.rekey) {
			sa.deleteChild(o.rekey)
		}
	}
}

// refused handles an error notify in answer to our offer: a PFS group the
// peer prefers is tried once (CREATE_CHILD_SA), anything else fails.
func (o *childOffer) refused(sa *ikeSA, c *config.Conn, n message.Notify, create bool) {
	switch n.Type {
	case message.TS_UNACCEPTABLE:
		o.failed(sa, c, create, shared.CauseTSUnacceptable, fmt.Sprintf("traffic selectors did not match (TS_UNACCEPTABLE from peer): we proposed %s ↔ %s", spd.FormatTS(o.local), spd.FormatTS(o.remote)))
	case message.NO_PROPOSAL_CHOSEN:
		o.failed(sa, c, create, shared.CauseNoProposal, fmt.Sprintf("peer accepted none of our %s proposals (NO_PROPOSAL_CHOSEN); we offered %s", protoName(childProto(c)), shared.ProposalsString(o.offer)))
	case message.INVALID_KE_PAYLOAD:
		if create && len(n.Data) == 2 && !o.retried {
			if g := transform.ID(binary.BigEndian.Uint16(n.Data)); g != o.group && shared.OffersGroup(o.offer, g) {
				sa.queue = append([]task{&childTask{conn: c, offer: childOffer{group: g, rekey: o.rekey, retried: true}}}, sa.queue...)
				return
			}
		}
		o.failed(sa, c, create, shared.CauseInvalidKE, fmt.Sprintf("peer wants another PFS group (INVALID_KE_PAYLOAD); our esp= proposals are %s", shared.ProposalsString(o.offer)))
	default:
		o.failed(sa, c, create, shared.CausePeerRefused, fmt.Sprintf("peer refused the CHILD SA: %s", n.Type))
	}
}

// failed reports a CHILD SA negotiation that did not succeed. A failed
// rekey leaves the old SA working until its hard lifetime and is tried
// again before then.
func (o *childOffer) failed(sa *ikeSA, c *config.Conn, create bool, cause shared.Cause, reason string) {
	if o.rekey != nil {
		sa.log.Warn("CHILD SA rekeying failed", "conn", c.Name, "reason", reason)
		sa.retryChildRekey(o.rekey)
		return
	}
	sa.log.Warn("CHILD SA failed", "conn", c.Name, "reason", reason)
	sa.e.host.Emit(shared.Failure{Conn: c.Name, State: shared.StatePhase2Failed, Cause: cause, Text: reason})
	sa.conns.Remove(c.Name)
	if !create && len(sa.children) == 0 {
		// As strongSwan: an IKE SA whose first CHILD SA failed is closed
		// ("closing IKE_SA due CHILD_SA setup failure").
		sa.deleteIKE("")
	}
}

// acceptedChild is the peer's choice, checked, with the exchange's
// nonces (a collision is decided by them) and PFS shared secret, which
// the keys derive from.
type acceptedChild struct {
	newChild
	ni, nr, gir []byte
}

// accept checks the peer's choice against our offer (one of our
// proposals, selectors inside ours, the mode we asked for) and runs the
// PFS key exchange of CREATE_CHILD_SA; complete derives the keys.
func (o *childOffer) accept(sa *ikeSA, c *config.Conn, in []message.RawPayload, create bool) (acceptedChild, error) {
	var nc acceptedChild
	sap, ok1 := payload(in, message.PayloadSA)
	tsip, ok2 := payload(in, message.PayloadTSi)
	tsrp, ok3 := payload(in, message.PayloadTSr)
	if !ok1 || !ok2 || !ok3 {
		return nc, failure(shared.CausePeerRefused, "peer's response lacks SA, TSi or TSr")
	}
	got, _, err1 := message.ParseSA(sap.Body)
	tsi, _, err2 := message.ParseTrafficSelectors(tsip.Body)
	tsr, _, err3 := message.ParseTrafficSelectors(tsrp.Body)
	if err := errors.Join(err1, err2, err3); err != nil {
		return nc, failure(shared.CausePeerRefused, "peer's CHILD SA payloads are malformed: %v", err)
	}
	proto := childProto(c)
	alg, ok := shared.Accept(o.offer, proposals(got), proto, !create)
	if !ok {
		return nc, failure(shared.CauseNoProposal, "peer chose %s, which is not among our %s proposals (%s)", shared.ProposalsString(proposals(got)), protoName(proto), shared.ProposalsString(o.offer))
	}
	outSPI, ok := spiValue(got.Proposals[0].SPI)
	if !ok {
		return nc, failure(shared.CausePeerRefused, "peer's %s SPI is not 4 bytes", protoName(proto))
	}
	local, remote := wireToTS(tsi), wireToTS(tsr)
	wantRemote := o.remote
	if len(c.Remote.Subnets) == 0 && sa.natRemote {
		// A host-to-host peer behind a NAT names its private address.
		wantRemote = shared.NATHosts(remote, wantRemote)
	}
	if len(local) == 0 || len(remote) == 0 || !shared.AllInside(local, o.local) || !shared.AllInside(remote, wantRemote) {
		return nc, failure(shared.CauseTSUnacceptable, "peer narrowed the traffic selectors to %s ↔ %s, outside what we proposed (%s ↔ %s)", spd.FormatTS(local), spd.FormatTS(remote), spd.FormatTS(o.local), spd.FormatTS(o.remote))
	}
	_, transport := findNotify(notifies(in), message.USE_TRANSPORT_MODE)
	if c.Mode == config.ModeTransport && !transport {
		return nc, failure(shared.CausePeerRefused, "peer did not accept transport mode (no USE_TRANSPORT_MODE in its answer)")
	}
	ni, nr, gir, err := o.exchangeSecrets(sa, in, alg, create)
	if err != nil {
		return nc, err
	}
	nc.newChild = newChild{conn: c, alg: alg, inSPI: o.inSPI, outSPI: outSPI,
		exInit: true, transport: transport, local: local, remote: remote, replaces: o.rekey}
	nc.ni, nc.nr, nc.gir = ni, nr, gir
	return nc, nil
}

// exchangeSecrets are the nonces the keys derive from (IKE_SA_INIT's for
// the first CHILD SA, the exchange's own in CREATE_CHILD_SA) and the PFS
// shared secret, if the chosen proposal has a group.
func (o *childOffer) exchangeSecrets(sa *ikeSA, in []message.RawPayload, alg shared.Selection, create bool) (ni, nr, gir []byte, err error) {
	if !create {
		return sa.hs.ni, sa.hs.nr, nil, nil
	}
	np, ok := payload(in, message.PayloadNonce)
	nonce, _, err := message.ParseNonce(np.Body)
	if !ok || err != nil {
		return nil, nil, nil, failure(shared.CausePeerRefused, "peer's CREATE_CHILD_SA response lacks a valid nonce")
	}
	ni, nr = o.ni, bytes.Clone(nonce.Data)
	if alg.KE.ID == transform.KENone {
		return ni, nr, nil, nil
	}
	kp, ok := payload(in, message.PayloadKE)
	ke, _, err := message.ParseKE(kp.Body)
	if !ok || err != nil || o.ke == nil || ke.Group != o.ke.Group() || alg.KE.ID != o.ke.Group() {
		return nil, nil, nil, failure(shared.CausePeerRefused, "peer's PFS key exchange does not match the chosen group")
	}
	gir, err = o.ke.SharedSecret(ke.Data)
	if err != nil {
		return nil, nil, nil, failure(shared.CausePeerRefused, "peer's PFS key exchange value is invalid")
	}
	return ni, nr, gir, nil
}

// discard releases the PFS key exchange and shared secret of an offer
// that will not be answered or completed.
func (o *childOffer) discard() {
	o.closeKE()
	o.dropWaiting()
}

func (o *childOffer) closeKE() {
	if o.ke != nil {
		o.ke.Close()
		o.ke = nil
	}
}

func (o *childOffer) dropWaiting() {
	if o.waiting != nil {
		clear(o.waiting.gir)
		o.waiting = nil
	}
}

// childResponse is the responder's side of one CHILD SA negotiation, in
// IKE_AUTH or CREATE_CHILD_SA.
type childResponse struct {
	// conns are the conns the CHILD SA may belong to, preferred first.
	conns   []*config.Conn
	ikeAuth bool // the first CHILD SA, in IKE_AUTH: no KE, no nonce of its own
	// ni and nr are the nonces the keys are derived from; nrOut is our
	// nonce to send (CREATE_CHILD_SA), nil in IKE_AUTH.
	ni, nr, nrOut []byte
	// replaces is the CHILD SA the peer rekeys (nil for a new one);
	// keepOutbound installs the new SA inbound-only (ChildSA.KeepOutbound).
	replaces     *child
	keepOutbound bool
	// installed is the CHILD SA respond installed, if any.
	installed *child
}

// respond picks the first conn whose selectors overlap the peer's
// (narrowing them, RFC 7296 §2.9), then the first of that conn's ESP
// proposals the peer supports, installs the SA and returns the payloads
// of the answer (an error notify when nothing fits, and a Failure for
// the conn the peer most likely meant).
func (r *childResponse) respond(sa *ikeSA, in []message.RawPayload) []message.Payload {
	sap, ok1 := payload(in, message.PayloadSA)
	tsip, ok2 := payload(in, message.PayloadTSi)
	tsrp, ok3 := payload(in, message.PayloadTSr)
	if !ok1 || !ok2 || !ok3 {
		if r.ikeAuth {
			return nil // childless IKE SA (RFC 6023)
		}
		return []message.Payload{message.Notify{Type: message.INVALID_SYNTAX}}
	}
	peerSA, _, err1 := message.ParseSA(sap.Body)
	tsi, _, err2 := message.ParseTrafficSelectors(tsip.Body)
	tsr, _, err3 := message.ParseTrafficSelectors(tsrp.Body)
	if err1 != nil || err2 != nil || err3 != nil {
		return []message.Payload{message.Notify{Type: message.INVALID_SYNTAX}}
	}
	ps, ref := r.negotiate(sa, in, peerSA, wireToTS(tsi), wireToTS(tsr))
	if ref != nil {
		sa.log.Warn("CHILD SA refused", "conn", ref.conn, "notify", ref.notify.Type.String(), "reason", ref.text)
		if ref.text != "" {
			sa.e.host.Emit(shared.Failure{Conn: ref.conn, State: shared.StatePhase2Failed, Cause: ref.cause, Text: ref.text})
		}
		return []message.Payload{ref.notify}
	}
	return ps
}

// refusal is why a responder refuses a CHILD SA: the notify it answers
// with, and the failure it reports for conn (none when text is empty).
type refusal struct {
	conn   string
	notify message.Notify
	cause  shared.Cause
	text   string
}

func refuse(c *config.Conn, t message.NotifyType, cause shared.Cause, text string) *refusal {
	return &refusal{conn: c.Name, notify: message.Notify{Type: t}, cause: cause, text: text}
}

// negotiate does respond's work once the payloads are parsed; peerRemote
// and peerLocal are the peer's TSi and TSr.
func (r *childResponse) negotiate(sa *ikeSA, in []message.RawPayload, peerSA message.SA, peerRemote, peerLocal []spd.TS) ([]message.Payload, *refusal) {
	picked, local, remote, ok := r.pickConn(sa, peerRemote, peerLocal)
	if !ok {
		c0 := r.conns[0]
		return nil, refuse(c0, message.TS_UNACCEPTABLE, shared.CauseTSUnacceptable, fmt.Sprintf("traffic selectors did not match: we want %s ↔ %s, peer proposed %s ↔ %s",
			spd.FormatTS(shared.ConfTS(c0.Local, sa.local.Addr())), spd.FormatTS(shared.ConfTS(c0.Remote, sa.remote.Addr())), spd.FormatTS(peerLocal), spd.FormatTS(peerRemote)))
	}
	c := picked
	var peerKE *message.KE
	if kp, ok := payload(in, message.PayloadKE); ok && !r.ikeAuth {
		if ke, _, err := message.ParseKE(kp.Body); err == nil {
			peerKE = &ke
		}
	}
	var prefer transform.ID
	if peerKE != nil {
		prefer = peerKE.Group
	}
	proto := childProto(c)
	ours := shared.Offer(c.ChildProposals(), proto, nil, r.ikeAuth)
	sel, ok := shared.Select(ours, proposals(peerSA), proto, r.ikeAuth, prefer)
	if !ok {
		return nil, refuse(c, message.NO_PROPOSAL_CHOSEN, shared.CauseNoProposal, fmt.Sprintf("peer proposed %s; we accept %s %s",
			peerProposalsString(shared.StripKEs(proposals(peerSA), r.ikeAuth)), protoName(proto), shared.ProposalsString(ours)))
	}
	var outSPI uint32
	for _, p := range peerSA.Proposals {
		if p.Number == sel.Number && p.Protocol == message.ProtocolID(proto) {
			outSPI, ok = spiValue(p.SPI)
			break
		}
	}
	if !ok || outSPI == 0 {
		return nil, refuse(c, message.INVALID_SYNTAX, shared.CausePeerRefused, fmt.Sprintf("peer's %s proposal has no valid 4-byte SPI", protoName(proto)))
	}
	gir, kePub, ref := pfs(c, sel, peerKE)
	if ref != nil {
		return nil, ref
	}
	defer clear(gir)
	_, wantTransport := findNotify(notifies(in), message.USE_TRANSPORT_MODE)
	transport := wantTransport && c.Mode == config.ModeTransport
	inSPI, err := sa.e.cfg.Installer.AllocateSPI()
	if err != nil {
		return nil, refuse(c, message.NO_ADDITIONAL_SAS, shared.CauseInternal, "allocating an SPI: "+err.Error())
	}
	nc := newChild{conn: c, alg: sel, inSPI: inSPI, outSPI: outSPI,
		transport: transport, local: local, remote: remote, replaces: r.replaces, keepOutbound: r.keepOutbound}
	var link []byte
	if adds := sel.AdditionalKEs(); len(adds) > 0 && !r.ikeAuth {
		// RFC 9370 §2.2.4: the additional key exchanges follow in
		// IKE_FOLLOWUP_KE exchanges; the SA is keyed and installed after
		// the last one.
		var ok bool
		if link, ok = sa.expectFollowups(r.followups(c, nc, bytes.Clone(gir), adds)); !ok {
			return nil, refuse(c, message.TEMPORARY_FAILURE, shared.CauseNone, "")
		}
	} else if ref := r.install(sa, nc, gir, nil); ref != nil {
		return nil, ref
	}
	var ps []message.Payload
	if transport {
		ps = append(ps, message.Notify{Type: message.USE_TRANSPORT_MODE})
	}
	ps = append(ps, message.SA{Proposals: []message.Proposal{wireProposal(sel.Proposal(proto, spiBytes(inSPI)))}})
	if r.nrOut != nil {
		ps = append(ps, message.Nonce{Data: r.nrOut})
		if kePub != nil {
			ps = append(ps, message.KE{Group: sel.KE.ID, Data: kePub})
		}
	}
	if link != nil {
		ps = append(ps, message.Notify{Type: message.ADDITIONAL_KEY_EXCHANGE, Data: link})
	}
	// TSi is the initiator's side: the peer's, i.e. our remote.
	return append(ps, tsPayload(remote, false), tsPayload(local, true)), nil
}

// install keys the negotiated CHILD SA from the exchange's shared secrets
// (gir for PFS, add of the additional key exchanges) and installs it. The
// SA of the peer's rekey is installed inbound-only: the peer installs its
// inbound side only when it gets our answer, so traffic stays on the old
// SA until the peer deletes it (switchOutbound).
func (r *childResponse) install(sa *ikeSA, nc newChild, gir []byte, add [][]byte) *refusal {
	keys, err := message.DeriveChildKeys(sa.prf, sa.keys.SKd, nc.alg.Encr, nc.alg.Integ, gir, r.ni, r.nr, add...)
	if err != nil {
		return refuse(nc.conn, message.NO_PROPOSAL_CHOSEN, shared.CauseInternal, "CHILD SA key derivation: "+err.Error())
	}
	nc.keys = &keys
	ch, err := sa.installChild(nc)
	if err != nil {
		return refuse(nc.conn, message.NO_ADDITIONAL_SAS, shared.CauseInternal, "the dataplane refused the CHILD SA: "+err.Error())
	}
	ch.outHeld = nc.keepOutbound
	r.installed = ch
	return nil
}

// followups is the state the CHILD SA negotiation keeps while the peer's
// additional key exchanges run: the SA is installed after the last one,
// and a rekey collision resolved once that answer is out.
func (r *childResponse) followups(c *config.Conn, nc newChild, gir []byte, adds []transform.Transform) *followupState {
	return &followupState{
		methods: adds,
		complete: func(sa *ikeSA, add [][]byte) *message.Notify {
			defer clear(gir)
			if ref := r.install(sa, nc, gir, add); ref != nil {
				sa.log.Warn("CHILD SA refused", "conn", ref.conn, "notify", ref.notify.Type.String(), "reason", ref.text)
				sa.e.host.Emit(shared.Failure{Conn: ref.conn, State: shared.StatePhase2Failed, Cause: ref.cause, Text: ref.text})
				return &ref.notify
			}
			return nil
		},
		answered: func(sa *ikeSA) {
			if r.replaces != nil {
				sa.succeeded(r.replaces, r.installed, r.ni, r.nr, false)
			}
		},
		abandon: func(sa *ikeSA, why string) {
			clear(gir)
			if old := r.replaces; old != nil && len(old.successors) == 0 && !sa.rekeyingChild(old) {
				// The peer's rekey of it never completed: it may be
				// rekeyed again, by either side.
				old.rekeyed = false
			}
			if why != "" && nc.replaces == nil {
				sa.e.host.Emit(shared.Failure{Conn: c.Name, State: shared.StatePhase2Failed, Cause: shared.CausePeerRefused,
					Text: "peer's CHILD SA with additional key exchanges did not complete: " + why})
			}
		},
	}
}

// pickConn returns the first of the conns whose selectors overlap the
// peer's, with the narrowed selectors (ours, the peer's).
func (r *childResponse) pickConn(sa *ikeSA, peerRemote, peerLocal []spd.TS) (*config.Conn, []spd.TS, []spd.TS, bool) {
	for _, c := range r.conns {
		l := shared.Narrow(shared.ConfTS(c.Local, sa.local.Addr()), peerLocal)
		ours := shared.ConfTS(c.Remote, sa.remote.Addr())
		if len(c.Remote.Subnets) == 0 && sa.natRemote {
			ours = shared.NATHosts(peerRemote, ours)
		}
		if rem := shared.Narrow(ours, peerRemote); len(l) > 0 && len(rem) > 0 {
			return c, l, rem, true
		}
	}
	return nil, nil, nil, false
}

// pfs is the responder's PFS key exchange for the selected proposal: the
// shared secret and our public value (none when the proposal has no
// group). A KE payload of another group is answered with
// INVALID_KE_PAYLOAD naming ours (RFC 7296 §1.3), without a failure.
func pfs(c *config.Conn, sel shared.Selection, peerKE *message.KE) (gir, pub []byte, ref *refusal) {
	if sel.KE.ID == transform.KENone {
		return nil, nil, nil
	}
	if peerKE == nil || peerKE.Group != sel.KE.ID {
		var g [2]byte
		binary.BigEndian.PutUint16(g[:], uint16(sel.KE.ID))
		return nil, nil, &refusal{conn: c.Name, notify: message.Notify{Type: message.INVALID_KE_PAYLOAD, Data: g[:]}, cause: shared.CauseInvalidKE}
	}
	kx, err := transform.NewKeyExchange(sel.KE.ID)
	if err != nil {
		return nil, nil, refuse(c, message.NO_PROPOSAL_CHOSEN, shared.CauseNoProposal, "PFS group unavailable: "+err.Error())
	}
	defer kx.Close()
	gir, err = kx.SharedSecret(peerKE.Data)
	if err != nil {
		return nil, nil, refuse(c, message.INVALID_SYNTAX, shared.CausePeerRefused, "peer's PFS key exchange value is invalid")
	}
	return gir, bytes.Clone(kx.PublicKey()), nil
}

// peerProposalsString renders the peer's CHILD SA proposals with their
// protocol, "ESP aes128-sha256, AH sha256": the peer may offer another
// protocol than the conn's.
func peerProposalsString(ps []shared.Proposal) string {
	if len(ps) == 0 {
		return "nothing"
	}
	var out []string
	for _, p := range ps {
		out = append(out, protoName(p.Protocol)+" "+shared.ProposalsString([]shared.Proposal{p}))
	}
	return strings.Join(out, ", ")
}
