package ike

import (
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/ike/shared"
)

// A burst of events published while the reader is away (a daemon
// bringing up thousands of SAs at once) queues them at amortised cost —
// the wake-up of each new event does not copy the queue — arrives
// complete and in order, and the queue's array goes once it is drained.
func TestSubscriptionBurst(t *testing.T) {
	const n = 20000
	m := &Manager{}
	s := m.Subscribe()
	defer s.Unsubscribe()
	publish := func(k int) {
		m.mu.Lock()
		m.publishLocked(shared.Initiating{Conn: fmt.Sprint(k)})
		m.mu.Unlock()
	}
	publish(0)
	// Let the pump take event 0 and wait on the reader with it.
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		taken := len(s.queue) == 0
		s.mu.Unlock()
		if taken || time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for k := 1; k < n; k++ {
		publish(k)
		// Give the pump its wake-up, as a loaded daemon's scheduler does.
		runtime.Gosched()
	}
	runtime.ReadMemStats(&after)
	// The events themselves (a string and an interface each) and the
	// queue's doublings take about 2 MB; copying the queue at every
	// wake-up took gigabytes.
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 16<<20 {
		t.Errorf("publishing %d events allocated %d MB", n, grew>>20)
	}
	for k := range n {
		select {
		case ev := <-s.Events():
			if got := ev.(shared.Initiating).Conn; got != fmt.Sprint(k) {
				t.Fatalf("event %d is for conn %s", k, got)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("event %d did not arrive", k)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.queue != nil {
		t.Errorf("the drained queue still holds an array of %d events", cap(s.queue))
	}
}
