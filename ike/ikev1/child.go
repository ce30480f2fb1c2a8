package ikev1

import (
	"bytes"
	"fmt"
	mrand "math/rand/v2"
	"net/netip"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev1/isakmp"
	"github.com/ipsecgw/ipsecgw/ike/ikev1/keymat"
	"github.com/ipsecgw/ipsecgw/ike/shared"
	"github.com/ipsecgw/ipsecgw/spd"
	"github.com/ipsecgw/ipsecgw/transform"
)

// IPsec SAs (the CHILD SAs of the shared vocabulary): one per quick mode,
// each for one pair of the conn's subnets (pair: its index in
// pairsOf), installed through the same ChildInstaller as IKEv2's. They
// are independent of the ISAKMP SA that negotiated them: a
// reauthentication hands them to its successor (rekey.go).

// child is an installed IPsec SA pair.
type child struct {
	conn          config.Conn
	proto         shared.Protocol // ESP or AH
	pair          int
	inSPI, outSPI uint32
	reqID         uint32 // as installed (ChildSA.ReqID)
	alg           shared.Selection
	local, remote spd.TS
	lifetime      time.Duration
	established   time.Time
	encap         bool
	rekeyed       bool   // a successor exists or is being negotiated
	successor     *child // the SA that replaced this one
	timers        []shared.Timer
	rekeyAt       time.Time
	expireAt      time.Time
	// outHeld: installed with KeepOutbound; traffic switches to it later
	// (switchOutbound).
	outHeld bool
}

// info describes the IPsec SA for events.
func (c *child) info() shared.ChildInfo {
	return shared.ChildInfo{InSPI: c.inSPI, OutSPI: c.outSPI, ReqID: c.reqID, Protocol: c.proto.ChildName(), Algorithms: c.alg.String(),
		LocalTS: []spd.TS{c.local}, RemoteTS: []spd.TS{c.remote}, Encap: c.encap, Established: c.established}
}

func (c *child) stopTimers() {
	for _, t := range c.timers {
		t.Stop()
	}
	c.timers = nil
}

// pairsOf lists a conn's pairs of selectors, one quick mode each, as
// Libreswan negotiates leftsubnets/rightsubnets: every local subnet with
// every remote one (the end's own address when it has none).
func pairsOf(c config.Conn, local, remote netip.Addr) [][2]spd.TS {
	var out [][2]spd.TS
	for _, l := range shared.ConfTS(c.Local, local) {
		for _, r := range shared.ConfTS(c.Remote, remote) {
			if l.Is4() == r.Is4() {
				out = append(out, [2]spd.TS{l, r})
			}
		}
	}
	return out
}

// pairReqID is the reqid of a conn's pair: the conn's for the first, and
// one of its own for each further pair, so that the dataplane keeps an
// outbound SA per pair (it selects it by reqid).
func (sa *isakmpSA) pairReqID(c config.Conn, pair int) uint32 {
	if pair == 0 {
		return sa.e.host.ReqID(c)
	}
	pc := c
	pc.Name = fmt.Sprintf("%s#%d", c.Name, pair+1)
	pc.ReqID = 0
	return sa.e.host.ReqID(pc)
}

// newChild is a negotiated IPsec SA on its way into the dataplane.
type newChild struct {
	conn          config.Conn
	pair          int
	alg           shared.Selection
	inSPI, outSPI uint32
	keys          *keymat.ChildKeys
	// qmInit: we initiated the quick mode; its initiator's keys protect
	// initiator → responder (keymat.ChildKeys).
	qmInit        bool
	local, remote spd.TS
	lifetime      time.Duration
	keepOutbound  bool
}

