package ike

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// initRequestsFrom counts the IKE_SA_INIT requests a node sent among ps.
func initRequestsFrom(ps []packet, from *node) int {
	n := 0
	for _, p := range ps {
		if p.from.Addr() == from.addr && p.data[18] == 34 && p.data[19]&0x20 == 0 {
			n++
		}
	}
	return n
}

func (n *node) trapped(conn string) bool {
	n.inst.mu.Lock()
	defer n.inst.mu.Unlock()
	return n.inst.traps[conn]
}

func (n *node) ikeSAs() int {
	n.m.mu.Lock()
	defer n.m.mu.Unlock()
	return len(n.m.sas)
}

// TestDPDHold: with dpdaction=hold, a peer that stops answering costs the
// IKE and CHILD SAs, and the conn's trap policy is installed instead of a
// new attempt; the next packet (Acquire) negotiates the conn again, and
// `down` removes the trap.
func TestDPDHold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPair("net", "dpdaction=hold\ndpddelay=10s", "")
		a, b, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{tries: 2})
		a.m.Up("net")
		synctest.Wait()
		if s := status(a, "net"); s.State != StateEstablished || a.trapped("net") {
			t.Fatalf("setup: %s, trap %v", s.State, a.trapped("net"))
		}
		net.setDrop(func(packet) bool { return true })
		sent := len(net.packets())
		// dpddelay, then the check and two retransmissions (4 + 7.2 + 12.96 s).
		clk.advance(10*time.Second+24200*time.Millisecond, synctest.Wait)
		s := status(a, "net")
		if s.State != StateDown || a.ikeSAs() != 0 || len(a.inst.all()) != 0 {
			t.Fatalf("after the dead peer: %s %q, %d IKE SAs, %d CHILD SAs; want down and none", s.State, s.Reason, a.ikeSAs(), len(a.inst.all()))
		}
		if !a.trapped("net") {
			t.Fatal("dpdaction=hold installed no trap policy")
		}
		// Hold waits for traffic: no attempt of its own, however long.
		clk.advance(5*time.Minute, synctest.Wait)
		if n := initRequestsFrom(net.packets()[sent:], a); n != 0 {
			t.Fatalf("A sent %d IKE_SA_INIT without traffic", n)
		}
		net.setDrop(nil)
		a.m.Acquire("net")
		synctest.Wait()
		if s := status(a, "net"); s.State != StateEstablished {
			t.Fatalf("after a packet hit the trap: %s %q", s.State, s.Reason)
		}
		checkMatching(t, a, b)
		if err := a.m.Down("net"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if a.trapped("net") {
			t.Error("the hold trap survived `down`")
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestCloseAction: the peer deletes our CHILD SA (IKE SA kept) or the
// whole IKE SA; closeaction decides what follows.
func TestCloseAction(t *testing.T) {
	for _, tc := range []struct {
		action string
		ike    bool // the peer deletes the IKE SA, not only the CHILD SA
	}{
		{"none", false}, {"restart", false}, {"hold", false},
		{"none", true}, {"restart", true}, {"hold", true},
	} {
		name := "child-" + tc.action
		if tc.ike {
			name = "ike-" + tc.action
		}
		t.Run(name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ca, cb := confPair("net", "closeaction="+tc.action, "")
				a, b, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{})
				a.m.Up("net")
				synctest.Wait()
				before := status(a, "net")
				if before.State != StateEstablished {
					t.Fatalf("setup: %s %s", before.State, before.Reason)
				}
				if tc.ike {
					if err := b.m.Down("net"); err != nil {
						t.Fatal(err)
					}
				} else {
					if !b.m.DeleteChild(b.inst.all()[0].InSPI) {
						t.Fatal("B's IKE SA did not take the request to delete its CHILD SA")
					}
				}
				synctest.Wait()
				s := status(a, "net")
				switch tc.action {
				case "restart":
					if s.State != StateEstablished || len(s.Children) != 1 || s.Children[0].InSPI == before.Children[0].InSPI {
						t.Fatalf("closeaction=restart: %s, children %+v", s.State, s.Children)
					}
					if same := s.SPIi == before.SPIi; same == tc.ike {
						t.Errorf("IKE SA %x before, %x after: want the same one only when the peer deleted the CHILD SA", before.SPIi, s.SPIi)
					}
					checkMatching(t, a, b)
				case "none", "hold":
					if s.State != StateDown || len(a.inst.all()) != 0 {
						t.Fatalf("closeaction=%s: %s with %d CHILD SAs, want down with none", tc.action, s.State, len(a.inst.all()))
					}
					wantIKE := 1
					if tc.ike {
						wantIKE = 0
					}
					if a.ikeSAs() != wantIKE {
						t.Errorf("%d IKE SAs, want %d", a.ikeSAs(), wantIKE)
					}
					if a.trapped("net") != (tc.action == "hold") {
						t.Fatalf("closeaction=%s: trap policy %v", tc.action, a.trapped("net"))
					}
					// Nothing comes back by itself.
					clk.advance(2*time.Minute, synctest.Wait)
					if n := len(a.inst.all()); n != 0 || status(a, "net").State != StateDown {
						t.Fatalf("closeaction=%s: %d CHILD SAs after 2 minutes, state %s", tc.action, n, status(a, "net").State)
					}
					if tc.action == "hold" {
						sent := len(net.packets())
						a.m.Acquire("net")
						synctest.Wait()
						if s := status(a, "net"); s.State != StateEstablished || len(s.Children) != 1 {
							t.Fatalf("after a packet hit the trap: %s %+v", s.State, s.Children)
						}
						// Over the IKE SA that is left, when there is one.
						if n := initRequestsFrom(net.packets()[sent:], a); n != wantIKE^1 {
							t.Errorf("%d IKE_SA_INIT for the re-negotiation, want %d", n, wantIKE^1)
						}
						checkMatching(t, a, b)
					}
				}
				closeAll(t, synctest.Wait, a, b)
				if a.trapped("net") {
					t.Error("trap policy left after Close")
				}
			})
		})
	}
}

// TestDPDTimeoutBoundsDetection: with dpdtimeout set, a dead peer is
// declared dead dpdtimeout after the last message received from it, not
// after the whole retransmission schedule (5 tries: ~165 s), and the
// reason says so; dpdaction=restart then negotiates again.
func TestDPDTimeoutBoundsDetection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPair("net", "dpdaction=restart\ndpddelay=3s\ndpdtimeout=15s", "")
		a, _, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net")
		synctest.Wait()
		if s := status(a, "net"); s.State != StateEstablished {
			t.Fatalf("setup: %s %q", s.State, s.Reason)
		}
		net.setDrop(func(packet) bool { return true })
		clk.advance(15*time.Second-time.Millisecond, synctest.Wait)
		if s := status(a, "net"); s.State != StateEstablished {
			t.Fatalf("declared dead before dpdtimeout: %s %q", s.State, s.Reason)
		}
		rec := record(a)
		clk.advance(2*time.Millisecond, synctest.Wait)
		got := rec.take()
		if !inOrder(got, "Failure(down,peer-dead)", "IKEDown(peer-dead)") {
			t.Fatalf("at dpdtimeout: events %v, want the peer declared dead", got)
		}
		if s := status(a, "net"); s.State != StateConnecting || !strings.Contains(s.Reason, "dpdtimeout") {
			t.Errorf("after dpdtimeout with dpdaction=restart: %s %q, want connecting with the dpdtimeout reason", s.State, s.Reason)
		}
		net.setDrop(nil)
	})
}
