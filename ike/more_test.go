package ike

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev2"
	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
)

// notifyTypes lists the notify types of an unencrypted message.
func notifyTypes(t *testing.T, pkt []byte) []message.NotifyType {
	m, _, err := message.ParseMessage(pkt)
	if err != nil {
		t.Fatal(err)
	}
	var out []message.NotifyType
	for _, n := range notifiesOf(m.Payloads) {
		out = append(out, n.Type)
	}
	return out
}

func TestCookies(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPair("net", "", "")
		cb = strings.Replace(cb, "right=198.51.100.1", "right=%any", 1)
		cb = strings.Replace(cb, "rightsubnet=10.1.0.0/24", "rightsubnet=10.1.0.0/16", 1)
		a, b, net, _ := pair(t, ca, secrets, cb, ": PSK \"correct horse battery staple\"\n", testOpts{cookieThreshold: 1})
		// A's IKE_AUTH never arrives: B keeps one half-open SA, reaching
		// the threshold.
		net.setDrop(func(p packet) bool { return p.from.Addr() == addrA && p.data[18] == 35 })
		a.m.Up("net")
		synctest.Wait()
		if b.m.Counters().HalfOpen != 1 {
			t.Fatalf("B has %d half-open SAs", b.m.Counters().HalfOpen)
		}
		addrC := netip.MustParseAddr("198.51.100.2")
		cc := strings.NewReplacer("198.51.100.1", "198.51.100.2", "10.1.0.0/24", "10.1.7.0/24").Replace(ca)
		c := lastMk(addrC, cc, "198.51.100.2 203.0.113.1 : PSK \"correct horse battery staple\"\n", 0xc0000000, "C")
		c.m.Up("net")
		synctest.Wait()
		if s := status(c, "net"); s.State != StateEstablished {
			t.Fatalf("C: %s %s", s.State, s.Reason)
		}
		var fromC, cookieRsp [][]byte
		for _, p := range net.packets() {
			if p.data[18] != 34 {
				continue
			}
			if p.from.Addr() == addrC {
				fromC = append(fromC, p.data)
			}
			if p.to.Addr() == addrC {
				if nt := notifyTypes(t, p.data); len(nt) == 1 && nt[0] == message.COOKIE {
					cookieRsp = append(cookieRsp, p.data)
				}
			}
		}
		if len(cookieRsp) != 1 || len(fromC) != 2 {
			t.Fatalf("C sent %d IKE_SA_INIT, got %d COOKIE answers; want 2 and 1", len(fromC), len(cookieRsp))
		}
		if nt := notifyTypes(t, fromC[0]); len(nt) > 0 && nt[0] == message.COOKIE {
			t.Errorf("first request already carries a cookie")
		}
		if nt := notifyTypes(t, fromC[1]); len(nt) == 0 || nt[0] != message.COOKIE {
			t.Errorf("retry does not start with the COOKIE notify: %v", nt)
		}
		closeAll(t, synctest.Wait, a, b, c)
	})
}

