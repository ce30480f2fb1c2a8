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
