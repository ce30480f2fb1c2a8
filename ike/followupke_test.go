package ike

import (
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipsecgw/ipsecgw/ike/ikev2"
	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
)

// RFC 9370 §2.2.4: additional key exchanges in CREATE_CHILD_SA, run in
// IKE_FOLLOWUP_KE exchanges, between two ipsecgw Managers.

// followupConns are two conns sharing one IKE SA: net1's CHILD SA comes
// with IKE_AUTH (no key exchange there, RFC 9370 §2.2.4), net2's with
// CREATE_CHILD_SA, PFS and ML-KEM.
const followupConns = `conn %default
	keyexchange=ikev2
	authby=secret
	left=LOCAL
	right=REMOTE
	auto=add
	ike=aes256-sha384-x25519-ke1_mlkem768!
	esp=aes256gcm16-x25519-ke1_mlkem768!
	rekeyfuzz=0%
	margintime=5m
EXTRA

conn net1
	leftsubnet=10.L.0.0/24
	rightsubnet=10.R.0.0/24

conn net2
	leftsubnet=10.L.1.0/24
	rightsubnet=10.R.1.0/24
`

func followupPair(extraA, extraB string) (string, string) {
	a := strings.NewReplacer("LOCAL", "198.51.100.1", "REMOTE", "203.0.113.1", "10.L", "10.1", "10.R", "10.2", "EXTRA", indent(extraA)).Replace(followupConns)
	b := strings.NewReplacer("LOCAL", "203.0.113.1", "REMOTE", "198.51.100.1", "10.L", "10.2", "10.R", "10.1", "EXTRA", indent(extraB)).Replace(followupConns)
	return a, b
}

// followupCounts counts the IKE_FOLLOWUP_KE requests and responses on the
// net: messages, not datagrams (an ML-KEM-768 request is fragmented at
// 1280 bytes) nor retransmissions.
func followupCounts(net *fakeNet) (req, rsp int) {
	type key struct {
		spi      uint64
		id       uint32
		response bool
	}
	seen := map[key]bool{}
	for _, p := range net.packets() {
		h, _, err := message.ParseHeader(p.data)
		if err != nil || h.Exchange != message.IKE_FOLLOWUP_KE {
			continue
		}
		k := key{h.SPIi, h.MessageID<<1 | boolBit(h.IsInitiator()), h.IsResponse()}
		if seen[k] {
			continue
		}
		seen[k] = true
		if h.IsResponse() {
			rsp++
		} else {
			req++
		}
	}
	return
}

