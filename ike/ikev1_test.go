package ike

import (
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
)

// IKEv1 through the Manager: two gateways over the fake network, phase 1
// (main and aggressive mode), quick mode, and the failures a user can
// cause, each with the reason the status shows.

// confPairV1 returns matching IKEv1 ipsec.conf texts for A (left) and B,
// with extra lines added to both conns.
func confPairV1(name, extraA, extraB string) (string, string) {
	a, b := confPair(name, extraA, extraB)
	return strings.Replace(a, "keyexchange=ikev2", "keyexchange=ikev1", 1), strings.Replace(b, "keyexchange=ikev2", "keyexchange=ikev1", 1)
}

// upV1 initiates conn from a and checks that both ends are established
// with mirror-image SAs.
func upV1(t *testing.T, a, b *node, conn string) {
	t.Helper()
	if err := a.m.Up(conn); err != nil {
		t.Fatal(err)
	}
	synctest.Wait()
	sa, sb := status(a, conn), status(b, conn)
	if sa.State != StateEstablished || sb.State != StateEstablished {
		t.Fatalf("states %s (%s) / %s (%s)", sa.State, sa.Reason, sb.State, sb.Reason)
	}
	if sa.Version != 1 || sb.Version != 1 {
		t.Fatalf("IKE versions %d / %d", sa.Version, sb.Version)
	}
	checkMatching(t, a, b)
}

func TestV1MainMode(t *testing.T) {
	cases := []struct{ name, ike, esp, wantIKE, wantESP string }{
		{"cloud-template", "ike=aes128-sha1-modp1024!", "esp=aes128-sha1!", "aes128-sha1-prfsha1-modp1024", "aes128-sha1"},
		{"cloudstack-pfs", "ike=aes128-sha1-modp1536!", "esp=aes128-sha1-modp1536!", "aes128-sha1-prfsha1-modp1536", "aes128-sha1-modp1536"},
		{"aes256-sha256-gcm", "ike=aes256-sha256-modp2048!", "esp=aes256gcm16!", "aes256-sha256-prfsha256-modp2048", "aes256gcm16"},
		{"3des-md5", "ike=3des-md5-modp1024!", "esp=3des-md5!", "3des-md5-prfmd5-modp1024", "3des-md5"},
		{"ecp384-sha384", "ike=aes192-sha384-ecp384!", "esp=aes192-sha512-ecp384!", "aes192-sha384-prfsha384-ecp384", "aes192-sha512-ecp384"},
		{"x25519-sha512", "ike=aes256-sha512-x25519!", "esp=aes128gcm16-x25519!", "aes256-sha512-prfsha512-x25519", "aes128gcm16-x25519"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				extra := tc.ike + "\n" + tc.esp
				ca, cb := confPairV1("net", extra, extra)
				a, b, net, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
				upV1(t, a, b, "net")
				sa := status(a, "net")
				if sa.Algorithms != tc.wantIKE || len(sa.Children) != 1 || sa.Children[0].Algorithms != tc.wantESP {
					t.Errorf("algorithms %q / %+v, want %s / %s", sa.Algorithms, sa.Children, tc.wantIKE, tc.wantESP)
				}
				if !sa.Initiator || status(b, "net").Initiator {
					t.Error("roles")
				}
				// Main mode: 6 messages, quick mode: 3, nothing else.
				if n := len(net.packets()); n != 9 {
					t.Errorf("%d messages, want 9", n)
				}
				ch := a.inst.all()[0]
				if got := ch.LocalTS[0].String() + "|" + ch.RemoteTS[0].String(); got != "10.1.0.0/24|10.2.0.0/24" {
					t.Errorf("selectors %s", got)
				}
				if ch.Encap {
					t.Error("no NAT, but ESP in UDP")
				}
				closeAll(t, synctest.Wait, a, b)
				if n := len(a.inst.all()) + len(b.inst.all()); n != 0 {
					t.Errorf("%d IPsec SAs left after Close", n)
				}
			})
		})
	}
}

