package daemon

import (
	"encoding/binary"
	"sync"
	"time"

	"github.com/ipsecgw/ipsecgw/esp/conn"
)

// larvalHold sits in front of the dataplane's inbound path and keeps, for
// a moment, ESP packets for an SPI we allocated for a negotiation still in
// flight: reserved in the SAD, not installed yet.
//
// A peer answering IKE_AUTH (or a CREATE_CHILD_SA that is not a rekey)
// installs the new CHILD SA while it sends its response and may use it at
// once. strongSwan does, as the responder of a make-before-break
// reauthentication: its first ESP packet on the new SA follows its
// IKE_AUTH response by ~0.2 ms. Both arrive in order, but IKE processes the
// response on its own goroutine (authentication, key derivation, install)
// while the dataplane handles the ESP packet immediately, so without the
// hold that packet finds no SA and is lost. Held packets continue into the
// dataplane, in arrival order, as soon as their SA is installed; if it
// never is (the negotiation failed), they go there at the deadline anyway
// and are counted as "no SA" drops, as they would have been.
//
// Only reserved SPIs are held, so a flood of random SPIs costs one locked
// map lookup per packet and no memory; packets whose SA is installed pass
// through without a lock, a copy or an allocation.
type larvalHold struct {
	next      conn.ESPHandler
	installed func(spi uint32) bool // lock-free: an inbound SA has this SPI
	reserved  func(spi uint32) bool // allocated and not yet installed or released
	wait      time.Duration         // longest a packet is held
	poll      time.Duration         // how often held SPIs are checked
	// released, if set, learns of every queue passed on: n packets of spi,
	// installed false when the deadline passed first.
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

// HandleESP is a conn.ESPHandler: it passes the batch on, minus the
// packets it holds.
func (h *larvalHold) HandleESP(batch []conn.ESPPacket) {
	start := 0
	for i := range batch {
		b := batch[i].Bytes()
		if len(b) < 4 {
			continue // the dataplane drops it as malformed
		}
		spi := binary.BigEndian.Uint32(b)
		if h.installed(spi) || !h.hold(spi, &batch[i]) {
			continue
		}
		if i > start {
			h.next(batch[start:i])
		}
		start = i + 1
	}
	if start < len(batch) {
		h.next(batch[start:])
	}
}

// hold keeps a copy of p if its SPI is reserved and the limits allow.
func (h *larvalHold) hold(spi uint32, p *conn.ESPPacket) bool {
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
	b := append([]byte(nil), p.Bytes()...)
	q.pkts = append(q.pkts, conn.ESPPacket{Buf: b, Len: len(b), Src: p.Src, UDP: p.UDP})
	if h.timer == nil {
		h.timer = time.AfterFunc(h.poll, h.check)
	}
	return true
}

// check passes on the packets of every SPI now installed or past its
// deadline, and polls again while anything is still held.
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
		h.next(r.pkts)
		if h.released != nil {
			h.released(r.spi, len(r.pkts), r.installed)
		}
	}
}

// close drops whatever is held and stops polling; later packets pass
// straight through.
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
