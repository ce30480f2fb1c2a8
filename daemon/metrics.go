package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/ipsecgw/ipsecgw/metrics"
)

// startMetrics serves the Prometheus endpoint (/metrics) on the
// metrics_listen address, fed by IKE's events and the gateway's status
// and counters (package metrics).
func (g *Gateway) startMetrics(addr string) error {
	m := metrics.New(g, metrics.BuildInfo{Version: g.opts.Build.Version, Commit: g.opts.Build.Commit})
	events := g.ike.Subscribe().Events()
	g.background(func() { m.Observe(events) })
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics_listen %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", m.Handler())
	g.metricsSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	srv := g.metricsSrv
	g.background(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.log.Error("metrics endpoint stopped", "err", err)
		}
	})
	g.log.Info("metrics endpoint listening", "address", ln.Addr().String(), "path", "/metrics")
	return nil
}

// stopMetrics closes the endpoint (shutdown).
func (g *Gateway) stopMetrics() {
	if g.metricsSrv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = g.metricsSrv.Shutdown(ctx)
}
