package ikev1

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev1/isakmp"
	"github.com/ipsecgw/ipsecgw/ike/shared"
	"github.com/ipsecgw/ipsecgw/spd"
	"github.com/ipsecgw/ipsecgw/transform"
)

// Quick mode (RFC 2409 §5.5), for either role:
//
//	1  I→R  [HASH(1), SA, Ni, [KE], [IDci, IDcr]]
//	2  R→I  [HASH(2), SA, Nr, [KE], [IDci, IDcr], [N(RESPONDER-LIFETIME)]]
//	3  I→R  [HASH(3)]
//	(4 R→I  [HASH(4), N(CONNECTED)]   when the initiator set the commit bit)
//
// One IPsec SA pair per quick mode, for one pair of selectors (the ID
// payloads, left out for host-to-host as strongSwan does). The initiator
// installs the SA when it processes message 2 but keeps sending on the SA
// it replaces (if any) for SwitchDelay after message 3: the responder
// installs when message 3 arrives. The responder installs the inbound
// side when it sends message 2, so that the initiator's first packets are
// accepted, and switches its outbound traffic when message 3 arrives.
//
// Commit bit (RFC 2408 §3.1): when the responder sets it, the initiator
// keeps sending on the old SA until CONNECTED arrives (or SwitchDelay ×
// 10 passed); when the initiator sets it, the responder answers message 3
// with CONNECTED. We never set it ourselves.

// quickMode is quick mode for either role.
type quickMode struct {
	responder bool
	mid       uint32
	round     int
	conn      config.Conn
	pair      int
	// local and remote are our and the peer's selector: as initiator the
	// ones we propose, narrowed by the answer; as responder the narrowed
	// ones we answer with.
	local, remote spd.TS
	rekey         *child // the SA this quick mode replaces, if any
	ids           bool   // ID payloads travel (not host-to-host)
	ni, nr        []byte
	ke            transform.KeyExchange
	gqm           []byte // PFS shared secret
	sel           shared.Selection
	inSPI, outSPI uint32
	lifetime      time.Duration
	installed     *child
	commit        bool // the other side set the commit bit
	// Initiator: what we offered.
	saI isakmp.SA
	// Responder: the peer's SA payload and SPI, the chosen transform, and
	// the lifetime to announce when ours is shorter (RESPONDER-LIFETIME).
	peerSA    isakmp.SA
	peerSPI   []byte
	chosen    isakmp.Phase2Offer
	shortLife time.Duration
}

func (t *quickMode) exchange() isakmp.ExchangeType { return isakmp.ExchangeQuickMode }
func (t *quickMode) String() string                { return fmt.Sprintf("quick mode message %d", max(t.round, 1)) }

func (t *quickMode) messageID(sa *isakmpSA) uint32 {
	if t.mid == 0 {
		t.mid = sa.newMessageID()
	}
	return t.mid
}

func (t *quickMode) discard() {
	if t.ke != nil {
		t.ke.Close()
		t.ke = nil
	}
	clear(t.gqm)
}

// fail reports a quick mode that did not complete. A failed rekey leaves
// the old SA working and is tried again before it expires.
func (t *quickMode) fail(sa *isakmpSA, cause shared.Cause, reason string) {
	t.discard()
	if t.installed != nil && !sa.hasChild(t.installed) {
		if err := sa.e.cfg.Installer.Remove(t.conn.Name, t.installed.inSPI, t.installed.outSPI); err != nil {
			sa.log.Warn("removing IPsec SA", "conn", t.conn.Name, "err", err)
		}
		t.installed = nil
	}
	if sa.iv != nil && t.mid != 0 {
		sa.iv.Forget(t.mid)
	}
	if t.rekey != nil {
		sa.log.Warn("IPsec SA rekeying failed", "conn", t.conn.Name, "reason", reason)
		sa.retryChildRekey(t.rekey)
		sa.rekeyedForRetire(t.rekey)
		return
	}
	if t.conn.Name == "" {
		sa.log.Info("quick mode refused", "reason", reason)
		return
	}
	sa.log.Warn("quick mode failed", "conn", t.conn.Name, "reason", reason)
	sa.e.host.Emit(shared.Failure{Conn: t.conn.Name, State: shared.StatePhase2Failed, Cause: cause, Text: reason})
	if !t.responder && !sa.hasConnChild(t.conn.Name) && t.conn.Name != sa.conn.Name {
		delete(sa.conns, t.conn.Name)
	}
}