func TestDeleteBothWays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPair("net", "", "")
		a, b, _, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
		for _, closer := range []*node{a, b} {
			if err := a.m.Up("net"); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			checkMatching(t, a, b)
			if err := closer.m.Down("net"); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			for _, n := range []*node{a, b} {
				if s := status(n, "net"); s.State != StateDown || s.SPIi != 0 || len(s.Children) != 0 {
					t.Errorf("after Down at %s: %+v", closer.addr, s)
				}
				if got := n.inst.all(); len(got) != 0 {
					t.Errorf("CHILD SAs left at %s: %d", n.addr, len(got))
				}
				if len(n.m.sas) != 0 {
					t.Errorf("IKE SAs left at %s", n.addr)
				}
			}
		}
		if len(a.inst.removed) != 2 || len(b.inst.removed) != 2 {
			t.Errorf("removals: A %d, B %d", len(a.inst.removed), len(b.inst.removed))
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

const twoConns = `conn %default
	keyexchange=ikev2
	authby=secret
	left=LOCAL
	right=REMOTE
	auto=add

conn net1
	leftsubnet=10.L.0.0/24
	rightsubnet=10.R.0.0/24

conn net2
	leftsubnet=10.L.1.0/24
	rightsubnet=10.R.1.0/24
	esp=aes128-sha256-modp2048!
`

func TestTwoConnsShareIKESA(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca := strings.NewReplacer("LOCAL", "198.51.100.1", "REMOTE", "203.0.113.1", "10.L", "10.1", "10.R", "10.2").Replace(twoConns)
		cb := strings.NewReplacer("LOCAL", "203.0.113.1", "REMOTE", "198.51.100.1", "10.L", "10.2", "10.R", "10.1").Replace(twoConns)
		a, b, net, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net1")
		a.m.Up("net2")
		synctest.Wait()
		s1, s2 := status(a, "net1"), status(a, "net2")
		if s1.State != StateEstablished || s2.State != StateEstablished {
			t.Fatalf("A: net1 %s %s, net2 %s %s", s1.State, s1.Reason, s2.State, s2.Reason)
		}
		if s1.SPIi != s2.SPIi || len(a.m.sas) != 1 || len(b.m.sas) != 1 {
			t.Fatalf("conns do not share one IKE SA")
		}
		if got := status(b, "net2"); got.State != StateEstablished || len(got.Children) != 1 {
			t.Fatalf("B net2: %+v", got)
		}
		if alg := s2.Children[0].Algorithms; alg != "aes128-sha256-modp2048" {
			t.Errorf("net2 ESP %q, want PFS with modp2048", alg)
		}
		creates := 0
		for _, p := range net.packets() {
			if p.data[18] == 36 {
				creates++
			}
		}
		if creates != 2 {
			t.Errorf("%d CREATE_CHILD_SA messages, want 2", creates)
		}
		checkMatching(t, a, b)
		// Down of one conn deletes only its CHILD SA.
		if err := b.m.Down("net2"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if len(a.inst.all()) != 1 || len(b.inst.all()) != 1 {
			t.Fatalf("after Down(net2): A %d, B %d CHILD SAs", len(a.inst.all()), len(b.inst.all()))
		}
		if status(a, "net1").State != StateEstablished || status(a, "net2").State != StateDown {
			t.Errorf("A: net1 %s, net2 %s", status(a, "net1").State, status(a, "net2").State)
		}
		checkMatching(t, a, b)
		closeAll(t, synctest.Wait, a, b)
	})
}

func TestForceEncapsMovesTo4500(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// B fakes its NAT detection hash as strongSwan does with
		// forceencaps=yes or kernel-libipsec.
		ca, cb := confPair("net", "", "forceencaps=yes")
		a, b, net, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net")
		synctest.Wait()
		if s := status(a, "net"); s.State != StateEstablished || !s.NATDetected() {
			t.Fatalf("A: %s nat=%v %s", s.State, s.NATDetected(), s.Reason)
		}
		for _, p := range net.packets() {
			if p.data[18] == 35 && (p.from.Port() != 4500 || p.to.Port() != 4500) {
				t.Errorf("IKE_AUTH sent %v → %v, want 4500 → 4500", p.from, p.to)
			}
		}
		for _, n := range []*node{a, b} {
			for _, c := range n.inst.all() {
				if !c.Encap || c.Local.Port() != 4500 || c.Remote.Port() != 4500 {
					t.Errorf("CHILD SA at %s: encap=%v %v → %v", n.addr, c.Encap, c.Local, c.Remote)
				}
			}
		}
		checkMatching(t, a, b)
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestEncapsulationPolicy: ESP goes in UDP between two peers in EncapAuto
// (they recognise each other's Vendor ID), with every peer in EncapUDP, and
// nowhere else without a NAT.
func TestEncapsulationPolicy(t *testing.T) {
	cases := []struct {
		name       string
		a, b       Encapsulation
		wantUDP    bool
		wantVIDsOf int // IKE_SA_INIT messages carrying the Vendor ID
	}{
		{"auto-auto", EncapAuto, EncapAuto, true, 2},
		{"auto-nat", EncapAuto, EncapNAT, false, 1},
		{"nat-auto", EncapNAT, EncapAuto, false, 1},
		{"nat-nat", EncapNAT, EncapNAT, false, 0},
		{"udp-nat", EncapUDP, EncapNAT, true, 0},
		{"nat-udp", EncapNAT, EncapUDP, true, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ca, cb := confPair("net", "", "")
				a, b, net, _ := pair(t, ca, secrets, cb, secrets, testOpts{encapA: tc.a, encapB: tc.b})
				a.m.Up("net")
				synctest.Wait()
				if s := status(a, "net"); s.State != StateEstablished {
					t.Fatalf("A: %s %s", s.State, s.Reason)
				}
				vids := 0
				for _, p := range net.packets() {
					if p.data[18] == byte(message.IKE_SA_INIT) && bytes.Contains(p.data, ikev2.VendorID) {
						vids++
					}
				}
				if vids != tc.wantVIDsOf {
					t.Errorf("%d IKE_SA_INIT messages carry the Vendor ID, want %d", vids, tc.wantVIDsOf)
				}
				port := uint16(500)
				if tc.wantUDP {
					port = 4500
				}
				for _, n := range []*node{a, b} {
					for _, c := range n.inst.all() {
						if c.Encap != tc.wantUDP || c.Local.Port() != port || c.Remote.Port() != port {
							t.Errorf("CHILD SA at %s: encap=%v %v → %v, want encap=%v port %d", n.addr, c.Encap, c.Local, c.Remote, tc.wantUDP, port)
						}
					}
				}
				checkMatching(t, a, b)
				closeAll(t, synctest.Wait, a, b)
			})
		})
	}
}

