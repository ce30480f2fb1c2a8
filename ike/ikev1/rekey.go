package ikev1

import (
	"net/netip"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev1/isakmp"
	"github.com/ipsecgw/ipsecgw/ike/shared"
)

// Phase 1 renewal. IKEv1 has no rekeying of an ISAKMP SA: it is replaced
// by a new phase 1 (reauthentication). IPsec SAs do not depend on the
// ISAKMP SA that negotiated them in the protocol, so ours move to the new
// one at once. The peer may see that differently: strongSwan adopts them
// only with uniqueids=yes/replace (ike_sa_manager.c enforce_replace), and
// otherwise — swanctl's default, unique=no — destroys the IPsec SAs of an
// ISAKMP SA the peer deletes (isakmp_delete.c). So when we reauthenticate,
// every IPsec SA that moved is rekeyed by a quick mode under the new ISAKMP
// SA (make before break, as any rekey), and only when those are done is the
// old ISAKMP SA deleted; until then it stays, not serving. A peer that
// reauthenticates is followed without quick modes: when it deletes the old
// ISAKMP SA, our IPsec SAs move to the new SA with the same identities
// (deletedByPeer).

// startInitiator begins a new ISAKMP SA for conn c: main or aggressive
// mode, then a quick mode per pair of subnets, unless the SA replaces
// another (a reauthentication: its IPsec SAs move over instead).
func (sa *isakmpSA) startInitiator(c config.Conn, replaces *isakmpSA) {
	sa.conn = c
	sa.conns[c.Name] = true
	sa.localID = shared.EffectiveID(c.Local.ID, sa.local.Addr())
	sa.remoteID = shared.EffectiveID(c.Remote.ID, sa.remote.Addr())
	sa.replaces = replaces
	sa.aggressive = c.Aggressive
	var t task = &mainMode{conn: c}
	if c.Aggressive {
		t = &aggressiveMode{conn: c}
	}
	sa.p1 = t
	sa.log.Info("initiating ISAKMP SA", "conn", c.Name, "mode", phase1Name(c.Aggressive), "remote", sa.remote, "reauth", replaces != nil)
	sa.publish()
	sa.enqueue(t)
	if replaces == nil {
		sa.upChild(c)
	}
}

// newPhase1Responder makes the phase 1 task for the first message the
// peer sent (nil for anything else: the SA then ends, HandleNew).
func (sa *isakmpSA) newPhase1Responder(m *isakmp.Message) task {
	if sa.p1 != nil || sa.state != saPhase1 || m.Header.MessageID != 0 || m.Encrypted() {
		return nil
	}
	var t task = &mainMode{responder: true}
	if m.Header.Exchange == isakmp.ExchangeAggressive {
		t = &aggressiveMode{responder: true}
	}
	sa.p1 = t
	return t
}

// reauthenticate builds a new ISAKMP SA with the same peer, which takes
// over this one's IPsec SAs once established (handOver); this one stops
// serving the peer at once, so that Up of a conn finds the new one.
func (sa *isakmpSA) reauthenticate() {
	main, ok := sa.e.host.Config().Conn(sa.conn.Name)
	if !ok {
		return // removed by a reload: the SA lives out its lifetime
	}
	nsa, err := sa.e.newSA(true, netip.AddrPortFrom(sa.local.Addr(), 500), netip.AddrPortFrom(sa.remote.Addr(), 500))
	if err != nil {
		return
	}
	sa.log.Info("reauthenticating ISAKMP SA", "conn", main.Name)
	sa.state = saDeleting
	sa.servePeer(nil)
	sa.e.host.ServePeer(nsa, &main)
	old := sa
	names := sa.connNames()
	nsa.post(func() {
		nsa.serving = true
		for _, n := range names {
			nsa.conns[n] = true
		}
		nsa.startInitiator(main, old)
	})
}

