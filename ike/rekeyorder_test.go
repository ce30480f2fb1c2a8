package ike

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestChildRekeyDuringIKERekey: a CHILD rekey that falls due while the IKE
// SA rekey is outstanding is queued behind it. It must run on the new IKE
// SA once the window is free, and the CHILD SAs must keep their rekey
// schedule there, so that none of them ever reaches its hard lifetime (the
// interop run that found this lost the CHILD SA for good 7 s after an IKE
// rekey).
func TestChildRekeyDuringIKERekey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// CHILD rekeys every 6 s (hard lifetime 10 s), the IKE SA at 16 s.
		ca, cb := confPair("net", "reauth=no\nlifetime=10s\nikelifetime=20s\nmargintime=4s\nrekeyfuzz=0%", "")
		a, b, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net")
		synctest.Wait()
		first := status(a, "net")
		// CHILD rekeys at 6 s and 12 s go through normally.
		clk.advance(15500*time.Millisecond, synctest.Wait)
		// Hold the IKE rekey request (sent at 16 s) in flight while the
		// CHILD SA of 12 s falls due at 18 s.
		net.mu.Lock()
		net.hold = true
		net.mu.Unlock()
		clk.advance(3*time.Second, synctest.Wait)
		net.mu.Lock()
		held := len(net.held)
		net.mu.Unlock()
		if held != 1 {
			t.Fatalf("%d datagrams held, want the IKE rekey request alone (the CHILD rekey waits behind it)", held)
		}
		installed := len(a.inst.removed)
		net.release()
		synctest.Wait()
		mid := status(a, "net")
		if mid.SPIi == first.SPIi {
			t.Fatalf("IKE SA not rekeyed: %x", mid.SPIi)
		}
		clk.advance(40*time.Second, synctest.Wait)
		sa, sb := status(a, "net"), status(b, "net")
		if sa.State != StateEstablished || sb.State != StateEstablished || len(sa.Children) != 1 || len(sb.Children) != 1 {
			t.Fatalf("after the rekeys: A %s (%s) %d CHILD SAs, B %s (%s) %d", sa.State, sa.Reason, len(sa.Children), sb.State, sb.Reason, len(sb.Children))
		}
		// 18.5 s → 58.5 s: rekeys due at 18, 24, 30, 36, 42, 48, 54 s.
		if n := len(a.inst.removed) - installed; n < 7 {
			t.Errorf("%d CHILD SAs replaced after the IKE rekey, want 7", n)
		}
		a.inst.mu.Lock()
		for spi, d := range a.inst.lived {
			if d >= 10*time.Second {
				t.Errorf("CHILD SA %08x lived %v: it reached its hard lifetime instead of being rekeyed", spi, d)
			}
		}
		a.inst.mu.Unlock()
		checkMatching(t, a, b)
		if len(a.m.sas) != 1 || len(b.m.sas) != 1 {
			t.Errorf("IKE SAs: A %d, B %d", len(a.m.sas), len(b.m.sas))
		}
		closeAll(t, synctest.Wait, a, b)
	})
}