func (sa *isakmpSA) hasConnChild(name string) bool {
	for _, ch := range sa.children {
		if ch.conn.Name == name {
			return true
		}
	}
	return false
}

// udp reports whether ESP runs in UDP on this SA: a NAT, or a faked one
// (forceencaps=yes, ESP in UDP preferred), with a peer that speaks NAT-T.
func (sa *isakmpSA) udp() bool { return sa.natt != isakmp.NATTNone && (sa.natLocal || sa.natRemote) }

// hostToHost reports whether selectors are just the two IKE endpoints,
// when no ID payloads are sent (RFC 2409 §5.5 defaults them so).
func (sa *isakmpSA) hostToHost(local, remote spd.TS) bool {
	return local == spd.HostTS(sa.local.Addr()) && remote == spd.HostTS(sa.remote.Addr())
}

func spiOf(b []byte) (uint32, bool) {
	if len(b) != 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(b), true
}

func spiBytes(spi uint32) []byte { return binary.BigEndian.AppendUint32(nil, spi) }

func (t *quickMode) build(sa *isakmpSA) ([]byte, error) {
	t.round++
	switch {
	case t.round == 1 && !t.responder:
		return t.buildFirst(sa)
	case t.round == 2 && t.responder:
		return t.buildSecond(sa)
	case t.round == 3 && !t.responder:
		pkt, err := sa.encrypt(isakmp.AppendMessage(nil, sa.header(isakmp.ExchangeQuickMode, t.mid),
			isakmp.Hash{Data: sa.keys.QuickHash3(t.mid, t.ni, t.nr)}), t.mid)
		if err != nil {
			return nil, err
		}
		sa.afterThird(t)
		return pkt, nil
	case t.round == 4 && t.responder:
		// Message 4 answers the commit bit: HASH(4) = prf(SKEYID_a, M-ID
		// | N), the informational hash over the notification.
		n := isakmp.Notify{DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtocolID(shared.ChildProtocol(t.conn)), Type: isakmp.CONNECTED, SPI: spiBytes(t.inSPI)}
		return sa.hashedMessage(isakmp.ExchangeQuickMode, t.mid, func(rest []byte) []byte { return sa.keys.InformationalHash(t.mid, rest) }, n)
	}
	return nil, fmt.Errorf("quick mode: no message %d to build", t.round)
}