func TestIdentities(t *testing.T) {
	cases := []struct{ name, idA, idB, secret string }{
		{"fqdn", "@a.example", "@b.example", "@a.example @b.example"},
		{"user-fqdn", "alice@example.org", "gw@example.org", "alice@example.org gw@example.org"},
		{"keyid", "@#0a0b0c", "@#0d0e0f", "@#0a0b0c @#0d0e0f"},
		{"ipv4", "198.51.100.1", "203.0.113.1", "198.51.100.1 203.0.113.1"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ca, cb := confPair("net", "leftid="+tc.idA+"\nrightid="+tc.idB, "leftid="+tc.idB+"\nrightid="+tc.idA)
				// B accepts any peer address: the conn is found by A's ID.
				cb = strings.Replace(cb, "right=198.51.100.1", "right=%any", 1)
				sec := tc.secret + " : PSK \"id test secret\"\n"
				a, b, _, _ := pair(t, ca, sec, cb, sec, testOpts{})
				a.m.Up("net")
				synctest.Wait()
				sa, sb := status(a, "net"), status(b, "net")
				if sa.State != StateEstablished || sb.State != StateEstablished {
					t.Fatalf("A %s (%s), B %s (%s)", sa.State, sa.Reason, sb.State, sb.Reason)
				}
				if sa.RemoteID != sb.LocalID || sb.RemoteID != sa.LocalID {
					t.Errorf("IDs: A %s→%s, B %s→%s", sa.LocalID, sa.RemoteID, sb.LocalID, sb.RemoteID)
				}
				checkMatching(t, a, b)
				closeAll(t, synctest.Wait, a, b)
			})
		})
	}
}

func TestWrongPeerID(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPair("net", "leftid=@a.example\nrightid=@b.example", "leftid=@b.example\nrightid=@c.example")
		sec := "@a.example @b.example : PSK \"x secret\"\n@c.example @b.example : PSK \"x secret\"\n"
		a, b, _, _ := pair(t, ca, sec, cb, sec, testOpts{})
		a.m.Up("net")
		synctest.Wait()
		sa, sb := status(a, "net"), status(b, "net")
		if sa.State != StatePhase1Failed || sb.State != StatePhase1Failed {
			t.Fatalf("A %s, B %s", sa.State, sb.State)
		}
		if !strings.Contains(sb.Reason, "@a.example") || !strings.Contains(sb.Reason, "rightid=@c.example") {
			t.Errorf("B's reason: %s", sb.Reason)
		}
		if !strings.Contains(sa.Reason, "AUTHENTICATION_FAILED") {
			t.Errorf("A's reason: %s", sa.Reason)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

func TestDPDRestartAndInitialContact(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPair("net", "dpdaction=restart\ndpddelay=10s", "")
		a, b, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{tries: 2})
		a.m.Up("net")
		synctest.Wait()
		first := status(a, "net").SPIi
		// The path breaks: A's liveness checks go unanswered.
		net.setDrop(func(packet) bool { return true })
		clk.advance(10*time.Second, synctest.Wait)
		var infos int
		for _, p := range net.packets() {
			if p.data[18] == 37 {
				infos++
			}
		}
		if infos != 1 {
			t.Fatalf("%d INFORMATIONAL requests after dpddelay, want 1", infos)
		}
		// 4 s + 7.2 s + 12.96 s: two retransmissions, then give up and restart.
		clk.advance(24200*time.Millisecond, synctest.Wait)
		s := status(a, "net")
		if s.State != StateConnecting || s.SPIi == first || s.SPIi == 0 {
			t.Fatalf("after dead peer: %s %q spi %x", s.State, s.Reason, s.SPIi)
		}
		// The path heals; the new IKE SA carries INITIAL_CONTACT, so B drops
		// its stale one.
		net.setDrop(nil)
		clk.advance(4*time.Second, synctest.Wait)
		if s := status(a, "net"); s.State != StateEstablished {
			t.Fatalf("not re-established: %s %s", s.State, s.Reason)
		}
		if len(b.m.sas) != 1 || len(b.inst.all()) != 1 {
			t.Errorf("B keeps %d IKE SAs and %d CHILD SAs, want 1 and 1", len(b.m.sas), len(b.inst.all()))
		}
		checkMatching(t, a, b)
		closeAll(t, synctest.Wait, a, b)
	})
}

