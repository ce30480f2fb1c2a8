package ike

import (
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

// TestIKERekeyCollision: both sides rekey the IKE SA at the same instant
// (reauth=no, ikelifetime 30 min, margintime 5 min, no fuzz), round after
// round, their CREATE_CHILD_SA requests crossing each time (RFC 7296
// §2.8.2). After each round exactly one IKE SA is left on each side, the
// same one, and it carries the CHILD SA, unchanged; the CHILD SA never
// leaves the dataplane.
func TestIKERekeyCollision(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		extra := "reauth=no\nikelifetime=30m\nmargintime=5m\nrekeyfuzz=0%\nlifetime=24h"
		ca, cb := confPair("net", extra, extra)
		a, b, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{})
		da, db := withDataplanes(a, b)
		a.m.Up("net")
		synctest.Wait()
		child := a.inst.all()
		if len(child) != 1 {
			t.Fatalf("A installed %d CHILD SAs", len(child))
		}
		prev := status(a, "net")
		const rounds = 8
		won := map[string]int{}
		for i := 0; i < rounds; i++ {
			net.mu.Lock()
			net.hold = true
			net.mu.Unlock()
			clk.advance(25*time.Minute, synctest.Wait)
			net.mu.Lock()
			held := len(net.held)
			net.mu.Unlock()
			if held != 2 {
				t.Fatalf("round %d: %d held requests, want the two crossing IKE rekeys", i, held)
			}
			net.release()
			synctest.Wait()
			sa, sb := status(a, "net"), status(b, "net")
			if sa.State != StateEstablished || sb.State != StateEstablished {
				t.Fatalf("round %d: A %s (%s), B %s (%s)", i, sa.State, sa.Reason, sb.State, sb.Reason)
			}
			if sa.SPIi == prev.SPIi || sa.SPIi != sb.SPIi || sa.SPIr != sb.SPIr || sa.Initiator == sb.Initiator {
				t.Fatalf("round %d: IKE SAs before %x/%x, A %x/%x (initiator %v), B %x/%x (initiator %v)",
					i, prev.SPIi, prev.SPIr, sa.SPIi, sa.SPIr, sa.Initiator, sb.SPIi, sb.SPIr, sb.Initiator)
			}
			if n, m := len(a.m.sas), len(b.m.sas); n != 1 || m != 1 {
				t.Fatalf("round %d: A holds %d IKE SAs, B %d; want the surviving one alone", i, n, m)
			}
			if len(sa.Children) != 1 || len(sb.Children) != 1 || sa.Children[0].InSPI != child[0].InSPI {
				t.Fatalf("round %d: CHILD SAs on the new IKE SA: A %+v, B %+v; want the original one", i, sa.Children, sb.Children)
			}
			// The new IKE SA's original initiator is the side whose
			// exchange won.
			if sa.Initiator {
				won["A"]++
			} else {
				won["B"]++
			}
			prev = sa
		}
		t.Logf("%d collisions: A's new IKE SA survived %d times, B's %d times", rounds, won["A"], won["B"])
		if got := a.inst.all(); len(got) != 1 || got[0].InSPI != child[0].InSPI {
			t.Errorf("CHILD SAs at A after the IKE rekeys: %+v", got)
		}
		a.inst.mu.Lock()
		removed := len(a.inst.removed)
		a.inst.mu.Unlock()
		if removed != 0 {
			t.Errorf("%d CHILD SAs removed from A's dataplane; an IKE rekey must move them untouched", removed)
		}
		checkMatching(t, a, b)
		da.check(t)
		db.check(t)
		// The surviving IKE SA works: the CHILD SA can be deleted over it.
		if err := b.m.Down("net"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if len(a.inst.all()) != 0 || len(b.inst.all()) != 0 {
			t.Errorf("delete over the surviving IKE SA failed: %d/%d CHILD SAs left", len(a.inst.all()), len(b.inst.all()))
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestIKERekeyByResponder: the original responder's ikelifetime expires
// first, so it rekeys the IKE SA (before, only the original initiator
// did); the CHILD SA moves to the new IKE SA, whose initiator it is.
func TestIKERekeyByResponder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPair("net", "reauth=no", "reauth=no\nikelifetime=30m\nmargintime=5m\nrekeyfuzz=0%")
		a, b, _, clk := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net")
		synctest.Wait()
		before, child := status(a, "net"), a.inst.all()
		clk.advance(25*time.Minute, synctest.Wait)
		sa, sb := status(a, "net"), status(b, "net")
		if sa.State != StateEstablished || sb.State != StateEstablished {
			t.Fatalf("after the rekey: A %s (%s), B %s (%s)", sa.State, sa.Reason, sb.State, sb.Reason)
		}
		if sa.SPIi == before.SPIi || sa.SPIi != sb.SPIi || !sb.Initiator || sa.Initiator {
			t.Fatalf("IKE SAs: before %x (A initiator), A %x (initiator %v), B %x (initiator %v); want B's rekey", before.SPIi, sa.SPIi, sa.Initiator, sb.SPIi, sb.Initiator)
		}
		if len(a.m.sas) != 1 || len(b.m.sas) != 1 {
			t.Errorf("IKE SAs: A %d, B %d", len(a.m.sas), len(b.m.sas))
		}
		if got := a.inst.all(); len(got) != 1 || got[0].InSPI != child[0].InSPI || len(sa.Children) != 1 {
			t.Errorf("CHILD SA did not move unchanged: %+v", got)
		}
		checkMatching(t, a, b)
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestIKERekeyCollisionAnswerLost: as TestIKERekeyCollision, but B's
// answer to A's rekey request is lost once. When B's new SA wins, B
// deletes the old IKE SA before A has its answer, and A must hand the CHILD
// SA to B's new SA (the one it answered) instead of destroying it with the
// old SA; when A's wins, A's retransmission gets the answer from B's cache
// and A concludes as usual. Either way one IKE SA is left on each side,
// the same, carrying the CHILD SA. Each round is a new pair of gateways,
// so that both outcomes come up.
func TestIKERekeyCollisionAnswerLost(t *testing.T) {
	won := map[bool]int{}
	for i := 0; i < 8; i++ {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				extra := "reauth=no\nikelifetime=30m\nmargintime=5m\nrekeyfuzz=0%\nlifetime=24h"
				ca, cb := confPair("net", extra, extra)
				a, b, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{})
				a.m.Up("net")
				synctest.Wait()
				child := a.inst.all()
				net.mu.Lock()
				net.hold = true
				net.mu.Unlock()
				clk.advance(25*time.Minute, synctest.Wait)
				if n := len(net.held); n != 2 {
					t.Fatalf("%d held requests, want the two crossing IKE rekeys", n)
				}
				dropped := false
				net.setDrop(func(p packet) bool {
					// data[18] is the exchange type, data[19] the flags.
					if !dropped && p.from.Addr() == addrB && len(p.data) > 19 && p.data[18] == 36 && p.data[19]&0x20 != 0 {
						dropped = true
						return true
					}
					return false
				})
				net.release()
				synctest.Wait()
				// Retransmissions, and the wait for a DELETE that cannot
				// come (A never learns the SPIs of its own new SA).
				clk.advance(2*time.Minute, synctest.Wait)
				net.setDrop(nil)
				if !dropped {
					t.Fatalf("B's answer to A's rekey was never sent")
				}
				sa, sb := status(a, "net"), status(b, "net")
				if sa.State != StateEstablished || sb.State != StateEstablished || sa.SPIi != sb.SPIi || sa.SPIr != sb.SPIr {
					t.Fatalf("A %s %x/%x, B %s %x/%x", sa.State, sa.SPIi, sa.SPIr, sb.State, sb.SPIi, sb.SPIr)
				}
				if n, m := len(a.m.sas), len(b.m.sas); n != 1 || m != 1 {
					t.Fatalf("A holds %d IKE SAs, B %d", n, m)
				}
				if len(sa.Children) != 1 || len(sb.Children) != 1 || sa.Children[0].InSPI != child[0].InSPI {
					t.Fatalf("CHILD SAs A %+v, B %+v; want the original one", sa.Children, sb.Children)
				}
				checkMatching(t, a, b)
				won[sa.Initiator]++
				closeAll(t, synctest.Wait, a, b)
			})
		})
	}
	t.Logf("A's new IKE SA survived %d times, B's %d times", won[true], won[false])
}
