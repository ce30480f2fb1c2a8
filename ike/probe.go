package ike

import (
	"context"
	"fmt"

	"github.com/ipsecgw/ipsecgw/ike/shared"
)

// Probe proves that the Manager and the event loops of its IKE SAs are
// alive, for the daemon's watchdog: it takes the Manager's lock and has
// every IKE SA whose engine can be probed (shared.Prober) run a no-op in
// its loop, after what is queued there. It returns nil once every loop
// answered or ended, and an error naming how many did not when ctx ends
// first. A loop that is stuck keeps the probe's goroutine waiting; call
// Probe again only after the previous one returned.
func (m *Manager) Probe(ctx context.Context) error {
	sas := m.allSAs() // takes m.mu: a deadlocked Manager never gets past it
	answered := make(chan struct{}, len(sas))
	probed := 0
	for _, sa := range sas {
		p, ok := sa.(shared.Prober)
		if !ok {
			continue
		}
		probed++
		go func() {
			if !p.Probe(func() { answered <- struct{}{} }) {
				answered <- struct{}{} // the SA ended: not stuck
			}
		}()
	}
	for n := range probed {
		select {
		case <-answered:
		case <-ctx.Done():
			return fmt.Errorf("ike: %d of %d IKE SA event loops did not answer the liveness probe: %w", probed-n, probed, ctx.Err())
		}
	}
	return nil
}
