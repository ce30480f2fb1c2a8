package ikev2

import (
	"bytes"
	"encoding/binary"
	"fmt"
	mrand "math/rand/v2"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
	"github.com/ipsecgw/ipsecgw/ike/shared"
	"github.com/ipsecgw/ipsecgw/spd"
	"github.com/ipsecgw/ipsecgw/transform"
)

// childOffer is the initiator's side of one CHILD SA negotiation, in
// IKE_AUTH or CREATE_CHILD_SA.
type childOffer struct {
	inSPI         uint32
	offer         []shared.Proposal
	local, remote []spd.TS // proposed TSi (ours), TSr (theirs)
	ke            transform.KeyExchange
	group         transform.ID // PFS group to use (INVALID_KE_PAYLOAD retry)
	ni            []byte
	rekey         *child
	retried       bool // already retried after INVALID_KE_PAYLOAD
}

// build allocates our SPI and renders SA, TSi, TSr (and for
// CREATE_CHILD_SA Ni and KEi). The first CHILD SA (IKE_AUTH) has no KE
// (RFC 7296 §1.2): the conn's esp= group is used at rekeying only.
func (o *childOffer) build(sa *ikeSA, c config.Conn, create bool) ([]message.Payload, error) {
	spi, err := sa.e.cfg.Installer.AllocateSPI()
	if err != nil {
		return nil, fmt.Errorf("allocating an SPI: %w", err)
	}
	o.inSPI = spi
	o.offer = shared.Offer(c.ESP, shared.ProtoESP, spiBytes(spi), !create)
	if len(o.offer) == 0 {
		return nil, configError(fmt.Errorf("conn %s has no ESP proposal (AH is not supported)", c.Name))
	}
	o.local = shared.ConfTS(c.Local, sa.local.Addr())
	o.remote = shared.ConfTS(c.Remote, sa.remote.Addr())
	var ps []message.Payload
	if o.rekey != nil {
		ps = append(ps, message.Notify{Protocol: message.ProtoESP, Type: message.REKEY_SA, SPI: spiBytes(o.rekey.inSPI)})
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

// process handles the CHILD SA part of a response. It reports whether a
// retry was queued instead (INVALID_KE_PAYLOAD in CREATE_CHILD_SA).
func (o *childOffer) process(sa *ikeSA, c config.Conn, m *message.Message, create bool) (retry bool) {
	defer func() {
		if o.ke != nil {
			o.ke.Close()
			o.ke = nil
		}
	}()
	in := body(m)
	ns := notifies(in)
	fail := func(cause shared.Cause, reason string) {
		if o.rekey != nil {
			// The old SA keeps working until its hard lifetime; the rekey
			// is tried again before then.
			sa.log.Warn("CHILD SA rekeying failed", "conn", c.Name, "reason", reason)
			sa.retryChildRekey(o.rekey)
			return
		}
		sa.log.Warn("CHILD SA failed", "conn", c.Name, "reason", reason)
		sa.e.host.Emit(shared.Failure{Conn: c.Name, State: shared.StatePhase2Failed, Cause: cause, Text: reason})
		delete(sa.conns, c.Name)
		if !create && len(sa.children) == 0 {
			// As strongSwan: an IKE SA whose first CHILD SA failed is
			// closed ("closing IKE_SA due CHILD_SA setup failure").
			sa.deleteIKE("")
		}
	}
	if n, ok := firstError(ns); ok {
		switch n.Type {
		case message.TS_UNACCEPTABLE:
			fail(shared.CauseTSUnacceptable, fmt.Sprintf("traffic selectors did not match (TS_UNACCEPTABLE from peer): we proposed %s ↔ %s", spd.FormatTS(o.local), spd.FormatTS(o.remote)))
		case message.NO_PROPOSAL_CHOSEN:
			fail(shared.CauseNoProposal, fmt.Sprintf("peer accepted none of our ESP proposals (NO_PROPOSAL_CHOSEN); we offered %s", shared.ProposalsString(o.offer)))
		case message.INVALID_KE_PAYLOAD:
			if create && len(n.Data) == 2 && !o.retried {
				if g := transform.ID(binary.BigEndian.Uint16(n.Data)); g != o.group && shared.OffersGroup(o.offer, g) {
					sa.queue = append([]task{&childTask{conn: c, offer: childOffer{group: g, rekey: o.rekey, retried: true}}}, sa.queue...)
					return true
				}
			}
			fail(shared.CauseInvalidKE, fmt.Sprintf("peer wants another PFS group (INVALID_KE_PAYLOAD); our esp= proposals are %s", shared.ProposalsString(o.offer)))
		default:
			fail(shared.CausePeerRefused, fmt.Sprintf("peer refused the CHILD SA: %s", n.Type))
		}
		return false
	}
	sap, ok1 := payload(in, message.PayloadSA)
	tsip, ok2 := payload(in, message.PayloadTSi)
	tsrp, ok3 := payload(in, message.PayloadTSr)
	if !ok1 || !ok2 || !ok3 {
		fail(shared.CausePeerRefused, "peer's response lacks SA, TSi or TSr")
		return false
	}
	got, _, err1 := message.ParseSA(sap.Body)
	tsi, _, err2 := message.ParseTrafficSelectors(tsip.Body)
	tsr, _, err3 := message.ParseTrafficSelectors(tsrp.Body)
	if err1 != nil || err2 != nil || err3 != nil {
		fail(shared.CausePeerRefused, "peer's CHILD SA payloads are malformed")
		return false
	}
	alg, ok := shared.Accept(o.offer, proposals(got), shared.ProtoESP, !create)
	if !ok {
		fail(shared.CauseNoProposal, fmt.Sprintf("peer chose %s, which is not among our ESP proposals (%s)", shared.ProposalsString(proposals(got)), shared.ProposalsString(o.offer)))
		return false
	}
	outSPI, ok := spiValue(got.Proposals[0].SPI)
	if !ok {
		fail(shared.CausePeerRefused, "peer's ESP SPI is not 4 bytes")
		return false
	}
	local, remote := wireToTS(tsi), wireToTS(tsr)
	wantRemote := o.remote
	if len(c.Remote.Subnets) == 0 && sa.natRemote {
		// A host-to-host peer behind a NAT names its private address.
		wantRemote = shared.NATHosts(remote, wantRemote)
	}
	if len(local) == 0 || len(remote) == 0 || !shared.AllInside(local, o.local) || !shared.AllInside(remote, wantRemote) {
		fail(shared.CauseTSUnacceptable, fmt.Sprintf("peer narrowed the traffic selectors to %s ↔ %s, outside what we proposed (%s ↔ %s)", spd.FormatTS(local), spd.FormatTS(remote), spd.FormatTS(o.local), spd.FormatTS(o.remote)))
		return false
	}
	_, transport := findNotify(ns, message.USE_TRANSPORT_MODE)
	if c.Mode == config.ModeTransport && !transport {
		fail(shared.CausePeerRefused, "peer did not accept transport mode (no USE_TRANSPORT_MODE in its answer)")
		return false
	}
	ni, nr := sa.ni, sa.nr
	var gir []byte
	if create {
		np, ok := payload(in, message.PayloadNonce)
		nonce, _, err := message.ParseNonce(np.Body)
		if !ok || err != nil {
			fail(shared.CausePeerRefused, "peer's CREATE_CHILD_SA response lacks a valid nonce")
			return false
		}
		ni, nr = o.ni, bytes.Clone(nonce.Data)
		if alg.KE.ID != transform.KENone {
			kp, ok := payload(in, message.PayloadKE)
			ke, _, err := message.ParseKE(kp.Body)
			if !ok || err != nil || o.ke == nil || ke.Group != o.ke.Group() || alg.KE.ID != o.ke.Group() {
				fail(shared.CausePeerRefused, "peer's PFS key exchange does not match the chosen group")
				return false
			}
			gir, err = o.ke.SharedSecret(ke.Data)
			if err != nil {
				fail(shared.CausePeerRefused, "peer's PFS key exchange value is invalid")
				return false
			}
			defer clear(gir)
		}
	}
	keys, err := message.DeriveChildKeys(sa.prf, sa.keys.SKd, alg.Encr, alg.Integ, gir, ni, nr)
	if err != nil {
		fail(shared.CauseInternal, "CHILD SA key derivation: "+err.Error())
		return false
	}
	lost := o.rekey != nil && losesCollision(o.rekey, ni, nr)
	nc, err := sa.installChild(newChild{conn: c, alg: alg, inSPI: o.inSPI, outSPI: outSPI, keys: &keys,
		exInit: true, transport: transport, local: local, remote: remote, replaces: o.rekey, keepOutbound: lost})
	if err != nil {
		fail(shared.CauseInternal, "the dataplane refused the CHILD SA: "+err.Error())
		return false
	}
	if o.rekey != nil {
		sa.succeeded(o.rekey, nc, ni, nr, true)
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
	return false
}

// succeeded records that nc replaced old. When the peer rekeyed old at the
// same time as we did (two successors), the SA created by the exchange with
// the lowest of the four nonces is redundant and is deleted by the side
// that initiated that exchange (RFC 7296 §2.8.1).
func (sa *ikeSA) succeeded(old, nc *child, ni, nr []byte, ours bool) {
	if nc == nil {
		return
	}
	nc.ours = ours
	nc.minNonce = ni
	if bytes.Compare(nr, ni) < 0 {
		nc.minNonce = nr
	}
	old.successors = append(old.successors, nc)
	if len(old.successors) != 2 {
		return
	}
	redundant := old.successors[0]
	if bytes.Compare(old.successors[1].minNonce, redundant.minNonce) < 0 {
		redundant = old.successors[1]
	}
	if redundant.ours && sa.hasChild(redundant) {
		sa.log.Info("CHILD SA rekey collision: deleting the redundant SA", "conn", redundant.conn.Name, "in_spi", fmt.Sprintf("%08x", redundant.inSPI))
		sa.deleteChild(redundant)
	}
}

func (c *child) stopTimers() {
	for _, t := range c.timers {
		t.Stop()
	}
	c.timers = nil
}

// armChildTimers schedules rekeying at lifetime - margin - random(margin ×
// rekeyfuzz), strongSwan's formula, and deletion at the hard lifetime.
func (sa *ikeSA) armChildTimers(ch *child) {
	c := ch.conn
	if c.Lifetime <= 0 {
		return
	}
	if ch.expireAt.IsZero() {
		ch.expireAt = ch.established.Add(c.Lifetime)
		if c.Rekey && c.Lifetime > c.Margin {
			d := c.Lifetime - c.Margin
			if fuzz := time.Duration(float64(c.Margin) * float64(c.RekeyFuzz) / 100); fuzz > 0 {
				d -= time.Duration(mrand.Int64N(int64(fuzz) + 1))
			}
			if d > 0 {
				ch.rekeyAt = ch.established.Add(d)
			}
		}
	}
	// Deadlines are absolute so that the timers can be re-armed when the
	// CHILD SA moves to a rekeyed IKE SA.
	now := sa.e.clock.Now()
	if !ch.rekeyAt.IsZero() && !ch.rekeyed {
		ch.timers = append(ch.timers, sa.after(max(ch.rekeyAt.Sub(now), 0), func() { sa.rekeyChild(ch) }))
	}
	ch.timers = append(ch.timers, sa.after(max(ch.expireAt.Sub(now), 0), func() {
		if sa.hasChild(ch) {
			sa.expireChild(ch)
		}
	}))
}

// retryChildRekey schedules another rekey of ch after a failed or refused
// one (strongSwan retries on TEMPORARY_FAILURE too): without it the CHILD SA
// would stay marked as being rekeyed and run into its hard lifetime. Not
// when the peer's rekey of ch succeeded meanwhile, nor on a dying IKE SA.
func (sa *ikeSA) retryChildRekey(ch *child) {
	if sa.state != saEstablished || !sa.hasChild(ch) || len(ch.successors) > 0 || ch.expireAt.IsZero() {
		return
	}
	now := sa.e.clock.Now()
	d := retryDelay(ch.conn.Margin)
	if left := ch.expireAt.Sub(now); d > left/2 {
		d = left / 2
	}
	ch.rekeyed = false
	ch.rekeyAt = now.Add(d)
	ch.stopTimers()
	sa.armChildTimers(ch)
	sa.log.Info("CHILD SA rekey will be retried", "conn", ch.conn.Name, "in_spi", fmt.Sprintf("%08x", ch.inSPI), "in", d)
}

// expireChild deletes a CHILD SA that reached its hard lifetime. With a
// rekeying conn that only happens when every rekey failed, so, as for
// auto=start or closeaction=restart, the conn's CHILD SA is created anew
// over the IKE SA instead of leaving the conn down for good.
func (sa *ikeSA) expireChild(ch *child) {
	c := ch.conn
	sa.log.Info("CHILD SA reached its hard lifetime", "conn", c.Name, "in_spi", fmt.Sprintf("%08x", ch.inSPI), "rekeying", ch.rekeyed)
	restart := c.Rekey || c.Auto == config.AutoStart || c.CloseAction == config.ActionRestart
	remove := func(sa *ikeSA) {
		sa.removeChild(ch, shared.CauseExpired, "the CHILD SA reached its hard lifetime")
		if restart {
			sa.recreateChild(c.Name)
		}
	}
	sa.enqueue(&infoTask{
		payloads: []message.Payload{message.Delete{Protocol: message.ProtoESP, SPIs: []uint32{ch.inSPI}}},
		done:     func(sa *ikeSA, _ *message.Message) { remove(sa) },
		failed:   func(sa *ikeSA, _ string) { remove(sa) },
	})
}

// recreateChild negotiates a new CHILD SA for a conn left without one by a
// hard expiry, with the conn's current configuration (it may have been
// reloaded or removed meanwhile).
func (sa *ikeSA) recreateChild(name string) {
	if sa.state != saEstablished {
		return
	}
	for _, x := range sa.children {
		if x.conn.Name == name {
			return // a successor carries the conn
		}
	}
	c, ok := sa.e.host.Config().Conn(name)
	if !ok {
		return
	}
	sa.log.Info("re-creating CHILD SA: the previous one reached its hard lifetime without a successor", "conn", name)
	sa.upChild(c)
}

func (sa *ikeSA) hasChild(ch *child) bool {
	for _, x := range sa.children {
		if x == ch {
			return true
		}
	}
	return false
}

// rekeyChild starts a CREATE_CHILD_SA with REKEY_SA for ch.
func (sa *ikeSA) rekeyChild(ch *child) {
	if sa.state != saEstablished || ch.rekeyed || !sa.hasChild(ch) {
		return
	}
	ch.rekeyed = true
	sa.log.Info("rekeying CHILD SA", "conn", ch.conn.Name, "in_spi", fmt.Sprintf("%08x", ch.inSPI))
	sa.enqueue(&childTask{conn: ch.conn, offer: childOffer{rekey: ch}})
}

// deleteChild sends a DELETE for one CHILD SA and removes it when answered
// (or abandoned).
func (sa *ikeSA) deleteChild(ch *child) {
	remove := func(sa *ikeSA) { sa.removeChild(ch, shared.CauseNone, "") }
	sa.enqueue(&infoTask{
		payloads: []message.Payload{message.Delete{Protocol: message.ProtoESP, SPIs: []uint32{ch.inSPI}}},
		done:     func(sa *ikeSA, _ *message.Message) { remove(sa) },
		failed:   func(sa *ikeSA, _ string) { remove(sa) },
	})
}

// newChild is a negotiated CHILD SA on its way into the dataplane.
type newChild struct {
	conn          config.Conn
	alg           shared.Selection
	inSPI, outSPI uint32
	keys          *message.ChildKeys
	// exInit says whether we initiated the exchange creating it: its
	// initiator sends with the i→r keys (RFC 7296 §2.17).
	exInit    bool
	transport bool
	// local and remote are the narrowed selectors (ours, the peer's).
	local, remote []spd.TS
	// replaces is the CHILD SA this one rekeys (nil for a new one).
	replaces *child
	// keepOutbound installs it inbound-only: the responder's side of a
	// rekey, or the redundant SA of a collision (ChildSA.KeepOutbound).
	keepOutbound bool
}

// installChild maps the KEYMAT slices to our directions, hands the SA to
// the installer and reports it (ChildUp, or ChildRekeyed with the SA it
// replaces).
func (sa *ikeSA) installChild(n newChild) (*child, error) {
	defer n.keys.Zero()
	cp := bytes.Clone
	keys, c, alg := n.keys, n.conn, n.alg
	outE, outI, inE, inI := keys.EncrI, keys.IntegI, keys.EncrR, keys.IntegR
	if !n.exInit {
		outE, outI, inE, inI = inE, inI, outE, outI
	}
	encap := sa.natLocal || sa.natRemote || c.ForceEncaps
	mode := config.ModeTunnel
	if n.transport {
		mode = config.ModeTransport
	}
	cs := shared.ChildSA{
		Conn: c.Name, ReqID: sa.e.host.ReqID(c), InSPI: n.inSPI, OutSPI: n.outSPI, Mode: mode,
		Encr: alg.Encr, Integ: alg.Integ, ESN: alg.ESN.ID == transform.ESNYes,
		InEncrKey: cp(inE), InIntegKey: cp(inI), OutEncrKey: cp(outE), OutIntegKey: cp(outI),
		Local: sa.local, Remote: sa.remote, Encap: encap,
		LocalTS: n.local, RemoteTS: n.remote,
		ReplayWindow: c.ReplayWindow, Lifetime: c.Lifetime, LifeBytes: c.LifeBytes, LifePackets: c.LifePackets,
		SoftBytes: softLimit(c, c.LifeBytes, c.MarginBytes), SoftPackets: softLimit(c, c.LifePackets, c.MarginPackets),
		Initiator: n.exInit, KeepOutbound: n.keepOutbound,
	}
	if err := sa.e.cfg.Installer.Install(cs); err != nil {
		return nil, err
	}
	ch := &child{conn: c, inSPI: n.inSPI, outSPI: n.outSPI, alg: alg, local: n.local, remote: n.remote, established: sa.e.clock.Now(), encap: encap}
	sa.children = append(sa.children, ch)
	sa.armChildTimers(ch)
	sa.conns[c.Name] = true
	sa.log.Info("CHILD SA established", "conn", c.Name, "in_spi", spiHex(n.inSPI), "out_spi", spiHex(n.outSPI),
		"algorithms", alg.String(), "local_ts", spd.FormatTS(n.local), "remote_ts", spd.FormatTS(n.remote), "encap", encap)
	if n.replaces != nil {
		sa.e.host.Emit(shared.ChildRekeyed{Conn: c.Name, IKE: sa.info(), Old: n.replaces.info(), New: ch.info()})
	} else {
		sa.e.host.Emit(shared.ChildUp{Conn: c.Name, IKE: sa.info(), Child: ch.info()})
	}
	if old := sa.replaces; old != nil && c.Name == sa.conn.Name {
		// Reauthentication: the new SA carries traffic, retire the old.
		sa.replaces = nil
		old.post(func() { old.deleteIKE("") })
	}
	return ch, nil
}

// info describes the CHILD SA for events.
func (c *child) info() shared.ChildInfo {
	return shared.ChildInfo{InSPI: c.inSPI, OutSPI: c.outSPI, Protocol: "esp", Algorithms: c.alg.String(),
		LocalTS: c.local, RemoteTS: c.remote, Encap: c.encap, Established: c.established}
}

// childResponse is the responder's side of one CHILD SA negotiation, in
// IKE_AUTH or CREATE_CHILD_SA.
type childResponse struct {
	// conns are the conns the CHILD SA may belong to, preferred first.
	conns   []config.Conn
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
// of the answer (an error notify when nothing fits).
func (r *childResponse) respond(sa *ikeSA, in []message.RawPayload) []message.Payload {
	conns, ni, nr, nrOut, ikeAuth := r.conns, r.ni, r.nr, r.nrOut, r.ikeAuth
	sap, ok1 := payload(in, message.PayloadSA)
	tsip, ok2 := payload(in, message.PayloadTSi)
	tsrp, ok3 := payload(in, message.PayloadTSr)
	if !ok1 || !ok2 || !ok3 {
		if ikeAuth {
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
	ns := notifies(in)
	peerRemote, peerLocal := wireToTS(tsi), wireToTS(tsr)
	errNotify := func(c config.Conn, cause shared.Cause, t message.NotifyType, data []byte, reason string) []message.Payload {
		sa.log.Warn("CHILD SA refused", "conn", c.Name, "notify", t.String(), "reason", reason)
		if reason != "" {
			sa.e.host.Emit(shared.Failure{Conn: c.Name, State: shared.StatePhase2Failed, Cause: cause, Text: reason})
		}
		return []message.Payload{message.Notify{Type: t, Data: data}}
	}
	var (
		c             config.Conn
		local, remote []spd.TS
		found         bool
	)
	for _, cand := range conns {
		l := shared.Narrow(shared.ConfTS(cand.Local, sa.local.Addr()), peerLocal)
		ours := shared.ConfTS(cand.Remote, sa.remote.Addr())
		if len(cand.Remote.Subnets) == 0 && sa.natRemote {
			ours = shared.NATHosts(peerRemote, ours)
		}
		r := shared.Narrow(ours, peerRemote)
		if len(l) > 0 && len(r) > 0 {
			c, local, remote, found = cand, l, r, true
			break
		}
	}
	if !found {
		c0 := conns[0]
		return errNotify(c0, shared.CauseTSUnacceptable, message.TS_UNACCEPTABLE, nil, fmt.Sprintf("traffic selectors did not match: we want %s ↔ %s, peer proposed %s ↔ %s",
			spd.FormatTS(shared.ConfTS(c0.Local, sa.local.Addr())), spd.FormatTS(shared.ConfTS(c0.Remote, sa.remote.Addr())), spd.FormatTS(peerLocal), spd.FormatTS(peerRemote)))
	}
	var peerKE *message.KE
	if kp, ok := payload(in, message.PayloadKE); ok && !ikeAuth {
		if ke, _, err := message.ParseKE(kp.Body); err == nil {
			peerKE = &ke
		}
	}
	var prefer transform.ID
	if peerKE != nil {
		prefer = peerKE.Group
	}
	ours := shared.Offer(c.ESP, shared.ProtoESP, nil, ikeAuth)
	sel, ok := shared.Select(ours, proposals(peerSA), shared.ProtoESP, ikeAuth, prefer)
	if !ok {
		return errNotify(c, shared.CauseNoProposal, message.NO_PROPOSAL_CHOSEN, nil, fmt.Sprintf("peer proposed ESP %s; we accept %s",
			shared.ProposalsString(shared.StripKEs(proposals(peerSA), ikeAuth)), shared.ProposalsString(ours)))
	}
	var outSPI uint32
	for _, p := range peerSA.Proposals {
		if p.Number == sel.Number && p.Protocol == message.ProtoESP {
			outSPI, ok = spiValue(p.SPI)
			break
		}
	}
	if !ok || outSPI == 0 {
		return errNotify(c, shared.CausePeerRefused, message.INVALID_SYNTAX, nil, "peer's ESP proposal has no valid 4-byte SPI")
	}
	var gir, kePub []byte
	if sel.KE.ID != transform.KENone {
		if peerKE == nil || peerKE.Group != sel.KE.ID {
			var g [2]byte
			binary.BigEndian.PutUint16(g[:], uint16(sel.KE.ID))
			return errNotify(c, shared.CauseInvalidKE, message.INVALID_KE_PAYLOAD, g[:], "")
		}
		kx, err := transform.NewKeyExchange(sel.KE.ID)
		if err != nil {
			return errNotify(c, shared.CauseNoProposal, message.NO_PROPOSAL_CHOSEN, nil, "PFS group unavailable: "+err.Error())
		}
		gir, err = kx.SharedSecret(peerKE.Data)
		kePub = bytes.Clone(kx.PublicKey())
		kx.Close()
		if err != nil {
			return errNotify(c, shared.CausePeerRefused, message.INVALID_SYNTAX, nil, "peer's PFS key exchange value is invalid")
		}
		defer clear(gir)
	}
	_, wantTransport := findNotify(ns, message.USE_TRANSPORT_MODE)
	transport := wantTransport && c.Mode == config.ModeTransport
	inSPI, err := sa.e.cfg.Installer.AllocateSPI()
	if err != nil {
		return errNotify(c, shared.CauseInternal, message.NO_ADDITIONAL_SAS, nil, "allocating an SPI: "+err.Error())
	}
	keys, err := message.DeriveChildKeys(sa.prf, sa.keys.SKd, sel.Encr, sel.Integ, gir, ni, nr)
	if err != nil {
		return errNotify(c, shared.CauseInternal, message.NO_PROPOSAL_CHOSEN, nil, "CHILD SA key derivation: "+err.Error())
	}
	ch, err := sa.installChild(newChild{conn: c, alg: sel, inSPI: inSPI, outSPI: outSPI, keys: &keys,
		transport: transport, local: local, remote: remote, replaces: r.replaces, keepOutbound: r.keepOutbound})
	if err != nil {
		return errNotify(c, shared.CauseInternal, message.NO_ADDITIONAL_SAS, nil, "the dataplane refused the CHILD SA: "+err.Error())
	}
	r.installed = ch
	var ps []message.Payload
	if transport {
		ps = append(ps, message.Notify{Type: message.USE_TRANSPORT_MODE})
	}
	ps = append(ps, message.SA{Proposals: []message.Proposal{wireProposal(sel.Proposal(shared.ProtoESP, spiBytes(inSPI)))}})
	if nrOut != nil {
		ps = append(ps, message.Nonce{Data: nrOut})
		if kePub != nil {
			ps = append(ps, message.KE{Group: sel.KE.ID, Data: kePub})
		}
	}
	// TSi is the initiator's side: the peer's, i.e. our remote.
	return append(ps, tsPayload(remote, false), tsPayload(local, true))
}

// childTask creates an additional CHILD SA (another conn with the same
// peer, or a rekey) with CREATE_CHILD_SA (RFC 7296 §1.3).
type childTask struct {
	conn  config.Conn
	offer childOffer
}

func (*childTask) exchange() message.ExchangeType { return message.CREATE_CHILD_SA }

func (t *childTask) build(sa *ikeSA) ([]message.Payload, error) {
	if sa.state != saEstablished {
		return nil, fmt.Errorf("IKE SA not established")
	}
	return t.offer.build(sa, t.conn, true)
}

func (t *childTask) process(sa *ikeSA, m *message.Message) error {
	t.offer.process(sa, t.conn, m, true)
	return nil
}

func (t *childTask) fail(sa *ikeSA, cause shared.Cause, reason string) {
	if t.offer.ke != nil {
		t.offer.ke.Close()
	}
	if t.offer.rekey != nil {
		sa.log.Warn("CHILD SA rekeying failed", "conn", t.conn.Name, "reason", reason)
		sa.retryChildRekey(t.offer.rekey)
		return
	}
	sa.e.host.Emit(shared.Failure{Conn: t.conn.Name, State: shared.StatePhase2Failed, Cause: cause, Text: reason})
	delete(sa.conns, t.conn.Name)
}

// upChild adds a conn's CHILD SA to this IKE SA (Up of a conn sharing the
// peer).
func (sa *ikeSA) upChild(c config.Conn) {
	for _, ch := range sa.children {
		if ch.conn.Name == c.Name {
			return // already up
		}
	}
	if sa.negotiating(c.Name) {
		return // its CHILD SA is on the way
	}
	sa.conns[c.Name] = true
	sa.e.host.Emit(shared.Initiating{Conn: c.Name})
	sa.publish()
	sa.enqueue(&childTask{conn: c})
}

// peerConns lists the conns that may have CHILD SAs under this IKE SA:
// those accepting its addresses and authenticated IDs.
func (sa *ikeSA) peerConns() []config.Conn {
	var out []config.Conn
	for _, c := range sa.e.host.Candidates(2, sa.local, sa.remote) {
		if !shared.IDMatches(c.Remote.ID, sa.remoteID) || !shared.EffectiveID(c.Local.ID, sa.local.Addr()).Equal(sa.localID) {
			continue
		}
		if c.Name == sa.conn.Name {
			out = append([]config.Conn{c}, out...)
		} else {
			out = append(out, c)
		}
	}
	return out
}

// respondCreateChild is the responder side of CREATE_CHILD_SA: a new CHILD
// SA, or the rekeying of one (REKEY_SA). IKE SA rekeying is refused with
// NO_ADDITIONAL_SAS for now; the peer then keeps the current IKE SA.
func (sa *ikeSA) respondCreateChild(m *message.Message) {
	id := m.Header.MessageID
	in := m.Inner
	reply := func(ps ...message.Payload) { sa.sendResponse(message.CREATE_CHILD_SA, id, ps) }
	if sa.state == saDeleting {
		// Rekeyed or being deleted: RFC 7296 §2.25 asks for
		// TEMPORARY_FAILURE (NO_ADDITIONAL_SAS makes strongSwan fall back
		// to reauthentication).
		reply(message.Notify{Type: message.TEMPORARY_FAILURE})
		return
	}
	if sa.state != saEstablished {
		reply(message.Notify{Type: message.NO_ADDITIONAL_SAS})
		return
	}
	sap, _ := payload(in, message.PayloadSA)
	peerSA, _, err := message.ParseSA(sap.Body)
	if err != nil || len(peerSA.Proposals) == 0 {
		reply(message.Notify{Type: message.INVALID_SYNTAX})
		return
	}
	np, _ := payload(in, message.PayloadNonce)
	nonce, _, err := message.ParseNonce(np.Body)
	if err != nil {
		reply(message.Notify{Type: message.INVALID_SYNTAX})
		return
	}
	if peerSA.Proposals[0].Protocol == message.ProtoIKE {
		sa.respondRekeyIKE(id, in, peerSA, bytes.Clone(nonce.Data))
		return
	}
	conns := sa.peerConns()
	var rekeyed *child
	if n, ok := findNotify(notifies(in), message.REKEY_SA); ok {
		old, _ := spiValue(n.SPI)
		conns = nil
		for _, ch := range sa.children {
			if ch.outSPI == old {
				if replacedByUs(ch) {
					// Our own rekey of it succeeded and our DELETE of it
					// is on its way: RFC 7296 §2.25.1 asks for
					// TEMPORARY_FAILURE (strongSwan answers so too); a
					// second successor would be deleted by both sides.
					sa.log.Info("peer's rekey of a CHILD SA we are deleting refused", "conn", ch.conn.Name, "in_spi", fmt.Sprintf("%08x", ch.inSPI))
					reply(message.Notify{Type: message.TEMPORARY_FAILURE})
					return
				}
				conns = []config.Conn{ch.conn}
				// The peer rekeys it: do not rekey it ourselves as well.
				ch.rekeyed = true
				rekeyed = ch
			}
		}
		if conns == nil {
			reply(message.Notify{Protocol: message.ProtoESP, Type: message.CHILD_SA_NOT_FOUND, SPI: n.SPI})
			return
		}
	}
	if len(conns) == 0 {
		reply(message.Notify{Type: message.TS_UNACCEPTABLE})
		return
	}
	ni, nr := bytes.Clone(nonce.Data), newNonce()
	// The SA of the peer's rekey is installed inbound-only: the peer
	// installs its inbound side only when it gets our answer, so traffic
	// stays on the old SA until the peer deletes it (switchOutbound). A
	// redundant SA of a collision is never switched to.
	r := childResponse{conns: conns, ni: ni, nr: nr, nrOut: nr, replaces: rekeyed, keepOutbound: rekeyed != nil}
	rsp := r.respond(sa, in)
	if rekeyed != nil && r.installed != nil {
		r.installed.outHeld = true
	}
	reply(rsp...)
	if rekeyed != nil {
		sa.succeeded(rekeyed, r.installed, ni, nr, false)
	}
}

// replacedByUs reports whether our rekey of ch completed with an SA that
// did not lose a collision, so that we delete ch.
func replacedByUs(ch *child) bool {
	for _, s := range ch.successors {
		if s.ours && !losesTo(s, ch.successors) {
			return true
		}
	}
	return false
}

// losesTo reports whether s has a lower nonce than another SA of list
// (the redundant SA of a collision, RFC 7296 §2.8.1).
func losesTo(s *child, list []*child) bool {
	for _, x := range list {
		if x != s && bytes.Compare(s.minNonce, x.minNonce) < 0 {
			return true
		}
	}
	return false
}

// negotiating reports whether a CHILD SA of the conn is being created: its
// IKE_AUTH or CREATE_CHILD_SA task is outstanding or queued.
func (sa *ikeSA) negotiating(name string) bool {
	is := func(t task) bool {
		switch x := t.(type) {
		case *authTask:
			return x.conn.Name == name
		case *childTask:
			return x.conn.Name == name && x.offer.rekey == nil
		}
		return false
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
