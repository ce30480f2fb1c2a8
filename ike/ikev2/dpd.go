package ikev2

import (
	"github.com/ipsecgw/ipsecgw/config"
)

// What happens to a conn whose SAs ended without us asking: dpdaction= when
// the peer stopped answering, closeaction= when the peer deleted them.
// Both take strongSwan's values:
//
//   - restart: negotiate the conn again at once (dpdaction=restart only
//     on the initiator's side, as before: a responder often cannot reach
//     its peer, right=%any);
//   - hold (also spelled trap): install the conn's trap policy, so that
//     the next packet for its remote subnets negotiates it again (RFC 4301
//     acquire). The trap stays, as strongSwan's does, until `ipsecgw down`,
//     a reload that removes the conn, or shutdown;
//   - clear, none: nothing; the conn stays down.

// afterPeerGone applies the dpdaction (dpd true) or closeaction of each
// named conn once its SAs are gone. It runs on the loop of the IKE SA that
// ended (or lost the CHILD SAs); initiator is that SA's role.
func (m *Manager) afterPeerGone(names []string, dpd, initiator bool) {
	m.mu.Lock()
	cfg, closed := m.cfg, m.closed
	m.mu.Unlock()
	if closed {
		return
	}
	for _, n := range names {
		c, ok := cfg.Conn(n)
		if !ok {
			continue
		}
		action, what := c.CloseAction, "closeaction"
		if dpd {
			action, what = c.DPDAction, "dpdaction"
		}
		switch action {
		case config.ActionRestart:
			if dpd && !initiator {
				continue
			}
			m.log.Info(what+"=restart: negotiating the conn again", "conn", n)
			if err := m.Up(n); err != nil {
				m.log.Warn(what+"=restart", "conn", n, "err", err)
			}
		case config.ActionHold:
			m.holdTrap(c, what)
		}
	}
}

// holdTrap installs the trap policy of conn c for dpdaction=hold or
// closeaction=hold (what names which).
func (m *Manager) holdTrap(c config.Conn, what string) {
	if c.Auto == config.AutoRoute {
		return // its trap policy is installed all along
	}
	if c.Remote.IsAny() || !c.Remote.Addr.IsValid() && c.Remote.Host != "" && c.Remote.Host[0] == '%' {
		// Traffic could not make us initiate: there is no peer address.
		m.log.Warn(what+"=hold needs a known peer (right=%any): no trap policy installed", "conn", c.Name)
		return
	}
	if err := m.opts.Installer.InstallTrap(c); err != nil {
		m.log.Warn(what+"=hold: cannot install the trap policy", "conn", c.Name, "err", err)
		return
	}
	m.mu.Lock()
	closed := m.closed
	if !closed {
		m.holds[c.Name] = true
	}
	m.mu.Unlock()
	if closed {
		// Close removed the hold traps already; this one came too late.
		_ = m.opts.Installer.RemoveTrap(c.Name)
		return
	}
	m.log.Info(what+"=hold: trap policy installed, traffic for the conn negotiates it again", "conn", c.Name)
}

// releaseHold removes the trap policy holdTrap installed for a conn, if
// any (not the trap of an auto=route conn).
func (m *Manager) releaseHold(name string) {
	m.mu.Lock()
	held := m.holds[name]
	delete(m.holds, name)
	m.mu.Unlock()
	if !held {
		return
	}
	if err := m.opts.Installer.RemoveTrap(name); err != nil {
		m.log.Warn("removing the trap policy of dpdaction/closeaction=hold", "conn", name, "err", err)
	}
}

// held reports whether a hold trap policy is installed for a conn.
func (m *Manager) held(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.holds[name]
}

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
		sa.m.mu.Lock()
		c, ok := sa.m.cfg.Conn(n)
		sa.m.mu.Unlock()
		if !ok {
			continue
		}
		switch c.CloseAction {
		case config.ActionRestart:
			sa.log.Info("closeaction=restart: the peer deleted the CHILD SA, negotiating it again", "conn", n)
			sa.m.setState(n, StateConnecting)
			sa.upChild(c)
		case config.ActionHold:
			sa.m.holdTrap(c, "closeaction")
		}
	}
}
