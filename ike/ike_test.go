package ike

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipsecgw/ipsecgw/ike/shared"
	"github.com/ipsecgw/ipsecgw/spd"
)

func TestEstablishProposals(t *testing.T) {
	cases := []struct{ name, ike, esp string }{
		{"aes128-sha256-modp2048/aes128gcm16", "ike=aes128-sha256-modp2048!", "esp=aes128gcm16!"},
		{"aes256-sha512-ecp384/aes256gcm16-ecp384", "ike=aes256-sha512-ecp384!", "esp=aes256gcm16-ecp384!"},
		{"aes128-sha1-modp1024/aes128-sha1", "ike=aes128-sha1-modp1024!", "esp=aes128-sha1!"},
		{"chacha20poly1305-prfsha256-x25519/chacha20poly1305", "ike=chacha20poly1305-prfsha256-x25519!", "esp=chacha20poly1305!"},
		{"3des-md5-modp1024/3des-md5", "ike=3des-md5-modp1024!", "esp=3des-md5!"},
		{"strongSwan defaults", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				extra := tc.ike + "\n\t" + tc.esp
				ca, cb := confPair("net", extra, extra)
				a, b, _, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
				if err := a.m.Up("net"); err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
				sa, sb := status(a, "net"), status(b, "net")
				if sa.State != StateEstablished || sb.State != StateEstablished {
					t.Fatalf("states %s (%s) / %s (%s)", sa.State, sa.Reason, sb.State, sb.Reason)
				}
				if sa.SPIi != sb.SPIi || sa.SPIr != sb.SPIr || sa.SPIi == 0 || sa.SPIr == 0 {
					t.Errorf("IKE SPIs differ: %x/%x vs %x/%x", sa.SPIi, sa.SPIr, sb.SPIi, sb.SPIr)
				}
				if sa.Algorithms != sb.Algorithms || sa.Algorithms == "" {
					t.Errorf("IKE algorithms %q vs %q", sa.Algorithms, sb.Algorithms)
				}
				if !sa.Initiator || sb.Initiator {
					t.Errorf("roles: A initiator=%v, B initiator=%v", sa.Initiator, sb.Initiator)
				}
				if len(sa.Children) != 1 || len(sb.Children) != 1 || sa.Children[0].Algorithms != sb.Children[0].Algorithms {
					t.Fatalf("children %+v / %+v", sa.Children, sb.Children)
				}
				t.Logf("IKE %s, ESP %s", sa.Algorithms, sa.Children[0].Algorithms)
				checkMatching(t, a, b)
				ch := a.inst.all()[0]
				if got := ch.LocalTS[0].String() + "|" + ch.RemoteTS[0].String(); got != "10.1.0.0/24|10.2.0.0/24" {
					t.Errorf("A's selectors %s", got)
				}
				if ch.Encap {
					t.Errorf("no NAT, but the CHILD SA is UDP-encapsulated")
				}
				closeAll(t, synctest.Wait, a, b)
				if n := len(a.inst.all()) + len(b.inst.all()); n != 0 {
					t.Errorf("%d CHILD SAs left after Close", n)
				}
			})
		})
	}
}

