package main

import (
	"context"
	"fmt"
	"time"

	"github.com/ipsecgw/ipsecgw/internal/lab"
)

// Restart is the restart storm: an ipsecgw initiator with N auto=start
// conns to an ipsecgw responder with its default flood protections
// (cookies from 30 half-open SAs, or 3 from one address; at most 10,000
// half-open), started once and then restarted.
type Restart struct {
	N     int    `json:"n"`
	Group string `json:"group"`
	// FirstSeconds is from the first start until all N were established,
	// RestartSeconds the same after SIGTERM and a new start.
	FirstSeconds   float64 `json:"first_seconds"`
	RestartSeconds float64 `json:"restart_seconds"`
	Established    int     `json:"established"`
	// ResponderSAs is how many IKE SAs the responder holds afterwards:
	// N when every SA of the stopped daemon was deleted or replaced.
	ResponderSAs int    `json:"responder_ike_sas"`
	Error        string `json:"error,omitempty"`
}

func restartStorm(ctx context.Context, bin string, opts options) (s Restart) {
	s = Restart{N: opts.Restart, Group: "x25519"}
	l, err := lab.Build(lab.Options{})
	if err != nil {
		s.Error = err.Error()
		return s
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(ctx, 2*opts.Timeout+2*time.Minute)
	defer cancel()
	if err := measureRestart(ctx, l, bin, opts, &s); err != nil {
		s.Error = err.Error()
	}
	return s
}

func measureRestart(ctx context.Context, l *lab.Lab, bin string, opts options, s *Restart) error {
	r, err := startIpsecgwResponder(ctx, l, bin, s.Group, false)
	if err != nil {
		return err
	}
	g, start, err := startInitiatorGateway(ctx, l, bin, s.Group, s.N)
	if err != nil {
		return err
	}
	got, err := g.waitEstablished(ctx, s.N, start.Add(opts.Timeout))
	s.FirstSeconds = time.Since(start).Seconds()
	if err != nil {
		return err
	}
	if got < s.N {
		return fmt.Errorf("first start: %d of %d established within %v", got, s.N, opts.Timeout)
	}
	if err := g.stop(); err != nil {
		return fmt.Errorf("stopping the initiator: %w", err)
	}
	start = time.Now()
	if err := g.start(ctx); err != nil {
		return err
	}
	s.Established, err = g.waitEstablished(ctx, s.N, start.Add(opts.Timeout))
	s.RestartSeconds = time.Since(start).Seconds()
	if err != nil {
		return err
	}
	if s.ResponderSAs, err = r.count(ctx); err != nil {
		return err
	}
	if s.Established < s.N {
		return fmt.Errorf("after the restart: %d of %d established within %v", s.Established, s.N, opts.Timeout)
	}
	return nil
}