// install maps the keys to our directions and hands the SA to the
// installer. The child is not added to the SA yet (adopt).
func (sa *isakmpSA) install(n newChild) (*child, error) {
	defer n.keys.Zero()
	cp := bytes.Clone
	k, c, alg := n.keys, n.conn, n.alg
	outE, outI, inE, inI := k.EncrI, k.IntegI, k.EncrR, k.IntegR
	if !n.qmInit {
		outE, outI, inE, inI = inE, inI, outE, outI
	}
	proto := shared.ChildProtocol(c)
	encap := sa.udp() && proto != shared.ProtoAH // AH is never carried in UDP
	mode := config.ModeTunnel
	if c.Mode == config.ModeTransport {
		mode = config.ModeTransport
	}
	cs := shared.ChildSA{
		Conn: c.Name, ReqID: sa.pairReqID(c, n.pair), InSPI: n.inSPI, OutSPI: n.outSPI, Mode: mode, Protocol: proto,
		Encr: alg.Encr, Integ: alg.Integ, ESN: alg.ESN.ID == transform.ESNYes,
		InEncrKey: cp(inE), InIntegKey: cp(inI), OutEncrKey: cp(outE), OutIntegKey: cp(outI),
		Local: sa.local, Remote: sa.remote, Encap: encap,
		LocalTS: []spd.TS{n.local}, RemoteTS: []spd.TS{n.remote},
		ReplayWindow: c.ReplayWindow, Lifetime: n.lifetime, LifeBytes: c.LifeBytes, LifePackets: c.LifePackets,
		SoftBytes: softLimit(c, c.LifeBytes, c.MarginBytes), SoftPackets: softLimit(c, c.LifePackets, c.MarginPackets),
		Initiator: n.qmInit, KeepOutbound: n.keepOutbound,
	}
	if err := sa.e.cfg.Installer.Install(cs); err != nil {
		return nil, err
	}
	return &child{conn: c, proto: proto, pair: n.pair, reqID: cs.ReqID, inSPI: n.inSPI, outSPI: n.outSPI, alg: alg, local: n.local, remote: n.remote,
		lifetime: n.lifetime, established: sa.e.clock.Now(), encap: encap, outHeld: n.keepOutbound}, nil
}

// adopt makes an installed IPsec SA one of this SA's and reports it
// (ChildUp, or ChildRekeyed with the SA it replaces).
func (sa *isakmpSA) adopt(ch *child, replaces *child) {
	sa.children = append(sa.children, ch)
	sa.conns[ch.conn.Name] = true
	sa.armChildTimers(ch)
	sa.log.Info("IPsec SA established", "conn", ch.conn.Name, "in_spi", spiHex(ch.inSPI), "out_spi", spiHex(ch.outSPI),
		"algorithms", ch.alg.String(), "local_ts", ch.local.String(), "remote_ts", ch.remote.String(), "encap", ch.encap, "lifetime", ch.lifetime)
	if replaces != nil {
		replaces.rekeyed, replaces.successor = true, ch
		sa.e.host.Emit(shared.ChildRekeyed{Conn: ch.conn.Name, IKE: sa.info(), Old: replaces.info(), New: ch.info()})
		return
	}
	sa.e.host.Emit(shared.ChildUp{Conn: ch.conn.Name, IKE: sa.info(), Child: ch.info()})
}

// switchOutbound makes an IPsec SA installed with KeepOutbound carry the
// outbound traffic of its pair.
func (sa *isakmpSA) switchOutbound(ch *child) {
	if !ch.outHeld {
		return
	}
	ch.outHeld = false
	if err := sa.e.cfg.Installer.SwitchOutbound(ch.conn.Name, ch.inSPI); err != nil {
		sa.log.Warn("switching to the new IPsec SA", "conn", ch.conn.Name, "in_spi", spiHex(ch.inSPI), "err", err)
	}
}