// buildFirst is message 1: our SPI and ESP proposals (PFS group from
// esp=), nonce, KE with PFS, and the selectors.
func (t *quickMode) buildFirst(sa *isakmpSA) ([]byte, error) {
	c := t.conn
	if c.Mode != config.ModeTunnel {
		return nil, failure(shared.CauseConfig, "conn %s: type=%s is not supported, the dataplane runs tunnel mode only", c.Name, c.Mode)
	}
	spi, err := sa.e.cfg.Installer.AllocateSPI()
	if err != nil {
		return nil, fmt.Errorf("allocating an SPI: %w", err)
	}
	t.inSPI = spi
	proto := shared.ChildProtocol(c)
	// AH is never carried in UDP: plain tunnel mode even through a NAT
	// (where it cannot work, as its ICV covers the outer addresses).
	mode := isakmp.EncapModeFor(true, sa.udp() && proto != shared.ProtoAH, sa.natt)
	life := isakmp.Lifetime{Seconds: uint64(c.Lifetime / time.Second), Kilobytes: c.LifeBytes / 1024}
	saI, pfs, err := isakmp.Phase2SA(c.ChildProposals(), spi, mode, life)
	if err != nil {
		name := strings.ToLower(protoName(proto))
		return nil, failure(shared.CauseConfig, "conn %s has no %s proposal IKEv1 can use (%s=%s)", c.Name, protoName(proto), name, shared.ConfigProposalsString(c.ChildProposals(), config.Protocol(proto)))
	}
	t.saI, t.ni = saI, newNonce()
	ps := []isakmp.Payload{saI, isakmp.Nonce{Data: t.ni}}
	if pfs != transform.KENone {
		ke, err := transform.NewKeyExchange(pfs)
		if err != nil {
			return nil, failure(shared.CauseConfig, "PFS group %s: %v", transform.Transform{Type: transform.TypeKE, ID: pfs}, err)
		}
		t.ke = ke
		ps = append(ps, isakmp.KE{Data: ke.PublicKey()})
	}
	if t.ids = !sa.hostToHost(t.local, t.remote); t.ids {
		idci, err1 := isakmp.IDFromTS(t.local)
		idcr, err2 := isakmp.IDFromTS(t.remote)
		if err1 != nil || err2 != nil {
			return nil, failure(shared.CauseConfig, "conn %s: selectors %s ↔ %s cannot be sent in IKEv1 (one port or all)", c.Name, t.local, t.remote)
		}
		ps = append(ps, idci, idcr)
	}
	mid := t.mid
	return sa.hashedMessage(isakmp.ExchangeQuickMode, mid, func(rest []byte) []byte { return sa.keys.QuickHash1(mid, rest) }, ps...)
}

func (t *quickMode) process(sa *isakmpSA, m *isakmp.Message) (step, error) {
	t.round++
	switch {
	case t.round == 1 && t.responder:
		return t.processFirst(sa, m)
	case t.round == 2 && !t.responder:
		return t.processSecond(sa, m)
	case t.round == 3 && t.responder:
		if !verifyHash(m, func([]byte) []byte { return sa.keys.QuickHash3(t.mid, t.ni, t.nr) }) || len(m.Payloads) != 1 {
			t.round--
			return 0, errDrop
		}
		ch := t.installed
		t.installed = nil
		sa.adopt(ch, t.rekey)
		sa.switchOutbound(ch)
		if t.commit || m.Header.Flags&isakmp.FlagCommit != 0 {
			return stepLast, nil
		}
		return stepDone, nil
	}
	return 0, fmt.Errorf("quick mode: unexpected message %d", t.round)
}

