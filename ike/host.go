package ike

import (
	"crypto"
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/shared"
)

// host is the Manager as the engines see it (shared.Host). A separate
// method set keeps the engine-facing calls out of the Manager's public
// API.
type host Manager

var _ shared.Host = (*host)(nil)

func (h *host) m() *Manager { return (*Manager)(h) }

func (h *host) Config() *config.Config { return h.m().config() }

func (h *host) Emit(ev shared.Event) { h.m().emit(ev) }

func (h *host) Register(sa shared.SA, initiator bool, remote netip.Addr) (uint64, error) {
	m := h.m()
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return 0, errors.New("ike: manager closed")
	}
	spi := randomSPI()
	for m.sas[spi] != nil {
		spi = randomSPI()
	}
	e := &entry{sa: sa, spi: spi, initiator: initiator, remote: remote}
	m.sas[spi] = e
	m.entries[sa] = e
	m.wg.Add(1)
	return spi, nil
}

func (h *host) Unregister(sa shared.SA) {
	m := h.m()
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entries[sa]
	if e == nil {
		return
	}
	delete(m.entries, sa)
	delete(m.sas, e.spi)
	m.unindexIDsLocked(e)
	m.unindexPeerLocked(e)
	if e.half != nil {
		delete(m.halfOpen, *e.half)
		m.halfOpenLeftLocked()
	}
	m.wg.Done()
}

func (h *host) AddHalfOpen(sa shared.SA, remote netip.AddrPort, spiI uint64) bool {
	m := h.m()
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.entries[sa]
	// Checked again under the lock: two receive goroutines (IPv4, IPv6)
	// may both have passed the Manager's first check.
	if e == nil || len(m.halfOpen) >= m.opts.HalfOpenLimit {
		if e != nil {
			m.drops.Count(shared.DropHalfOpenLimit)
		}
		return false
	}
	k := halfKey{remote, spiI}
	e.half = &k
	m.halfOpen[k] = e
	return true
}

func (h *host) LeaveHalfOpen(sa shared.SA) {
	m := h.m()
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.entries[sa]; e != nil && e.half != nil {
		if m.halfOpen[*e.half] == e {
			delete(m.halfOpen, *e.half)
			m.halfOpenLeftLocked()
		}
		e.half = nil
	}
}

// halfOpenLeftLocked follows a delete from halfOpen. A Go map keeps the
// room it grew to: the one a storm of new peers (a hub's restart) filled
// with thousands of half-open SAs would hold some 100 B per SA for good.
// Once empty it is replaced with a new one.
func (m *Manager) halfOpenLeftLocked() {
	if len(m.halfOpen) == 0 {
		m.halfOpen = map[halfKey]*entry{}
	}
}

func (h *host) ServePeer(sa shared.SA, c *config.Conn) {
	m := h.m()
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.entries[sa]; e != nil {
		m.unindexPeerLocked(e)
		e.peerConn = c
		if c != nil {
			k := servedPeerOf(c)
			m.byPeer[k] = append(m.byPeer[k], e)
			m.servingFrom[e.remote] = append(m.servingFrom[e.remote], e)
		}
	}
}

// servedPeer is what samePeer compares first: conns with different keys
// never have the same peer.
type servedPeer struct {
	version config.IKEVersion
	remote  netip.Addr
}

func servedPeerOf(c *config.Conn) servedPeer { return servedPeer{c.Version, c.Remote.Addr} }

// unindexPeerLocked takes e out of byPeer and servingFrom (an SA that
// ends, or stops or changes serving a peer).
func (m *Manager) unindexPeerLocked(e *entry) {
	if e.peerConn == nil {
		return
	}
	dropFrom(m.byPeer, servedPeerOf(e.peerConn), e)
	dropFrom(m.servingFrom, e.remote, e)
}

// dropFrom removes e from index[k], and k once its list is empty.
func dropFrom[K comparable](index map[K][]*entry, k K, e *entry) {
	same := slices.DeleteFunc(index[k], func(o *entry) bool { return o == e })
	if len(same) == 0 {
		delete(index, k)
	} else {
		index[k] = same
	}
}

func (h *host) Authenticated(sa shared.SA, ids string) []shared.SA {
	m := h.m()
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.entries[sa]; e != nil && e.ids != ids {
		m.unindexIDsLocked(e)
		e.ids = ids
		m.byIDs[ids] = append(m.byIDs[ids], e)
	}
	var out []shared.SA
	for _, o := range m.byIDs[ids] {
		if o.sa != sa {
			out = append(out, o.sa)
		}
	}
	return out
}

// unindexIDsLocked takes e out of byIDs (an SA that ends, or is
// authenticated again under other IDs).
func (m *Manager) unindexIDsLocked(e *entry) {
	if e.ids == "" {
		return
	}
	dropFrom(m.byIDs, e.ids, e)
}

func (h *host) HasPeerSA(sa shared.SA, c config.Conn) bool {
	m := h.m()
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, o := range m.byPeer[servedPeerOf(&c)] {
		if o.sa != sa && samePeer(*o.peerConn, c) {
			return true
		}
	}
	return false
}

func (h *host) ReqID(c config.Conn) uint32 { return h.m().reqid(c) }

// Candidates lists the conns a responder may use for a request from
// remote arriving at local: of the version, not ignored, local address
// matching (or unset), remote address matching or %any.
func (h *host) Candidates(version int, local, remote netip.AddrPort) []*config.Conn {
	la, ra := local.Addr().Unmap(), remote.Addr().Unmap()
	var exact, wildcard []*config.Conn
	for _, c := range h.m().sharedConns() {
		if c.Auto == config.AutoIgnore || !speaks(*c, version) {
			continue
		}
		if c.Local.Addr.IsValid() && !c.Local.Addr.IsUnspecified() && c.Local.Addr.Unmap() != la {
			continue
		}
		switch {
		case c.Remote.Addr.IsValid() && !c.Remote.Addr.IsUnspecified():
			if c.Remote.Addr.Unmap() == ra {
				exact = append(exact, c)
			}
		case c.Remote.IsAny() || !c.Remote.Addr.IsValid() || c.Remote.Addr.IsUnspecified():
			wildcard = append(wildcard, c)
		}
	}
	return append(exact, wildcard...)
}

// speaks reports whether a conn accepts IKE major version v as responder:
// keyexchange=ikev2 takes 2, ikev1 takes 1, and "ike" both.
func speaks(c config.Conn, v int) bool { return c.Version.Accepts(v) }

func (h *host) PSK(local, remote config.Identity) ([]byte, bool) {
	p, ok := h.m().config().Secrets().LookupPSK(local, remote)
	if !ok {
		return nil, false
	}
	return p.Bytes(), true
}

func (h *host) Trust() *config.TrustStore { return h.m().config().Trust() }

func (h *host) PrivateKey(pub crypto.PublicKey) (crypto.Signer, bool) {
	return h.m().config().Secrets().PrivateKey(pub)
}

func (h *host) RetryKeying(c config.Conn) (int, string, bool) {
	m := h.m()
	n := m.keyingAttempt(c.Name)
	if c.KeyingTries != 0 && n >= c.KeyingTries {
		if !m.retryLater(c) {
			m.resetKeying(c.Name)
		}
		return n, "", false
	}
	limit := "%forever"
	if c.KeyingTries != 0 {
		limit = fmt.Sprint(c.KeyingTries)
	}
	return n, limit, true
}

func (h *host) Up(name string) error { return h.m().Up(name) }

func (h *host) Hold(c config.Conn, what string) { h.m().holdTrap(c, what) }