func boolBit(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// TestFollowupKEChildCreate: a second conn's CHILD SA over an established
// hybrid IKE SA, with PFS (X25519) and ML-KEM-768 in one IKE_FOLLOWUP_KE
// exchange; both sides derive the same keys, the status shows the
// hybrid, the first CHILD SA (IKE_AUTH) has no key exchange at all.
func TestFollowupKEChildCreate(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := followupPair("", "")
		a, b, net, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net1")
		a.m.Up("net2")
		synctest.Wait()
		for _, n := range []*node{a, b} {
			s1, s2 := status(n, "net1"), status(n, "net2")
			if s1.State != StateEstablished || s2.State != StateEstablished || len(s2.Children) != 1 || len(s1.Children) != 1 {
				t.Fatalf("%s: net1 %s %s, net2 %s %s", n.addr, s1.State, s1.Reason, s2.State, s2.Reason)
			}
			if got := s2.Children[0].Algorithms; got != "aes256gcm16-x25519-ke1_mlkem768" {
				t.Errorf("%s: net2 CHILD SA %q, want the hybrid aes256gcm16-x25519-ke1_mlkem768", n.addr, got)
			}
			if got := s1.Children[0].Algorithms; got != "aes256gcm16" {
				t.Errorf("%s: net1 CHILD SA (IKE_AUTH) %q, want no key exchange", n.addr, got)
			}
		}
		if req, rsp := followupCounts(net); req != 1 || rsp != 1 {
			t.Errorf("%d IKE_FOLLOWUP_KE requests, %d responses; want 1 each", req, rsp)
		}
		checkMatching(t, a, b)
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestFollowupKERekeys: CHILD SA and IKE SA rekeys with additional key
// exchanges, started by either side, with one and with two of them; the
// IKE SA is rekeyed (no new IKE_SA_INIT), the keys match on both sides
// after each rekey, and the SAs keep the hybrid.
func TestFollowupKERekeys(t *testing.T) {
	for _, tc := range []struct {
		name       string
		ike, esp   string
		followups  int // IKE_FOLLOWUP_KE exchanges per rekey
		aRekeys    bool
		childAlg   string
		ikeSuffix  string
		childFirst bool
	}{
		{"A", "aes256-sha384-x25519-ke1_mlkem768", "aes256gcm16-x25519-ke1_mlkem768", 1, true, "aes256gcm16-x25519-ke1_mlkem768", "x25519-ke1_mlkem768", true},
		{"B", "aes256-sha384-x25519-ke1_mlkem768", "aes256gcm16-x25519-ke1_mlkem768", 1, false, "aes256gcm16-x25519-ke1_mlkem768", "x25519-ke1_mlkem768", true},
		{"A-two", "aes128gcm16-prfsha256-ecp256-ke1_mlkem512-ke2_mlkem1024", "aes128gcm16-ecp256-ke1_mlkem512-ke2_mlkem1024", 2, true, "aes128gcm16-ecp256-ke1_mlkem512-ke2_mlkem1024", "ecp256-ke1_mlkem512-ke2_mlkem1024", true},
		{"B-no-pfs", "aes256-sha384-x25519-ke1_mlkem768", "aes256gcm16-ke1_mlkem768", 1, false, "aes256gcm16-ke1_mlkem768", "x25519-ke1_mlkem768", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				// The rekeying side has the shorter lifetimes (no fuzz):
				// CHILD rekey at 20m - 5m, IKE rekey at 40m - 5m.
				short := "reauth=no\nlifetime=20m\nikelifetime=40m"
				long := "reauth=no\nlifetime=2h\nikelifetime=4h"
				extraA, extraB := short, long
				if !tc.aRekeys {
					extraA, extraB = long, short
				}
				ca, cb := confPair("net", "ike="+tc.ike+"!\nesp="+tc.esp+"!\nrekeyfuzz=0%\nmargintime=5m\n"+extraA, "ike="+tc.ike+"!\nesp="+tc.esp+"!\nrekeyfuzz=0%\nmargintime=5m\n"+extraB)
				a, b, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{fragmentSize: 1280})
				a.m.Up("net")
				synctest.Wait()
				before := status(a, "net")
				if before.State != StateEstablished {
					t.Fatalf("A: %s %s", before.State, before.Reason)
				}
				oldChild := a.inst.all()[0]
				inits, _ := countExchanges(net, message.IKE_SA_INIT)

				// CHILD SA rekey.
				clk.advance(15*time.Minute, synctest.Wait)
				as := a.inst.all()
				if len(as) != 1 || as[0].InSPI == oldChild.InSPI || len(b.inst.all()) != 1 {
					t.Fatalf("CHILD SA not rekeyed: A %d SAs (in %08x, was %08x), B %d", len(as), as[0].InSPI, oldChild.InSPI, len(b.inst.all()))
				}
				checkMatching(t, a, b)
				if req, rsp := followupCounts(net); req != tc.followups || rsp != tc.followups {
					t.Errorf("after the CHILD rekey: %d/%d IKE_FOLLOWUP_KE requests/responses, want %d", req, rsp, tc.followups)
				}
				for _, n := range []*node{a, b} {
					if s := status(n, "net"); len(s.Children) != 1 || s.Children[0].Algorithms != tc.childAlg {
						t.Errorf("%s after the CHILD rekey: %+v, want %s", n.addr, s.Children, tc.childAlg)
					}
				}

				// IKE SA rekey at 35m, after the second CHILD rekey (30m);
				// the CHILD SA moves over unchanged.
				clk.advance(20*time.Minute, synctest.Wait)
				sa, sb := status(a, "net"), status(b, "net")
				if sa.State != StateEstablished || sb.State != StateEstablished {
					t.Fatalf("after the IKE rekey: A %s %s, B %s %s", sa.State, sa.Reason, sb.State, sb.Reason)
				}
				if sa.SPIi == before.SPIi || sa.SPIr == before.SPIr || sa.SPIi != sb.SPIi || sa.SPIr != sb.SPIr {
					t.Fatalf("IKE SA not rekeyed: before %x/%x, A %x/%x, B %x/%x", before.SPIi, before.SPIr, sa.SPIi, sa.SPIr, sb.SPIi, sb.SPIr)
				}
				if n, _ := countExchanges(net, message.IKE_SA_INIT); n != inits {
					t.Errorf("%d IKE_SA_INIT requests after the renewal, %d before: reauthenticated, not rekeyed", n, inits)
				}
				if req, rsp := followupCounts(net); req != 3*tc.followups || rsp != 3*tc.followups {
					t.Errorf("after the IKE rekey: %d/%d IKE_FOLLOWUP_KE requests/responses, want %d", req, rsp, 3*tc.followups)
				}
				for _, s := range []ConnStatus{sa, sb} {
					if !strings.HasSuffix(s.Algorithms, tc.ikeSuffix) {
						t.Errorf("rekeyed IKE SA %q, want the hybrid %s", s.Algorithms, tc.ikeSuffix)
					}
				}
				if len(a.m.sas) != 1 || len(b.m.sas) != 1 {
					t.Errorf("IKE SAs: A %d, B %d; the old one must be deleted", len(a.m.sas), len(b.m.sas))
				}
				// The rekeyed IKE SA's keys agree: a CHILD rekey over it
				// (45m).
				mid := a.inst.all()[0]
				clk.advance(11*time.Minute, synctest.Wait)
				if got := a.inst.all(); len(got) != 1 || got[0].InSPI == mid.InSPI {
					t.Fatalf("no CHILD rekey over the rekeyed IKE SA")
				}
				checkMatching(t, a, b)
				if req, _ := followupCounts(net); req != 4*tc.followups {
					t.Errorf("%d IKE_FOLLOWUP_KE requests after the fourth rekey, want %d", req, 4*tc.followups)
				}
				closeAll(t, synctest.Wait, a, b)
			})
		})
	}
}