func TestLivenessCheckAnswered(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPair("net", "dpdaction=clear\ndpddelay=30s", "")
		a, b, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net")
		synctest.Wait()
		n := len(net.packets())
		clk.advance(30*time.Second, synctest.Wait)
		ps := net.packets()[n:]
		if len(ps) != 2 || ps[0].data[18] != 37 || ps[1].data[18] != 37 || ps[1].from.Addr() != addrB {
			t.Fatalf("liveness exchange: %d packets", len(ps))
		}
		if s := status(a, "net"); s.State != StateEstablished {
			t.Errorf("A: %s", s.State)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

func TestStartRouteAndTrap(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPair("net", "", "")
		ca = strings.Replace(ca, "auto=add", "auto=route", 1)
		a, b, _, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Start()
		synctest.Wait()
		if !a.inst.traps["net"] || status(a, "net").State != StateDown {
			t.Fatalf("trap not installed or conn initiated early")
		}
		a.m.Acquire("net")
		a.m.Acquire("net") // a second hit while connecting does nothing
		synctest.Wait()
		if s := status(a, "net"); s.State != StateEstablished || len(a.m.sas) != 1 {
			t.Fatalf("after acquire: %s, %d IKE SAs", s.State, len(a.m.sas))
		}
		closeAll(t, synctest.Wait, a, b)
		if a.inst.traps["net"] {
			t.Errorf("trap left after Close")
		}
	})
}

// TestCloseLeavesNoGoroutines runs outside a synctest bubble and counts
// goroutines, with the real scheduler.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	ca, cb := confPair("net", "dpdaction=clear", "")
	a, b, _, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
	a.m.Up("net")
	for i := 0; i < 10000 && status(a, "net").State != StateEstablished; i++ {
		time.Sleep(time.Millisecond)
	}
	if s := status(a, "net"); s.State != StateEstablished {
		t.Fatalf("not established: %s", s.State)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if err := b.m.Close(ctx); err != nil {
		t.Fatal(err)
	}
	after := runtime.NumGoroutine()
	for i := 0; i < 1000 && after > before; i++ {
		time.Sleep(time.Millisecond)
		after = runtime.NumGoroutine()
	}
	if after > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines before, %d after Close:\n%s", before, after, buf[:runtime.Stack(buf, true)])
	}
	if len(a.inst.all())+len(b.inst.all()) != 0 {
		t.Errorf("CHILD SAs left after Close")
	}
}

