package daemon

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/ike"
	"github.com/ipsecgw/ipsecgw/ike/shared"
	"github.com/ipsecgw/ipsecgw/install"
	"github.com/ipsecgw/ipsecgw/sdnotify"
)

// ReadyTimeout bounds how long READY=1 waits for the first tries of the
// auto=start conns: a peer that does not answer takes minutes to give up
// on (every retransmission), and a gateway with one peer down must still
// come up. The unit file's TimeoutStartSec= leaves room for it.
const ReadyTimeout = 60 * time.Second

// firstTryConns are the conns READY=1 waits for: auto=start conns that IKE
// negotiates.
func firstTryConns(cfg *config.Config) []string {
	var out []string
	for _, c := range cfg.Conns() {
		if c.Auto == config.AutoStart && c.Version != config.IKEv1 {
			out = append(out, c.Name)
		}
	}
	return out
}

// tunnelStatus is the STATUS= line: how many configured tunnels (conns
// not auto=ignore) are established.
func (g *Gateway) tunnelStatus() string {
	up, all := 0, 0
	for _, cs := range g.Status() {
		if cs.Auto == config.AutoIgnore.String() {
			continue
		}
		all++
		if cs.State == control.StateEstablished {
			up++
		}
	}
	return fmt.Sprintf("%d of %d tunnels established", up, all)
}

// statusInterval is the least time between two STATUS= lines sent for
// state changes. The tunnel count walks every conn's status (tunnelStatus);
// once per state change, a burst of thousands of SAs coming up walked it
// once per SA (quadratic time, and garbage that raised the daemon's heap
// goal) and left this subscription's reader so far behind that IKE's
// events queued up.
const statusInterval = time.Second

// isNotifyEvent selects the events runNotify reads (its subscription's
// filter): state changes, and failures, which end a first try. The
// others (an IKE and a CHILD SA up for each of thousands of peers in a
// burst) would each wake its goroutine for nothing.
func isNotifyEvent(ev ike.Event) bool {
	switch ev.(type) {
	case ike.StateChanged, shared.Failure:
		return true
	}
	return false
}

// runNotify tells systemd about the tunnels from IKE's events: READY=1
// once every auto=start conn had its first try (or after ReadyTimeout),
// and STATUS= when a conn's state changes, at most once per
// statusInterval (a change within it is sent at its end). It returns when
// events is closed.
func (g *Gateway) runNotify(events <-chan ike.Event, tries *sdnotify.FirstTries) {
	ready := tries.Done()
	if ready {
		g.notify.Ready(g.tunnelStatus())
		g.log.Info("ready: no auto=start conn to wait for")
	}
	timeout := time.NewTimer(ReadyTimeout)
	defer timeout.Stop()
	var (
		lastStatus time.Time
		due        *time.Timer // a STATUS= line is due at its expiry
		dueC       <-chan time.Time
	)
	defer func() {
		if due != nil {
			due.Stop()
		}
	}()
	sendStatus := func() {
		status := g.tunnelStatus()
		if !ready {
			status += "; waiting for the first try of " + strings.Join(tries.Pending(), ", ")
		}
		g.notify.Status(status)
		lastStatus = time.Now()
	}
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return
			}
			if !ready && tries.Observe(ev) {
				ready = true
				status := g.tunnelStatus()
				g.notify.Ready(status)
				g.log.Info("ready: every auto=start conn had its first try", "status", status)
				continue
			}
			if _, changed := ev.(ike.StateChanged); !changed || dueC != nil {
				continue
			}
			if wait := statusInterval - time.Since(lastStatus); wait > 0 {
				due = time.NewTimer(wait)
				dueC = due.C
				continue
			}
			sendStatus()
		case <-dueC:
			due, dueC = nil, nil
			sendStatus()
		case <-timeout.C:
			if !ready {
				ready = true
				g.log.Warn("ready before every auto=start conn had its first try", "after", ReadyTimeout, "pending", tries.Pending())
				g.notify.Ready(g.tunnelStatus() + "; still trying " + strings.Join(tries.Pending(), ", "))
			}
		}
	}
}

// probe proves the IKE SA loops and the dataplane pipeline alive for the
// watchdog.
func (g *Gateway) probe(ctx context.Context) error {
	return errors.Join(g.ike.Probe(ctx), g.dp.Probe(ctx))
}

// runUsageSampler reads the usage records once a second, so that each
// conn's time of its last inbound packet is known to about a second, and
// hands them to the bandwidth meter (health.go).
func (g *Gateway) runUsageSampler() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-g.stop:
			return
		case <-t.C:
			now := g.now()
			g.health.sample(now, func(into map[string]install.Usage) { g.inst.UsageInto(now, into) })
		}
	}
}

// logStats writes the counters to the log (SIGUSR2): one line for the
// dataplane, one for IKE and one per conn.
func (g *Gateway) logStats() {
	st := g.Stats()
	d := st.Dataplane
	attrs := []any{"tx_packets", d.TxPackets, "tx_bytes", d.TxBytes, "rx_packets", d.RxPackets, "rx_bytes", d.RxBytes,
		"bypassed", d.Bypassed, "held", d.Held, "send_errors", d.SendErrors, "write_errors", d.WriteErrors, "read_errors", d.ReadErrors}
	for _, r := range sortedKeys(d.Drops) {
		attrs = append(attrs, "drops_"+r, d.Drops[r])
	}
	g.log.Info("stats: dataplane", attrs...)
	i := st.IKE
	g.log.Info("stats: IKE", "ike_sas", i.IKESAs, "half_open", i.HalfOpen, "half_open_limit", i.HalfOpenLimit,
		"cookies_sent", i.CookiesSent, "half_open_refused", i.HalfOpenRefused, "ike_queue_drops", i.IKEQueueDrops, "ike_sa_queue_drops", i.IKESAQueueDrops)
	for _, c := range st.Conns {
		u := c.Usage
		attrs := []any{"conn", c.Name, "state", c.State, "bytes_in", u.BytesIn, "packets_in", u.PacketsIn,
			"bytes_out", u.BytesOut, "packets_out", u.PacketsOut, "last_inbound_seconds", u.LastInboundSeconds}
		for _, r := range sortedKeys(c.Drops) {
			if c.Drops[r] > 0 {
				attrs = append(attrs, "drops_"+r, c.Drops[r])
			}
		}
		g.log.Info("stats: conn", attrs...)
	}
}

func sortedKeys(m map[string]uint64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
