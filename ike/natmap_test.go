package ike

import (
	"net/netip"
	"testing"
	"testing/synctest"
	"time"
)

// TestPeerNATMappingChangeFollowed: A sits behind a NAPT and initiates to
// B (right=%any). The NAT then changes its mapping (A's packets leave from
// other public ports); A's next liveness check reaches B from the new
// port, and B, not behind a NAT itself, moves the IKE SA and the CHILD SA
// there (RFC 7296 §2.23), so that ESP towards A goes to the new mapping.
func TestPeerNATMappingChangeFollowed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		priv := netip.MustParseAddr("10.0.0.5")
		ca := "conn net\n\tkeyexchange=ikev2\n\tauthby=secret\n\tleft=10.0.0.5\n\tright=203.0.113.1\n\tdpddelay=10s\n\tdpdaction=clear\n\tauto=add\n"
		cb := "conn net\n\tkeyexchange=ikev2\n\tauthby=secret\n\tleft=203.0.113.1\n\tright=%any\n\tauto=add\n"
		sec := ": PSK \"behind the nat\"\n"
		_, b, net, clk := pair(t, cb, sec, cb, sec, testOpts{}) // placeholder A at 198.51.100.1 is unused
		delete(net.nodes, addrA)
		net.nat = []natRule{{private: priv, public: addrA}}
		a := lastMk(priv, ca, sec, 0xa0000000, "A")
		a.m.Up("net")
		synctest.Wait()
		before := netip.MustParseAddrPort("198.51.100.1:14500")
		if s := status(b, "net"); s.State != StateEstablished || s.Remote != before || !s.NATDetected() {
			t.Fatalf("B: %s %v nat=%v %s", s.State, s.Remote, s.NATDetected(), s.Reason)
		}

		net.mu.Lock()
		net.nat[0].shift = 20000
		net.mu.Unlock()
		clk.advance(10*time.Second, synctest.Wait) // A's dpddelay

		after := netip.MustParseAddrPort("198.51.100.1:24500")
		s := status(b, "net")
		if s.State != StateEstablished || s.Remote != after {
			t.Fatalf("B after the NAT changed: %s, IKE SA at %v, want %v", s.State, s.Remote, after)
		}
		bc := b.inst.all()
		if len(bc) != 1 || bc[0].Remote != after {
			var at []netip.AddrPort // never print the ChildSA: it holds keys
			for _, c := range bc {
				at = append(at, c.Remote)
			}
			t.Fatalf("B's CHILD SAs after the NAT changed send to %v, want one at %v", at, after)
		}
		// B's own requests now reach A through the new mapping: A's
		// liveness checks keep being answered and nothing is torn down.
		clk.advance(60*time.Second, synctest.Wait)
		if sa, sb := status(a, "net"), status(b, "net"); sa.State != StateEstablished || sb.State != StateEstablished || sb.Remote != after {
			t.Fatalf("a minute later: A %s %s, B %s at %v", sa.State, sa.Reason, sb.State, sb.Remote)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestPeerNewPortWithoutNATIgnored: without a NAT in front of the peer an
// established SA does not move when a valid message arrives from another
// port. RFC 7296 §2.23 allows dynamic updates only towards a peer behind a
// NAT; anyone able to copy a valid packet and resend it from elsewhere
// could otherwise redirect the tunnel.
func TestPeerNewPortWithoutNATIgnored(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPair("net", "dpdaction=clear\ndpddelay=10s", "")
		a, b, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net")
		synctest.Wait()
		s := status(b, "net")
		if s.State != StateEstablished || s.NATDetected() {
			t.Fatalf("B: %s nat=%v %s", s.State, s.NATDetected(), s.Reason)
		}
		before := s.Remote
		// A's packets now appear from port+7 (and come back from it).
		net.mu.Lock()
		net.nat = []natRule{{private: addrA, public: addrA, shift: 7}}
		net.mu.Unlock()
		n0 := len(net.packets())
		clk.advance(10*time.Second, synctest.Wait)
		seen := false
		for _, p := range net.packets()[n0:] {
			if p.to.Addr() == addrB && p.from.Port() == before.Port()+7 {
				seen = true
			}
		}
		if !seen {
			t.Fatalf("no liveness check reached B from the other port")
		}
		if s := status(b, "net"); s.Remote != before {
			t.Errorf("B moved its IKE SA to %v without a NAT in front of A (was %v)", s.Remote, before)
		}
		for _, c := range b.inst.all() {
			if c.Remote != before {
				t.Errorf("B moved CHILD SA %08x to %v without a NAT in front of A", c.InSPI, c.Remote)
			}
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestPeerMovedESP: the dataplane reports authenticated ESP-in-UDP for
// B's inbound SPI from A's new public port (A itself sends no IKE message,
// as strongSwan without DPD would not): B moves the IKE SA and the CHILD
// SA there. A report for an unknown SPI moves nothing; between peers
// without a NAT nothing moves either.
func TestPeerMovedESP(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		priv := netip.MustParseAddr("10.0.0.5")
		ca := "conn net\n\tkeyexchange=ikev2\n\tauthby=secret\n\tleft=10.0.0.5\n\tright=203.0.113.1\n\tauto=add\n"
		cb := "conn net\n\tkeyexchange=ikev2\n\tauthby=secret\n\tleft=203.0.113.1\n\tright=%any\n\tauto=add\n"
		sec := ": PSK \"behind the nat\"\n"
		_, b, net, _ := pair(t, cb, sec, cb, sec, testOpts{})
		delete(net.nodes, addrA)
		net.nat = []natRule{{private: priv, public: addrA}}
		a := lastMk(priv, ca, sec, 0xa0000000, "A")
		a.m.Up("net")
		synctest.Wait()
		bc := b.inst.all()
		if s := status(b, "net"); s.State != StateEstablished || len(bc) != 1 {
			t.Fatalf("B: %s with %d CHILD SAs %s", s.State, len(bc), s.Reason)
		}
		before := bc[0].Remote
		after := netip.MustParseAddrPort("198.51.100.1:24500")

		b.m.PeerMovedESP(bc[0].InSPI+1, after) // not B's SPI
		synctest.Wait()
		if s := status(b, "net"); s.Remote != before || b.inst.all()[0].Remote != before {
			t.Fatalf("a report for another SPI moved B to %v / %v", s.Remote, b.inst.all()[0].Remote)
		}

		if !b.m.PeerMovedESP(bc[0].InSPI, after) {
			t.Fatal("no IKE SA took the report")
		}
		synctest.Wait()
		if s := status(b, "net"); s.Remote != after {
			t.Errorf("B's IKE SA at %v after the ESP report, want %v", s.Remote, after)
		}
		if got := b.inst.all()[0].Remote; got != after {
			t.Errorf("B's CHILD SA sends to %v after the ESP report, want %v", got, after)
		}
		closeAll(t, synctest.Wait, a, b)
	})
	synctest.Test(t, func(t *testing.T) {
		// B forces ESP in UDP by faking a NAT in front of itself; A is not
		// behind one. A report of A at another port must not move B
		// (RFC 7296 §2.23: only towards a peer behind a NAT).
		ca, cb := confPair("net", "", "forceencaps=yes")
		a, b, _, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net")
		synctest.Wait()
		bc := b.inst.all()
		s := status(b, "net")
		if s.State != StateEstablished || len(bc) != 1 || !bc[0].Encap {
			t.Fatalf("B: %s with %d CHILD SAs, ESP in UDP needed for the test %s", s.State, len(bc), s.Reason)
		}
		b.m.PeerMovedESP(bc[0].InSPI, netip.AddrPortFrom(addrA, 20000))
		synctest.Wait()
		if got := status(b, "net").Remote; got != s.Remote {
			t.Errorf("B's IKE SA moved to %v towards a peer not behind a NAT (was %v)", got, s.Remote)
		}
		if got := b.inst.all()[0].Remote; got != bc[0].Remote {
			t.Errorf("B's CHILD SA moved to %v towards a peer not behind a NAT (was %v)", got, bc[0].Remote)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestPeerNATMappingChangeFollowedOnResponse: the authenticated message
// from the new port is the answer to B's own liveness check: B moves there
// as on a request. (The fake NAT shifts ports both ways, so B's request to
// the old port still reaches A, at some port; A answers from its socket,
// which the NAT now maps to the new public port.)
func TestPeerNATMappingChangeFollowedOnResponse(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		priv := netip.MustParseAddr("10.0.0.5")
		ca := "conn net\n\tkeyexchange=ikev2\n\tauthby=secret\n\tleft=10.0.0.5\n\tright=203.0.113.1\n\tauto=add\n"
		cb := "conn net\n\tkeyexchange=ikev2\n\tauthby=secret\n\tleft=203.0.113.1\n\tright=%any\n\tdpddelay=10s\n\tdpdaction=clear\n\tauto=add\n"
		sec := ": PSK \"behind the nat\"\n"
		_, b, net, clk := pair(t, cb, sec, cb, sec, testOpts{})
		delete(net.nodes, addrA)
		net.nat = []natRule{{private: priv, public: addrA}}
		a := lastMk(priv, ca, sec, 0xa0000000, "A")
		a.m.Up("net")
		synctest.Wait()
		if s := status(b, "net"); s.State != StateEstablished || s.Remote != netip.MustParseAddrPort("198.51.100.1:14500") {
			t.Fatalf("B: %s at %v %s", s.State, s.Remote, s.Reason)
		}
		net.mu.Lock()
		net.nat[0].shift = 20000
		net.mu.Unlock()
		n0 := len(net.packets())
		clk.advance(10*time.Second, synctest.Wait) // B's dpddelay
		requests, responses := 0, 0
		for _, p := range net.packets()[n0:] {
			switch {
			case p.from.Addr() == addrB:
				requests++
			case p.to.Addr() == addrB:
				responses++
			}
		}
		if requests == 0 || responses == 0 {
			t.Fatalf("B's liveness check: %d datagrams from B, %d back", requests, responses)
		}
		after := netip.MustParseAddrPort("198.51.100.1:24500")
		if s := status(b, "net"); s.State != StateEstablished || s.Remote != after {
			t.Fatalf("B after the answer from the new port: %s at %v, want %v", s.State, s.Remote, after)
		}
		if bc := b.inst.all(); len(bc) != 1 || bc[0].Remote != after {
			t.Fatalf("B's CHILD SA did not move to %v", after)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}
