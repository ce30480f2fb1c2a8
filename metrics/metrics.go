package metrics

import (
	"net/http"
	"runtime"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/ike"
	"github.com/ipsecgw/ipsecgw/ike/shared"
)

// Source is what a scrape reads: the daemon's status of every configured
// conn (usage included) and its counters.
type Source interface {
	Status() []control.ConnStatus
	Stats() control.Stats
}

// BuildInfo labels ipsecgw_build_info.
type BuildInfo struct {
	Version, Commit string
}

// states are the conn states, each a series of ipsecgw_conn_state.
var states = []string{control.StateDown, control.StateConnecting, control.StateEstablished, control.StatePhase1Failed, control.StatePhase2Failed}

// RTTBuckets are the bounds of the exchange round-trip histogram: from a
// LAN peer (a millisecond) to a peer across the world whose answer needs a
// slow key exchange (seconds).
var RTTBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

// Metrics is the registry with ipsecgw's collectors.
type Metrics struct {
	reg *prometheus.Registry
	src Source
	rtt *prometheus.HistogramVec

	mu    sync.Mutex
	conns map[string]*connEvents
	// rttConns are the conns with round-trip series.
	rttConns []string
}

// connEvents are the event counts of one conn.
type connEvents struct {
	ikeRekeys, childRekeys, dpdTimeouts uint64
	failures                            map[string]uint64 // by cause
}

// New builds the metrics of a daemon reading src at each scrape.
func New(src Source, build BuildInfo) *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry(), src: src, conns: map[string]*connEvents{}}
	m.rtt = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "ipsecgw_ike_exchange_rtt_seconds",
		Help:    "Round trip of IKE requests we sent that were answered without a retransmission, by conn and exchange.",
		Buckets: RTTBuckets,
	}, []string{"conn", "exchange"})
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "ipsecgw_build_info",
		Help:        "The running ipsecgw build (always 1).",
		ConstLabels: prometheus.Labels{"version": build.Version, "commit": build.Commit, "goversion": runtime.Version()},
	})
	info.Set(1)
	m.reg.MustRegister(m.rtt, info, (*collector)(m),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Before the gathering, which runs the collectors concurrently:
		// the histogram would otherwise still show a removed conn once.
		m.prune()
		h.ServeHTTP(w, r)
	})
}

// prune drops the event-fed series of conns no longer configured (a
// reload removed them).
func (m *Metrics) prune() {
	var names []string
	for _, cs := range m.src.Status() {
		names = append(names, cs.Name)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for n := range m.conns {
		if !slices.Contains(names, n) {
			delete(m.conns, n)
		}
	}
	for _, n := range m.rttConns {
		if !slices.Contains(names, n) {
			m.rtt.DeletePartialMatch(prometheus.Labels{"conn": n})
		}
	}
	m.rttConns = slices.DeleteFunc(m.rttConns, func(n string) bool { return !slices.Contains(names, n) })
}

// Registry is the registry, for tests and for programs adding their own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Observe counts the events of one IKE subscription until it is closed.
func (m *Metrics) Observe(events <-chan ike.Event) {
	for ev := range events {
		m.observe(ev)
	}
}

func (m *Metrics) conn(name string) *connEvents {
	c := m.conns[name]
	if c == nil {
		c = &connEvents{failures: map[string]uint64{}}
		m.conns[name] = c
	}
	return c
}

func (m *Metrics) observe(ev ike.Event) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if x, ok := ev.(shared.ExchangeDone); ok && !x.TimedOut && x.RTT > 0 {
		for _, n := range x.Names {
			m.rtt.WithLabelValues(n, x.Exchange).Observe(x.RTT.Seconds())
			if !slices.Contains(m.rttConns, n) {
				m.rttConns = append(m.rttConns, n)
			}
		}
	}
	switch e := ev.(type) {
	case shared.IKERekeyed:
		for _, n := range e.Names {
			m.conn(n).ikeRekeys++
		}
	case shared.ChildRekeyed:
		m.conn(e.Conn).childRekeys++
	case shared.ExchangeDone:
		if e.DPD && e.TimedOut {
			for _, n := range e.Names {
				m.conn(n).dpdTimeouts++
			}
		}
	case shared.Failure:
		// A conn taken down on purpose did not fail to negotiate.
		if e.Cause != shared.CauseAdmin && e.Cause != shared.CauseNone {
			m.conn(e.Conn).failures[e.Cause.String()]++
		}
	}
}