// armChildTimers schedules rekeying at lifetime - margin - random(margin
// × rekeyfuzz), strongSwan's formula (at 90 % of a lifetime shorter than
// the margin), and deletion at the lifetime. The
// deadlines are absolute, so that the timers are re-armed unchanged when
// the SA moves to a reauthenticated ISAKMP SA.
func (sa *isakmpSA) armChildTimers(ch *child) {
	c := ch.conn
	if ch.lifetime <= 0 {
		return
	}
	if ch.expireAt.IsZero() {
		ch.expireAt = ch.established.Add(ch.lifetime)
		margin, fuzzPct := c.Margin, c.RekeyFuzz
		if ch.lifetime <= margin {
			// A lifetime shorter than our margin is the peer's (its
			// proposal or RESPONDER-LIFETIME): the peer rekeys first, and
			// we at 90 % of it in case it does not — strongSwan skips a
			// rekey that falls due while it reauthenticates, and the SA
			// would run into its hard lifetime.
			margin, fuzzPct = ch.lifetime/10, 0
		}
		if c.Rekey && ch.lifetime > margin {
			d := ch.lifetime - margin
			if fuzz := time.Duration(float64(margin) * float64(fuzzPct) / 100); fuzz > 0 {
				d -= time.Duration(mrand.Int64N(int64(fuzz) + 1))
			}
			if d > 0 {
				ch.rekeyAt = ch.established.Add(d)
			}
		}
	}
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

func (sa *isakmpSA) hasChild(ch *child) bool {
	for _, x := range sa.children {
		if x == ch {
			return true
		}
	}
	return false
}

// newerOf returns an IPsec SA of the same conn and selectors established
// after ch: the peer rekeyed ch.
func (sa *isakmpSA) newerOf(ch *child) *child {
	for _, x := range sa.children {
		if x != ch && x.conn.Name == ch.conn.Name && x.local == ch.local && x.remote == ch.remote && x.established.After(ch.established) {
			return x
		}
	}
	return nil
}

// rekeyChild starts a quick mode replacing ch, with its selectors, and
// says whether it did. In IKEv1 a rekey is a quick mode like any other;
// the SA it replaces is told apart by its conn and selectors.
func (sa *isakmpSA) rekeyChild(ch *child) bool {
	if sa.state != saEstablished || ch.rekeyed || !sa.hasChild(ch) {
		return false
	}
	if n := sa.newerOf(ch); n != nil {
		// The peer rekeyed it already (both sides keep rekey timers).
		ch.rekeyed, ch.successor = true, n
		return false
	}
	c, ok := sa.e.host.Config().Conn(ch.conn.Name)
	if !ok {
		return false // removed by a reload: it lives out its lifetime
	}
	ch.rekeyed = true
	sa.log.Info("rekeying IPsec SA", "conn", c.Name, "in_spi", spiHex(ch.inSPI))
	sa.enqueue(&quickMode{conn: c, pair: ch.pair, local: ch.local, remote: ch.remote, rekey: ch})
	return true
}

// retryChildRekey schedules another rekey of ch after a failed one, so
// that it does not run into its hard lifetime (strongSwan retries too).
func (sa *isakmpSA) retryChildRekey(ch *child) {
	if sa.state != saEstablished || !sa.hasChild(ch) || ch.successor != nil || ch.expireAt.IsZero() {
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
	sa.log.Info("IPsec SA rekey will be retried", "conn", ch.conn.Name, "in_spi", spiHex(ch.inSPI), "in", d)
}

// retryDelay is how long a failed rekey waits before it is tried again:
// strongSwan's 15 s less up to 10 s of jitter, at most half the margin.
func retryDelay(margin time.Duration) time.Duration {
	d := 15*time.Second - time.Duration(mrand.Int64N(int64(10*time.Second)+1))
	if margin > 0 && d > margin/2 {
		d = margin / 2
	}
	return max(d, time.Second)
}

// expireChild deletes an IPsec SA that reached its lifetime, and
// negotiates the pair again when no successor carries it and the conn
// would (it rekeys, or starts or restarts on its own).
func (sa *isakmpSA) expireChild(ch *child) {
	c := ch.conn
	sa.log.Info("IPsec SA reached its lifetime", "conn", c.Name, "in_spi", spiHex(ch.inSPI), "rekeyed", ch.successor != nil)
	sa.sendInformational(ch.deletePayload())
	sa.removeChild(ch, shared.CauseExpired, "the IPsec SA reached its lifetime")
	if ch.successor == nil && (c.Rekey || c.Auto == config.AutoStart || c.CloseAction == config.ActionRestart) {
		if cur, ok := sa.e.host.Config().Conn(c.Name); ok && sa.state == saEstablished {
			sa.log.Info("negotiating the IPsec SA again: the previous one expired without a successor", "conn", c.Name)
			sa.upChild(cur)
		}
	}
}

// deleteChild deletes one IPsec SA at the peer and here.
func (sa *isakmpSA) deleteChild(ch *child, cause shared.Cause, text string) {
	sa.sendInformational(ch.deletePayload())
	sa.removeChild(ch, cause, text)
}

// removeChild takes an IPsec SA out of the dataplane and the SA, and
// reports it with the cause of its end.
func (sa *isakmpSA) removeChild(c *child, cause shared.Cause, text string) {
	found := false
	for i, x := range sa.children {
		if x == c {
			c.stopTimers()
			sa.children = append(sa.children[:i], sa.children[i+1:]...)
			if err := sa.e.cfg.Installer.Remove(c.conn.Name, c.inSPI, c.outSPI); err != nil {
				sa.log.Warn("removing IPsec SA", "conn", c.conn.Name, "err", err)
			}
			sa.log.Info("IPsec SA deleted", "conn", c.conn.Name, "in_spi", spiHex(c.inSPI))
			found = true
			break
		}
	}
	if !found {
		return
	}
	still := false
	for _, x := range sa.children {
		if x.conn.Name == c.conn.Name {
			still = true
		}
	}
	if !still && c.conn.Name != sa.conn.Name {
		delete(sa.conns, c.conn.Name)
	}
	sa.e.host.Emit(shared.ChildDown{Conn: c.conn.Name, IKE: sa.info(), Child: c.info(), Cause: cause, Text: text,
		Rekeyed: c.successor != nil, Left: !still && !sa.conns[c.conn.Name]})
}

// upChild negotiates the IPsec SAs of conn c that this SA does not have
// yet (one quick mode per pair of subnets).
func (sa *isakmpSA) upChild(c config.Conn) {
	if sa.state == saDeleting || sa.state == saDead {
		return
	}
	started := false
	for i, p := range pairsOf(c, sa.local.Addr(), sa.remote.Addr()) {
		if sa.hasPair(c.Name, i) || sa.negotiating(c.Name, i) {
			continue
		}
		sa.enqueue(&quickMode{conn: c, pair: i, local: p[0], remote: p[1]})
		started = true
	}
	if started {
		sa.conns[c.Name] = true
		sa.e.host.Emit(shared.Initiating{Conn: c.Name})
		sa.publish()
	}
}

// upConns negotiates the IPsec SAs the named conns lack.
func (sa *isakmpSA) upConns(names []string) {
	for _, n := range names {
		if c, ok := sa.e.host.Config().Conn(n); ok {
			sa.upChild(c)
		}
	}
}

func (sa *isakmpSA) hasPair(conn string, pair int) bool {
	for _, ch := range sa.children {
		if ch.conn.Name == conn && ch.pair == pair {
			return true
		}
	}
	return false
}

// negotiating reports whether a quick mode creating the pair (not a
// rekey) is in flight or queued.
func (sa *isakmpSA) negotiating(conn string, pair int) bool {
	is := func(t task) bool {
		q, ok := t.(*quickMode)
		return ok && !q.responder && q.rekey == nil && q.conn.Name == conn && q.pair == pair
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

// softLimit is the byte or packet count at which an IPsec SA of c is
// rekeyed: life - margin - random(margin × rekeyfuzz), as the IKEv2
// engine computes it; 0 when the conn has no such limit or does not
// rekey.
func softLimit(c config.Conn, life, margin uint64) uint64 {
	if life == 0 || !c.Rekey {
		return 0
	}
	if margin == 0 {
		margin = life / 10
	}
	if margin >= life {
		return 1
	}
	soft := life - margin
	if fuzz := uint64(float64(margin) * float64(c.RekeyFuzz) / 100); fuzz > 0 {
		soft -= min(mrand.Uint64N(fuzz+1), soft-1)
	}
	return soft
}

// deletePayload is the Delete payload for the IPsec SA pair: its protocol
// and our inbound SPI.
func (c *child) deletePayload() isakmp.Delete {
	return isakmp.DeleteIPsec(isakmp.ProtocolID(c.proto), c.inSPI)
}

// deletesOf renders the Delete payloads for several IPsec SA pairs, one
// per protocol (ESP first, then AH), none for a protocol without SAs.
func deletesOf(children []*child) []isakmp.Delete {
	esp, ah := isakmp.DeleteIPsec(isakmp.ProtoESP), isakmp.DeleteIPsec(isakmp.ProtoAH)
	for _, c := range children {
		if c.proto == shared.ProtoAH {
			ah.SPIs = append(ah.SPIs, spiBytes(c.inSPI))
		} else {
			esp.SPIs = append(esp.SPIs, spiBytes(c.inSPI))
		}
	}
	var out []isakmp.Delete
	for _, d := range []isakmp.Delete{esp, ah} {
		if len(d.SPIs) > 0 {
			out = append(out, d)
		}
	}
	return out
}

// protoName names a CHILD SA protocol for messages.
func protoName(p shared.Protocol) string {
	if p == shared.ProtoAH {
		return "AH"
	}
	return "ESP"
}