// processSecond is the initiator's check of the responder's answer: one
// of our transforms, selectors inside ours, the PFS exchange, the
// lifetime it allows; then the SA is installed.
func (t *quickMode) processSecond(sa *isakmpSA, m *isakmp.Message) (step, error) {
	if !verifyHash(m, func(rest []byte) []byte { return sa.keys.QuickHash2(t.mid, t.ni, rest) }) {
		t.round--
		return 0, errDrop
	}
	c := t.conn
	sap, ok1 := one(m, isakmp.PayloadSA)
	np, ok2 := one(m, isakmp.PayloadNonce)
	if _, _, err := isakmp.ParseNonce(np.Body); !ok1 || !ok2 || err != nil {
		return 0, refusal(isakmp.PAYLOAD_MALFORMED, shared.CausePeerRefused, "peer's quick mode answer lacks its SA or nonce")
	}
	answer, _, err := isakmp.ParseSA(sap.Body)
	if err != nil {
		return 0, refusal(notifyOf(err), shared.CausePeerRefused, "peer's quick mode SA payload is malformed: %v", err)
	}
	got, err := isakmp.Phase2Answer(t.saI, answer)
	if err != nil {
		offered, _, _ := isakmp.Phase2Offers(t.saI)
		chosen, _, _ := isakmp.Phase2Offers(answer)
		return 0, refusal(isakmp.NO_PROPOSAL_CHOSEN, shared.CauseNoProposal, "peer chose %s %s, which is not among our proposals (%s)",
			protoName(shared.ChildProtocol(c)), shared.ProposalsString(isakmp.Proposals2(chosen)), shared.ProposalsString(isakmp.Proposals2(offered)))
	}
	outSPI, ok := spiOf(got.Proposal.SPI)
	if !ok || outSPI < 256 {
		return 0, refusal(isakmp.INVALID_SPI, shared.CausePeerRefused, "peer's %s SPI is not a valid 4-byte SPI", protoName(shared.ChildProtocol(c)))
	}
	t.outSPI, t.sel = outSPI, selection2(got.Proposal)
	t.nr = bytes.Clone(np.Body)
	if t.sel.KE.ID != transform.KENone {
		kep, ok := one(m, isakmp.PayloadKE)
		if !ok || t.ke == nil {
			return 0, refusal(isakmp.INVALID_KEY_INFORMATION, shared.CausePeerRefused, "peer's quick mode answer lacks the PFS key exchange")
		}
		if t.gqm, err = t.ke.SharedSecret(kep.Body); err != nil {
			return 0, refusal(isakmp.INVALID_KEY_INFORMATION, shared.CausePeerRefused, "peer's PFS key exchange value is invalid")
		}
	}
	if ids := m.Find(isakmp.PayloadID); len(ids) == 2 {
		li, err1 := tsOf(ids[0].Body)
		ri, err2 := tsOf(ids[1].Body)
		wantRemote := []spd.TS{t.remote}
		if len(c.Remote.Subnets) == 0 && sa.natRemote {
			wantRemote = shared.NATHosts([]spd.TS{ri}, wantRemote)
		}
		if err1 != nil || err2 != nil || !t.local.Contains(li) || !shared.AllInside([]spd.TS{ri}, wantRemote) {
			return 0, refusal(isakmp.INVALID_ID_INFORMATION, shared.CauseTSUnacceptable, "peer answered with selectors %s ↔ %s, outside what we proposed (%s ↔ %s)",
				showTS(ids[0].Body), showTS(ids[1].Body), t.local, t.remote)
		}
		t.local, t.remote = li, ri
	} else if len(ids) != 0 || t.ids {
		return 0, refusal(isakmp.INVALID_ID_INFORMATION, shared.CauseTSUnacceptable, "peer's quick mode answer does not repeat our selectors %s ↔ %s", t.local, t.remote)
	}
	t.lifetime = c.Lifetime
	if life := got.Life.Seconds; life > 0 && time.Duration(life)*time.Second < t.lifetime {
		t.lifetime = time.Duration(life) * time.Second
	}
	for _, p := range m.Find(isakmp.PayloadN) {
		n, _, err := isakmp.ParseNotify(p.Body)
		if err != nil {
			continue
		}
		if n.Type == isakmp.RESPONDER_LIFETIME {
			if l, err := n.ResponderLifetime(); err == nil && l.Seconds > 0 && time.Duration(l.Seconds)*time.Second < t.lifetime {
				t.lifetime = time.Duration(l.Seconds) * time.Second
				sa.log.Info("peer shortened the IPsec SA lifetime (RESPONDER-LIFETIME)", "conn", c.Name, "lifetime", t.lifetime)
			}
		}
	}
	t.commit = m.Header.Flags&isakmp.FlagCommit != 0
	keys, err := sa.keys.ChildKeys(uint8(shared.ChildProtocol(c)), t.sel.Encr, t.sel.Integ, t.inSPI, t.outSPI, t.gqm, t.ni, t.nr)
	t.discard()
	if err != nil {
		return 0, failure(shared.CauseInternal, "IPsec SA key derivation: %v", err)
	}
	ch, err := sa.install(newChild{conn: c, pair: t.pair, alg: t.sel, inSPI: t.inSPI, outSPI: t.outSPI, keys: &keys,
		qmInit: true, local: t.local, remote: t.remote, lifetime: t.lifetime, keepOutbound: true})
	if err != nil {
		return 0, failure(shared.CauseInternal, "the dataplane refused the IPsec SA: %v", err)
	}
	sa.adopt(ch, t.rekey)
	t.installed = ch
	return stepLast, nil
}

