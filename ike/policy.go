package ike

import (
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/shared"
)

// What happens to a conn whose SAs ended without us asking: dpdaction= when
// the peer stopped answering, closeaction= when the peer deleted them.
// For whole IKE SAs of any version they are applied here; CHILD SAs the
// peer deleted under a living IKE SA are the engine's business (it
// re-creates them on that SA, or asks the Host to Hold). Both take
// strongSwan's values:
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
// named conn once its IKE SA is gone (emit calls it for an IKEDown with
// CausePeerDead or CausePeerDeleted, on the loop of the IKE SA that
// ended); initiator is that SA's role.
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

// keyingAttempt counts one more unanswered initiation of a conn and
// returns how many there were before it, counting the first as 1.
func (m *Manager) keyingAttempt(name string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.attempts[name]++
	return m.attempts[name]
}

func (m *Manager) resetKeying(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.attempts, name)
}

// retryLater arms the fixed-interval retry of an auto=start conn whose
// keyingtries are used up (Options.KeyingRetryInterval), and reports
// whether it did. The attempt counter is left at its limit, so each later
// attempt that goes unanswered arms the next retry after one try instead
// of another round of keyingtries: a gateway that lost its peer keeps
// knocking at a steady pace (the private-cloud product: every 12 s after 3
// failures) until the peer answers, which resets the counter.
func (m *Manager) retryLater(c config.Conn) bool {
	iv := m.opts.KeyingRetryInterval
	if iv <= 0 || c.Auto != config.AutoStart {
		return false
	}
	m.clock.AfterFunc(iv, func() {
		m.mu.Lock()
		closed := m.closed
		cur, ok := m.cfg.Conn(c.Name)
		s := m.status[c.Name]
		failed := s != nil && s.State == StatePhase1Failed
		m.mu.Unlock()
		// Not after Close, a removed or changed-to-manual conn, or a conn
		// that came up or was taken down meanwhile.
		if closed || !ok || cur.Auto != config.AutoStart || !failed {
			return
		}
		m.log.Info("keyingtries used up: trying again", "conn", c.Name, "interval", iv)
		if err := m.Up(c.Name); err != nil {
			m.log.Warn("keying retry", "conn", c.Name, "err", err)
		}
	})
	return true
}

// Back-off of refusedRetry: the first retry after refusedRetryBase,
// doubling up to refusedRetryMax.
const (
	refusedRetryBase = 2 * time.Second
	refusedRetryMax  = 2 * time.Minute
)

// refusedRetry keeps a conn with keyingtries=%forever coming back when an
// initiation of ours failed with an answer (the peer refused a proposal,
// the ID or the PSK, or could not be resolved) rather than with silence,
// which RetryKeying covers: it initiates again after a back-off of 2 s
// doubling to 2 min, until the conn is up, taken down or reconfigured. A
// peer that is restarting or reloading answers NO_PROPOSAL_CHOSEN or
// AUTHENTICATION_FAILED for a moment, and a gateway that must keep its
// tunnels up (dpdaction=restart, closeaction=restart, auto=start) should
// not give up on that, as Libreswan does not with keyingtries=%forever;
// strongSwan 5.9 stops after such an answer. With a finite keyingtries a
// refusal stays final.
func (m *Manager) refusedRetry(f shared.Failure) {
	m.mu.Lock()
	c, ok := m.cfg.Conn(f.Conn)
	if !ok || c.KeyingTries != 0 || m.closed {
		m.mu.Unlock()
		return
	}
	n := m.refused[f.Conn]
	m.refused[f.Conn] = n + 1
	m.mu.Unlock()
	delay := refusedRetryMax
	if n < 6 && refusedRetryBase<<n < refusedRetryMax {
		delay = refusedRetryBase << n
	}
	m.log.Info("keyingtries=%forever: initiating again after a refused attempt", "conn", f.Conn, "in", delay, "reason", f.Text)
	m.clock.AfterFunc(delay, func() {
		m.mu.Lock()
		closed := m.closed
		cur, ok := m.cfg.Conn(f.Conn)
		s := m.status[f.Conn]
		failed := s != nil && (s.State == StatePhase1Failed || s.State == StatePhase2Failed)
		m.mu.Unlock()
		// Not after Close, for a removed conn or one whose keyingtries
		// changed, or a conn that came up, was taken down or is being
		// negotiated meanwhile.
		if closed || !ok || cur.KeyingTries != 0 || !failed {
			return
		}
		if err := m.Up(f.Conn); err != nil {
			m.log.Warn("retry after a refused attempt", "conn", f.Conn, "err", err)
		}
	})
}