// handOver moves this SA's IPsec SAs to the established SA to that
// replaces it (a reauthentication, ours or the peer's); this SA no longer
// serves the peer. With reauth (ours) the new SA rekeys them and then has
// this one deleted at the peer (a replaced SA of the peer's waits for the
// peer's delete or its own end). An SA still in phase 1 has nothing to
// hand over and is left alone.
func (sa *isakmpSA) handOver(to *isakmpSA, reauth bool) {
	if sa.state != saEstablished && sa.state != saDeleting {
		return
	}
	if sa.state == saEstablished {
		sa.state = saDeleting
		sa.servePeer(nil)
		for _, t := range []shared.Timer{sa.dpdTimer, sa.dpdDeadTimer, sa.rekeyTimer} {
			if t != nil {
				t.Stop()
			}
		}
		for _, t := range sa.queue {
			discard(t)
		}
		sa.queue = nil
	}
	kids := sa.children
	sa.children = nil
	for _, k := range kids {
		k.stopTimers()
	}
	names, info := sa.connNames(), sa.info()
	if len(kids) > 0 {
		sa.log.Info("handing the IPsec SAs to the new ISAKMP SA", "children", len(kids), "to", to.ourCookie())
	}
	var retire func()
	if reauth {
		old := sa
		retire = func() { old.post(func() { old.deleteISAKMP("") }) }
	}
	if !to.post(func() { to.takeOver(kids, names, info, retire) }) {
		// The new SA is gone already: the IPsec SAs go as well.
		for _, k := range kids {
			if err := sa.e.cfg.Installer.Remove(k.conn.Name, k.inSPI, k.outSPI); err != nil {
				sa.log.Warn("removing IPsec SA", "conn", k.conn.Name, "err", err)
			}
			sa.e.host.Emit(shared.ChildDown{Conn: k.conn.Name, IKE: info, Child: k.info(), Cause: shared.CausePeerDead,
				Text: "its ISAKMP SA was replaced by one that ended", Left: true})
		}
		if reauth {
			sa.deleteISAKMP("")
		}
	}
}

// takeOver adopts the IPsec SAs of a replaced ISAKMP SA (old), re-arming
// their timers here, and negotiates what the replaced SA's conns lack.
// retire, set when we reauthenticated, deletes the replaced SA at the
// peer: it is called once every adopted IPsec SA was rekeyed here (or its
// rekey failed), so that a peer which destroys the IPsec SAs of a deleted
// ISAKMP SA has their successors already.
func (sa *isakmpSA) takeOver(kids []*child, names []string, old shared.IKEInfo, retire func()) {
	if sa.state != saEstablished {
		if retire != nil {
			retire()
		}
		for _, k := range kids {
			if err := sa.e.cfg.Installer.Remove(k.conn.Name, k.inSPI, k.outSPI); err != nil {
				sa.log.Warn("removing IPsec SA", "conn", k.conn.Name, "err", err)
			}
			sa.e.host.Emit(shared.ChildDown{Conn: k.conn.Name, IKE: old, Child: k.info(), Cause: shared.CausePeerDead,
				Text: "its ISAKMP SA was replaced by one that ended", Left: true})
		}
		return
	}
	for _, k := range kids {
		sa.children = append(sa.children, k)
		sa.conns[k.conn.Name] = true
		sa.armChildTimers(k)
	}
	for _, n := range names {
		sa.conns[n] = true
	}
	sa.e.host.Emit(shared.IKERekeyed{Names: sa.connNames(), Old: old, New: sa.info()})
	sa.upConns(names)
	if retire == nil {
		return
	}
	sa.retire, sa.retiring = retire, map[*child]bool{}
	for _, k := range kids {
		if sa.rekeyChild(k) {
			sa.retiring[k] = true
		}
	}
	sa.rekeyedForRetire(nil)
}

// rekeyedForRetire notes that the reauthentication rekey of ch is over
// (the successor carries the traffic and ch was deleted, or the rekey
// failed) and retires the replaced ISAKMP SA once none is left (takeOver).
func (sa *isakmpSA) rekeyedForRetire(ch *child) {
	if sa.retire == nil {
		return
	}
	delete(sa.retiring, ch)
	if len(sa.retiring) == 0 {
		retire := sa.retire
		sa.retire, sa.retiring = nil, nil
		retire()
	}
}

// expire ends the ISAKMP SA at its lifetime: when it was not replaced in
// time, its IPsec SAs still move to another SA with the same identities
// if there is one; otherwise they end with it.
func (sa *isakmpSA) expire() {
	if sa.state == saDead {
		return
	}
	sa.log.Info("ISAKMP SA reached its lifetime", "conn", sa.conn.Name)
	if len(sa.children) > 0 && sa.ids != "" {
		for _, o := range sa.e.host.Authenticated(sa, sa.ids) {
			if n, ok := o.(*isakmpSA); ok && n.e == sa.e {
				sa.handOver(n, false)
				break
			}
		}
	}
	if len(sa.children) > 0 {
		sa.endCause, sa.endText = shared.CauseExpired, "the ISAKMP SA reached its lifetime"
	}
	sa.deleteISAKMP("")
}