// afterThird arranges the switch of outbound traffic to the new SA once
// the responder can be expected to have installed it (SwitchDelay, or the
// CONNECTED it promised with the commit bit), and then the deletion of
// the SA it replaced.
func (sa *isakmpSA) afterThird(t *quickMode) {
	ch, old := t.installed, t.rekey
	if ch == nil {
		return
	}
	if !t.commit {
		sa.iv.Forget(t.mid)
	}
	delay := SwitchDelay
	if t.commit {
		sa.committed(t.mid, ch)
		delay = 10 * SwitchDelay
	}
	sa.switches = append(sa.switches, sa.after(delay, func() { sa.completeSwitch(ch, old) }))
}

// completeSwitch moves outbound traffic to ch and retires the SA it
// replaced, as Libreswan does (strongSwan would keep it until it expires).
// The deletion waits DrainDelay after the switch.
func (sa *isakmpSA) completeSwitch(ch, old *child) {
	if !sa.hasChild(ch) {
		if old != nil {
			sa.rekeyedForRetire(old)
		}
		return
	}
	sa.switchOutbound(ch)
	if old == nil {
		return
	}
	sa.switches = append(sa.switches, sa.after(DrainDelay, func() {
		defer sa.rekeyedForRetire(old)
		if sa.hasChild(old) {
			sa.log.Info("deleting the rekeyed IPsec SA", "conn", old.conn.Name, "in_spi", spiHex(old.inSPI))
			sa.deleteChild(old, shared.CauseNone, "")
		}
	}))
}