func TestExpectedAlgorithms(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPair("net", "ike=aes256-sha512-ecp384!\n\tesp=aes256gcm16-ecp384!", "ike=aes256-sha512-ecp384!\n\tesp=aes256gcm16-ecp384!")
		a, b, _, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net")
		synctest.Wait()
		s := status(a, "net")
		if s.Algorithms != "aes256-sha512-prfsha512-ecp384" {
			t.Errorf("IKE algorithms %q", s.Algorithms)
		}
		if len(s.Children) != 1 || s.Children[0].Algorithms != "aes256gcm16" {
			t.Errorf("ESP algorithms %+v (no PFS group in IKE_AUTH)", s.Children)
		}
		ch := a.inst.all()[0]
		if len(ch.InEncrKey) != 36 || len(ch.InIntegKey) != 0 {
			t.Errorf("AES-256-GCM key lengths %d/%d, want 36/0", len(ch.InEncrKey), len(ch.InIntegKey))
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

func TestInvalidKERetry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A prefers modp2048 but also accepts ecp256; B only ecp256.
		ca, cb := confPair("net", "ike=aes128-sha256-modp2048-ecp256!", "ike=aes128-sha256-ecp256!")
		a, b, net, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net")
		synctest.Wait()
		if s := status(a, "net"); s.State != StateEstablished || !strings.HasSuffix(s.Algorithms, "ecp256") {
			t.Fatalf("A: %s %q %s", s.State, s.Algorithms, s.Reason)
		}
		inits := 0
		for _, p := range net.packets() {
			if p.from.Addr() == addrA && p.data[18] == 34 {
				inits++
			}
		}
		if inits != 2 {
			t.Errorf("A sent %d IKE_SA_INIT requests, want 2 (one retry after INVALID_KE_PAYLOAD)", inits)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

func TestWrongPSK(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPair("net", "", "")
		a, b, _, _ := pair(t, ca, secrets, cb, "198.51.100.1 203.0.113.1 : PSK \"something else\"\n", testOpts{})
		a.m.Up("net")
		synctest.Wait()
		sa, sb := status(a, "net"), status(b, "net")
		if sa.State != StatePhase1Failed || sb.State != StatePhase1Failed {
			t.Fatalf("states %s / %s", sa.State, sb.State)
		}
		if !strings.Contains(sb.Reason, "PSK differs") || !strings.Contains(sb.Reason, "203.0.113.1 ↔ 198.51.100.1") {
			t.Errorf("B's reason: %s", sb.Reason)
		}
		if !strings.Contains(sa.Reason, "AUTHENTICATION_FAILED") || !strings.Contains(sa.Reason, "PSK") {
			t.Errorf("A's reason: %s", sa.Reason)
		}
		for _, r := range []string{sa.Reason, sb.Reason} {
			if strings.Contains(r, "correct horse") || strings.Contains(r, "something else") {
				t.Errorf("reason leaks the PSK: %s", r)
			}
		}
		if len(a.inst.all())+len(b.inst.all()) != 0 {
			t.Errorf("CHILD SAs installed despite failed authentication")
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

func TestNoCommonProposal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPair("net", "ike=aes256-sha1-modp1024!", "ike=aes128-sha256-modp3072!")
		a, b, _, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net")
		synctest.Wait()
		sa, sb := status(a, "net"), status(b, "net")
		if sa.State != StatePhase1Failed || sb.State != StatePhase1Failed {
			t.Fatalf("states %s / %s", sa.State, sb.State)
		}
		if want := "peer proposed aes256-sha1-modp1024; we accept aes128-sha256-modp3072"; sb.Reason != want {
			t.Errorf("B's reason:\n got %s\nwant %s", sb.Reason, want)
		}
		if !strings.Contains(sa.Reason, "NO_PROPOSAL_CHOSEN") || !strings.Contains(sa.Reason, "aes256-sha1-modp1024") {
			t.Errorf("A's reason: %s", sa.Reason)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

func TestTSUnacceptable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPair("net", "", "")
		cb = strings.Replace(cb, "rightsubnet=10.1.0.0/24", "rightsubnet=10.9.0.0/24", 1)
		a, b, _, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net")
		synctest.Wait()
		sa, sb := status(a, "net"), status(b, "net")
		if sa.State != StatePhase2Failed || sb.State != StatePhase2Failed {
			t.Fatalf("states %s (%s) / %s (%s)", sa.State, sa.Reason, sb.State, sb.Reason)
		}
		if want := "traffic selectors did not match: we want 10.2.0.0/24 ↔ 10.9.0.0/24, peer proposed 10.2.0.0/24 ↔ 10.1.0.0/24"; sb.Reason != want {
			t.Errorf("B's reason:\n got %s\nwant %s", sb.Reason, want)
		}
		if !strings.Contains(sa.Reason, "TS_UNACCEPTABLE") {
			t.Errorf("A's reason: %s", sa.Reason)
		}
		if len(a.inst.all())+len(b.inst.all()) != 0 {
			t.Errorf("CHILD SAs installed")
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

func TestNarrowing(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// A asks for 10.1.0.0/16 ↔ 10.2.0.0/16; B allows only a /24 of each,
		// and two subnets on its own side.
		ca, cb := confPair("net", "", "")
		ca = strings.NewReplacer("leftsubnet=10.1.0.0/24", "leftsubnet=10.1.0.0/16", "rightsubnet=10.2.0.0/24", "rightsubnet=10.2.0.0/16").Replace(ca)
		cb = strings.Replace(cb, "leftsubnet=10.2.0.0/24", "leftsubnet=10.2.0.0/24,10.2.5.0/24", 1)
		a, b, _, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net")
		synctest.Wait()
		if s := status(a, "net"); s.State != StateEstablished {
			t.Fatalf("A: %s %s", s.State, s.Reason)
		}
		checkMatching(t, a, b)
		ch := a.inst.all()[0]
		if got := tsList(ch.LocalTS) + " | " + tsList(ch.RemoteTS); got != "10.1.0.0/24 | 10.2.0.0/24,10.2.5.0/24" {
			t.Errorf("narrowed selectors at A: %s", got)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

func tsList(ts []spd.TS) string {
	var s []string
	for _, t := range ts {
		for _, p := range t.Split() {
			s = append(s, p.String())
		}
	}
	return strings.Join(s, ",")
}

func TestRetransmitAndGiveUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPair("net", "keyingtries=1", "")
		a, b, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{tries: 3})
		net.setDrop(func(p packet) bool { return p.to.Addr() == addrB })
		a.m.Up("net")
		synctest.Wait()
		clk.advance(4*time.Second+7200*time.Millisecond+12960*time.Millisecond, synctest.Wait)
		var sent [][]byte
		for _, p := range net.packets() {
			sent = append(sent, p.data)
		}
		if len(sent) != 4 {
			t.Fatalf("A sent %d packets, want 4 (first + 3 retransmissions)", len(sent))
		}
		for _, s := range sent[1:] {
			if string(s) != string(sent[0]) {
				t.Errorf("retransmission differs from the original")
			}
		}
		if s := status(a, "net"); s.State != StateConnecting {
			t.Fatalf("gave up too early: %s %s", s.State, s.Reason)
		}
		clk.advance(23328*time.Millisecond, synctest.Wait)
		s := status(a, "net")
		if s.State != StatePhase1Failed || !strings.Contains(s.Reason, "after 3 retransmissions") || !strings.Contains(s.Reason, "IKE_SA_INIT") {
			t.Fatalf("after give-up: %s %s", s.State, s.Reason)
		}
		if len(net.packets()) != 4 {
			t.Errorf("sent after giving up")
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

func TestRetransmitRecovers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPair("net", "", "")
		a, b, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{})
		// Lose B's first IKE_AUTH response: A retransmits its request, and B
		// must answer from its cache (same bytes, no second install).
		lost := false
		net.setDrop(func(p packet) bool {
			if !lost && p.from.Addr() == addrB && p.data[18] == 35 {
				lost = true
				return true
			}
			return false
		})
		a.m.Up("net")
		synctest.Wait()
		if s := status(a, "net"); s.State != StateConnecting {
			t.Fatalf("A: %s", s.State)
		}
		clk.advance(4*time.Second, synctest.Wait)
		if s := status(a, "net"); s.State != StateEstablished {
			t.Fatalf("A after retransmission: %s %s", s.State, s.Reason)
		}
		var rsp [][]byte
		for _, p := range net.packets() {
			if p.from.Addr() == addrB && p.data[18] == 35 {
				rsp = append(rsp, p.data)
			}
		}
		if len(rsp) != 2 || string(rsp[0]) != string(rsp[1]) {
			t.Errorf("B sent %d IKE_AUTH responses; the second must repeat the first byte for byte", len(rsp))
		}
		if len(b.inst.all()) != 1 {
			t.Errorf("B installed %d CHILD SAs, want 1", len(b.inst.all()))
		}
		checkMatching(t, a, b)
		closeAll(t, synctest.Wait, a, b)
	})
}

func TestDuplicateRequestFromCache(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPair("net", "", "")
		a, b, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net")
		synctest.Wait()
		var req, rsp []byte
		for _, p := range net.packets() {
			if p.data[18] == 35 && p.from.Addr() == addrA {
				req = p.data
			}
			if p.data[18] == 35 && p.from.Addr() == addrB {
				rsp = p.data
			}
		}
		// A copy at once, within shared.AnswerGap of the answer, is
		// counted and not answered; one after the gap is answered from the
		// cache, and a second copy right after that is not.
		n := len(net.packets())
		b.m.HandlePacket(netip4500(addrB), netip4500(addrA), req)
		synctest.Wait()
		if len(net.packets()) != n || b.m.Counters().Drops[shared.DropRetransmitLimited] != 1 {
			t.Fatalf("duplicate IKE_AUTH request within the answer gap: %d packets sent, limited %d; want none sent, 1 counted",
				len(net.packets())-n, b.m.Counters().Drops[shared.DropRetransmitLimited])
		}
		clk.advance(shared.AnswerGap, synctest.Wait)
		b.m.HandlePacket(netip4500(addrB), netip4500(addrA), req)
		synctest.Wait()
		ps := net.packets()
		if len(ps) != n+1 || string(ps[n].data) != string(rsp) {
			t.Fatalf("duplicate IKE_AUTH request not answered from the cache")
		}
		b.m.HandlePacket(netip4500(addrB), netip4500(addrA), req)
		synctest.Wait()
		if len(net.packets()) != n+1 || b.m.Counters().Drops[shared.DropRetransmitLimited] != 2 {
			t.Fatalf("second duplicate right after the cached answer: %d packets sent, limited %d", len(net.packets())-n, b.m.Counters().Drops[shared.DropRetransmitLimited])
		}
		if len(b.inst.all()) != 1 {
			t.Errorf("duplicate processed again")
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

func TestKeyingTries(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPair("net", "keyingtries=2", "")
		a, b, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{tries: 1})
		net.setDrop(func(p packet) bool { return p.to.Addr() == addrB })
		a.m.Up("net")
		synctest.Wait()
		first := status(a, "net").SPIi
		clk.advance(4*time.Second+7200*time.Millisecond, synctest.Wait)
		s := status(a, "net")
		if s.State != StateConnecting || s.SPIi == first || !strings.Contains(s.Reason, "trying again (attempt 2/2)") {
			t.Fatalf("after the first attempt: %s %q spi %x (first %x)", s.State, s.Reason, s.SPIi, first)
		}
		clk.advance(4*time.Second+7200*time.Millisecond, synctest.Wait)
		s = status(a, "net")
		if s.State != StatePhase1Failed || !strings.Contains(s.Reason, "no response from 203.0.113.1:500") {
			t.Fatalf("after the second attempt: %s %q", s.State, s.Reason)
		}
		if n := len(net.packets()); n != 4 {
			t.Errorf("%d packets, want 2 attempts × 2 sends", n)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}