func TestInvalidSPI(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPair("net", "", "")
		a, b, net, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net")
		synctest.Wait()
		n := len(net.packets())
		// A received ESP with the SPI of its own SA, but pretends not to
		// know it: B learns its outbound SA is useless and removes it.
		spi := a.inst.all()[0].InSPI
		a.m.ReportInvalidSPI(addrB, spi)
		a.m.ReportInvalidSPI(addrB, spi) // rate-limited
		a.m.ReportInvalidSPI(netip.MustParseAddr("192.0.2.77"), spi)
		synctest.Wait()
		if got := len(net.packets()) - n; got != 2 {
			t.Errorf("%d packets after three reports, want one INFORMATIONAL exchange", got)
		}
		if len(b.inst.all()) != 0 {
			t.Errorf("B kept the CHILD SA the peer reported with INVALID_SPI")
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

func TestChildRekey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A rekeys after 20m - 5m (no fuzz), before B (1h) would; the rekey
		// uses PFS with the esp= group.
		ca, cb := confPair("net", "lifetime=20m\nmargintime=5m\nrekeyfuzz=0%\nesp=aes128gcm16-ecp256!", "esp=aes128gcm16-ecp256!")
		a, b, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net")
		synctest.Wait()
		old := a.inst.all()[0]
		clk.advance(15*time.Minute-time.Second, synctest.Wait)
		if got := a.inst.all(); len(got) != 1 || got[0].InSPI != old.InSPI {
			t.Fatalf("rekeyed too early")
		}
		clk.advance(time.Second, synctest.Wait)
		as, bs := a.inst.all(), b.inst.all()
		if len(as) != 1 || len(bs) != 1 || as[0].InSPI == old.InSPI {
			t.Fatalf("after rekey: A %d SAs, B %d SAs", len(as), len(bs))
		}
		if string(as[0].OutEncrKey) == string(old.OutEncrKey) {
			t.Errorf("rekeyed SA has the old keys")
		}
		rekeys := 0
		for _, p := range net.packets() {
			if p.data[18] == 36 {
				rekeys++
			}
		}
		if rekeys != 2 {
			t.Errorf("%d CREATE_CHILD_SA messages, want 2", rekeys)
		}
		checkMatching(t, a, b)
		if s := status(a, "net"); s.State != StateEstablished || len(s.Children) != 1 || s.Children[0].Algorithms != "aes128gcm16-ecp256" {
			t.Errorf("A after rekey: %+v", s)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

func TestIKERekey(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPair("net", "reauth=no\nikelifetime=30m\nmargintime=5m\nrekeyfuzz=0%\nike=aes256gcm16-prfsha384-ecp384!", "ike=aes256gcm16-prfsha384-ecp384!")
		a, b, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net")
		synctest.Wait()
		before := status(a, "net")
		children := a.inst.all()
		clk.advance(25*time.Minute, synctest.Wait)
		sa, sb := status(a, "net"), status(b, "net")
		if sa.State != StateEstablished || sb.State != StateEstablished {
			t.Fatalf("after IKE rekey: A %s %s, B %s %s", sa.State, sa.Reason, sb.State, sb.Reason)
		}
		if sa.SPIi == before.SPIi || sa.SPIr == before.SPIr || sa.SPIi != sb.SPIi || sa.SPIr != sb.SPIr {
			t.Fatalf("SPIs: before %x/%x, A %x/%x, B %x/%x", before.SPIi, before.SPIr, sa.SPIi, sa.SPIr, sb.SPIi, sb.SPIr)
		}
		if len(a.m.sas) != 1 || len(b.m.sas) != 1 {
			t.Errorf("IKE SAs: A %d, B %d; the old one must be deleted", len(a.m.sas), len(b.m.sas))
		}
		if got := a.inst.all(); len(got) != 1 || got[0].InSPI != children[0].InSPI || len(sa.Children) != 1 {
			t.Errorf("CHILD SAs did not survive the IKE rekey unchanged")
		}
		// The new IKE SA works: a CHILD SA delete goes through it.
		n := len(net.packets())
		if err := b.m.Down("net"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if len(net.packets()) != n+2 || len(a.inst.all()) != 0 || len(b.inst.all()) != 0 {
			t.Errorf("delete over the rekeyed IKE SA failed: %d packets, %d/%d CHILD SAs", len(net.packets())-n, len(a.inst.all()), len(b.inst.all()))
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

func TestUpTwiceWhileConnecting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPair("net", "", "")
		a, b, _, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net")
		a.m.Up("net")
		synctest.Wait()
		a.m.Up("net")
		synctest.Wait()
		if len(a.m.sas) != 1 || len(a.inst.all()) != 1 || len(b.inst.all()) != 1 {
			t.Errorf("repeated Up: %d IKE SAs, %d/%d CHILD SAs; want 1 and 1/1", len(a.m.sas), len(a.inst.all()), len(b.inst.all()))
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

func TestRealNAT(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A sits at 10.0.0.5 behind a NAPT that shows it as 198.51.100.1
		// with other ports; host-to-host conn, B accepts any peer.
		priv := netip.MustParseAddr("10.0.0.5")
		ca := "conn net\n\tkeyexchange=ikev2\n\tauthby=secret\n\tleft=10.0.0.5\n\tright=203.0.113.1\n\tauto=add\n"
		cb := "conn net\n\tkeyexchange=ikev2\n\tauthby=secret\n\tleft=203.0.113.1\n\tright=%any\n\tauto=add\n"
		sec := ": PSK \"behind the nat\"\n"
		_, b, net, _ := pair(t, cb, sec, cb, sec, testOpts{}) // placeholder A at 198.51.100.1 is unused
		delete(net.nodes, addrA)
		net.nat = []natRule{{private: priv, public: addrA}}
		a := lastMk(priv, ca, sec, 0xa0000000, "A")
		a.m.Up("net")
		synctest.Wait()
		sa, sb := status(a, "net"), status(b, "net")
		if sa.State != StateEstablished || sb.State != StateEstablished {
			t.Fatalf("A %s %s, B %s %s", sa.State, sa.Reason, sb.State, sb.Reason)
		}
		if !sa.NATDetected() || !sb.NATDetected() {
			t.Errorf("NAT not detected: A %v, B %v", sa.NATDetected(), sb.NATDetected())
		}
		if sb.Remote != netip.MustParseAddrPort("198.51.100.1:14500") || sa.Remote != netip.MustParseAddrPort("203.0.113.1:4500") {
			t.Errorf("IKE endpoints: A → %v, B → %v", sa.Remote, sb.Remote)
		}
		ac, bc := a.inst.all(), b.inst.all()
		if len(ac) != 1 || len(bc) != 1 {
			t.Fatalf("CHILD SAs: A %d, B %d", len(ac), len(bc))
		}
		x, y := ac[0], bc[0]
		if !x.Encap || !y.Encap || y.Remote != netip.MustParseAddrPort("198.51.100.1:14500") || x.Local != netip.MustParseAddrPort("10.0.0.5:4500") {
			t.Errorf("encapsulation: A %v %v→%v, B %v %v→%v", x.Encap, x.Local, x.Remote, y.Encap, y.Local, y.Remote)
		}
		if tsList(y.RemoteTS) != "10.0.0.5/32" || tsList(x.LocalTS) != "10.0.0.5/32" || tsList(x.RemoteTS) != "203.0.113.1/32" {
			t.Errorf("selectors: A %s ↔ %s, B %s ↔ %s", tsList(x.LocalTS), tsList(x.RemoteTS), tsList(y.LocalTS), tsList(y.RemoteTS))
		}
		if string(x.OutEncrKey) != string(y.InEncrKey) || x.OutSPI != y.InSPI {
			t.Errorf("keys or SPIs do not mirror")
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

func TestReauthenticate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca := strings.NewReplacer("LOCAL", "198.51.100.1", "REMOTE", "203.0.113.1", "10.L", "10.1", "10.R", "10.2").Replace(twoConns)
		cb := strings.NewReplacer("LOCAL", "203.0.113.1", "REMOTE", "198.51.100.1", "10.L", "10.2", "10.R", "10.1").Replace(twoConns)
		ca = strings.Replace(ca, "\tauto=add\n", "\tauto=add\n\treauth=yes\n\tikelifetime=30m\n\tmargintime=5m\n\trekeyfuzz=0%\n", 1)
		a, b, _, clk := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net1")
		a.m.Up("net2")
		synctest.Wait()
		before := status(a, "net1")
		oldChildren := a.inst.all()
		clk.advance(25*time.Minute, synctest.Wait)
		s1, s2 := status(a, "net1"), status(a, "net2")
		if s1.State != StateEstablished || s2.State != StateEstablished || s1.SPIi == before.SPIi || s1.SPIi != s2.SPIi {
			t.Fatalf("after reauth: net1 %s %x, net2 %s %x (before %x)", s1.State, s1.SPIi, s2.State, s2.SPIi, before.SPIi)
		}
		if len(a.m.sas) != 1 || len(b.m.sas) != 1 {
			t.Errorf("IKE SAs: A %d, B %d", len(a.m.sas), len(b.m.sas))
		}
		got := a.inst.all()
		if len(got) != 2 || len(b.inst.all()) != 2 {
			t.Fatalf("CHILD SAs: A %d, B %d, want 2 each", len(got), len(b.inst.all()))
		}
		for _, o := range oldChildren {
			for _, g := range got {
				if g.InSPI == o.InSPI {
					t.Errorf("old CHILD SA %08x survived reauthentication", o.InSPI)
				}
			}
		}
		checkMatching(t, a, b)
		closeAll(t, synctest.Wait, a, b)
	})
}

func TestPeerByName(t *testing.T) {
	ca, cb := confPair("net", "", "")
	ca = strings.Replace(ca, "right=203.0.113.1", "right=localhost", 1)
	a, _, net, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
	a.m.opts.LocalAddrs = []netip.Addr{netip.MustParseAddr("127.0.0.1")}
	if err := a.m.Up("net"); err != nil {
		t.Skipf("localhost does not resolve here: %v", err)
	}
	for i := 0; i < 5000 && len(net.packets()) == 0; i++ {
		time.Sleep(time.Millisecond)
	}
	ps := net.packets()
	if len(ps) == 0 || ps[0].to != netip.MustParseAddrPort("127.0.0.1:500") {
		t.Fatalf("IKE_SA_INIT not sent to the resolved address: %v", ps)
	}
}

func TestTransportMode(t *testing.T) {
	hostToHost := func(s string) string {
		s = strings.Replace(s, "\tleftsubnet=10.1.0.0/24\n", "", 1)
		s = strings.Replace(s, "\tleftsubnet=10.2.0.0/24\n", "", 1)
		s = strings.Replace(s, "\trightsubnet=10.1.0.0/24\n", "", 1)
		return strings.Replace(s, "\trightsubnet=10.2.0.0/24\n", "", 1)
	}
	t.Run("both", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ca, cb := confPair("net", "type=transport", "type=transport")
			a, b, _, _ := pair(t, hostToHost(ca), secrets, hostToHost(cb), secrets, testOpts{})
			a.m.Up("net")
			synctest.Wait()
			checkMatching(t, a, b)
			for _, n := range []*node{a, b} {
				if c := n.inst.all()[0]; c.Mode != config.ModeTransport {
					t.Errorf("%s installed %s mode", n.addr, c.Mode)
				}
			}
			closeAll(t, synctest.Wait, a, b)
		})
	})
	t.Run("refused", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ca, cb := confPair("net", "type=transport", "")
			a, b, _, _ := pair(t, hostToHost(ca), secrets, hostToHost(cb), secrets, testOpts{})
			a.m.Up("net")
			synctest.Wait()
			s := status(a, "net")
			if s.State != StatePhase2Failed || !strings.Contains(s.Reason, "transport mode") {
				t.Errorf("A: %s %q", s.State, s.Reason)
			}
			if len(a.inst.all()) != 0 {
				t.Errorf("A installed a CHILD SA in the wrong mode")
			}
			closeAll(t, synctest.Wait, a, b)
		})
	})
}