// processFirst is the responder's side of message 1: which conn the
// selectors belong to (narrowed), which of its ESP proposals, PFS, and
// whether the quick mode replaces an SA we have.
func (t *quickMode) processFirst(sa *isakmpSA, m *isakmp.Message) (step, error) {
	if !verifyHash(m, func(rest []byte) []byte { return sa.keys.QuickHash1(t.mid, rest) }) {
		return 0, errDrop
	}
	sap, ok1 := one(m, isakmp.PayloadSA)
	np, ok2 := one(m, isakmp.PayloadNonce)
	if _, _, err := isakmp.ParseNonce(np.Body); !ok1 || !ok2 || err != nil {
		return 0, refusal(isakmp.PAYLOAD_MALFORMED, shared.CausePeerRefused, "quick mode message 1 lacks exactly one SA and nonce (several SAs in one quick mode are not supported)")
	}
	peerSA, _, err := isakmp.ParseSA(sap.Body)
	if err != nil {
		return 0, refusal(notifyOf(err), shared.CausePeerRefused, "peer's quick mode SA payload is malformed: %v", err)
	}
	if len(peerSA.Proposals) > 0 {
		t.peerSPI = bytes.Clone(peerSA.Proposals[0].SPI)
	}
	t.peerSA, t.ni = peerSA, bytes.Clone(np.Body)
	t.commit = m.Header.Flags&isakmp.FlagCommit != 0
	// The peer's selectors: IDci is its side, IDcr ours; host-to-host
	// without ID payloads.
	peerTS, ourTS := spd.HostTS(sa.remote.Addr()), spd.HostTS(sa.local.Addr())
	switch ids := m.Find(isakmp.PayloadID); len(ids) {
	case 0:
	case 2:
		var err1, err2 error
		peerTS, err1 = tsOf(ids[0].Body)
		ourTS, err2 = tsOf(ids[1].Body)
		if err1 != nil || err2 != nil {
			return 0, refusal(isakmp.INVALID_ID_INFORMATION, shared.CausePeerRefused, "peer's quick mode selectors are not address IDs")
		}
		t.ids = true
	default:
		return 0, refusal(isakmp.INVALID_ID_INFORMATION, shared.CausePeerRefused, "quick mode message 1 with one ID payload")
	}
	conns := sa.peerConns()
	if len(conns) == 0 {
		return 0, refusal(isakmp.INVALID_ID_INFORMATION, shared.CauseTSUnacceptable, "no conn for the peer's identity %s", sa.remoteID)
	}
	c, pair, local, remote, ok := t.pickConn(sa, conns, ourTS, peerTS)
	if !ok {
		c0 := conns[0]
		t.conn = c0
		return 0, refusal(isakmp.INVALID_ID_INFORMATION, shared.CauseTSUnacceptable, "traffic selectors did not match: we want %s ↔ %s, peer proposed %s ↔ %s",
			spd.FormatTS(shared.ConfTS(c0.Local, sa.local.Addr())), spd.FormatTS(shared.ConfTS(c0.Remote, sa.remote.Addr())), ourTS, peerTS)
	}
	t.conn, t.pair, t.local, t.remote = c, pair, local, remote
	if c.Mode != config.ModeTunnel {
		return 0, refusal(isakmp.NO_PROPOSAL_CHOSEN, shared.CauseConfig, "conn %s: type=%s is not supported, the dataplane runs tunnel mode only", c.Name, c.Mode)
	}
	offers, refused, _ := isakmp.Phase2Offers(peerSA)
	kep, hasKE := one(m, isakmp.PayloadKE)
	proto := shared.ChildProtocol(c)
	ours := shared.Offer(c.ChildProposals(), proto, nil, false)
	sel, found := shared.Select(ours, isakmp.Proposals2(offers), proto, false, 0)
	if found && !offers[sel.Number-1].Mode.Tunnel() && offers[sel.Number-1].Mode != 0 {
		found = false
	}
	if found && proto == shared.ProtoAH && offers[sel.Number-1].Mode.UDP() {
		found = false // AH in UDP does not exist
	}
	if !found {
		proposed := offersString(isakmp.Proposals2(offers))
		if len(offers) == 0 && len(refused) > 0 {
			proposed = fmt.Sprintf("only transforms we cannot use (%v)", refused[0].Err)
		}
		accept := shared.ProposalsString(ours)
		if proto == shared.ProtoAH {
			accept = "AH " + accept
		}
		return 0, refusal(isakmp.NO_PROPOSAL_CHOSEN, shared.CauseNoProposal, "peer proposed %s; we accept %s", proposed, accept)
	}
	t.chosen, t.sel = offers[sel.Number-1], sel
	t.outSPI, _ = spiOf(t.chosen.Proposal.SPI)
	if t.outSPI < 256 {
		return 0, refusal(isakmp.INVALID_SPI, shared.CausePeerRefused, "peer's %s SPI is not a valid 4-byte SPI", protoName(proto))
	}
	if sel.KE.ID != transform.KENone {
		if !hasKE {
			return 0, refusal(isakmp.INVALID_KEY_INFORMATION, shared.CausePeerRefused, "peer asked for PFS without a KE payload")
		}
		ke, err := transform.NewKeyExchange(sel.KE.ID)
		if err != nil {
			return 0, refusal(isakmp.NO_PROPOSAL_CHOSEN, shared.CauseInternal, "PFS group %s: %v", sel.KE, err)
		}
		t.ke = ke
		if t.gqm, err = ke.SharedSecret(kep.Body); err != nil {
			return 0, refusal(isakmp.INVALID_KEY_INFORMATION, shared.CausePeerRefused, "peer's PFS key exchange value is invalid")
		}
	}
	// Lifetime: the peer's when shorter than ours; ours, announced with
	// RESPONDER-LIFETIME, when the peer asks for longer (RFC 2407
	// §4.6.3.1).
	peerLife := time.Duration(t.chosen.Life.Seconds) * time.Second
	if peerLife == 0 {
		peerLife = isakmp.DefaultPhase2Lifetime * time.Second
	}
	t.lifetime = min(c.Lifetime, peerLife)
	if c.Lifetime < peerLife {
		t.shortLife = c.Lifetime
	}
	for _, ch := range sa.children {
		if ch.conn.Name == c.Name && ch.local == local && ch.remote == remote && ch.successor == nil {
			t.rekey = ch
			ch.rekeyed = true // the peer rekeys it: not we as well
		}
	}
	return stepMore, nil
}

