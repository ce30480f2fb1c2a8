package daemon

import (
	"sync"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/ike"
	"github.com/ipsecgw/ipsecgw/ike/shared"
	"github.com/ipsecgw/ipsecgw/install"
)

// health keeps what the status's health and bandwidth fields need beyond
// the usage records: the outcome of each conn's last DPD check, from IKE's
// ExchangeDone events, and each conn's traffic rate over the last
// interval, from the usage records the sampler reads once a second.
type health struct {
	mu    sync.Mutex
	dpd   map[string]dpdResult
	start map[string]install.Usage // usage at the start of the interval
	since time.Time                // start of the current interval
	rates map[string]control.Bandwidth
	// latest takes each sample. It and start swap roles at the end of an
	// interval, and rates is refilled in place: sampling a hub's
	// thousands of conns every second allocates nothing once the maps
	// have grown.
	latest map[string]install.Usage
}

type dpdResult struct {
	at       time.Time
	answered bool
	rtt      time.Duration
}

func newHealth() *health {
	return &health{dpd: map[string]dpdResult{}, start: map[string]install.Usage{}, rates: map[string]control.Bandwidth{},
		latest: map[string]install.Usage{}}
}

// run folds IKE's events until the channel closes.
// isDPDDone selects the events health.run takes (its subscription's
// filter): the ends of DPD exchanges.
func isDPDDone(ev ike.Event) bool {
	x, ok := ev.(shared.ExchangeDone)
	return ok && x.DPD
}

func (h *health) run(events <-chan ike.Event, now func() time.Time) {
	for ev := range events {
		x, ok := ev.(shared.ExchangeDone)
		if !ok || !x.DPD {
			continue
		}
		r := dpdResult{at: now(), answered: !x.TimedOut, rtt: x.RTT}
		h.mu.Lock()
		for _, name := range x.Names {
			h.dpd[name] = r
		}
		h.mu.Unlock()
	}
}

// sample takes the usage records of now, which read writes into the map
// it is given: once an interval has passed since the last completed one,
// every conn's rate over it is computed.
func (h *health) sample(now time.Time, read func(into map[string]install.Usage)) {
	h.mu.Lock()
	defer h.mu.Unlock()
	read(h.latest)
	if h.since.IsZero() {
		h.since = now
		h.start, h.latest = h.latest, h.start
		return
	}
	elapsed := now.Sub(h.since)
	if elapsed < control.BandwidthInterval {
		return
	}
	rate := func(cur, old uint64) uint64 {
		if cur < old { // cannot happen with cumulative records; never wrap
			return 0
		}
		return uint64(float64(cur-old) / elapsed.Seconds())
	}
	clear(h.rates)
	for name, u := range h.latest {
		prev := h.start[name]
		h.rates[name] = control.Bandwidth{InBytesPerSecond: rate(u.BytesIn, prev.BytesIn), OutBytesPerSecond: rate(u.BytesOut, prev.BytesOut),
			IntervalSeconds: elapsed.Seconds()}
	}
	h.since = now
	h.start, h.latest = h.latest, h.start
}

// view returns a conn's health and bandwidth for the status. A nil
// health (a Gateway built by a unit test) knows no checks and no rates.
func (h *health) view(c config.Conn, u install.Usage, now time.Time) (control.Health, control.Bandwidth) {
	hl := control.Health{LastInboundSeconds: -1, DPD: control.DPDOff, LastDPDSeconds: -1, LastDPDRTTMillis: -1}
	if !u.LastInbound.IsZero() {
		hl.LastInboundSeconds = control.Uptime(u.LastInbound, now)
	}
	dpdOn := c.DPDAction != config.ActionNone && c.DPDDelay > 0
	if dpdOn {
		hl.DPD, hl.DPDDelaySeconds = control.DPDIdle, int64(c.DPDDelay/time.Second)
	}
	if h == nil {
		return hl, control.Bandwidth{}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if r, ok := h.dpd[c.Name]; ok && dpdOn {
		hl.DPD = control.DPDTimeout
		if r.answered {
			hl.DPD = control.DPDOK
		}
		hl.LastDPDSeconds = control.Uptime(r.at, now)
		if r.answered && r.rtt > 0 {
			hl.LastDPDRTTMillis = float64(r.rtt.Microseconds()) / 1000
		}
	}
	return hl, h.rates[c.Name]
}
