package ike

import (
	"sync"

	"github.com/ipsecgw/ipsecgw/ike/shared"
)

// Subscription delivers every event the Manager publishes, in order, from
// the moment Subscribe returned. The Manager never waits for a
// subscriber: events queue in the subscription until its reader takes
// them (IKE events are few — a handful per SA lifetime — so a slow reader
// costs memory, never a lost event or a stalled IKE SA).
type Subscription struct {
	m    *Manager
	out  chan shared.Event
	wake chan struct{}

	mu     sync.Mutex
	queue  []shared.Event
	closed bool
}

// Subscribe returns a new subscription; read its Events until it is
// closed (by Unsubscribe or the Manager's Close).
func (m *Manager) Subscribe() *Subscription {
	s := &Subscription{m: m, out: make(chan shared.Event), wake: make(chan struct{}, 1)}
	m.mu.Lock()
	if m.closed {
		s.closed = true
		close(s.out)
		m.mu.Unlock()
		return s
	}
	m.subs = append(m.subs, s)
	m.mu.Unlock()
	go s.pump()
	return s
}

// Events is the channel the events arrive on; it is closed when the
// subscription ends.
func (s *Subscription) Events() <-chan shared.Event { return s.out }

// Unsubscribe ends the subscription; events not yet read are dropped.
func (s *Subscription) Unsubscribe() {
	m := s.m
	m.mu.Lock()
	for i, x := range m.subs {
		if x == s {
			m.subs = append(m.subs[:i], m.subs[i+1:]...)
			break
		}
	}
	m.mu.Unlock()
	s.end(false)
}

// publishLocked queues ev for every subscriber. Called with m.mu held, so
// that all subscribers see the events in the order they were folded.
func (m *Manager) publishLocked(ev shared.Event) {
	for _, s := range m.subs {
		s.mu.Lock()
		if !s.closed {
			s.queue = append(s.queue, ev)
		}
		s.mu.Unlock()
		select {
		case s.wake <- struct{}{}:
		default:
		}
	}
}

// closeSubscriptions ends every subscription after its queued events
// (Manager.Close).
func (m *Manager) closeSubscriptions() {
	m.mu.Lock()
	subs := m.subs
	m.subs = nil
	m.mu.Unlock()
	for _, s := range subs {
		s.end(true)
	}
}

// end closes the subscription; with drain, the events already queued are
// still delivered first.
func (s *Subscription) end(drain bool) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	if !drain {
		s.queue = nil
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// pump moves queued events to the reader.
func (s *Subscription) pump() {
	defer close(s.out)
	for {
		s.mu.Lock()
		if len(s.queue) == 0 {
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return
			}
			<-s.wake
			continue
		}
		ev := s.queue[0]
		s.queue[0] = nil
		s.queue = s.queue[1:]
		s.mu.Unlock()
		select {
		case s.out <- ev:
		case <-s.wake:
			// Unsubscribe without drain while the reader is away: put the
			// event back and look at the flags again.
			s.mu.Lock()
			if s.closed && s.queue == nil {
				s.mu.Unlock()
				return
			}
			s.queue = append([]shared.Event{ev}, s.queue...)
			s.mu.Unlock()
		}
	}
}