// pickConn finds the first conn and pair whose selectors overlap the
// peer's, narrowed to what both allow (IKEv1 carries one selector per
// side; with several results the first is taken, as strongSwan does).
func (t *quickMode) pickConn(sa *isakmpSA, conns []config.Conn, ours, theirs spd.TS) (config.Conn, int, spd.TS, spd.TS, bool) {
	for _, c := range conns {
		for i, p := range pairsOf(c, sa.local.Addr(), sa.remote.Addr()) {
			want := []spd.TS{p[1]}
			if len(c.Remote.Subnets) == 0 && sa.natRemote {
				want = shared.NATHosts([]spd.TS{theirs}, want)
			}
			l := shared.Narrow([]spd.TS{p[0]}, []spd.TS{ours})
			r := shared.Narrow(want, []spd.TS{theirs})
			if len(l) > 0 && len(r) > 0 {
				return c, i, l[0], r[0], true
			}
		}
	}
	return config.Conn{}, 0, spd.TS{}, spd.TS{}, false
}

// buildSecond is the responder's answer: the chosen transform with our
// SPI, our nonce and KE, the narrowed selectors, and RESPONDER-LIFETIME
// when ours is shorter. The SA is installed inbound-only now.
func (t *quickMode) buildSecond(sa *isakmpSA) ([]byte, error) {
	spi, err := sa.e.cfg.Installer.AllocateSPI()
	if err != nil {
		return nil, fmt.Errorf("allocating an SPI: %w", err)
	}
	t.inSPI = spi
	answer, err := t.peerSA.Answer(t.chosen.ProposalNumber, t.chosen.TransformNumber, spiBytes(spi))
	if err != nil {
		return nil, err
	}
	t.nr = newNonce()
	ps := []isakmp.Payload{answer, isakmp.Nonce{Data: t.nr}}
	if t.ke != nil {
		ps = append(ps, isakmp.KE{Data: t.ke.PublicKey()})
	}
	if t.ids {
		idci, err1 := isakmp.IDFromTS(t.remote)
		idcr, err2 := isakmp.IDFromTS(t.local)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("narrowed selectors %s ↔ %s do not fit an ID payload", t.local, t.remote)
		}
		ps = append(ps, idci, idcr)
	}
	if t.shortLife > 0 {
		ps = append(ps, isakmp.ResponderLifetime(isakmp.ProtocolID(shared.ChildProtocol(t.conn)), spiBytes(spi), isakmp.Lifetime{Seconds: uint64(t.shortLife / time.Second)}))
	}
	mid := t.mid
	pkt, err := sa.hashedMessage(isakmp.ExchangeQuickMode, mid, func(rest []byte) []byte { return sa.keys.QuickHash2(mid, t.ni, rest) }, ps...)
	if err != nil {
		return nil, err
	}
	keys, err := sa.keys.ChildKeys(uint8(shared.ChildProtocol(t.conn)), t.sel.Encr, t.sel.Integ, t.outSPI, t.inSPI, t.gqm, t.ni, t.nr)
	t.discard()
	if err != nil {
		return nil, failure(shared.CauseInternal, "IPsec SA key derivation: %v", err)
	}
	ch, err := sa.install(newChild{conn: t.conn, pair: t.pair, alg: t.sel, inSPI: t.inSPI, outSPI: t.outSPI, keys: &keys,
		local: t.local, remote: t.remote, lifetime: t.lifetime, keepOutbound: true})
	if err != nil {
		return nil, failure(shared.CauseInternal, "the dataplane refused the IPsec SA: %v", err)
	}
	t.installed = ch
	return pkt, nil
}

// refused words an error notification the peer answered our quick mode
// with.
func (t *quickMode) refused(n isakmp.NotifyType) error {
	switch n {
	case isakmp.INVALID_ID_INFORMATION:
		return failure(shared.CauseTSUnacceptable, "traffic selectors did not match (INVALID-ID-INFORMATION from peer): we proposed %s ↔ %s", t.local, t.remote)
	case isakmp.NO_PROPOSAL_CHOSEN:
		offered, _, _ := isakmp.Phase2Offers(t.saI)
		return failure(shared.CauseNoProposal, "peer accepted none of our %s proposals (NO-PROPOSAL-CHOSEN); we offered %s", protoName(shared.ChildProtocol(t.conn)), shared.ProposalsString(isakmp.Proposals2(offered)))
	}
	return failure(shared.CausePeerRefused, "peer refused the quick mode with %s", n)
}

