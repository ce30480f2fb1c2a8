package ike

import (
	"strings"
	"testing"
	"testing/synctest"
)

// TestDownThenUpSharedIKESA is what a reload that changes one of two conns
// sharing an IKE SA does: Down and, at once, Up. The DELETE of the old
// CHILD SA is still outstanding when Up comes; the conn must get a new
// CHILD SA all the same, and the other conn keep its own.
func TestDownThenUpSharedIKESA(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca := strings.NewReplacer("LOCAL", "198.51.100.1", "REMOTE", "203.0.113.1", "10.L", "10.1", "10.R", "10.2").Replace(twoConns)
		cb := strings.NewReplacer("LOCAL", "203.0.113.1", "REMOTE", "198.51.100.1", "10.L", "10.2", "10.R", "10.1").Replace(twoConns)
		a, b, _, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net1")
		a.m.Up("net2")
		synctest.Wait()
		s1, s2 := status(a, "net1"), status(a, "net2")
		if s1.State != StateEstablished || s2.State != StateEstablished || s1.SPIi != s2.SPIi {
			t.Fatalf("A: net1 %s, net2 %s, one IKE SA %v", s1.State, s2.State, s1.SPIi == s2.SPIi)
		}
		if err := a.m.Down("net2"); err != nil {
			t.Fatal(err)
		}
		if err := a.m.Up("net2"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		n1, n2 := status(a, "net1"), status(a, "net2")
		if n2.State != StateEstablished || len(n2.Children) != 1 {
			t.Fatalf("net2 after Down+Up: %s (%s), %d CHILD SAs", n2.State, n2.Reason, len(n2.Children))
		}
		if n2.Children[0].InSPI == s2.Children[0].InSPI {
			t.Errorf("net2 kept its CHILD SA %08x", n2.Children[0].InSPI)
		}
		if n1.State != StateEstablished || n1.Children[0].InSPI != s1.Children[0].InSPI || n1.SPIi != s1.SPIi {
			t.Errorf("net1 disturbed: %+v -> %+v", s1, n1)
		}
		if len(a.inst.all()) != 2 || len(b.inst.all()) != 2 {
			t.Errorf("CHILD SAs installed: A %d, B %d, want 2 each", len(a.inst.all()), len(b.inst.all()))
		}
		checkMatching(t, a, b)
		closeAll(t, synctest.Wait, a, b)
	})
}