func TestV1AggressiveMode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ids := "aggressive=yes\nleftid=@gw1.example\nrightid=@gw2.example\nike=aes128-sha256-modp2048!"
		idsB := "aggressive=yes\nleftid=@gw2.example\nrightid=@gw1.example\nike=aes128-sha256-modp2048!"
		ca, cb := confPairV1("net", ids, idsB)
		sec := "@gw1.example @gw2.example : PSK \"aggressive secret\"\n"
		a, b, net, _ := pair(t, ca, sec, cb, sec, testOpts{})
		upV1(t, a, b, "net")
		sa, sb := status(a, "net"), status(b, "net")
		if sa.LocalID != "@gw1.example" || sa.RemoteID != "@gw2.example" || sb.RemoteID != "@gw1.example" {
			t.Errorf("IDs %s/%s, %s", sa.LocalID, sa.RemoteID, sb.RemoteID)
		}
		if n := len(net.packets()); n != 6 {
			t.Errorf("%d messages, want 6 (aggressive 3, quick 3)", n)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestV1AggressiveRefused: a responder conn without aggressive=yes does
// not answer aggressive mode with message 2 (whose HASH_R could be
// cracked); both sides say why.
func TestV1AggressiveRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPairV1("net", "aggressive=yes", "")
		a, b, net, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net")
		synctest.Wait()
		sa, sb := status(a, "net"), status(b, "net")
		if sa.State != StatePhase1Failed || !strings.Contains(sa.Reason, "AUTHENTICATION-FAILED") {
			t.Errorf("A: %s %q", sa.State, sa.Reason)
		}
		if sb.State != StatePhase1Failed || !strings.Contains(sb.Reason, "aggressive=yes") {
			t.Errorf("B: %s %q", sb.State, sb.Reason)
		}
		for _, p := range net.packets() {
			if p.from.Addr() == addrB && p.data[18] == 4 {
				t.Fatal("B answered aggressive mode")
			}
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

func TestV1WrongPSK(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPairV1("net", "", "")
		a, b, _, _ := pair(t, ca, secrets, cb, "198.51.100.1 203.0.113.1 : PSK \"something else\"\n", testOpts{})
		a.m.Up("net")
		synctest.Wait()
		sa, sb := status(a, "net"), status(b, "net")
		if sa.State != StatePhase1Failed || sb.State != StatePhase1Failed {
			t.Fatalf("states %s (%s) / %s (%s)", sa.State, sa.Reason, sb.State, sb.Reason)
		}
		if !strings.Contains(sb.Reason, "PSK") || !strings.Contains(sa.Reason, "PSK") {
			t.Errorf("reasons:\nA %s\nB %s", sa.Reason, sb.Reason)
		}
		for _, r := range []string{sa.Reason, sb.Reason} {
			if strings.Contains(r, "correct horse") || strings.Contains(r, "something else") {
				t.Errorf("reason leaks the PSK: %s", r)
			}
		}
		if len(a.inst.all())+len(b.inst.all()) != 0 {
			t.Error("IPsec SAs installed despite failed authentication")
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

func TestV1NoCommonProposal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPairV1("net", "ike=3des-md5-modp1024!", "ike=aes128-sha1-modp2048!")
		a, b, _, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net")
		synctest.Wait()
		sa, sb := status(a, "net"), status(b, "net")
		if want := "peer proposed 3des-md5-modp1024; we accept aes128-sha1-modp2048"; sb.State != StatePhase1Failed || sb.Reason != want {
			t.Errorf("B: %s\n got %s\nwant %s", sb.State, sb.Reason, want)
		}
		if sa.State != StatePhase1Failed || !strings.Contains(sa.Reason, "NO-PROPOSAL-CHOSEN") || !strings.Contains(sa.Reason, "3des-md5-modp1024") {
			t.Errorf("A: %s %s", sa.State, sa.Reason)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

func TestV1NoCommonESPProposal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPairV1("net", "esp=3des-md5!", "esp=aes256gcm16!")
		a, b, _, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net")
		synctest.Wait()
		sa, sb := status(a, "net"), status(b, "net")
		if sb.State != StatePhase2Failed || !strings.Contains(sb.Reason, "peer proposed ESP 3des-md5; we accept aes256gcm16") {
			t.Errorf("B: %s %s", sb.State, sb.Reason)
		}
		if sa.State != StatePhase2Failed || !strings.Contains(sa.Reason, "NO-PROPOSAL-CHOSEN") {
			t.Errorf("A: %s %s", sa.State, sa.Reason)
		}
		if len(a.inst.all())+len(b.inst.all()) != 0 {
			t.Error("IPsec SAs installed")
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

func TestV1SubnetMismatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPairV1("net", "", "")
		cb = strings.Replace(cb, "rightsubnet=10.1.0.0/24", "rightsubnet=10.9.0.0/24", 1)
		a, b, _, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net")
		synctest.Wait()
		sa, sb := status(a, "net"), status(b, "net")
		if want := "traffic selectors did not match: we want 10.2.0.0/24 ↔ 10.9.0.0/24, peer proposed 10.2.0.0/24 ↔ 10.1.0.0/24"; sb.State != StatePhase2Failed || sb.Reason != want {
			t.Errorf("B: %s\n got %s\nwant %s", sb.State, sb.Reason, want)
		}
		if sa.State != StatePhase2Failed || !strings.Contains(sa.Reason, "INVALID-ID-INFORMATION") {
			t.Errorf("A: %s %s", sa.State, sa.Reason)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestV1SeveralSubnets: one quick mode per pair of subnets, as Libreswan
// negotiates leftsubnets/rightsubnets, each with its own reqid.
func TestV1SeveralSubnets(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPairV1("net", "", "")
		ca = strings.NewReplacer("leftsubnet=10.1.0.0/24", "leftsubnet=10.1.0.0/24,10.11.0.0/24", "rightsubnet=10.2.0.0/24", "rightsubnet=10.2.0.0/24,10.12.0.0/24").Replace(ca)
		cb = strings.NewReplacer("leftsubnet=10.2.0.0/24", "leftsubnet=10.2.0.0/24,10.12.0.0/24", "rightsubnet=10.1.0.0/24", "rightsubnet=10.1.0.0/24,10.11.0.0/24").Replace(cb)
		a, b, _, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
		upV1(t, a, b, "net")
		sas := a.inst.all()
		if len(sas) != 4 || len(status(a, "net").Children) != 4 || len(status(b, "net").Children) != 4 {
			t.Fatalf("%d IPsec SAs, want 4", len(sas))
		}
		pairs, reqids := map[string]bool{}, map[uint32]bool{}
		for _, s := range sas {
			pairs[fmt.Sprint(s.LocalTS, s.RemoteTS)] = true
			reqids[s.ReqID] = true
		}
		if len(pairs) != 4 || len(reqids) != 4 {
			t.Errorf("pairs %v, reqids %v", pairs, reqids)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}
