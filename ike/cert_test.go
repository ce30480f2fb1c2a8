package ike

import (
	"crypto/x509"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/ipsecgw/ipsecgw/ike/shared"
	"github.com/ipsecgw/ipsecgw/internal/testpki"
)

// certGW is one gateway's credentials laid out in an ipsec.d.
type certGW struct {
	dir     string
	secrets string
	leaf    *testpki.Leaf
}

// writeCertDir fills dir/ipsec.d with the trusted CAs, the gateway's
// certificate and key, and CRLs, and returns the ipsec.secrets line.
func writeCertDir(t *testing.T, leaf *testpki.Leaf, trusted []*testpki.CA, crls [][]byte) certGW {
	t.Helper()
	dir := t.TempDir()
	write := func(rel string, data []byte) {
		p := filepath.Join(dir, "ipsec.d", rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	for i, ca := range trusted {
		write(fmt.Sprintf("cacerts/ca%d.pem", i), testpki.CertPEM(ca.Cert))
	}
	for i, crl := range crls {
		write(fmt.Sprintf("crls/ca%d.crl", i), crl)
	}
	write("certs/gw.pem", testpki.CertPEM(leaf.Cert))
	key, err := testpki.KeyPEM(leaf.Key)
	if err != nil {
		t.Fatal(err)
	}
	write("private/gw.key", key)
	return certGW{dir: dir, secrets: ": " + testpki.SecretKind(leaf.Key) + " gw.key\n", leaf: leaf}
}

// certConfPair is confPair with certificate authentication and FQDN IDs.
func certConfPair(extraA, extraB string) (string, string) {
	common := "authby=pubkey\nleftcert=gw.pem\n"
	return confPair("net", common+"leftid=@a.example.net\nrightid=@b.example.net\n"+extraA,
		common+"leftid=@b.example.net\nrightid=@a.example.net\n"+extraB)
}

type certCase struct {
	ca, other *testpki.CA
	a, b      *testpki.Leaf
}

func newCertCase(t *testing.T, kt testpki.KeyType, at func() *fakeClock) *certCase {
	t.Helper()
	now := at().Now()
	ca, err := testpki.NewCAAt("Lab Root", testpki.P384, now)
	if err != nil {
		t.Fatal(err)
	}
	other, err := testpki.NewCAAt("Stranger Root", testpki.P256, now)
	if err != nil {
		t.Fatal(err)
	}
	issue := func(c *testpki.CA, o testpki.LeafOptions) *testpki.Leaf {
		l, err := c.Issue(o)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	return &certCase{
		ca: ca, other: other,
		a: issue(ca, testpki.LeafOptions{CN: "a", Key: kt, DNS: []string{"a.example.net"}}),
		b: issue(ca, testpki.LeafOptions{CN: "b", Key: kt, DNS: []string{"b.example.net"}}),
	}
}

func TestCertAuthKeyTypes(t *testing.T) {
	for _, kt := range []testpki.KeyType{testpki.RSA2048, testpki.P256, testpki.P384, testpki.Ed25519} {
		t.Run(string(kt), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cc := newCertCase(t, kt, newFakeClock)
				ga := writeCertDir(t, cc.a, []*testpki.CA{cc.ca}, nil)
				gb := writeCertDir(t, cc.b, []*testpki.CA{cc.ca}, nil)
				confA, confB := certConfPair("", "")
				// RSA certificates make IKE_AUTH longer than one fragment.
				a, b, _, _ := pair(t, confA, ga.secrets, confB, gb.secrets, testOpts{dirA: ga.dir, dirB: gb.dir, fragmentSize: 1280})
				a.m.Up("net")
				synctest.Wait()
				sa, sb := status(a, "net"), status(b, "net")
				if sa.State != StateEstablished || sb.State != StateEstablished {
					t.Fatalf("states %s (%s) / %s (%s)", sa.State, sa.Reason, sb.State, sb.Reason)
				}
				checkMatching(t, a, b)
				closeAll(t, synctest.Wait, a, b)
			})
		})
	}
}

