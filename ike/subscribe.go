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
	// dropped: Unsubscribe ended the subscription; the events not yet
	// delivered, the one pump holds included, are not.
	dropped bool
	// inFlight: pump holds an event taken from queue and not yet in out.
	inFlight bool
	// keep selects the events delivered (nil: all).
	keep func(shared.Event) bool
}

// subscriptionBuffer is the room in a subscription's channel. An event
// goes straight into it when nothing is queued before it, so that a
// reader keeping up is woken once per event rather than once by the
// publisher for the pump and once more by the pump; only what a slow
// reader leaves behind takes the pump's way.
const subscriptionBuffer = 32

// Subscribe returns a new subscription; read its Events until it is
// closed (by Unsubscribe or the Manager's Close). With keep, only the
// events every keep function selects are delivered (in order): a reader
// that wants a few kinds is then not woken for every SA that comes up.
// keep runs while the Manager publishes, under its lock: it must be quick
// and must not call the Manager.
func (m *Manager) Subscribe(keep ...func(Event) bool) *Subscription {
	s := &Subscription{m: m, out: make(chan shared.Event, subscriptionBuffer), wake: make(chan struct{}, 1)}
	switch len(keep) {
	case 0:
	case 1:
		s.keep = keep[0]
	default:
		s.keep = func(ev Event) bool {
			for _, k := range keep {
				if !k(ev) {
					return false
				}
			}
			return true
		}
	}
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
		if s.keep != nil && !s.keep(ev) {
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			continue
		}
		if len(s.queue) == 0 && !s.inFlight {
			// Everything published before is in out already, so this
			// event may follow it there; out is closed only once closed
			// is set, which s.mu orders before this send.
			select {
			case s.out <- ev:
				s.mu.Unlock()
				continue
			default:
			}
		}
		s.queue = append(s.queue, ev)
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
		s.queue, s.dropped = nil, true
		// And what is waiting in the channel's buffer.
		for len(s.out) > 0 {
			select {
			case <-s.out:
			default:
			}
		}
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// pump moves queued events to the reader. A burst (thousands of SAs
// coming up at once) may queue many events while the reader is busy:
// the queue's array is let go once it is empty, not kept at the
// burst's size, and the wake-ups of events published meanwhile leave
// the queue as it is.
func (s *Subscription) pump() {
	defer close(s.out)
	for {
		s.mu.Lock()
		s.inFlight = false
		if s.dropped {
			s.mu.Unlock()
			return
		}
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
		if len(s.queue) == 0 {
			s.queue = nil
		}
		s.inFlight = true
		s.mu.Unlock()
		if !s.deliver(ev) {
			return
		}
	}
}

// deliver hands ev to the reader; it reports false when Unsubscribe
// dropped the subscription meanwhile.
func (s *Subscription) deliver(ev shared.Event) bool {
	for {
		select {
		case s.out <- ev:
			return true
		case <-s.wake:
			// A new event was queued, or the subscription ended.
			s.mu.Lock()
			dropped := s.dropped
			s.mu.Unlock()
			if dropped {
				return false
			}
		}
	}
}