func TestReloadConfig(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca := strings.NewReplacer("LOCAL", "198.51.100.1", "REMOTE", "203.0.113.1", "10.L", "10.1", "10.R", "10.2").Replace(twoConns)
		cb := strings.NewReplacer("LOCAL", "203.0.113.1", "REMOTE", "198.51.100.1", "10.L", "10.2", "10.R", "10.1").Replace(twoConns)
		a, b, _, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net1")
		a.m.Up("net2")
		synctest.Wait()
		// net2 disappears, net3 (auto=route) appears; net1 stays untouched.
		nc := strings.Replace(ca, "conn net2", "conn net3\n\tauto=route", 1)
		before := status(a, "net1")
		a.m.ReloadConfig(loadConfig(t, nc, secrets, addrA))
		synctest.Wait()
		if s := status(a, "net1"); s.State != StateEstablished || s.SPIi != before.SPIi || len(s.Children) != 1 || s.Children[0].InSPI != before.Children[0].InSPI {
			t.Errorf("net1 was touched by the reload: %+v", s)
		}
		if s := status(a, "net2"); s.Name != "" {
			t.Errorf("net2 still reported: %+v", s)
		}
		if len(a.inst.all()) != 1 || len(b.inst.all()) != 1 {
			t.Errorf("CHILD SAs after reload: A %d, B %d; net2's must be deleted on both", len(a.inst.all()), len(b.inst.all()))
		}
		if !a.inst.traps["net3"] {
			t.Errorf("net3's trap not installed")
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

func TestIPv6(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPair("net", "", "")
		a0, b0, _, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
		c6 := "conn v6\n\tkeyexchange=ikev2\n\tauthby=secret\n\tleft=%s\n\tleftsubnet=%s\n\tright=%s\n\trightsubnet=%s\n\tauto=add\n"
		x, y := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8::2")
		sec := "2001:db8::1 2001:db8::2 : PSK \"v6 secret\"\n"
		a := lastMk(x, fmt.Sprintf(c6, x, "fd00:1::/64", y, "fd00:2::/64"), sec, 0xa6000000, "A6")
		b := lastMk(y, fmt.Sprintf(c6, y, "fd00:2::/64", x, "fd00:1::/64"), sec, 0xb6000000, "B6")
		a.m.Up("v6")
		synctest.Wait()
		if s := status(a, "v6"); s.State != StateEstablished || s.Remote.Addr() != y {
			t.Fatalf("A: %s %s %v", s.State, s.Reason, s.Remote)
		}
		checkMatching(t, a, b)
		if c := a.inst.all()[0]; tsList(c.LocalTS) != "fd00:1::/64" || tsList(c.RemoteTS) != "fd00:2::/64" {
			t.Errorf("selectors %s ↔ %s", tsList(c.LocalTS), tsList(c.RemoteTS))
		}
		closeAll(t, synctest.Wait, a, b, a0, b0)
	})
}

