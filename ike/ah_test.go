package ike

import (
	"bytes"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipsecgw/ipsecgw/ike/ikev1"
	"github.com/ipsecgw/ipsecgw/transform"
)

// checkAH asserts that the two installers hold mirror-image AH CHILD SAs
// with integrity keys of keyLen bytes and no encryption.
func checkAH(t *testing.T, a, b *node, integ transform.ID, keyLen int) {
	t.Helper()
	as, bs := a.inst.all(), b.inst.all()
	if len(as) != 1 || len(bs) != 1 {
		t.Fatalf("A installed %d CHILD SAs, B %d", len(as), len(bs))
	}
	x, y := as[0], bs[0]
	for _, c := range []ChildSA{x, y} {
		if c.Protocol != ProtoAH || c.Encr != (transform.Transform{}) || c.Integ.ID != integ || c.Encap {
			t.Fatalf("%s: protocol %v encr %v integ %v encap %v", c.Conn, c.Protocol, c.Encr, c.Integ, c.Encap)
		}
		if len(c.InEncrKey)+len(c.OutEncrKey) != 0 || len(c.InIntegKey) != keyLen || len(c.OutIntegKey) != keyLen {
			t.Fatalf("key lengths encr %d/%d integ %d/%d, want 0/0 %d/%d", len(c.InEncrKey), len(c.OutEncrKey), len(c.InIntegKey), len(c.OutIntegKey), keyLen, keyLen)
		}
	}
	if x.OutSPI != y.InSPI || y.OutSPI != x.InSPI {
		t.Errorf("SPIs do not pair: A %08x/%08x B %08x/%08x", x.InSPI, x.OutSPI, y.InSPI, y.OutSPI)
	}
	if !bytes.Equal(x.OutIntegKey, y.InIntegKey) || !bytes.Equal(x.InIntegKey, y.OutIntegKey) || bytes.Equal(x.InIntegKey, x.OutIntegKey) {
		t.Errorf("integrity keys do not mirror, or both directions share one")
	}
}

// TestAHProposals negotiates AH CHILD SAs (protocol 2, no ENCR transform)
// with each integrity algorithm AH supports, also when both sides would
// put ESP in UDP (EncapAuto): AH always goes raw.
func TestAHProposals(t *testing.T) {
	cases := []struct {
		ah    string
		integ transform.ID
		key   int
		name  string
	}{
		{"md5", transform.IntegHMACMD5_96, 16, "md5"},
		{"sha1", transform.IntegHMACSHA1_96, 20, "sha1"},
		{"sha256", transform.IntegHMACSHA2_256_128, 32, "sha256"},
		{"sha384", transform.IntegHMACSHA2_384_192, 48, "sha384"},
		{"sha512", transform.IntegHMACSHA2_512_256, 64, "sha512"},
	}
	for _, tc := range cases {
		t.Run(tc.ah, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ca, cb := confPair("net", "ah="+tc.ah+"!", "ah="+tc.ah+"!")
				a, b, _, _ := pair(t, ca, secrets, cb, secrets, testOpts{encapA: EncapAuto, encapB: EncapAuto})
				if err := a.m.Up("net"); err != nil {
					t.Fatal(err)
				}
				synctest.Wait()
				sa, sb := status(a, "net"), status(b, "net")
				if sa.State != StateEstablished || sb.State != StateEstablished {
					t.Fatalf("states %s (%s) / %s (%s)", sa.State, sa.Reason, sb.State, sb.Reason)
				}
				if len(sa.Children) != 1 || sa.Children[0].Protocol != "ah" || sa.Children[0].Algorithms != tc.name || sb.Children[0].Protocol != "ah" {
					t.Fatalf("children %+v / %+v", sa.Children, sb.Children)
				}
				checkAH(t, a, b, tc.integ, tc.key)
				closeAll(t, synctest.Wait, a, b)
				if n := len(a.inst.all()) + len(b.inst.all()); n != 0 {
					t.Errorf("%d CHILD SAs left after Close", n)
				}
			})
		})
	}
}

