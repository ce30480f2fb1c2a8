package ike

import (
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// TestKeyingRetryInterval: an auto=start conn whose keyingtries (2) went
// unanswered is tried again once every KeyingRetryInterval, one attempt
// each time, and comes up as soon as the peer answers.
func TestKeyingRetryInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPair("net", "keyingtries=2", "")
		ca = strings.Replace(ca, "auto=add", "auto=start", 1)
		a, b, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{tries: 1})
		a.m.opts.KeyingRetryInterval = 12 * time.Second
		var dead atomic.Bool
		dead.Store(true)
		net.setDrop(func(p packet) bool { return dead.Load() && p.to.Addr() == addrB })
		attempt := 4*time.Second + 7200*time.Millisecond // 4 s, then 4 s × 1.8
		a.m.Up("net")
		synctest.Wait()
		clk.advance(2*attempt, synctest.Wait)
		if s := status(a, "net"); s.State != StatePhase1Failed {
			t.Fatalf("after keyingtries=2: %s %q", s.State, s.Reason)
		}
		if n := len(net.packets()); n != 4 {
			t.Fatalf("%d packets, want 2 attempts × 2 sends", n)
		}
		clk.advance(12*time.Second, synctest.Wait)
		if s := status(a, "net"); s.State != StateConnecting {
			t.Fatalf("12 s after giving up: %s %q, want a new attempt", s.State, s.Reason)
		}
		clk.advance(attempt, synctest.Wait)
		if s := status(a, "net"); s.State != StatePhase1Failed {
			t.Fatalf("after the retry: %s %q, want one attempt only", s.State, s.Reason)
		}
		if n := len(net.packets()); n != 6 {
			t.Fatalf("%d packets, want 3 attempts × 2 sends", n)
		}
		dead.Store(false)
		clk.advance(12*time.Second, synctest.Wait)
		if s := status(a, "net"); s.State != StateEstablished {
			t.Fatalf("peer answers again: %s %q", s.State, s.Reason)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestRefusedRetryForever: with keyingtries=%forever an initiation the peer
// refuses (here NO_PROPOSAL_CHOSEN: the peer's configuration is not loaded
// as it should be, as with a peer that is restarting) is tried again after
// a back-off of 2 s, 4 s, 8 s …, and the conn comes up once the peer
// accepts; with keyingtries=1 the refusal stays final.
func TestRefusedRetryForever(t *testing.T) {
	for _, tc := range []struct {
		tries string
		retry bool
	}{{"%forever", true}, {"1", false}} {
		t.Run("keyingtries="+tc.tries, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ca, cb := confPair("net", "keyingtries="+tc.tries+"\nike=aes128-sha256-x25519!", "ike=aes256-sha384-ecp384!")
				a, b, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{})
				a.m.Up("net")
				synctest.Wait()
				if s := status(a, "net"); s.State != StatePhase1Failed || !strings.Contains(s.Reason, "NO_PROPOSAL_CHOSEN") {
					t.Fatalf("first attempt: %s %q", s.State, s.Reason)
				}
				// Two more refusals: after 2 s and 4 s.
				clk.advance(2*time.Second, synctest.Wait)
				clk.advance(4*time.Second, synctest.Wait)
				inits := countEx(net.packets(), addrA, 34) // IKE_SA_INIT
				if want := map[bool]int{true: 3, false: 1}[tc.retry]; inits != want {
					t.Errorf("%d IKE_SA_INIT requests after 6 s, want %d", inits, want)
				}
				// The peer accepts from now on: the next retry, 8 s later,
				// brings the conn up.
				_, good := confPair("net", "", "")
				b.m.ReloadConfig(loadConfig(t, good, secrets, addrB))
				clk.advance(8*time.Second, synctest.Wait)
				s := status(a, "net")
				if tc.retry && s.State != StateEstablished {
					t.Errorf("after the peer accepted: %s %q", s.State, s.Reason)
				}
				if !tc.retry && s.State != StatePhase1Failed {
					t.Errorf("keyingtries=1: %s %q, want the refusal to stay final", s.State, s.Reason)
				}
				closeAll(t, synctest.Wait, a, b)
			})
		})
	}
}