func TestCreateChildInvalidKE(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca := strings.NewReplacer("LOCAL", "198.51.100.1", "REMOTE", "203.0.113.1", "10.L", "10.1", "10.R", "10.2").Replace(twoConns)
		cb := strings.NewReplacer("LOCAL", "203.0.113.1", "REMOTE", "198.51.100.1", "10.L", "10.2", "10.R", "10.1").Replace(twoConns)
		// A proposes modp2048 first for net2's PFS; B only takes ecp256.
		ca = strings.Replace(ca, "esp=aes128-sha256-modp2048!", "esp=aes128-sha256-modp2048-ecp256!", 1)
		cb = strings.Replace(cb, "esp=aes128-sha256-modp2048!", "esp=aes128-sha256-ecp256!", 1)
		a, b, net, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net1")
		a.m.Up("net2")
		synctest.Wait()
		s := status(a, "net2")
		if s.State != StateEstablished || len(s.Children) != 1 || s.Children[0].Algorithms != "aes128-sha256-ecp256" {
			t.Fatalf("net2: %s %q %+v", s.State, s.Reason, s.Children)
		}
		creates := 0
		for _, p := range net.packets() {
			if p.data[18] == 36 && p.from.Addr() == addrA {
				creates++
			}
		}
		if creates != 2 {
			t.Errorf("A sent %d CREATE_CHILD_SA requests, want 2 (retry after INVALID_KE_PAYLOAD)", creates)
		}
		checkMatching(t, a, b)
		closeAll(t, synctest.Wait, a, b)
	})
}

func TestChildRekeyCollision(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// Both sides rekey at exactly 15 minutes; their requests cross.
		extra := "lifetime=20m\nmargintime=5m\nrekeyfuzz=0%"
		ca, cb := confPair("net", extra, extra)
		a, b, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net")
		synctest.Wait()
		net.mu.Lock()
		net.hold = true
		net.mu.Unlock()
		clk.advance(15*time.Minute, synctest.Wait)
		if n := len(net.held); n != 2 {
			t.Fatalf("%d held requests, want the two crossing CREATE_CHILD_SA", n)
		}
		net.release()
		synctest.Wait()
		as, bs := a.inst.all(), b.inst.all()
		if len(as) != 1 || len(bs) != 1 {
			t.Fatalf("after the collision: A %d, B %d CHILD SAs; want 1 each (redundant and old deleted)", len(as), len(bs))
		}
		checkMatching(t, a, b)
		if s := status(a, "net"); s.State != StateEstablished {
			t.Errorf("A: %s", s.State)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}
