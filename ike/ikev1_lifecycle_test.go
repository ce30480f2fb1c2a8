package ike

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipsecgw/ipsecgw/ike/ikev1"
	"github.com/ipsecgw/ipsecgw/ike/shared"
)

// IKEv1 lifecycle through the Manager: retransmission on both sides,
// rekeying of IPsec SAs and reauthentication of the ISAKMP SA without
// loss, DPD, deletes, INITIAL-CONTACT, NAT traversal, and the versions
// together.

// Exchange types on the wire (byte 18 of the ISAKMP header).
const (
	exMain  = 2
	exAggr  = 4
	exInfo  = 5
	exQuick = 32
)

// nthFrom returns a drop function that drops the n-th (from 1) message
// of exchange ex sent by from, once.
func nthFrom(from netip.Addr, ex byte, n int) func(packet) bool {
	seen := 0
	return func(p packet) bool {
		if p.from.Addr() != from || p.data[18] != ex {
			return false
		}
		seen++
		return seen == n
	}
}

func countEx(ps []packet, from netip.Addr, ex byte) int {
	n := 0
	for _, p := range ps {
		if p.from.Addr() == from && p.data[18] == ex {
			n++
		}
	}
	return n
}

// TestV1Retransmissions: each side recovers a lost message the way
// strongSwan's task_manager_v1 does.
func TestV1Retransmissions(t *testing.T) {
	cases := []struct {
		name string
		drop func() func(packet) bool
		// after the first attempt: how many messages each side sent
		wantA, wantB int
	}{
		// The initiator resends main mode 3 after 4 s.
		{"main-mode-3-lost", func() func(packet) bool { return nthFrom(addrA, exMain, 2) }, 4 + 2, 3 + 1},
		// Main mode 6 lost: the initiator resends 5, the responder answers
		// from its cache.
		{"main-mode-6-lost", func() func(packet) bool { return nthFrom(addrB, exMain, 3) }, 4 + 2, 4 + 1},
		// Quick mode 2 lost: the initiator resends 1 (first, its timer
		// was armed first) and the responder answers from its cache.
		{"quick-mode-2-lost", func() func(packet) bool { return nthFrom(addrB, exQuick, 1) }, 3 + 3, 3 + 2},
		// Quick mode 3 lost: the responder resends 2 and the initiator
		// answers with its cached 3.
		{"quick-mode-3-lost", func() func(packet) bool { return nthFrom(addrA, exQuick, 2) }, 3 + 3, 3 + 2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ca, cb := confPairV1("net", "", "")
				a, b, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{})
				net.setDrop(tc.drop())
				a.m.Up("net")
				synctest.Wait()
				clk.advance(4*time.Second, synctest.Wait)
				sa, sb := status(a, "net"), status(b, "net")
				if sa.State != StateEstablished || sb.State != StateEstablished {
					t.Fatalf("A %s %s, B %s %s", sa.State, sa.Reason, sb.State, sb.Reason)
				}
				checkMatching(t, a, b)
				ps := net.packets()
				gotA := countEx(ps, addrA, exMain) + countEx(ps, addrA, exQuick)
				gotB := countEx(ps, addrB, exMain) + countEx(ps, addrB, exQuick)
				if gotA != tc.wantA || gotB != tc.wantB {
					t.Errorf("A sent %d, B %d messages; want %d and %d", gotA, gotB, tc.wantA, tc.wantB)
				}
				closeAll(t, synctest.Wait, a, b)
			})
		})
	}
}

