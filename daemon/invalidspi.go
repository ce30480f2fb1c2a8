package daemon

import (
	"net/netip"
	"sync"
	"time"
)

// invalidSPIs carries the dataplane's reports of ESP with an SPI we do not
// know (esp.Config.OnUnknownSPI) to IKE, which tells the peer with an
// INVALID_SPI notification (RFC 7296 §2.21.4) inside its IKE SA, at most
// once per IKE SA every ikev2.InvalidSPIInterval.
//
// report runs on the packet path, where a flood of stray or forged ESP
// may arrive at line rate: it lets through one report per source address
// and second, and drops reports when the queue is full, so that the
// flood costs a map lookup per packet and never reaches IKE's locks.
type invalidSPIs struct {
	q chan invalidSPI

	mu   sync.Mutex
	last map[netip.Addr]time.Time // by source: when its last report went
}

type invalidSPI struct {
	spi uint32
	src netip.Addr
}

const (
	// invalidSPIQueue bounds the reports waiting for IKE.
	invalidSPIQueue = 64
	// invalidSPIEvery is the shortest time between two reports of one
	// source; IKE's own interval is longer, so nothing it would send is
	// lost.
	invalidSPIEvery = time.Second
	// invalidSPISources bounds the remembered sources (a flood from
	// spoofed addresses): beyond it the memory starts over.
	invalidSPISources = 4096
)

func newInvalidSPIs() invalidSPIs {
	return invalidSPIs{q: make(chan invalidSPI, invalidSPIQueue), last: map[netip.Addr]time.Time{}}
}

// report is esp.Config.OnUnknownSPI: it never blocks.
func (v *invalidSPIs) report(spi uint32, src netip.AddrPort) {
	a, now := src.Addr().Unmap(), time.Now()
	v.mu.Lock()
	if t, ok := v.last[a]; ok && now.Sub(t) < invalidSPIEvery {
		v.mu.Unlock()
		return
	}
	if len(v.last) >= invalidSPISources {
		clear(v.last)
	}
	v.last[a] = now
	v.mu.Unlock()
	select {
	case v.q <- invalidSPI{spi, a}:
	default:
	}
}

// run hands the queued reports to IKE until stop is closed.
func (v *invalidSPIs) run(stop <-chan struct{}, tell func(remote netip.Addr, spi uint32)) {
	for {
		select {
		case <-stop:
			return
		case r := <-v.q:
			tell(r.src, r.spi)
		}
	}
}