// selection2 is a quick mode offer's algorithms as a selection.
func selection2(p shared.Proposal) shared.Selection {
	s := shared.Selection{Integ: transform.Transform{Type: transform.TypeINTEG, ID: transform.IntegNone},
		KE: transform.Transform{Type: transform.TypeKE, ID: transform.KENone}}
	for _, t := range p.Transforms {
		switch t.Type {
		case transform.TypeENCR:
			s.Encr = t
		case transform.TypeINTEG:
			s.Integ = t
		case transform.TypeKE:
			s.KE = t
		case transform.TypeESN:
			s.ESN = t
		}
	}
	return s
}

// tsOf decodes a quick mode ID payload body as a selector.
func tsOf(body []byte) (spd.TS, error) {
	x, _, err := isakmp.ParseID(body)
	if err != nil {
		return spd.TS{}, err
	}
	return x.TS()
}

// showTS renders an ID payload body for failure texts.
func showTS(body []byte) string {
	ts, err := tsOf(body)
	if err != nil {
		return "(not a selector)"
	}
	return ts.String()
}

// peerConns lists the conns that may have IPsec SAs under this ISAKMP
// SA: those accepting its addresses and authenticated IDs, the SA's own
// conn first.
func (sa *isakmpSA) peerConns() []config.Conn {
	var out []config.Conn
	for _, c := range sa.candidates() {
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

// newQuickResponder makes the task for a quick mode the peer starts.
func (sa *isakmpSA) newQuickResponder(m *isakmp.Message) task {
	return &quickMode{responder: true, mid: m.Header.MessageID}
}

// committed remembers a quick mode whose responder set the commit bit,
// until its CONNECTED arrives (connected).
func (sa *isakmpSA) committed(mid uint32, ch *child) {
	if sa.waiting == nil {
		sa.waiting = map[uint32]*child{}
	}
	sa.waiting[mid] = ch
}

// connected handles quick mode message 4 of an exchange we initiated:
// the responder's CONNECTED (commit bit) lets us switch to the new SA.
// Other messages with the message ID of a completed quick mode (Windows
// sends a fourth one with INITIAL-CONTACT) are ignored. It reports
// whether the message was one of those.
func (sa *isakmpSA) connected(m *isakmp.Message) bool {
	mid := m.Header.MessageID
	ch, ok := sa.waiting[mid]
	if !ok {
		if f := sa.final; f != nil && f.mid == mid {
			sa.log.Debug("ignoring a fourth quick mode message", "msgid", mid)
			return true
		}
		return false
	}
	if _, err := sa.open(m); err != nil || !verifyHash(m, func(rest []byte) []byte { return sa.keys.InformationalHash(mid, rest) }) {
		return true
	}
	delete(sa.waiting, mid)
	sa.iv.Forget(mid)
	sa.alive()
	for _, p := range m.Find(isakmp.PayloadN) {
		if n, _, err := isakmp.ParseNotify(p.Body); err == nil && n.Type == isakmp.CONNECTED && sa.hasChild(ch) {
			sa.log.Debug("peer confirmed the quick mode (CONNECTED)", "conn", ch.conn.Name, "in_spi", spiHex(ch.inSPI))
			sa.switchOutbound(ch)
		}
	}
	return true
}

// errDrop makes the exchange machinery drop a message without failing
// the exchange: it did not verify (a forged or corrupted message, or one
// encrypted with an IV out of step), and a retransmission may.
var errDrop = errors.New("message did not verify")

// offersString renders a peer's quick mode offers with their protocol,
// "ESP aes128-sha1" or "AH sha256", each protocol once in a run.
func offersString(ps []shared.Proposal) string {
	var parts []string
	for i := 0; i < len(ps); {
		j := i
		for j < len(ps) && ps[j].Protocol == ps[i].Protocol {
			j++
		}
		parts = append(parts, protoName(ps[i].Protocol)+" "+shared.ProposalsString(ps[i:j]))
		i = j
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}
