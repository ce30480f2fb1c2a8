package ike

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipsecgw/ipsecgw/ike/shared"
)

// recorder collects a node's events from a subscription.
type recorder struct {
	mu     sync.Mutex
	events []Event
	done   chan struct{}
}

func record(n *node) *recorder {
	r := &recorder{done: make(chan struct{})}
	sub := n.m.Subscribe()
	go func() {
		defer close(r.done)
		for ev := range sub.Events() {
			r.mu.Lock()
			r.events = append(r.events, ev)
			r.mu.Unlock()
		}
	}()
	return r
}

// take returns the events recorded since the last take, as short names
// ("IKEUp", "ChildDown(rekeyed)", "state connecting→established" …).
func (r *recorder) take() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.events {
		out = append(out, eventName(ev))
	}
	r.events = nil
	return out
}

func eventName(ev Event) string {
	switch e := ev.(type) {
	case shared.Initiating:
		return "Initiating"
	case shared.IKEUp:
		return "IKEUp"
	case shared.IKEUpdated:
		return "IKEUpdated"
	case shared.IKERekeyed:
		return "IKERekeyed"
	case shared.IKEDown:
		return fmt.Sprintf("IKEDown(%s)", e.Cause)
	case shared.ChildUp:
		return "ChildUp"
	case shared.ChildRekeyed:
		return "ChildRekeyed"
	case shared.ChildDown:
		if e.Rekeyed {
			return "ChildDown(rekeyed)"
		}
		return fmt.Sprintf("ChildDown(%s)", e.Cause)
	case shared.Failure:
		return fmt.Sprintf("Failure(%s,%s)", e.State, e.Cause)
	case shared.StateChanged:
		return fmt.Sprintf("state %s→%s", e.From, e.To)
	}
	return fmt.Sprintf("%T", ev)
}

// contains reports whether want appears in got in this order (other
// events may come between).
func inOrder(got []string, want ...string) bool {
	i := 0
	for _, g := range got {
		if i < len(want) && g == want[i] {
			i++
		}
	}
	return i == len(want)
}

// TestEventsLifecycle: subscribers see a tunnel's whole life as typed
// events in order — up, a CHILD rekey (make before break: the successor
// first, the old SA marked as rekeyed), an IKE rekey, and the peer's
// delete with its cause — and the conn state changes folded from them;
// the subscription ends when the Manager closes.
func TestEventsLifecycle(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		extra := "lifetime=20m\nmargintime=5m\nrekeyfuzz=0%\nikelifetime=60m\nreauth=no"
		ca, cb := confPair("net", extra, extra)
		a, b, _, clk := pair(t, ca, secrets, cb, secrets, testOpts{})
		ra, rb := record(a), record(b)
		if err := a.m.Up("net"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got := ra.take(); !inOrder(got, "Initiating", "state down→connecting", "IKEUp", "ChildUp", "state connecting→established") {
			t.Errorf("A, up: %v", got)
		}
		if got := rb.take(); !inOrder(got, "IKEUp", "ChildUp", "state down→established") {
			t.Errorf("B, up: %v", got)
		}

		clk.advance(16*time.Minute, synctest.Wait) // CHILD rekey at 15 min
		got := ra.take()
		if !inOrder(got, "ChildRekeyed", "ChildDown(rekeyed)") || strings.Contains(strings.Join(got, " "), "state") {
			t.Errorf("A, CHILD rekey: %v (no state change expected)", got)
		}
		clk.advance(45*time.Minute, synctest.Wait) // IKE rekey at 55 min
		if got := ra.take(); !inOrder(got, "IKERekeyed", "IKEDown(none)") || strings.Contains(strings.Join(got, " "), "state") {
			t.Errorf("A, IKE rekey: %v (no state change expected)", got)
		}
		rb.take()

		if err := a.m.Down("net"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got := rb.take(); !inOrder(got, "IKEDown(peer-deleted)", "state established→down") {
			t.Errorf("B, peer's delete: %v", got)
		}
		if got := ra.take(); !inOrder(got, "Failure(down,admin)", "state established→down", "IKEDown(none)") {
			t.Errorf("A, down: %v", got)
		}
		closeAll(t, synctest.Wait, a, b)
		<-ra.done
		<-rb.done
	})
}

// TestEventsFailureCause: a failed negotiation reports a Failure with a
// typed cause and the text the status shows, on both sides.
func TestEventsFailureCause(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPair("net", "keyingtries=1", "")
		a, b, _, _ := pair(t, ca, secrets, cb, `198.51.100.1 203.0.113.1 : PSK "another secret"`+"\n", testOpts{})
		ra, rb := record(a), record(b)
		a.m.Up("net")
		synctest.Wait()
		if got := ra.take(); !inOrder(got, "Failure(phase1-failed,auth-failed)", "state connecting→phase1-failed") {
			t.Errorf("A: %v", got)
		}
		if got := rb.take(); !inOrder(got, "Failure(phase1-failed,auth-failed)", "state down→phase1-failed") {
			t.Errorf("B: %v", got)
		}
		if s := status(a, "net"); s.Cause != shared.CauseAuthFailed || !strings.Contains(s.Reason, "AUTHENTICATION_FAILED") {
			t.Errorf("A's status: %s %q", s.Cause, s.Reason)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}
