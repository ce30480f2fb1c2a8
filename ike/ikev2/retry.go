package ikev2

import "github.com/ipsecgw/ipsecgw/config"

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
		failed := s != nil && s.state == StatePhase1Failed
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