// TestFollowupKEInvalidKE: the responder wants another PFS group than the
// initiator's first choice (INVALID_KE_PAYLOAD for the CREATE_CHILD_SA's
// KE); the retry with its group then runs the additional key exchange.
func TestFollowupKEInvalidKE(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := followupPair("esp=aes256gcm16-x25519-ke1_mlkem768,aes256gcm16-ecp384-ke1_mlkem768!", "esp=aes256gcm16-ecp384-ke1_mlkem768!")
		a, b, net, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net1")
		a.m.Up("net2")
		synctest.Wait()
		s := status(a, "net2")
		if s.State != StateEstablished || len(s.Children) != 1 || s.Children[0].Algorithms != "aes256gcm16-ecp384-ke1_mlkem768" {
			t.Fatalf("net2: %s %s %+v", s.State, s.Reason, s.Children)
		}
		if req, rsp := countExchanges(net, message.CREATE_CHILD_SA); req != 2 || rsp != 2 {
			t.Errorf("%d/%d CREATE_CHILD_SA requests/responses, want 2 (INVALID_KE_PAYLOAD, then the retry)", req, rsp)
		}
		if req, rsp := followupCounts(net); req != 1 || rsp != 1 {
			t.Errorf("%d/%d IKE_FOLLOWUP_KE requests/responses, want 1", req, rsp)
		}
		checkMatching(t, a, b)
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestFollowupKEMismatch: a peer that requires another additional key
// exchange refuses the CHILD SA (NO_PROPOSAL_CHOSEN); the reason names
// both proposals, and no IKE_FOLLOWUP_KE is sent.
func TestFollowupKEMismatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := followupPair("", "esp=aes256gcm16-x25519-ke1_mlkem1024!")
		a, b, net, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net1")
		a.m.Up("net2")
		synctest.Wait()
		if s := status(a, "net1"); s.State != StateEstablished {
			t.Fatalf("net1: %s %s", s.State, s.Reason)
		}
		s := status(a, "net2")
		if s.State != StatePhase2Failed || !strings.Contains(s.Reason, "NO_PROPOSAL_CHOSEN") || !strings.Contains(s.Reason, "ke1_mlkem768") {
			t.Errorf("net2: %s %q", s.State, s.Reason)
		}
		if req, _ := followupCounts(net); req != 0 {
			t.Errorf("%d IKE_FOLLOWUP_KE requests after a refusal", req)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestFollowupKEMissing: the initiator's IKE_FOLLOWUP_KE requests are lost
// until the responder has given up on the exchange (FollowupKETimeout):
// the responder forgets it (the new IKE SA it made goes), answers the
// late retransmission with STATE_NOT_FOUND, and the initiator retries the
// rekey, which then completes. Both for a CHILD SA and an IKE SA rekey.
// Seven retransmissions (the last 301 s after the first request) outlast
// the responder's patience.
func TestFollowupKEMissing(t *testing.T) {
	for _, tc := range []struct {
		name  string
		extra string
	}{
		{"child", "lifetime=20m\nikelifetime=24h"},
		{"ike", "lifetime=24h\nikelifetime=20m"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				const both = "ike=aes256-sha384-x25519-ke1_mlkem768!\nesp=aes256gcm16-x25519-ke1_mlkem768!\nreauth=no\n"
				ca, cb := confPair("net", both+"rekeyfuzz=0%\nmargintime=5m\n"+tc.extra, both+"lifetime=24h\nikelifetime=24h")
				var logs lockedBuffer
				a, b, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{tries: 7, logs: &logs})
				a.m.Up("net")
				synctest.Wait()
				before := status(a, "net")
				oldChild := a.inst.all()[0]
				var lost atomic.Bool
				lost.Store(true)
				net.setDrop(func(p packet) bool {
					h, _, err := message.ParseHeader(p.data)
					return lost.Load() && err == nil && h.Exchange == message.IKE_FOLLOWUP_KE && !h.IsResponse()
				})
				clk.advance(15*time.Minute, synctest.Wait) // the rekey starts
				if tc.name == "ike" && len(b.m.sas) != 2 {
					t.Errorf("B has %d IKE SAs while the rekey waits for its IKE_FOLLOWUP_KE, want the old and the new", len(b.m.sas))
				}
				clk.advance(ikev2.FollowupKETimeout+time.Second, synctest.Wait)
				if len(b.m.sas) != 1 {
					t.Errorf("B keeps %d IKE SAs after giving up on the exchange", len(b.m.sas))
				}
				if !strings.Contains(logs.String(), "abandoned") {
					t.Errorf("B did not abandon the exchange")
				}
				lost.Store(false)
				clk.advance(3*time.Minute, synctest.Wait)
				sa, sb := status(a, "net"), status(b, "net")
				if sa.State != StateEstablished || sb.State != StateEstablished {
					t.Fatalf("A %s %s, B %s %s", sa.State, sa.Reason, sb.State, sb.Reason)
				}
				if !strings.Contains(logs.String(), "STATE_NOT_FOUND") {
					t.Errorf("the late IKE_FOLLOWUP_KE was not answered with STATE_NOT_FOUND")
				}
				switch tc.name {
				case "child":
					if got := a.inst.all(); len(got) != 1 || got[0].InSPI == oldChild.InSPI {
						t.Errorf("CHILD SA not rekeyed after the retry")
					}
				case "ike":
					if sa.SPIi == before.SPIi || sa.SPIi != sb.SPIi {
						t.Errorf("IKE SA not rekeyed after the retry")
					}
				}
				if req, _ := countExchanges(net, message.CREATE_CHILD_SA); req != 2 {
					t.Errorf("%d CREATE_CHILD_SA requests, want 2 (the lost rekey and its retry)", req)
				}
				if _, rsp := followupCounts(net); rsp != 2 {
					t.Errorf("%d IKE_FOLLOWUP_KE responses, want 2 (STATE_NOT_FOUND, then the retry's)", rsp)
				}
				if len(a.m.sas) != 1 || len(b.m.sas) != 1 {
					t.Errorf("IKE SAs: A %d, B %d", len(a.m.sas), len(b.m.sas))
				}
				checkMatching(t, a, b)
				closeAll(t, synctest.Wait, a, b)
			})
		})
	}
}

