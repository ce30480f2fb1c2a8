package esp

import (
	"net/netip"
	"sync"
	"time"

	"github.com/ipsecgw/ipsecgw/esp/conn"
)

// larvalHold keeps, for a moment, ESP packets that found no inbound SA
// but whose SPI we allocated for a negotiation still in flight: reserved
// in the SAD, not installed yet. The dataplane's "no SA" path asks it
// (writeBatch); packets with an SA never reach it.
//
// A peer answering IKE_AUTH (or a CREATE_CHILD_SA that is not a rekey)
// installs the new CHILD SA while it sends its response and may use it at
// once. strongSwan does, as the responder of a make-before-break
// reauthentication: its first ESP packet on the new SA follows its
// IKE_AUTH response by ~0.2 ms. Both arrive in order, but IKE processes the
// response on its own goroutine (authentication, key derivation, install)
// while the dataplane handles the ESP packet immediately, so without the
// hold that packet finds no SA and is lost. Held packets go through the
// dataplane again (HandleESP), in arrival order, as soon as their SA is
// installed; if it never is (the negotiation failed), they are dropped at
// the deadline and counted as "no SA", as they would have been at once.
//
// Only reserved SPIs are held, so a flood of random SPIs costs one locked
// map lookup per packet and no memory.
type larvalHold struct {
	next      conn.ESPHandler
	installed func(spi uint32) bool // lock-free: an inbound SA has this SPI
	reserved  func(spi uint32) bool // allocated and not yet installed or released
	wait      time.Duration         // longest a packet is held
	poll      time.Duration         // how often held SPIs are checked
	// expired counts the packets of a queue whose deadline passed.
	expired func(n int)
	// released, if set, learns of every queue passed on or dropped: n
	// packets of spi, installed false when the deadline passed first.
	released func(spi uint32, n int, installed bool)

	mu     sync.Mutex
	q      map[uint32]*larvalQueue
	timer  *time.Timer // armed while anything is held
	closed bool
}

type larvalQueue struct {
	pkts     []conn.ESPPacket // copies: the caller reuses its buffers
	deadline time.Time
}

const (
	// larvalWait covers IKE's processing of a response on a loaded
	// machine many times over; a negotiation that has not installed its
	// SA by then will not deliver these packets anyway.
	larvalWait = 500 * time.Millisecond
	// larvalPoll is how long a held packet may wait after its SA is
	// installed. Polling keeps the hold out of the installer's and IKE's
	// paths; it only runs while something is held.
	larvalPoll = 200 * time.Microsecond
	// maxLarvalSPIs and maxLarvalPackets bound the memory (~6 MB at
	// 1500-byte packets); beyond them packets take the old path.
	maxLarvalSPIs    = 16
	maxLarvalPackets = 256
)

func newLarvalHold(next conn.ESPHandler, installed, reserved func(uint32) bool) *larvalHold {
	return &larvalHold{
		next: next, installed: installed, reserved: reserved,
		wait: larvalWait, poll: larvalPoll, q: map[uint32]*larvalQueue{},
	}
}

// hold keeps a copy of an ESP packet (from src) whose SPI has no inbound
// SA, if the SPI is reserved and the limits allow; false means the caller
// drops it. ah marks an AH packet as the raw AH socket delivered it, which
// is passed on as such.
func (h *larvalHold) hold(spi uint32, pkt []byte, src netip.AddrPort, ah bool) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed || !h.reserved(spi) {
		return false
	}
	q := h.q[spi]
	if q == nil {
		if len(h.q) >= maxLarvalSPIs {
			return false
		}
		q = &larvalQueue{deadline: time.Now().Add(h.wait)}
		h.q[spi] = q
	}
	if len(q.pkts) >= maxLarvalPackets {
		return false
	}
	b := append([]byte(nil), pkt...)
	q.pkts = append(q.pkts, conn.ESPPacket{Buf: b, Len: len(b), Src: src, AH: ah})
	if h.timer == nil {
		h.timer = time.AfterFunc(h.poll, h.check)
	}
	return true
}

// check passes on the packets of every SPI now installed and drops those
// past their deadline, and polls again while anything is still held.
func (h *larvalHold) check() {
	now := time.Now()
	type done struct {
		spi       uint32
		pkts      []conn.ESPPacket
		installed bool
	}
	var ready []done
	h.mu.Lock()
	h.timer = nil
	if h.closed {
		h.mu.Unlock()
		return
	}
	for spi, q := range h.q {
		if in := h.installed(spi); in || !now.Before(q.deadline) {
			ready = append(ready, done{spi, q.pkts, in})
			delete(h.q, spi)
		}
	}
	if len(h.q) > 0 {
		h.timer = time.AfterFunc(h.poll, h.check)
	}
	h.mu.Unlock()
	// Outside the lock: the dataplane may block for back-pressure.
	for _, r := range ready {
		if r.installed {
			h.next(r.pkts)
		} else if h.expired != nil {
			h.expired(len(r.pkts))
		}
		if h.released != nil {
			h.released(r.spi, len(r.pkts), r.installed)
		}
	}
}

// close drops whatever is held and stops polling; later packets are not
// held.
func (h *larvalHold) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	if h.timer != nil {
		h.timer.Stop()
		h.timer = nil
	}
	clear(h.q)
}
