package ike

import (
	"slices"

	"github.com/ipsecgw/ipsecgw/ike/shared"
)

// connState is what Status reports for a conn: the fold of the events
// about it. ikeSPI is our SPI of the IKE SA the status shows (0: none), so
// that the end of another IKE SA (a rekeyed or reauthenticated one) does
// not clear it.
type connState struct {
	shared.ConnStatus
	ikeSPI uint64
}

// ourSPI is our SPI of an IKE SA: the initiator's when we initiated it.
func ourSPI(i shared.IKEInfo) uint64 {
	if i.Initiator {
		return i.SPIi
	}
	return i.SPIr
}

// st returns the conn's state record, creating it. Called with m.mu held.
func (m *Manager) st(name string) *connState {
	s := m.status[name]
	if s == nil {
		s = &connState{ConnStatus: shared.ConnStatus{Name: name, State: StateDown}}
		m.status[name] = s
	}
	return s
}

// setIKE shows an IKE SA in the conn's status.
func (s *connState) setIKE(i shared.IKEInfo) {
	s.IKEInfo, s.ikeSPI = i, ourSPI(i)
}

// clearIKE removes the IKE SA from the conn's status.
func (s *connState) clearIKE() {
	s.IKEInfo, s.ikeSPI = shared.IKEInfo{}, 0
}

// removeChild drops a CHILD SA (by our SPI) from the conn's status.
func (s *connState) removeChild(inSPI uint32) {
	s.Children = slices.DeleteFunc(s.Children, func(c shared.ChildInfo) bool { return c.InSPI == inSPI })
}

// established marks the conn up: the failure of an earlier attempt no
// longer applies.
func (s *connState) established() {
	s.State, s.Reason, s.Cause = StateEstablished, "", shared.CauseNone
}

// fold applies an event to the status. Called with m.mu held.
func (m *Manager) fold(ev shared.Event) {
	switch e := ev.(type) {
	case shared.Initiating:
		m.st(e.Conn).State = StateConnecting
	case shared.IKEUpdated:
		for _, n := range e.Names {
			m.st(n).setIKE(e.IKE)
		}
	case shared.IKEUp:
		for _, n := range e.Names {
			m.st(n).setIKE(e.IKE)
			delete(m.attempts, n) // keyingtries count from the next failure
			delete(m.refused, n)
		}
	case shared.IKERekeyed:
		old := ourSPI(e.Old)
		for name, s := range m.status {
			if s.ikeSPI != old && !slices.Contains(e.Names, name) {
				continue
			}
			s.setIKE(e.New)
			if len(s.Children) > 0 {
				s.established()
			}
		}
	case shared.IKEDown:
		spi := ourSPI(e.IKE)
		for _, s := range m.status {
			for _, c := range e.Children {
				s.removeChild(c.InSPI)
			}
			if s.ikeSPI != spi {
				continue
			}
			s.clearIKE()
			// CHILD SAs left are not this IKE SA's: a rekeyed successor
			// took them over and reports itself (IKERekeyed) in its own
			// loop, maybe after this end. The conn is still up then.
			if !e.Failed && len(s.Children) == 0 && (s.State == StateEstablished || s.State == StateConnecting) {
				s.State = StateDown
			}
		}
	case shared.ChildUp:
		s := m.st(e.Conn)
		s.setIKE(e.IKE)
		s.Children = append(s.Children, e.Child)
		s.established()
	case shared.ChildRekeyed:
		s := m.st(e.Conn)
		s.setIKE(e.IKE)
		s.Children = append(s.Children, e.New)
		s.established()
	case shared.ChildDown:
		s := m.st(e.Conn)
		s.removeChild(e.Child.InSPI)
		if len(s.Children) == 0 {
			s.State = StateDown
		}
		if s.ikeSPI == ourSPI(e.IKE) {
			if e.Left {
				s.clearIKE()
			} else {
				s.setIKE(e.IKE)
			}
		}
	case shared.Failure:
		s := m.st(e.Conn)
		s.State, s.Reason, s.Cause = e.State, e.Text, e.Cause
	}
}

// emit folds an event into the status, publishes it and the state
// changes it caused to every subscriber, in that order, and applies the
// policies it triggers (after the lock is released: they may initiate).
func (m *Manager) emit(ev shared.Event) {
	m.mu.Lock()
	before := map[string][2]string{}
	for _, n := range ev.Conns() {
		if s := m.status[n]; s != nil {
			before[n] = [2]string{string(s.State), s.Reason}
		} else {
			before[n] = [2]string{string(StateDown), ""}
		}
	}
	if down, ok := ev.(shared.IKEDown); ok {
		// The end of an IKE SA changes the conns that show it, whichever
		// they are.
		for n, s := range m.status {
			if _, seen := before[n]; !seen && s.ikeSPI == ourSPI(down.IKE) {
				before[n] = [2]string{string(s.State), s.Reason}
			}
		}
	}
	m.fold(ev)
	m.publishLocked(ev)
	for n, b := range before {
		s := m.status[n]
		if s == nil || (string(s.State) == b[0] && s.Reason == b[1]) {
			continue
		}
		m.publishLocked(shared.StateChanged{Conn: n, From: shared.State(b[0]), To: s.State, Reason: s.Reason, Status: m.snapshot(s)})
	}
	closed := m.closed
	m.mu.Unlock()
	if f, ok := ev.(shared.Failure); ok && !closed && before[f.Conn][0] == string(StateConnecting) {
		m.refusedRetry(f)
	}
	if down, ok := ev.(shared.IKEDown); ok && !closed {
		switch down.Cause {
		case shared.CausePeerDead:
			m.afterPeerGone(down.Names, true, down.IKE.Initiator)
		case shared.CausePeerDeleted:
			m.afterPeerGone(down.Names, false, down.IKE.Initiator)
		}
	}
}

// snapshot copies a conn's status for callers.
func (m *Manager) snapshot(s *connState) ConnStatus {
	cs := s.ConnStatus
	cs.Children = slices.Clone(s.Children)
	return cs
}

// Status reports every configured conn, of either IKE version, in
// configuration order.
func (m *Manager) Status() []ConnStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	// The shared conns, not cfg.Conns(): that deep copy of every conn made
	// each status request (the daemon's STATUS= line, the control socket)
	// of a gateway with thousands of conns allocate megabytes.
	out := make([]ConnStatus, 0, len(m.conns))
	for _, c := range m.conns {
		if s := m.status[c.Name]; s != nil {
			out = append(out, m.snapshot(s))
		} else {
			out = append(out, ConnStatus{Name: c.Name, State: StateDown})
		}
	}
	return out
}
