package ike

import (
	"bytes"
	"fmt"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/ipsecgw/ipsecgw/ike/shared"
)

// An IKE SA that the peer deleted is gone as soon as we answered the
// DELETE (RFC 7296 §1.4.1), so a retransmission of that DELETE finds no SA
// and goes unanswered: the peer then retransmits for its whole schedule
// (strongSwan: ~165 s) with its SA stuck in DELETING. Our answer can be
// lost like any datagram, and strongSwan loses it by itself in one race: the
// redundant IKE SA of a rekey collision it lost sends its DELETE before the
// SA is registered under our SPI, and drops our answer if it arrives first.
// So the Manager keeps the request and the answer of each such DELETE for a
// while and answers a byte-identical retransmission from them.

const (
	// deletedAnswerLinger covers the first retransmissions of a typical
	// schedule (strongSwan: 4, 11.2, 24.2 s; ours the same).
	deletedAnswerLinger = 30 * time.Second
	// maxDeletedAnswers bounds the memory the cache holds (two small
	// datagrams each) when many SAs are deleted at once.
	maxDeletedAnswers = 1024
)

// deletedAnswer is the DELETE that ended one IKE SA and our answer to it.
type deletedAnswer struct {
	local, remote     netip.AddrPort
	request, response []byte
	until             time.Time
	// answeredAt is when the response last went out (unix nanoseconds),
	// for shared.AnswerGap; atomic, as copies are answered outside the
	// Manager's lock.
	answeredAt atomic.Int64
}

// AnsweredDelete keeps a peer's DELETE of an IKE SA and our answer (see
// above); called by the engine as the SA ends.
func (h *host) AnsweredDelete(spi uint64, local, remote netip.AddrPort, request, response []byte) {
	m := h.m()
	now := m.clock.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	// Entries are appended in time order, so the expired ones, and the
	// oldest when the cache is full, are at the front.
	drop := 0
	for drop < len(m.deletedOrder) {
		a := m.deleted[m.deletedOrder[drop]]
		if a != nil && now.Before(a.until) && len(m.deletedOrder)-drop < maxDeletedAnswers {
			break
		}
		delete(m.deleted, m.deletedOrder[drop])
		drop++
	}
	m.deletedOrder = append(m.deletedOrder[:0], m.deletedOrder[drop:]...)
	if m.deleted == nil {
		m.deleted = map[uint64]*deletedAnswer{}
	}
	if _, dup := m.deleted[spi]; !dup {
		m.deletedOrder = append(m.deletedOrder, spi)
	}
	a := &deletedAnswer{local: local, remote: remote, request: bytes.Clone(request),
		response: bytes.Clone(response), until: now.Add(deletedAnswerLinger)}
	a.answeredAt.Store(now.UnixNano())
	m.deleted[spi] = a
}

// answerDeleted answers a retransmitted DELETE for an IKE SA that no
// longer exists from a, its cache entry (taken under the Manager's lock
// with the SA lookup that failed); it reports whether pkt was one. Only a
// byte-identical copy of the request from the same peer is answered: it
// passed the integrity check once, as a retransmission to a live SA must
// (anyone can replay it, and gets no more than the live SA would give).
func (m *Manager) answerDeleted(a *deletedAnswer, spi uint64, remote netip.AddrPort, pkt []byte) bool {
	now := m.clock.Now()
	if !now.Before(a.until) || remote != a.remote || !bytes.Equal(pkt, a.request) {
		return false
	}
	last := a.answeredAt.Load()
	if !shared.AnswerDue(time.Unix(0, last), now) || !a.answeredAt.CompareAndSwap(last, now.UnixNano()) {
		m.drops.Drop(m.log, shared.DropRetransmitLimited, "retransmitted DELETE of an ended IKE SA within the answer gap dropped",
			"remote", remote, "spi", fmt.Sprintf("%016x", spi))
		return true
	}
	m.drops.Drop(m.log, shared.DropRetransmission, "retransmitted DELETE of an ended IKE SA answered from cache",
		"remote", remote, "spi", fmt.Sprintf("%016x", spi))
	if err := m.opts.Send(a.local, a.remote, a.response); err != nil {
		m.log.Debug("send failed", "remote", remote, "err", err)
	}
	return true
}
