package esp

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestProbe: a running dataplane passes the liveness probe, one whose
// crypto workers are all stuck fails it (and passes again once they are
// free), so does one whose outbound sender is stuck, and a closed one fails
// it at once.
func TestProbe(t *testing.T) {
	g1, _ := twoGateways(t, allSuites(t)[0], 2)
	d := g1.dp
	probe := func(timeout time.Duration) error {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		return d.Probe(ctx)
	}
	if err := probe(10 * time.Second); err != nil {
		t.Fatalf("healthy dataplane: %v", err)
	}
	release := make(chan struct{})
	for range 2 {
		d.work <- func() { <-release }
	}
	if err := probe(200 * time.Millisecond); err == nil {
		t.Fatal("the probe passed with every worker stuck")
	} else {
		t.Log(err)
	}
	close(release)
	// The element of the failed probe still gets through; a new probe
	// passes behind it.
	if err := probe(10 * time.Second); err != nil {
		t.Fatalf("after the workers came free: %v", err)
	}

	// A sender stuck on a batch (here: one whose seal never comes) fails
	// the probe although the workers and the inbound side are fine.
	stuck := <-d.outFree
	stuck.cnt = 0
	d.outMu.Lock()
	d.outQ <- stuck
	d.outMu.Unlock()
	if err := probe(200 * time.Millisecond); err == nil || !strings.Contains(err.Error(), "sender") {
		t.Fatalf("the probe with the sender stuck: %v, want an error naming the sender", err)
	} else {
		t.Log(err)
	}
	stuck.done <- struct{}{}
	if err := probe(10 * time.Second); err != nil {
		t.Fatalf("after the sender came free: %v", err)
	}

	d.Close()
	if err := probe(time.Second); err == nil {
		t.Fatal("a closed dataplane passed the probe")
	}
}