// collector reads the source at each scrape.
type collector Metrics

var (
	descUp          = desc("ipsecgw_conn_up", "1 when the conn is established, 0 otherwise (every configured conn).", "conn")
	descState       = desc("ipsecgw_conn_state", "1 for the conn's current state, 0 for the others.", "conn", "state")
	descIKESAs      = desc("ipsecgw_conn_ike_sas", "IKE SAs the conn has.", "conn")
	descChildSAs    = desc("ipsecgw_conn_child_sas", "CHILD SAs the conn has.", "conn")
	descConnBytes   = desc("ipsecgw_conn_bytes_total", "Inner bytes through the conn's CHILD SAs since the daemon started, across rekeys and reconnects.", "conn", "direction")
	descConnPackets = desc("ipsecgw_conn_packets_total", "Inner packets through the conn's CHILD SAs since the daemon started, across rekeys and reconnects.", "conn", "direction")
	descConnDrops   = desc("ipsecgw_conn_drops_total", "Packets of the conn's SAs dropped, by reason.", "conn", "reason")
	descLastIn      = desc("ipsecgw_conn_last_inbound_seconds", "Seconds since the conn's last inbound packet (to about a second; absent before the first).", "conn")
	descIKERekeys   = desc("ipsecgw_conn_ike_rekeys_total", "IKE SA rekeys of the conn.", "conn")
	descChildRekeys = desc("ipsecgw_conn_child_rekeys_total", "CHILD SA rekeys of the conn.", "conn")
	descDPD         = desc("ipsecgw_conn_dpd_timeouts_total", "Dead peer detection checks the peer left unanswered.", "conn")
	descFailures    = desc("ipsecgw_conn_failures_total", "Failed negotiations and unplanned ends of the conn, by cause.", "conn", "cause")

	descIKESAsAll  = desc("ipsecgw_ike_sas", "IKE SAs of the daemon, half-open ones included.")
	descHalfOpen   = desc("ipsecgw_ike_half_open", "Responder IKE SAs that have not completed IKE_AUTH.")
	descHalfLimit  = desc("ipsecgw_ike_half_open_limit", "The most half-open IKE SAs kept (ike.half_open_limit).")
	descCookies    = desc("ipsecgw_ike_cookies_sent_total", "IKE_SA_INIT requests answered with a COOKIE.")
	descRefused    = desc("ipsecgw_ike_half_open_refused_total", "IKE_SA_INIT requests dropped unanswered at the half-open limit.")
	descIKEDrops   = desc("ipsecgw_ike_drops_total", "Received IKE messages (both versions) dropped without being acted on, by reason.", "reason")
	descIKEQueue   = desc("ipsecgw_ike_queue_drops_total", "IKE messages dropped because a queue was full (sockets: to IKE; ike_sa: an IKE SA's loop).", "queue")
	descDPPackets  = desc("ipsecgw_dataplane_packets_total", "Packets through the dataplane: ESP sent (out), decrypted packets written to the TUN (in).", "direction")
	descDPBytes    = desc("ipsecgw_dataplane_bytes_total", "Bytes through the dataplane: ESP bytes sent (out), inner bytes written to the TUN (in).", "direction")
	descDPDrops    = desc("ipsecgw_dataplane_drops_total", "Packets the dataplane dropped, by reason.", "reason")
	descDPErrors   = desc("ipsecgw_dataplane_errors_total", "Failed socket sends (send), TUN writes (write) and TUN reads (read).", "op")
	descDPBypassed = desc("ipsecgw_dataplane_bypassed_packets_total", "Packets passed in clear by policy.")
	descDPHeld     = desc("ipsecgw_dataplane_held_packets_total", "Packets held for a trap policy while IKE negotiated.")
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

var allDescs = []*prometheus.Desc{descUp, descState, descIKESAs, descChildSAs, descConnBytes, descConnPackets, descConnDrops,
	descLastIn, descIKERekeys, descChildRekeys, descDPD, descFailures, descIKESAsAll, descHalfOpen, descHalfLimit,
	descCookies, descRefused, descIKEDrops, descIKEQueue, descDPPackets, descDPBytes, descDPDrops, descDPErrors, descDPBypassed, descDPHeld}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	m := (*Metrics)(c)
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	conns := m.src.Status()
	st := m.src.Stats()
	names := make([]string, 0, len(conns))
	for _, cs := range conns {
		names = append(names, cs.Name)
		up := 0.0
		if cs.State == control.StateEstablished {
			up = 1
		}
		gauge(descUp, up, cs.Name)
		for _, s := range states {
			v := 0.0
			if s == cs.State {
				v = 1
			}
			gauge(descState, v, cs.Name, s)
		}
		ikeSAs := 0.0
		if cs.IKE != nil {
			ikeSAs = 1
		}
		gauge(descIKESAs, ikeSAs, cs.Name)
		gauge(descChildSAs, float64(len(cs.Children)), cs.Name)
		u := cs.Usage
		counter(descConnBytes, u.BytesIn, cs.Name, "in")
		counter(descConnBytes, u.BytesOut, cs.Name, "out")
		counter(descConnPackets, u.PacketsIn, cs.Name, "in")
		counter(descConnPackets, u.PacketsOut, cs.Name, "out")
		if u.LastInboundSeconds >= 0 {
			gauge(descLastIn, float64(u.LastInboundSeconds), cs.Name)
		}
	}
	for _, cs := range st.Conns {
		if !slices.Contains(names, cs.Name) {
			continue
		}
		for reason, n := range cs.Drops {
			counter(descConnDrops, n, cs.Name, reason)
		}
	}
	m.mu.Lock()
	for _, n := range names {
		e := m.conns[n]
		if e == nil {
			e = &connEvents{}
		}
		counter(descIKERekeys, e.ikeRekeys, n)
		counter(descChildRekeys, e.childRekeys, n)
		counter(descDPD, e.dpdTimeouts, n)
		for cause, k := range e.failures {
			counter(descFailures, k, n, cause)
		}
	}
	m.mu.Unlock()

	g := st.IKE
	gauge(descIKESAsAll, float64(g.IKESAs))
	gauge(descHalfOpen, float64(g.HalfOpen))
	gauge(descHalfLimit, float64(g.HalfOpenLimit))
	counter(descCookies, g.CookiesSent)
	counter(descRefused, g.HalfOpenRefused)
	counter(descIKEQueue, g.IKEQueueDrops, "sockets")
	counter(descIKEQueue, g.IKESAQueueDrops, "ike_sa")
	for reason, n := range g.Drops {
		counter(descIKEDrops, n, reason)
	}
	d := st.Dataplane
	counter(descDPPackets, d.TxPackets, "out")
	counter(descDPPackets, d.RxPackets, "in")
	counter(descDPBytes, d.TxBytes, "out")
	counter(descDPBytes, d.RxBytes, "in")
	for reason, n := range d.Drops {
		counter(descDPDrops, n, reason)
	}
	counter(descDPErrors, d.SendErrors, "send")
	counter(descDPErrors, d.WriteErrors, "write")
	counter(descDPErrors, d.ReadErrors, "read")
	counter(descDPBypassed, d.Bypassed)
	counter(descDPHeld, d.Held)
}