// TestCertAuthRSAPSS: leftauth=rsa/pss signs with RSASSA-PSS (RFC 7427),
// which the peer verifies.
func TestCertAuthRSAPSS(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cc := newCertCase(t, testpki.RSA2048, newFakeClock)
		ga := writeCertDir(t, cc.a, []*testpki.CA{cc.ca}, nil)
		gb := writeCertDir(t, cc.b, []*testpki.CA{cc.ca}, nil)
		confA, confB := certConfPair("leftauth=rsa/pss\nrightauth=pubkey", "leftauth=rsa/pss\nrightauth=pubkey")
		var logs lockedBuffer
		a, b, _, _ := pair(t, confA, ga.secrets, confB, gb.secrets, testOpts{dirA: ga.dir, dirB: gb.dir, logs: &logs})
		a.m.Up("net")
		synctest.Wait()
		if sa, sb := status(a, "net"), status(b, "net"); sa.State != StateEstablished || sb.State != StateEstablished {
			t.Fatalf("states %s (%s) / %s (%s)", sa.State, sa.Reason, sb.State, sb.Reason)
		}
		if n := strings.Count(logs.String(), "peer authenticated with a certificate"); n != 2 {
			t.Errorf("%d certificate authentications logged, want 2", n)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestCertAuthDNIDsAndPinnedCert: IDs default to the certificates'
// subjects, and a peer certificate configured with rightcert= needs no
// CA and no CERT payload (leftsendcert=never on the other side).
func TestCertAuthDNIDsAndPinnedCert(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cc := newCertCase(t, testpki.P256, newFakeClock)
		ga := writeCertDir(t, cc.a, nil, nil)
		gb := writeCertDir(t, cc.b, []*testpki.CA{cc.ca}, nil)
		if err := os.WriteFile(filepath.Join(ga.dir, "ipsec.d", "certs", "peer.pem"), testpki.CertPEM(cc.b.Cert), 0o600); err != nil {
			t.Fatal(err)
		}
		confA, confB := confPair("net", "authby=pubkey\nleftcert=gw.pem\nrightcert=peer.pem\n", "authby=pubkey\nleftcert=gw.pem\nleftsendcert=never\nrightid=\"C=CH, O=ipsecgw test, CN=a\"\n")
		a, b, _, _ := pair(t, confA, ga.secrets, confB, gb.secrets, testOpts{dirA: ga.dir, dirB: gb.dir})
		a.m.Up("net")
		synctest.Wait()
		sa, sb := status(a, "net"), status(b, "net")
		if sa.State != StateEstablished || sb.State != StateEstablished {
			t.Fatalf("states %s (%s) / %s (%s)", sa.State, sa.Reason, sb.State, sb.Reason)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestCertAuthRefusals: each failed check is reported with its cause on
// the side that checks, in both roles, and the other side hears
// AUTHENTICATION_FAILED.
func TestCertAuthRefusals(t *testing.T) {
	type setup struct {
		cc             *certCase
		leafA, leafB   *testpki.Leaf
		trustA, trustB []*testpki.CA
		crlsA, crlsB   [][]byte
		extraA, extraB string
	}
	tests := []struct {
		name      string
		mutate    func(t *testing.T, s *setup)
		refuserA  bool // the initiator A refuses B's certificate (else B refuses A's)
		cause     shared.Cause
		wantWords string
	}{
		{"expired initiator cert", func(t *testing.T, s *setup) {
			s.leafA = issueT(t, s.cc.ca, testpki.LeafOptions{CN: "a", Key: testpki.P256, DNS: []string{"a.example.net"}, Expired: true})
		}, false, shared.CauseCertExpired, "expired on"},
		{"expired responder cert", func(t *testing.T, s *setup) {
			s.leafB = issueT(t, s.cc.ca, testpki.LeafOptions{CN: "b", Key: testpki.P256, DNS: []string{"b.example.net"}, Expired: true})
		}, true, shared.CauseCertExpired, "expired on"},
		{"unknown CA", func(t *testing.T, s *setup) {
			s.leafA = issueT(t, s.cc.other, testpki.LeafOptions{CN: "a", Key: testpki.P256, DNS: []string{"a.example.net"}})
		}, false, shared.CauseCertUnknownCA, "does not chain to a trusted CA"},
		{"rightca names another CA", func(t *testing.T, s *setup) {
			s.extraA = "rightca=\"C=CH, O=ipsecgw test, CN=Stranger Root\""
			s.trustA = append(s.trustA, s.cc.other)
		}, true, shared.CauseCertUnknownCA, "not by the CA that rightca= names"},
		{"revoked initiator cert", func(t *testing.T, s *setup) {
			s.cc.ca.Revoke(s.leafA.Cert)
			s.crlsB = [][]byte{crlT(t, s.cc.ca)}
		}, false, shared.CauseCertRevoked, "was revoked"},
		{"revoked responder cert", func(t *testing.T, s *setup) {
			s.cc.ca.Revoke(s.leafB.Cert)
			s.crlsA = [][]byte{crlT(t, s.cc.ca)}
		}, true, shared.CauseCertRevoked, "was revoked"},
		{"ID not in certificate", func(t *testing.T, s *setup) {
			s.leafA = issueT(t, s.cc.ca, testpki.LeafOptions{CN: "a", Key: testpki.P256, DNS: []string{"elsewhere.example.net"}})
		}, false, shared.CauseCertIDMismatch, "is not in its certificate"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				cc := newCertCase(t, testpki.P256, newFakeClock)
				s := &setup{cc: cc, leafA: cc.a, leafB: cc.b, trustA: []*testpki.CA{cc.ca}, trustB: []*testpki.CA{cc.ca}}
				tc.mutate(t, s)
				ga := writeCertDir(t, s.leafA, s.trustA, s.crlsA)
				gb := writeCertDir(t, s.leafB, s.trustB, s.crlsB)
				confA, confB := certConfPair(s.extraA, s.extraB)
				a, b, _, _ := pair(t, confA, ga.secrets, confB, gb.secrets, testOpts{dirA: ga.dir, dirB: gb.dir})
				a.m.Up("net")
				synctest.Wait()
				refuser, other := status(b, "net"), status(a, "net")
				if tc.refuserA {
					refuser, other = other, refuser
				}
				if refuser.State != StatePhase1Failed || refuser.Cause != tc.cause || !strings.Contains(refuser.Reason, tc.wantWords) {
					t.Errorf("refusing side: %s, cause %s, %q; want cause %s with %q", refuser.State, refuser.Cause, refuser.Reason, tc.cause, tc.wantWords)
				}
				if other.State != StatePhase1Failed || !strings.Contains(other.Reason, "AUTHENTICATION_FAILED") {
					t.Errorf("other side: %s, %q", other.State, other.Reason)
				}
				if n := len(a.inst.all()) + len(b.inst.all()); n != 0 {
					t.Errorf("%d CHILD SAs installed despite the refusal", n)
				}
				closeAll(t, synctest.Wait, a, b)
			})
		})
	}
}

func issueT(t *testing.T, ca *testpki.CA, o testpki.LeafOptions) *testpki.Leaf {
	t.Helper()
	l, err := ca.Issue(o)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func crlT(t *testing.T, ca *testpki.CA) []byte {
	t.Helper()
	crl, err := ca.CRL()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := x509.ParseRevocationList(crl); err != nil {
		t.Fatal(err)
	}
	return crl
}
