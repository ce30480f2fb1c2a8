package ike

import (
	"fmt"
	"runtime"
	"strconv"
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

func publishN(m *Manager, from, n int) {
	for i := from; i < from+n; i++ {
		m.mu.Lock()
		m.publishLocked(shared.Initiating{Conn: strconv.Itoa(i)})
		m.mu.Unlock()
	}
}

// TestSubscriptionOrder: events reach a reader in publishing order,
// whether it keeps up (straight into the channel) or falls behind by more
// than the channel holds (through the queue), and alternating between the
// two; on Close the queued rest is delivered before the channel closes.
func TestSubscriptionOrder(t *testing.T) {
	r := newResponder(t, Options{})
	sub := r.m.Subscribe()
	got := make(chan []string)
	go func() {
		var names []string
		for ev := range sub.Events() {
			names = append(names, ev.(shared.Initiating).Conn)
			if len(names)%50 == 0 {
				time.Sleep(100 * time.Microsecond) // fall behind now and then
			}
		}
		got <- names
	}()
	const n = 20000
	for i := 0; i < n; i += 10 {
		publishN(r.m, i, 10)
		runtime.Gosched()
	}
	r.m.closeSubscriptions()
	names := <-got
	if len(names) != n {
		t.Fatalf("%d events delivered, want %d", len(names), n)
	}
	for i, name := range names {
		if name != strconv.Itoa(i) {
			t.Fatalf("event %d is %s: order lost", i, name)
		}
	}
}

// TestUnsubscribeDrops: after Unsubscribe the events not read yet, queued
// or in the channel's buffer, are dropped and the channel closes.
func TestUnsubscribeDrops(t *testing.T) {
	r := newResponder(t, Options{})
	sub := r.m.Subscribe()
	publishN(r.m, 0, 3*subscriptionBuffer)
	sub.Unsubscribe()
	publishN(r.m, 3*subscriptionBuffer, 5)
	deadline := time.After(5 * time.Second)
	read := 0
	for {
		select {
		case _, ok := <-sub.Events():
			if !ok {
				// The pump may have handed over the one event it held.
				if read > 1 {
					t.Fatalf("%d events read after Unsubscribe", read)
				}
				return
			}
			read++
		case <-deadline:
			t.Fatal("channel not closed after Unsubscribe")
		}
	}
}

// TestSubscriptionKeep: a subscription with keep functions gets exactly
// the events all of them select, in order, beside one that gets all.
func TestSubscriptionKeep(t *testing.T) {
	r := newResponder(t, Options{})
	even := func(ev Event) bool {
		i, _ := strconv.Atoi(ev.(shared.Initiating).Conn)
		return i%2 == 0
	}
	third := func(ev Event) bool {
		i, _ := strconv.Atoi(ev.(shared.Initiating).Conn)
		return i%3 == 0
	}
	all, some, both := r.m.Subscribe(), r.m.Subscribe(even), r.m.Subscribe(even, third)
	const n = 300
	publishN(r.m, 0, n)
	r.m.closeSubscriptions()
	collect := func(sub *Subscription) []int {
		var out []int
		for ev := range sub.Events() {
			i, _ := strconv.Atoi(ev.(shared.Initiating).Conn)
			out = append(out, i)
		}
		return out
	}
	want := func(name string, got []int, step int) {
		t.Helper()
		if len(got) != (n+step-1)/step {
			t.Fatalf("%s: %d events, want %d", name, len(got), (n+step-1)/step)
		}
		for k, i := range got {
			if i != k*step {
				t.Fatalf("%s: event %d is %d, want %d", name, k, i, k*step)
			}
		}
	}
	want("all", collect(all), 1)
	want("even", collect(some), 2)
	want("even and third", collect(both), 6)
}
