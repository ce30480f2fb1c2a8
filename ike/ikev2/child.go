package ikev2

import (
	"bytes"
	"fmt"
	mrand "math/rand/v2"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
	"github.com/ipsecgw/ipsecgw/ike/shared"
	"github.com/ipsecgw/ipsecgw/spd"
	"github.com/ipsecgw/ipsecgw/transform"
)

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
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	c.timerGen++ // an event of the stopped timer already posted is stale
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
	sa.armChildTimer(ch, false)
}

// armChildTimer arms the one timer of a CHILD SA for the nearer of its
// deadlines: the rekey (unless it has passed: rekeyPassed), then the hard
// expiry. One runtime timer and closure per CHILD SA rather than one per
// deadline: with thousands of idle tunnels they add up. Deadlines are
// absolute so that the timer can be re-armed when the CHILD SA moves to a
// rekeyed IKE SA.
func (sa *ikeSA) armChildTimer(ch *child, rekeyPassed bool) {
	at := ch.expireAt
	if !rekeyPassed && !ch.rekeyAt.IsZero() && !ch.rekeyed && ch.rekeyAt.Before(at) {
		at = ch.rekeyAt
	}
	ch.timerGen++
	gen := ch.timerGen
	ch.timer = sa.after(max(at.Sub(sa.e.clock.Now()), 0), func() { sa.childDeadline(ch, gen) })
}

// childDeadline runs when the timer of a CHILD SA (armed as generation
// gen) expires: it starts the rekey once that is due and re-arms the timer
// for the hard expiry, or expires the SA. The event of a timer stopped or
// re-armed after it fired (the SA moved to a rekeyed IKE SA, a rekey
// retry) is stale and changes nothing.
func (sa *ikeSA) childDeadline(ch *child, gen uint32) {
	if gen != ch.timerGen {
		return
	}
	now := sa.e.clock.Now()
	rekeyPassed := !ch.rekeyAt.IsZero() && !now.Before(ch.rekeyAt)
	if rekeyPassed && !ch.rekeyed {
		sa.rekeyChild(ch)
	}
	if !now.Before(ch.expireAt) {
		if sa.hasChild(ch) {
			sa.expireChild(ch)
		}
		return
	}
	// Unless the rekey stopped the timer (the CHILD SA went) or armed it
	// anew (a retry), it now waits for the next deadline.
	if gen == ch.timerGen {
		sa.armChildTimer(ch, rekeyPassed)
	}
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
		payloads: []message.Payload{message.Delete{Protocol: message.ProtocolID(ch.proto), SPIs: []uint32{ch.inSPI}}},
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
	sa.upChild(&c)
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
		payloads: []message.Payload{message.Delete{Protocol: message.ProtocolID(ch.proto), SPIs: []uint32{ch.inSPI}}},
		done:     func(sa *ikeSA, _ *message.Message) { remove(sa) },
		failed:   func(sa *ikeSA, _ string) { remove(sa) },
	})
}

// newChild is a negotiated CHILD SA on its way into the dataplane.
type newChild struct {
	conn          *config.Conn
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
	proto := childProto(c)
	encap := sa.natLocal || sa.natRemote || c.ForceEncaps
	if proto == shared.ProtoAH {
		// AH authenticates the outer addresses and has no UDP
		// encapsulation: it always goes raw. Two ipsecgw daemons fake a
		// NAT to move ESP into UDP (shared.EncapAuto), which AH ignores;
		// a real NAT makes every AH packet fail its ICV at the peer.
		if encap {
			sa.log.Info("AH CHILD SA is sent as plain AH (no UDP encapsulation for AH); it fails through a real NAT", "conn", c.Name)
		}
		encap = false
	}
	mode := config.ModeTunnel
	if n.transport {
		mode = config.ModeTransport
	}
	cs := shared.ChildSA{
		Conn: c.Name, ReqID: sa.e.host.ReqID(*c), InSPI: n.inSPI, OutSPI: n.outSPI, Mode: mode, Protocol: proto,
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
	ch := &child{conn: c, proto: proto, reqID: cs.ReqID, inSPI: n.inSPI, outSPI: n.outSPI, alg: alg, local: n.local, remote: n.remote, established: sa.e.clock.Now(), encap: encap}
	sa.children = append(sa.children, ch)
	sa.armChildTimers(ch)
	sa.conns.Add(c.Name)
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
	return shared.ChildInfo{InSPI: c.inSPI, OutSPI: c.outSPI, ReqID: c.reqID, Protocol: c.proto.ChildName(), Algorithms: c.alg.String(),
		LocalTS: c.local, RemoteTS: c.remote, Encap: c.encap, Established: c.established,
		RekeyAt: c.pendingRekey(), ExpireAt: c.expireAt}
}

// pendingRekey is when the CHILD SA will be rekeyed: zero once a successor
// exists or is being negotiated (its rekey is done, or under way).
func (c *child) pendingRekey() time.Time {
	if c.rekeyed || len(c.successors) > 0 {
		return time.Time{}
	}
	return c.rekeyAt
}

// upChild adds a conn's CHILD SA to this IKE SA (Up of a conn sharing the
// peer).
func (sa *ikeSA) upChild(c *config.Conn) {
	for _, ch := range sa.children {
		if ch.conn.Name == c.Name && !ch.deleting {
			return // already up
		}
	}
	if sa.negotiating(c.Name) {
		return // its CHILD SA is on the way
	}
	sa.conns.Add(c.Name)
	sa.e.host.Emit(shared.Initiating{Conn: c.Name})
	sa.publish()
	sa.enqueue(&childTask{conn: c})
}

// peerConns lists the conns that may have CHILD SAs under this IKE SA:
// those accepting its addresses and authenticated IDs.
func (sa *ikeSA) peerConns() []*config.Conn {
	var out []*config.Conn
	for _, c := range sa.e.host.Candidates(2, sa.local, sa.remote) {
		if !shared.IDMatches(c.Remote.ID, sa.remoteID) || !shared.EffectiveID(c.Local.ID, sa.local.Addr()).Equal(sa.localID) {
			continue
		}
		if c.Name == sa.conn.Name {
			out = append([]*config.Conn{c}, out...)
		} else {
			out = append(out, c)
		}
	}
	return out
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
		if f, ok := t.(*followupTask); ok && f.owner != nil {
			t = f.owner // its CREATE_CHILD_SA continues in IKE_FOLLOWUP_KE
		}
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
