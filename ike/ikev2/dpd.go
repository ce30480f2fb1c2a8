package ikev2

import (
	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/shared"
)

// What happens to a conn whose SAs ended without us asking: dpdaction= when
// the peer stopped answering, closeaction= when the peer deleted them.
// For a whole IKE SA the Manager applies them when it sees the IKEDown
// (package ike, policy.go); for CHILD SAs the peer deleted under a living
// IKE SA, childrenClosedByPeer below. Both take strongSwan's values:
//
//   - restart: negotiate the conn again at once (dpdaction=restart only
//     on the initiator's side, as before: a responder often cannot reach
//     its peer, right=%any);
//   - hold (also spelled trap): install the conn's trap policy, so that
//     the next packet for its remote subnets negotiates it again (RFC 4301
//     acquire). The trap stays, as strongSwan's does, until `ipsecgw down`,
//     a reload that removes the conn, or shutdown;
//   - clear, none: nothing; the conn stays down.

// childrenClosedByPeer applies closeaction to the conns of CHILD SAs the
// peer deleted, for each conn left without a CHILD SA under this IKE SA (a
// rekeyed SA's deletion leaves its successor, so it does not count).
// restart negotiates the CHILD SA again over this IKE SA.
func (sa *ikeSA) childrenClosedByPeer(names []string) {
	if sa.state != saEstablished {
		return
	}
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		left := false
		for _, x := range sa.children {
			if x.conn.Name == n {
				left = true
			}
		}
		if left || sa.negotiating(n) {
			continue
		}
		c, ok := sa.e.host.Config().Conn(n)
		if !ok {
			continue
		}
		switch c.CloseAction {
		case config.ActionRestart:
			sa.log.Info("closeaction=restart: the peer deleted the CHILD SA, negotiating it again", "conn", n)
			sa.upChild(&c)
		case config.ActionHold:
			sa.e.host.Hold(c, "closeaction")
		}
	}
}

// armDPD schedules the liveness check of dpddelay (RFC 7296 §2.4): when
// nothing was received from the peer for that long, an empty INFORMATIONAL
// request is sent; if it goes unanswered through all retransmissions, the
// peer is dead and dpdaction applies.
func (sa *ikeSA) armDPD() {
	c := sa.conn
	if c.DPDAction == config.ActionNone || c.DPDDelay <= 0 {
		return
	}
	sa.dpdTimer = sa.after(c.DPDDelay, func() {
		if sa.state != saEstablished {
			return
		}
		idle := sa.e.clock.Now().Sub(sa.e.time(sa.lastRecv))
		if idle >= c.DPDDelay && sa.pending == nil && len(sa.queue) == 0 {
			sa.enqueue(&infoTask{})
		}
		sa.armDPD()
	})
}

// peerDead handles an exchange abandoned after all retransmissions on an
// established IKE SA: the SA is destroyed and the Manager applies each
// conn's dpdaction (restart, hold) when it sees the IKEDown.
func (sa *ikeSA) peerDead(reason string) {
	if sa.state == saDead {
		return
	}
	text := "peer is not answering: " + reason
	sa.failConns(shared.StateDown, shared.CausePeerDead, text)
	sa.destroyFor(shared.CausePeerDead, text)
}