// TestAHRekeyAndDelete rekeys an AH CHILD SA with PFS in CREATE_CHILD_SA
// (REKEY_SA names protocol AH) and deletes it with an AH DELETE.
func TestAHRekeyAndDelete(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPair("net", "lifetime=20m\nmargintime=5m\nrekeyfuzz=0%\nah=sha256-modp2048!", "ah=sha256-modp2048!")
		a, b, _, clk := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net")
		synctest.Wait()
		old := a.inst.all()[0]
		clk.advance(15*time.Minute, synctest.Wait)
		as := a.inst.all()
		if len(as) != 1 || as[0].InSPI == old.InSPI || bytes.Equal(as[0].OutIntegKey, old.OutIntegKey) {
			t.Fatalf("after the rekey: %d SAs (old in SPI %08x)", len(as), old.InSPI)
		}
		checkAH(t, a, b, transform.IntegHMACSHA2_256_128, 32)
		if s := status(a, "net"); len(s.Children) != 1 || s.Children[0].Algorithms != "sha256-modp2048" {
			t.Errorf("A after the rekey: %+v", s.Children)
		}
		if err := a.m.Down("net"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if n := len(a.inst.all()) + len(b.inst.all()); n != 0 {
			t.Errorf("%d CHILD SAs left after down", n)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestAHAgainstESP: a conn with ah= and a peer with esp= find no common
// proposal; the failure names the protocols.
func TestAHAgainstESP(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPair("net", "ah=sha256!", "esp=aes128-sha256!")
		a, b, _, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net")
		synctest.Wait()
		sb := status(b, "net")
		if sb.State != StatePhase2Failed {
			t.Fatalf("B: %s (%s)", sb.State, sb.Reason)
		}
		t.Logf("B: %s", sb.Reason)
		if n := len(a.inst.all()) + len(b.inst.all()); n != 0 {
			t.Errorf("%d CHILD SAs installed", n)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestV1AH negotiates AH IPsec SAs in IKEv1 quick mode (PROTO_IPSEC_AH,
// AH_SHA2-256 with its Authentication Algorithm, PFS), rekeys them with a
// new quick mode, and deletes them with an AH Delete.
func TestV1AH(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPairV1("net", "lifetime=20m\nmargintime=5m\nrekeyfuzz=0%\nah=sha256-modp2048!", "lifetime=20m\nmargintime=2m\nrekeyfuzz=0%\nah=sha256-modp2048!")
		a, b, _, clk := pair(t, ca, secrets, cb, secrets, testOpts{encapA: EncapAuto, encapB: EncapAuto})
		if err := a.m.Up("net"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		sa, sb := status(a, "net"), status(b, "net")
		if sa.State != StateEstablished || sb.State != StateEstablished || sa.Version != 1 {
			t.Fatalf("states %s (%s) / %s (%s)", sa.State, sa.Reason, sb.State, sb.Reason)
		}
		if len(sa.Children) != 1 || sa.Children[0].Protocol != "ah" || sa.Children[0].Algorithms != "sha256-modp2048" || sb.Children[0].Protocol != "ah" {
			t.Fatalf("children %+v / %+v", sa.Children, sb.Children)
		}
		checkAH(t, a, b, transform.IntegHMACSHA2_256_128, 32)
		old := a.inst.all()[0]
		clk.advance(15*time.Minute, synctest.Wait)
		clk.advance(ikev1.SwitchDelay+ikev1.DrainDelay, synctest.Wait)
		checkAH(t, a, b, transform.IntegHMACSHA2_256_128, 32)
		if now := a.inst.all()[0]; now.InSPI == old.InSPI || bytes.Equal(now.OutIntegKey, old.OutIntegKey) {
			t.Error("the rekeyed AH SA has the old SPI or key")
		}
		if err := a.m.Down("net"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if n := len(a.inst.all()) + len(b.inst.all()); n != 0 {
			t.Errorf("%d IPsec SAs left after down", n)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestV1AHAgainstESP: an IKEv1 conn with ah= and a peer with esp= fail in
// quick mode with a reason naming both protocols.
func TestV1AHAgainstESP(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPairV1("net", "ah=sha1!", "esp=aes128-sha1!")
		a, b, _, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net")
		synctest.Wait()
		if sb := status(b, "net"); sb.State != StatePhase2Failed || !strings.Contains(sb.Reason, "peer proposed AH sha1; we accept aes128-sha1") {
			t.Errorf("B: %s %s", sb.State, sb.Reason)
		}
		if n := len(a.inst.all()) + len(b.inst.all()); n != 0 {
			t.Errorf("%d IPsec SAs installed", n)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}