// TestFollowupKEMixedRoles: A rekeys the IKE SA every 10 minutes, B the
// CHILD SA every 4, so that their exchanges with IKE_FOLLOWUP_KE meet
// (every 20 minutes both fall due at once) for two hours: each side
// keeps one IKE SA and one CHILD SA whose keys match, none reaches its
// hard lifetime, and every rekey that was deferred (TEMPORARY_FAILURE,
// STATE_NOT_FOUND) is retried.
func TestFollowupKEMixedRoles(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const both = "ike=aes256-sha384-x25519-ke1_mlkem768!\nesp=aes256gcm16-x25519-ke1_mlkem768!\nreauth=no\nrekeyfuzz=0%\nmargintime=6m\n"
		ca, cb := confPair("net", both+"lifetime=3h\nikelifetime=16m", both+"lifetime=10m\nikelifetime=3h")
		var logs lockedBuffer
		a, b, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{logs: &logs})
		a.m.Up("net")
		synctest.Wait()
		for minute := 1; minute <= 120; minute++ {
			clk.advance(time.Minute, synctest.Wait)
			sa, sb := status(a, "net"), status(b, "net")
			if sa.State != StateEstablished || sb.State != StateEstablished {
				t.Fatalf("minute %d: A %s %s, B %s %s", minute, sa.State, sa.Reason, sb.State, sb.Reason)
			}
			if len(a.inst.all()) != 1 || len(b.inst.all()) != 1 || len(a.m.sas) != 1 || len(b.m.sas) != 1 {
				continue // a rekey is under way; checked once it settles
			}
			checkMatching(t, a, b)
		}
		l := logs.String()
		ikeRekeys, childRekeys := strings.Count(l, "IKE SA rekeyed")/2, strings.Count(l, "rekeying CHILD SA")
		t.Logf("IKE rekeys %d, CHILD rekeys started %d, deferred %d, STATE_NOT_FOUND %d", ikeRekeys, childRekeys,
			strings.Count(l, "TEMPORARY_FAILURE"), strings.Count(l, "STATE_NOT_FOUND"))
		if ikeRekeys < 10 || childRekeys < 25 {
			t.Errorf("%d IKE rekeys and %d CHILD rekeys in two hours, want at least 10 and 25", ikeRekeys, childRekeys)
		}
		if n := strings.Count(l, "reached its hard lifetime"); n > 0 {
			t.Errorf("%d SAs reached their hard lifetime", n)
		}
		if req, rsp := followupCounts(net); req < ikeRekeys+childRekeys-1 || rsp < req-1 {
			t.Errorf("%d/%d IKE_FOLLOWUP_KE requests/responses for %d rekeys", req, rsp, ikeRekeys+childRekeys)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestFollowupKERekeyCollisions: both sides rekey at the same instant,
// their CREATE_CHILD_SA requests crossing (RFC 7296 §2.8), and each
// continues with IKE_FOLLOWUP_KE while the other's exchange is under way.
// Round after round, one CHILD SA (make before break, checked by the
// dataplanes) and one IKE SA are left on both sides, the same ones, with
// matching keys.
func TestFollowupKERekeyCollisions(t *testing.T) {
	const both = "ike=aes256-sha384-x25519-ke1_mlkem768!\nesp=aes256gcm16-x25519-ke1_mlkem768!\nreauth=no\nrekeyfuzz=0%\nmargintime=5m\n"
	for _, tc := range []struct {
		name   string
		extra  string
		period time.Duration
	}{
		{"child", "lifetime=20m\nikelifetime=24h", 15 * time.Minute},
		{"ike", "lifetime=24h\nikelifetime=30m", 25 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ca, cb := confPair("net", both+tc.extra, both+tc.extra)
				a, b, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{})
				da, db := withDataplanes(a, b)
				a.m.Up("net")
				synctest.Wait()
				prev := status(a, "net")
				const rounds = 8
				for i := 0; i < rounds; i++ {
					net.mu.Lock()
					net.hold = true
					net.mu.Unlock()
					wait := tc.period
					if i > 0 {
						wait -= time.Minute // the minute after the last round
					}
					clk.advance(wait, synctest.Wait)
					net.mu.Lock()
					held := len(net.held)
					net.mu.Unlock()
					if held != 2 {
						t.Fatalf("round %d: %d held requests, want the two crossing CREATE_CHILD_SA", i, held)
					}
					net.release()
					synctest.Wait()
					// A rekey that lost to the other may be retried.
					clk.advance(time.Minute, synctest.Wait)
					sa, sb := status(a, "net"), status(b, "net")
					if sa.State != StateEstablished || sb.State != StateEstablished {
						t.Fatalf("round %d: A %s (%s), B %s (%s)", i, sa.State, sa.Reason, sb.State, sb.Reason)
					}
					if len(a.m.sas) != 1 || len(b.m.sas) != 1 || sa.SPIi != sb.SPIi || sa.SPIr != sb.SPIr {
						t.Fatalf("round %d: IKE SAs A %d (%x/%x), B %d (%x/%x)", i, len(a.m.sas), sa.SPIi, sa.SPIr, len(b.m.sas), sb.SPIi, sb.SPIr)
					}
					if tc.name == "ike" && sa.SPIi == prev.SPIi {
						t.Fatalf("round %d: the IKE SA was not rekeyed", i)
					}
					checkOnePair(t, a, b, da, db)
					prev = sa
				}
				da.check(t)
				db.check(t)
				if req, rsp := followupCounts(net); req < 2*rounds || rsp < 2*rounds-1 {
					t.Errorf("%d/%d IKE_FOLLOWUP_KE requests/responses in %d rounds of two crossing rekeys", req, rsp, rounds)
				}
				closeAll(t, synctest.Wait, a, b)
			})
		})
	}
}