// TestV1GiveUp: an initiator without an answer retransmits with the
// shared schedule and gives up with a reason; keyingtries=1 stops there.
func TestV1GiveUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPairV1("net", "keyingtries=1", "")
		a, b, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{tries: 3})
		net.setDrop(func(p packet) bool { return p.from.Addr() == addrB })
		a.m.Up("net")
		synctest.Wait()
		clk.advance(time.Minute, synctest.Wait)
		s := status(a, "net")
		if s.State != StatePhase1Failed || !strings.Contains(s.Reason, "no response") || !strings.Contains(s.Reason, "main mode message 1") {
			t.Fatalf("A: %s %q", s.State, s.Reason)
		}
		if n := countEx(net.packets(), addrA, exMain); n != 4 {
			t.Errorf("A sent main mode 1 %d times, want 4 (3 retransmissions)", n)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestV1ChildRekey: the IPsec SA is replaced by a new quick mode before it
// expires, make before break: nobody sends on an SA its peer has not
// installed, and the old SA goes only after traffic moved.
func TestV1ChildRekey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPairV1("net", "lifetime=20m\nmargintime=5m\nrekeyfuzz=0%\nesp=aes128-sha1-modp1536!", "lifetime=20m\nmargintime=2m\nrekeyfuzz=0%\nesp=aes128-sha1-modp1536!")
		a, b, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{})
		da, db := withDataplanes(a, b)
		upV1(t, a, b, "net")
		old := a.inst.all()[0]
		n := len(net.packets())
		clk.advance(15*time.Minute-time.Second, synctest.Wait)
		if got := a.inst.all(); len(got) != 1 || got[0].InSPI != old.InSPI {
			t.Fatal("rekeyed too early")
		}
		clk.advance(time.Second, synctest.Wait)
		if got := a.inst.all(); len(got) != 2 || da.outbound("net") != old.OutSPI {
			t.Fatalf("during the rekey: %d SAs, A sends on %08x (old %08x)", len(got), da.outbound("net"), old.OutSPI)
		}
		clk.advance(ikev1.SwitchDelay, synctest.Wait)
		if got := a.inst.all(); len(got) != 2 || da.outbound("net") == old.OutSPI {
			t.Fatalf("after the switch: %d SAs, A sends on %08x (old %08x); want the new SA in use and the old one kept for DrainDelay", len(got), da.outbound("net"), old.OutSPI)
		}
		clk.advance(ikev1.DrainDelay, synctest.Wait)
		checkOnePair(t, a, b, da, db)
		as := a.inst.all()[0]
		if as.InSPI == old.InSPI || string(as.OutEncrKey) == string(old.OutEncrKey) {
			t.Error("the new SA has the old SPI or keys")
		}
		ps := net.packets()[n:]
		if q, i := countEx(ps, addrA, exQuick)+countEx(ps, addrB, exQuick), countEx(ps, addrA, exInfo); q != 3 || i != 1 {
			t.Errorf("rekey: %d quick mode messages, %d informational; want 3 and 1 (the delete)", q, i)
		}
		for _, st := range []ConnStatus{status(a, "net"), status(b, "net")} {
			if st.State != StateEstablished || len(st.Children) != 1 || st.Children[0].Algorithms != "aes128-sha1-modp1536" {
				t.Errorf("after the rekey: %s %+v", st.State, st.Children)
			}
		}
		// The next rekey follows the new SA's lifetime.
		clk.advance(15*time.Minute, synctest.Wait)
		clk.advance(ikev1.SwitchDelay+ikev1.DrainDelay, synctest.Wait)
		checkOnePair(t, a, b, da, db)
		for spi, lived := range a.inst.lived {
			if lived >= 20*time.Minute {
				t.Errorf("SA %08x ran into its lifetime (%v)", spi, lived)
			}
		}
		da.check(t)
		db.check(t)
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestV1Reauthenticate: before the ISAKMP SA expires a new phase 1
// replaces it and takes over the IPsec SA, which it rekeys by a quick mode
// (a peer like strongSwan with unique=no destroys the IPsec SAs of an
// ISAKMP SA that is deleted); only once the rekey switched over is the old
// ISAKMP SA deleted. The dataplanes lose nothing.
func TestV1Reauthenticate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPairV1("net", "ikelifetime=30m\nmargintime=5m\nrekeyfuzz=0%", "")
		a, b, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{})
		da, db := withDataplanes(a, b)
		upV1(t, a, b, "net")
		before := status(a, "net")
		children := a.inst.all()
		n := len(net.packets())
		clk.advance(25*time.Minute, synctest.Wait)
		sa, sb := status(a, "net"), status(b, "net")
		if sa.State != StateEstablished || sb.State != StateEstablished {
			t.Fatalf("after reauth: A %s %s, B %s %s", sa.State, sa.Reason, sb.State, sb.Reason)
		}
		if sa.SPIi == before.SPIi || sa.SPIi != sb.SPIi || sa.SPIr != sb.SPIr {
			t.Errorf("cookies: before %x, A %x/%x, B %x/%x", before.SPIi, sa.SPIi, sa.SPIr, sb.SPIi, sb.SPIr)
		}
		// Until the rekey switched over, the old ISAKMP SA stays (not
		// serving) and the old IPsec SA carries the traffic.
		if a.ikeSAs() != 2 || len(a.inst.all()) != 2 || da.outbound("net") != children[0].OutSPI {
			t.Errorf("before the switch: A holds %d ISAKMP SAs and %d IPsec SAs, sends on %08x; want 2, 2 and the old %08x",
				a.ikeSAs(), len(a.inst.all()), da.outbound("net"), children[0].OutSPI)
		}
		clk.advance(ikev1.SwitchDelay+ikev1.DrainDelay, synctest.Wait)
		if a.ikeSAs() != 1 || b.ikeSAs() != 1 {
			t.Errorf("ISAKMP SAs: A %d, B %d; the old one must be deleted", a.ikeSAs(), b.ikeSAs())
		}
		checkOnePair(t, a, b, da, db)
		if got := a.inst.all(); got[0].InSPI == children[0].InSPI {
			t.Errorf("the IPsec SA was not rekeyed under the new ISAKMP SA")
		}
		ps := net.packets()[n:]
		if m, q := countEx(ps, addrA, exMain), countEx(ps, addrA, exQuick)+countEx(ps, addrB, exQuick); m != 3 || q != 3 {
			t.Errorf("reauthentication sent %d main mode and %d quick mode messages, want 3 and 3", m, q)
		}
		// The new ISAKMP SA goes on working: the IPsec SA is rekeyed under
		// it again.
		rekeyed := a.inst.all()[0]
		clk.advance(60*time.Minute, synctest.Wait)
		clk.advance(ikev1.SwitchDelay+ikev1.DrainDelay, synctest.Wait)
		if s := status(a, "net"); s.State != StateEstablished || len(s.Children) != 1 || s.Children[0].InSPI == rekeyed.InSPI {
			t.Errorf("an hour later: %s, %+v", s.State, s.Children)
		}
		da.check(t)
		db.check(t)
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestV1DPD: a silent peer is probed dpddelay after its last message and
// every dpddelay after that, and declared dead when nothing came from it
// for dpdtimeout.
func TestV1DPD(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPairV1("net", "dpdaction=clear\ndpddelay=10s\ndpdtimeout=30s", "")
		a, b, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{})
		upV1(t, a, b, "net")
		// Answered probes keep the SA up.
		clk.advance(2*time.Minute, synctest.Wait)
		if s := status(a, "net"); s.State != StateEstablished || countEx(net.packets(), addrB, exInfo) == 0 {
			t.Fatalf("with answered probes: %s %s, B sent %d informational", s.State, s.Reason, countEx(net.packets(), addrB, exInfo))
		}
		net.setDrop(func(packet) bool { return true })
		start := clk.Now()
		// The last answer came at start (probes are answered at once here).
		clk.advance(29*time.Second, synctest.Wait)
		if s := status(a, "net"); s.State != StateEstablished {
			t.Fatalf("declared dead after %v: %s", clk.Now().Sub(start), s.Reason)
		}
		if n := countEx(net.packets(), addrA, exInfo); n < 2 {
			t.Errorf("A sent %d informational messages, want R-U-THERE probes", n)
		}
		clk.advance(time.Second, synctest.Wait)
		s := status(a, "net")
		if s.State != StateDown || s.Cause != shared.CausePeerDead || !strings.Contains(s.Reason, "R-U-THERE") || a.ikeSAs() != 0 || len(a.inst.all()) != 0 {
			t.Fatalf("after 30 s of silence: %s %q (%v), %d ISAKMP SAs, %d IPsec SAs", s.State, s.Reason, s.Cause, a.ikeSAs(), len(a.inst.all()))
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestV1DPDRestartAndInitialContact: dpdaction=restart negotiates again
// once the peer is declared dead; when the path heals the new ISAKMP SA
// carries INITIAL-CONTACT and the peer drops its stale SAs.
func TestV1DPDRestartAndInitialContact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPairV1("net", "dpdaction=restart\ndpddelay=10s\ndpdtimeout=30s", "")
		a, b, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{tries: 2})
		upV1(t, a, b, "net")
		first := status(a, "net").SPIi
		net.setDrop(func(packet) bool { return true })
		clk.advance(30*time.Second, synctest.Wait)
		if s := status(a, "net"); s.State != StateConnecting || s.SPIi == first {
			t.Fatalf("after the dead peer: %s %q", s.State, s.Reason)
		}
		net.setDrop(nil)
		clk.advance(4*time.Second, synctest.Wait)
		if s := status(a, "net"); s.State != StateEstablished {
			t.Fatalf("not re-established: %s %s", s.State, s.Reason)
		}
		if b.ikeSAs() != 1 || len(b.inst.all()) != 1 {
			t.Errorf("B keeps %d ISAKMP SAs and %d IPsec SAs, want 1 and 1", b.ikeSAs(), len(b.inst.all()))
		}
		checkMatching(t, a, b)
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestV1Deletes: down deletes the IPsec and ISAKMP SAs at the peer; an
// IPsec SA deleted by the peer goes here, and closeaction=restart
// negotiates it again over the same ISAKMP SA.
func TestV1Deletes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPairV1("net", "closeaction=restart", "")
		a, b, _, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
		upV1(t, a, b, "net")
		spi := status(a, "net").SPIi
		first := b.inst.all()[0]
		if !b.m.DeleteChild(first.InSPI) {
			t.Fatal("DeleteChild not taken")
		}
		synctest.Wait()
		sa := status(a, "net")
		if sa.State != StateEstablished || sa.SPIi != spi || len(a.inst.all()) != 1 || a.inst.all()[0].OutSPI == first.InSPI {
			t.Fatalf("after B deleted the IPsec SA: %s, ISAKMP %x (was %x), %d IPsec SAs", sa.State, sa.SPIi, spi, len(a.inst.all()))
		}
		checkMatching(t, a, b)
		if err := a.m.Down("net"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if sb := status(b, "net"); sb.State != StateDown || b.ikeSAs() != 0 || len(b.inst.all()) != 0 {
			t.Errorf("B after A's down: %s, %d ISAKMP SAs, %d IPsec SAs", sb.State, b.ikeSAs(), len(b.inst.all()))
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestV1BehindNAT: A behind a NAPT; NAT-D detects it, phase 1 floats to
// port 4500 and ESP runs in UDP.
func TestV1BehindNAT(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		priv := netip.MustParseAddr("10.0.0.5")
		ca := "conn net\n\tkeyexchange=ikev1\n\tauthby=secret\n\tleft=10.0.0.5\n\tleftsubnet=10.1.0.0/24\n\tright=203.0.113.1\n\trightsubnet=10.2.0.0/24\n\tauto=add\n"
		cb := "conn net\n\tkeyexchange=ikev1\n\tauthby=secret\n\tleft=203.0.113.1\n\tleftsubnet=10.2.0.0/24\n\tright=%any\n\trightsubnet=10.1.0.0/24\n\tauto=add\n"
		sec := ": PSK \"behind the nat\"\n"
		_, b, net, _ := pair(t, cb, sec, cb, sec, testOpts{})
		delete(net.nodes, addrA)
		net.nat = []natRule{{private: priv, public: addrA}}
		a := lastMk(priv, ca, sec, 0xa0000000, "A")
		a.m.Up("net")
		synctest.Wait()
		sa, sb := status(a, "net"), status(b, "net")
		if sa.State != StateEstablished || sb.State != StateEstablished {
			t.Fatalf("A %s %s, B %s %s", sa.State, sa.Reason, sb.State, sb.Reason)
		}
		if !sa.NATLocal || sa.NATRemote || !sb.NATRemote || sb.NATLocal {
			t.Errorf("NAT: A local %v remote %v, B local %v remote %v", sa.NATLocal, sa.NATRemote, sb.NATLocal, sb.NATRemote)
		}
		if sa.Remote != netip.MustParseAddrPort("203.0.113.1:4500") || sb.Remote != netip.MustParseAddrPort("198.51.100.1:14500") {
			t.Errorf("ISAKMP endpoints: A → %v, B → %v", sa.Remote, sb.Remote)
		}
		x, y := a.inst.all()[0], b.inst.all()[0]
		if !x.Encap || !y.Encap || y.Remote != netip.MustParseAddrPort("198.51.100.1:14500") {
			t.Errorf("ESP in UDP: A %v, B %v → %v", x.Encap, y.Encap, y.Remote)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestV1ForceEncaps: forceencaps=yes fakes a NAT (a random NAT-D hash),
// so both ends move to 4500 and run ESP in UDP.
func TestV1ForceEncaps(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPairV1("net", "forceencaps=yes", "")
		a, b, _, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
		upV1(t, a, b, "net")
		sa := status(a, "net")
		if !sa.NATLocal || sa.Remote.Port() != 4500 || !a.inst.all()[0].Encap || !b.inst.all()[0].Encap {
			t.Errorf("forceencaps: nat_local %v, remote %v, encap %v/%v", sa.NATLocal, sa.Remote, a.inst.all()[0].Encap, b.inst.all()[0].Encap)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestV1VersionsTogether: a keyexchange=ike conn accepts an IKEv1
// initiator (and initiates IKEv2 itself); Libreswan's ikev2=permit
// initiates IKEv1.
func TestV1VersionsTogether(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPairV1("net", "", "")
		cb = strings.Replace(cb, "keyexchange=ikev1", "keyexchange=ike", 1)
		a, b, _, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
		upV1(t, a, b, "net")
		closeAll(t, synctest.Wait, a, b)
	})
	synctest.Test(t, func(t *testing.T) {
		// Libreswan's defaults: pfs=yes, the IKE group for PFS.
		ca, cb := confPairV1("net", "", "esp=aes128-sha256-modp3072!")
		ca = strings.Replace(ca, "keyexchange=ikev1", "ikev2=permit", 1)
		a, b, _, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
		upV1(t, a, b, "net")
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestV1StatusBeforeUp: IKEv1 conns are listed like any other.
func TestV1StatusBeforeUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPairV1("net", "", "")
		a, b, _, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
		if s := a.m.Status(); len(s) != 1 || s[0].Name != "net" || s[0].State != StateDown {
			t.Errorf("status %+v", s)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestV1TwoConnsShareISAKMPSA: a second conn with the same peer gets its
// IPsec SA by quick mode under the ISAKMP SA that exists.
func TestV1TwoConnsShareISAKMPSA(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca := strings.NewReplacer("LOCAL", "198.51.100.1", "REMOTE", "203.0.113.1", "10.L", "10.1", "10.R", "10.2", "keyexchange=ikev2", "keyexchange=ikev1").Replace(twoConns)
		cb := strings.NewReplacer("LOCAL", "203.0.113.1", "REMOTE", "198.51.100.1", "10.L", "10.2", "10.R", "10.1", "keyexchange=ikev2", "keyexchange=ikev1").Replace(twoConns)
		a, b, net, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
		upV1(t, a, b, "net1")
		n := len(net.packets())
		if err := a.m.Up("net2"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if s := status(b, "net2"); s.State != StateEstablished || a.ikeSAs() != 1 || len(b.inst.all()) != 2 {
			t.Fatalf("net2: %s %s, %d ISAKMP SAs, %d IPsec SAs", s.State, s.Reason, a.ikeSAs(), len(b.inst.all()))
		}
		if got := len(net.packets()) - n; got != 3 {
			t.Errorf("the second conn took %d messages, want a quick mode (3)", got)
		}
		checkMatching(t, a, b)
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestV1SimultaneousRekey: both ends rekey the same IPsec SA at the same
// moment (IKEv1 has no collision rule): both new SAs are installed on
// both sides, nothing is sent on an SA the peer lacks, and the duplicate
// goes at the next rekey, so SAs do not pile up.
func TestV1SimultaneousRekey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		extra := "lifetime=20m\nmargintime=5m\nrekeyfuzz=0%"
		ca, cb := confPairV1("net", extra, extra)
		a, b, _, clk := pair(t, ca, secrets, cb, secrets, testOpts{})
		da, db := withDataplanes(a, b)
		upV1(t, a, b, "net")
		for range 4 {
			clk.advance(15*time.Minute, synctest.Wait)
			clk.advance(ikev1.SwitchDelay+ikev1.DrainDelay, synctest.Wait)
			if na, nb := len(a.inst.all()), len(b.inst.all()); na == 0 || na > 2 || na != nb {
				t.Fatalf("after a rekey round: A holds %d IPsec SAs, B %d", na, nb)
			}
			for _, st := range []ConnStatus{status(a, "net"), status(b, "net")} {
				if st.State != StateEstablished {
					t.Fatalf("%s %s", st.State, st.Reason)
				}
			}
		}
		if sa := da.outbound("net"); sa == 0 || !da.peerHasInbound(sa) {
			t.Errorf("A sends on %08x, which B does not have", sa)
		}
		for spi, lived := range a.inst.lived {
			if lived > 20*time.Minute {
				t.Errorf("SA %08x outlived its lifetime (%v)", spi, lived)
			}
		}
		da.check(t)
		db.check(t)
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestV1CommitBit: when the responder of a rekey sets the commit bit
// (we never do), the initiator moves its traffic to the new SA on the
// responder's CONNECTED instead of after SwitchDelay; when the initiator
// sets it, the responder sends that CONNECTED in a fourth message.
func TestV1CommitBit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPairV1("net", "lifetime=20m\nmargintime=5m\nrekeyfuzz=0%", "lifetime=20m\nmargintime=2m\nrekeyfuzz=0%")
		a, b, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{})
		da, db := withDataplanes(a, b)
		upV1(t, a, b, "net")
		old := a.inst.all()[0]
		n := len(net.packets())
		// Quick mode messages 1 and 2 of the rekey carry the commit bit,
		// as from peers that set it; the flag is outside the encryption
		// and the hashes.
		net.mangle = func(p *packet) {
			if p.data[18] == exQuick && countEx(net.log[n:], p.from.Addr(), exQuick) == 0 {
				p.data[19] |= 0x02
			}
		}
		clk.advance(15*time.Minute, synctest.Wait)
		if got := countEx(net.packets()[n:], addrB, exQuick); got != 2 {
			t.Fatalf("B sent %d quick mode messages, want 2 (message 2 and CONNECTED)", got)
		}
		as := a.inst.all()
		if len(as) != 2 {
			t.Fatalf("A holds %d IPsec SAs during the rekey, want 2", len(as))
		}
		cur := da.outbound("net")
		if cur == old.OutSPI || cur == 0 {
			t.Errorf("A still sends on the old SA %08x after CONNECTED", old.OutSPI)
		}
		clk.advance(10*ikev1.SwitchDelay+ikev1.DrainDelay, synctest.Wait)
		checkOnePair(t, a, b, da, db)
		da.check(t)
		db.check(t)
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestV1PeerReauthenticates: the phase 1 responder reauthenticates (its
// ISAKMP SA ends first) and its delete of the old ISAKMP SA never arrives,
// as with strongSwan, which keeps the old one until its lifetime ends: the
// new ISAKMP SA takes over the IPsec SA at once, so that the peer's rekey
// of it and later exchanges about it go through the new one.
func TestV1PeerReauthenticates(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPairV1("net", "", "ikelifetime=30m\nmargintime=5m\nrekeyfuzz=0%")
		a, b, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{})
		upV1(t, a, b, "net")
		before := status(a, "net")
		children := a.inst.all()
		// B's delete of its old ISAKMP SA (an informational under the
		// old cookies) never reaches A.
		net.setDrop(func(p packet) bool {
			return p.from.Addr() == addrB && p.data[18] == exInfo && binary.BigEndian.Uint64(p.data[0:8]) == before.SPIi
		})
		clk.advance(28*time.Minute, synctest.Wait)
		sa := status(a, "net")
		if sa.State != StateEstablished || sa.SPIi == before.SPIi || sa.Initiator {
			t.Fatalf("A after B's reauthentication: %s %s, cookie %x (was %x), initiator %v", sa.State, sa.Reason, sa.SPIi, before.SPIi, sa.Initiator)
		}
		if a.ikeSAs() != 2 {
			t.Errorf("A holds %d ISAKMP SAs, want 2 (the old one was never deleted)", a.ikeSAs())
		}
		if len(sa.Children) != 1 || a.inst.all()[0].InSPI == children[0].InSPI {
			t.Fatalf("the IPsec SA was not taken over and rekeyed through the new ISAKMP SA: %+v", sa.Children)
		}
		net.setDrop(nil)
		if !b.m.DeleteChild(b.inst.all()[0].InSPI) {
			t.Fatal("DeleteChild not taken")
		}
		synctest.Wait()
		if len(a.inst.all()) != 0 {
			t.Errorf("A kept the IPsec SA B deleted through the new ISAKMP SA")
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestV1ResponderBehindNAT: the responder sits behind a NAT that forwards
// the IKE ports to it; the initiator sees the NAT, floats to 4500 with
// main mode 5, and the responder follows it there before it answers, so
// that its IPsec SA sends to the port the initiator uses.
func TestV1ResponderBehindNAT(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		priv := netip.MustParseAddr("10.0.0.9")
		ca := "conn net\n\tkeyexchange=ikev1\n\tauthby=secret\n\tleft=198.51.100.1\n\tleftsubnet=10.1.0.0/24\n\tright=203.0.113.1\n\trightsubnet=10.2.0.0/24\n\tauto=add\n"
		cb := "conn net\n\tkeyexchange=ikev1\n\tauthby=secret\n\tleft=10.0.0.9\n\tleftid=203.0.113.1\n\tleftsubnet=10.2.0.0/24\n\tright=198.51.100.1\n\trightsubnet=10.1.0.0/24\n\tauto=add\n"
		sec := ": PSK \"behind the nat\"\n"
		a, _, net, _ := pair(t, ca, sec, ca, sec, testOpts{})
		delete(net.nodes, addrB)
		net.nat = []natRule{{private: priv, public: addrB}}
		b := lastMk(priv, cb, sec, 0xb0000000, "B")
		a.m.Up("net")
		synctest.Wait()
		sa, sb := status(a, "net"), status(b, "net")
		if sa.State != StateEstablished || sb.State != StateEstablished {
			t.Fatalf("A %s %s, B %s %s", sa.State, sa.Reason, sb.State, sb.Reason)
		}
		if !sa.NATRemote || !sb.NATLocal || sa.Remote.Port() != 4500 {
			t.Errorf("NAT: A remote %v (%v), B local %v", sa.NATRemote, sa.Remote, sb.NATLocal)
		}
		if y := b.inst.all()[0]; !y.Encap || y.Remote != netip.MustParseAddrPort("198.51.100.1:4500") {
			t.Errorf("B's IPsec SA: encap %v, sends to %v, want 198.51.100.1:4500", y.Encap, y.Remote)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestV1IPv6: main and quick mode over IPv6 with IPv6 subnets (ID_IPV6_*
// identities and selectors, NAT-D over IPv6 addresses).
func TestV1IPv6(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPairV1("net", "", "")
		a0, b0, _, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
		c6 := "conn v6\n\tkeyexchange=ikev1\n\tauthby=secret\n\tleft=%s\n\tleftsubnet=%s\n\tright=%s\n\trightsubnet=%s\n\tauto=add\n"
		x, y := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
		sec := "2001:db8::1 2001:db8::2 : PSK \"v6 secret\"\n"
		a := lastMk(x, fmt.Sprintf(c6, x, "fd00:1::/64", y, "fd00:2::/64"), sec, 0xa6000000, "A6")
		b := lastMk(y, fmt.Sprintf(c6, y, "fd00:2::/64", x, "fd00:1::/64"), sec, 0xb6000000, "B6")
		upV1(t, a, b, "v6")
		if c := a.inst.all()[0]; tsList(c.LocalTS) != "fd00:1::/64" || tsList(c.RemoteTS) != "fd00:2::/64" || c.Encap {
			t.Errorf("selectors %s ↔ %s, encap %v", tsList(c.LocalTS), tsList(c.RemoteTS), c.Encap)
		}
		if s := status(b, "v6"); s.RemoteID != "2001:db8::1" {
			t.Errorf("B sees the peer as %s", s.RemoteID)
		}
		closeAll(t, synctest.Wait, a, b, a0, b0)
	})
}

// TestV1KeysNeverLogged is TestKeysNeverLogged for IKEv1: through setup
// (main and quick mode with PFS), an IPsec SA rekey, a reauthentication
// and the deletes, at the debug level, neither the PSK nor any ESP key
// appears in the log in any form.
func TestV1KeysNeverLogged(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var logs lockedBuffer
		extra := "lifetime=20m\nmargintime=5m\nrekeyfuzz=0%\nikelifetime=60m\nesp=aes128-sha1-modp2048!"
		ca, cb := confPairV1("net", extra, extra)
		a, b, _, clk := pair(t, ca, secrets, cb, secrets, testOpts{logs: &logs})
		var keys [][]byte
		capture := func() {
			for _, n := range []*node{a, b} {
				for _, sa := range n.inst.all() {
					for _, k := range [][]byte{sa.InEncrKey, sa.InIntegKey, sa.OutEncrKey, sa.OutIntegKey} {
						if len(k) > 0 {
							keys = append(keys, bytes.Clone(k))
						}
					}
				}
			}
		}
		upV1(t, a, b, "net")
		capture()
		clk.advance(16*time.Minute, synctest.Wait) // IPsec SA rekey at 15 min
		capture()
		clk.advance(45*time.Minute, synctest.Wait) // reauthentication at 55 min
		capture()
		if err := a.m.Down("net"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		closeAll(t, synctest.Wait, a, b)
		log := logs.String()
		if !strings.Contains(log, "IPsec SA established") || !strings.Contains(log, "reauthenticating") || len(keys) < 8 {
			t.Fatalf("the test saw too little: %d bytes of log, %d keys", len(log), len(keys))
		}
		if strings.Contains(log, "correct horse battery staple") {
			t.Error("the PSK appears in the log")
		}
		for _, k := range keys {
			for how, form := range map[string]string{"hex": hex.EncodeToString(k), "upper hex": strings.ToUpper(hex.EncodeToString(k)),
				"base64": base64.StdEncoding.EncodeToString(k), "Go slice": fmt.Sprint(k), "raw": string(k)} {
				if strings.Contains(log, form) {
					t.Errorf("a %d-byte ESP key appears in the log (%s)", len(k), how)
				}
			}
		}
	})
}

// TestV1ShortPeerLifetimeRekeyed: the responder accepts only 5 minutes
// (RESPONDER-LIFETIME), less than the initiator's 9-minute margin, and
// never rekeys itself: the initiator rekeys at 90 % of the 5 minutes, so
// that no IPsec SA runs into its hard lifetime.
func TestV1ShortPeerLifetimeRekeyed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPairV1("net", "", "lifetime=5m\nrekey=no")
		a, b, _, clk := pair(t, ca, secrets, cb, secrets, testOpts{})
		da, db := withDataplanes(a, b)
		upV1(t, a, b, "net")
		first := a.inst.all()[0]
		clk.advance(12*time.Minute, synctest.Wait)
		clk.advance(ikev1.SwitchDelay+ikev1.DrainDelay, synctest.Wait)
		checkOnePair(t, a, b, da, db)
		if a.inst.all()[0].InSPI == first.InSPI {
			t.Error("the IPsec SA was never rekeyed")
		}
		for spi, lived := range a.inst.lived {
			if lived >= 5*time.Minute {
				t.Errorf("SA %08x ran into its 5-minute lifetime (%v)", spi, lived)
			}
		}
		da.check(t)
		db.check(t)
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestV1AnswerGap: a copy of main mode 5 that arrives within
// shared.AnswerGap of the responder's last main mode 6 is counted and not
// answered; one after the gap is answered with the cached main mode 6.
func TestV1AnswerGap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPairV1("net", "", "")
		a, b, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{})
		upV1(t, a, b, "net")
		var mm5, mm6 []byte
		for _, p := range net.packets() {
			if p.data[18] != exMain {
				continue
			}
			switch p.from.Addr() {
			case addrA:
				mm5 = p.data // the last main mode message A sent
			case addrB:
				mm6 = p.data
			}
		}
		sent := func() int { return countEx(net.packets(), addrB, exMain) }
		n := sent()
		b.m.HandlePacket(netip4500(addrB), netip4500(addrA), mm5)
		synctest.Wait()
		if got, lim := sent()-n, b.m.Counters().Drops[shared.DropRetransmitLimited]; got != 0 || lim != 1 {
			t.Fatalf("main mode 5 within the answer gap: B answered %d times, counted %d limited; want 0 and 1", got, lim)
		}
		clk.advance(shared.AnswerGap, synctest.Wait)
		b.m.HandlePacket(netip4500(addrB), netip4500(addrA), mm5)
		synctest.Wait()
		ps := net.packets()
		if last := ps[len(ps)-1]; sent()-n != 1 || !bytes.Equal(last.data, mm6) {
			t.Fatalf("main mode 5 after the answer gap: B answered %d times (last packet from %v)", sent()-n, last.from)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}
