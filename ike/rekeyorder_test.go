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

// TestChildHardLifetimeRecreated: a CHILD SA that reaches its hard lifetime
// while the IKE SA is up (here rekey=no, closeaction=restart) is deleted
// and created anew over the same IKE SA, so that the conn does not stay
// down.
func TestChildHardLifetimeRecreated(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPair("net", "rekey=no\nlifetime=10s\ncloseaction=restart", "")
		a, b, _, clk := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net")
		synctest.Wait()
		before, children := status(a, "net"), a.inst.all()
		if len(children) != 1 {
			t.Fatalf("%d CHILD SAs at A", len(children))
		}
		clk.advance(10500*time.Millisecond, synctest.Wait)
		sa, sb := status(a, "net"), status(b, "net")
		if sa.State != StateEstablished || sb.State != StateEstablished || len(sa.Children) != 1 || len(sb.Children) != 1 {
			t.Fatalf("after the hard lifetime: A %s (%s) %d CHILD SAs, B %s (%s) %d", sa.State, sa.Reason, len(sa.Children), sb.State, sb.Reason, len(sb.Children))
		}
		if sa.SPIi != before.SPIi {
			t.Errorf("IKE SA changed (%x → %x): the CHILD SA must be re-created over the same one", before.SPIi, sa.SPIi)
		}
		a.inst.mu.Lock()
		lived := a.inst.lived[children[0].InSPI]
		a.inst.mu.Unlock()
		if lived != 10*time.Second {
			t.Errorf("first CHILD SA lived %v, want its 10 s lifetime", lived)
		}
		if now := a.inst.all(); len(now) != 1 || now[0].InSPI == children[0].InSPI {
			t.Errorf("CHILD SAs at A: %+v", now)
		}
		checkMatching(t, a, b)
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestIKERekeyByPeerDuringChildRekey: the peer's IKE rekey request arrives
// while our CHILD rekey is outstanding on the IKE SA. It is answered with
// TEMPORARY_FAILURE (the CHILD rekey's answer must find its CHILD SA), the
// peer retries the IKE rekey a little later, and both rekeys keep running.
func TestIKERekeyByPeerDuringChildRekey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A rekeys its CHILD SA every 6 s; B, the IKE initiator, rekeys
		// the IKE SA at 19 s.
		ca, cb := confPair("net", "lifetime=10s\nmargintime=4s\nrekeyfuzz=0%", "reauth=no\nikelifetime=21s\nmargintime=2s\nrekeyfuzz=0%")
		a, b, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{})
		b.m.Up("net")
		synctest.Wait()
		first := status(a, "net")
		clk.advance(17500*time.Millisecond, synctest.Wait)
		net.mu.Lock()
		net.hold = true
		net.mu.Unlock()
		// 18 s: A's CHILD rekey request; 19 s: B's IKE rekey request.
		clk.advance(2*time.Second, synctest.Wait)
		net.mu.Lock()
		held := net.held
		net.held = nil
		net.mu.Unlock()
		if len(held) != 2 || held[0].from.Addr() != addrA || held[1].from.Addr() != addrB {
			t.Fatalf("held %d datagrams, want A's CHILD rekey then B's IKE rekey", len(held))
		}
		// B's IKE rekey reaches A first, then A's answer goes back and
		// A's CHILD rekey request reaches B.
		a.m.HandlePacket(held[1].to, held[1].from, held[1].data)
		synctest.Wait()
		net.release()
		synctest.Wait()
		b.m.HandlePacket(held[0].to, held[0].from, held[0].data)
		synctest.Wait()
		clk.advance(40*time.Second, synctest.Wait)
		sa, sb := status(a, "net"), status(b, "net")
		if sa.State != StateEstablished || sb.State != StateEstablished || len(sa.Children) != 1 || len(sb.Children) != 1 {
			t.Fatalf("after the rekeys: A %s (%s) %d CHILD SAs, B %s (%s) %d", sa.State, sa.Reason, len(sa.Children), sb.State, sb.Reason, len(sb.Children))
		}
		if sa.SPIi == first.SPIi || sa.SPIi != sb.SPIi || sa.SPIr != sb.SPIr {
			t.Errorf("IKE SA not rekeyed after the refusal: first %x, A %x/%x, B %x/%x", first.SPIi, sa.SPIi, sa.SPIr, sb.SPIi, sb.SPIr)
		}
		if len(a.m.sas) != 1 || len(b.m.sas) != 1 {
			t.Errorf("IKE SAs: A %d, B %d", len(a.m.sas), len(b.m.sas))
		}
		a.inst.mu.Lock()
		for spi, d := range a.inst.lived {
			if d >= 10*time.Second {
				t.Errorf("CHILD SA %08x lived %v: it reached its hard lifetime instead of being rekeyed", spi, d)
			}
		}
		a.inst.mu.Unlock()
		checkMatching(t, a, b)
		closeAll(t, synctest.Wait, a, b)
	})
}
