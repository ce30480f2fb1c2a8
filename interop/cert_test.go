package interop

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/internal/lab"
	"github.com/ipsecgw/ipsecgw/internal/testpki"
)

// certPlugins adds what strongSwan needs beyond the PSK lab for
// certificates: CRL checking and PKCS#8 (Ed25519) keys.
func certPlugins() []string {
	return append(slices.Clone(lab.DefaultPlugins), "revocation", "pkcs8", "constraints")
}

// certConn is one conn of the certificate lab: each uses its own IDs
// (@NAME.gw1.lab, @NAME.gw2.lab) and its own pair of certificates, so
// that both daemons hold all of them at once.
type certConn struct {
	name       string
	key        testpki.KeyType
	gw1Expired bool // ipsecgw's certificate expired an hour ago
	gw2Expired bool
	gw1Revoked bool // listed in the CA's CRL, which both sides have
	gw2Revoked bool
	// dnIDs: both sides identify by their certificates' subject DNs
	// (ipsecgw's default without leftid=), not by FQDNs.
	dnIDs bool
}

// certLab writes the PKI of the conns for both sides and returns
// ipsecgw's files and charon's configuration.
func certLab(t *testing.T, l *lab.Lab, conns []certConn) (gatewayFiles, map[string][]byte, lab.CharonConfig) {
	t.Helper()
	ca, err := testpki.NewCA("ipsecgw lab root", testpki.P256)
	if err != nil {
		t.Fatal(err)
	}
	gwFiles := map[string][]byte{"ipsec.d/cacerts/ca.pem": testpki.CertPEM(ca.Cert)}
	swFiles := map[string][]byte{"x509ca/ca.pem": testpki.CertPEM(ca.Cert)}
	var conf, secrets strings.Builder
	var swConns []lab.Conn
	for _, c := range conns {
		issue := func(side string, expired bool) *testpki.Leaf {
			leaf, err := ca.Issue(testpki.LeafOptions{CN: c.name + "." + side, Key: c.key, DNS: []string{c.name + "." + side + ".lab"}, Expired: expired})
			if err != nil {
				t.Fatal(err)
			}
			return leaf
		}
		g1, g2 := issue("gw1", c.gw1Expired), issue("gw2", c.gw2Expired)
		if c.gw1Revoked {
			ca.Revoke(g1.Cert)
		}
		if c.gw2Revoked {
			ca.Revoke(g2.Cert)
		}
		k1, err := testpki.KeyPEM(g1.Key)
		if err != nil {
			t.Fatal(err)
		}
		k2, err := testpki.KeyPEM(g2.Key)
		if err != nil {
			t.Fatal(err)
		}
		gwFiles["ipsec.d/certs/"+c.name+".pem"] = testpki.CertPEM(g1.Cert)
		gwFiles["ipsec.d/private/"+c.name+".key"] = k1
		swFiles["x509/"+c.name+".pem"] = testpki.CertPEM(g2.Cert)
		swFiles["private/"+c.name+".key"] = k2
		fmt.Fprintf(&secrets, ": %s %s.key\n", testpki.SecretKind(g1.Key), c.name)
		leftid, rightid := "\n  leftid=@"+c.name+".gw1.lab", "@"+c.name+".gw2.lab"
		sc := lab.SiteToSite(l.GW2, l.GW1, 2, "", "", "")
		sc.Name, sc.Auth, sc.LocalCert = c.name, "pubkey", c.name+".pem"
		sc.LocalID, sc.RemoteID = "@"+c.name+".gw2.lab", "@"+c.name+".gw1.lab"
		if c.dnIDs {
			leftid, rightid = "", fmt.Sprintf("\"C=CH, O=ipsecgw test, CN=%s.gw2\"", c.name)
			sc.LocalID, sc.RemoteID = fmt.Sprintf("\"C=CH, O=ipsecgw test, CN=%s.gw2\"", c.name), fmt.Sprintf("\"C=CH, O=ipsecgw test, CN=%s.gw1\"", c.name)
		}
		fmt.Fprintf(&conf, "conn %s\n  keyexchange=ikev2\n  authby=pubkey\n  left=%s%s\n  leftcert=%s.pem\n  leftsubnet=%s\n"+
			"  right=%s\n  rightid=%s\n  rightsubnet=%s\n  auto=add\n\n",
			c.name, l.GW1.Addr, leftid, c.name, l.GW1.LAN, l.GW2.PublicAddr, rightid, l.GW2.LAN)
		swConns = append(swConns, sc)
	}
	crl, err := ca.CRL()
	if err != nil {
		t.Fatal(err)
	}
	gwFiles["ipsec.d/crls/ca.crl"] = crl
	swFiles["x509crl/ca.crl"] = crl
	return gatewayFiles{Conf: conf.String(), Secrets: secrets.String()}, gwFiles,
		lab.CharonConfig{Swanctl: lab.SwanctlConf(swConns...), Plugins: certPlugins(), Files: swFiles}
}

// startCertGateway is startGateway with extra files beside ipsec.conf.
func startCertGateway(ctx context.Context, t *testing.T, node *lab.Node, f gatewayFiles, files map[string][]byte) *gateway {
	t.Helper()
	g, err := node.StartIPsecGW(ctx, lab.IPsecGWConfig{
		Bin: binary, IPsecConf: f.Conf, Secrets: f.Secrets, Files: files,
		Settings: "tun:\n  name: " + tunName + "\nlog:\n  level: debug\n",
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := g.Stop(); err != nil {
			t.Errorf("%v:\n%s", err, tail(g.Log(), 60))
		}
		if t.Failed() {
			t.Logf("ipsecgw log:\n%s", tail(g.Log(), 150))
		}
	})
	return &gateway{g}
}

// authLines are charon's "authentication of ... successful" lines since
// line from: which signature scheme each side used.
var authLine = regexp.MustCompile(`authentication of '[^']+' (\(myself\) )?with .+ successful`)

func authSchemes(charon *lab.Charon, from int) ([]string, int) {
	lines := charon.LogLines()
	var out []string
	for _, l := range lines[min(from, len(lines)):] {
		if m := authLine.FindString(l); m != "" {
			out = append(out, m)
		}
	}
	return out, len(lines)
}

// TestCertInteropStrongSwan: ipsecgw and strongSwan 5.9 authenticate each
// other with RSA, ECDSA (P-256, P-384) and Ed25519 certificates of one CA,
// and with subject DNs as IDs, each side initiating, and pass traffic; an expired or revoked
// certificate is refused with its reason by whichever side checks it.
func TestCertInteropStrongSwan(t *testing.T) {
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	good := []certConn{{name: "rsa", key: testpki.RSA2048}, {name: "p256", key: testpki.P256}, {name: "p384", key: testpki.P384}, {name: "ed25519", key: testpki.Ed25519}, {name: "dn", key: testpki.P256, dnIDs: true}}
	bad := []certConn{
		{name: "gw1revoked", key: testpki.P256, gw1Revoked: true},
		{name: "gw2revoked", key: testpki.P256, gw2Revoked: true},
		{name: "gw1expired", key: testpki.P256, gw1Expired: true},
		{name: "gw2expired", key: testpki.P256, gw2Expired: true},
	}
	f, files, cc := certLab(t, l, append(slices.Clone(good), bad...))
	charon, err := l.GW2.StartCharon(ctx, cc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("charon log:\n%s", strings.Join(charon.LogLines(), "\n"))
		}
	})
	gw := startCertGateway(ctx, t, l.GW1, f, files)
	mark := 0
	var matrix []string
	for _, c := range good {
		// ipsecgw initiates.
		start := time.Now()
		if out, err := gw.cli(ctx, "up", c.name); err != nil {
			t.Fatalf("%s: ipsecgw up: %v\n%s", c.name, err, out)
		}
		if _, err := charon.WaitEstablished(ctx, c.name, "net"); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		pingBothWays(ctx, t, l, 1)
		var schemes []string
		schemes, mark = authSchemes(charon, mark)
		matrix = append(matrix, fmt.Sprintf("%-8s ipsecgw→strongSwan up+ping in %v: %s", c.name, time.Since(start).Round(time.Millisecond), strings.Join(schemes, "; ")))
		if len(schemes) != 2 {
			t.Errorf("%s: charon logged %d successful authentications, want 2: %v", c.name, len(schemes), schemes)
		}
		if out, err := gw.cli(ctx, "down", c.name); err != nil {
			t.Fatalf("%s: ipsecgw down: %v\n%s", c.name, err, out)
		}
		if err := charon.WaitDown(ctx, c.name); err != nil {
			t.Fatal(err)
		}
		// strongSwan initiates.
		start = time.Now()
		if err := charon.Initiate(ctx, c.name, "net"); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if _, err := gw.waitState(ctx, c.name, control.StateEstablished); err != nil {
			t.Fatal(err)
		}
		pingBothWays(ctx, t, l, 1)
		schemes, mark = authSchemes(charon, mark)
		matrix = append(matrix, fmt.Sprintf("%-8s strongSwan→ipsecgw up+ping in %v: %s", c.name, time.Since(start).Round(time.Millisecond), strings.Join(schemes, "; ")))
		if err := charon.Terminate(ctx, c.name); err != nil {
			t.Fatal(err)
		}
		if _, err := gw.waitState(ctx, c.name, control.StateDown); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("certificate interop matrix:\n%s", strings.Join(matrix, "\n"))

	// Refusals. strongSwan checks ipsecgw's certificate (ipsecgw
	// initiates); ipsecgw checks strongSwan's (strongSwan initiates, so
	// ipsecgw refuses as responder; the initiator role is in the ike
	// package's in-memory tests).
	for _, tc := range []struct {
		conn        string
		ipsecgwUp   bool
		ipsecgwText string // in ipsecgw's last_error
		charonText  string // in charon's log
	}{
		{"gw1revoked", true, "AUTHENTICATION_FAILED", "certificate was revoked"},
		{"gw1expired", true, "AUTHENTICATION_FAILED", "subject certificate invalid"},
		{"gw2revoked", false, "was revoked on", "received AUTHENTICATION_FAILED"},
		{"gw2expired", false, "expired on", "received AUTHENTICATION_FAILED"},
	} {
		mark = len(charon.LogLines())
		if tc.ipsecgwUp {
			gw.cli(ctx, "up", tc.conn) // fails: the failure is in the status
		} else if err := charon.Initiate(ctx, tc.conn, "net"); err == nil {
			t.Errorf("%s: strongSwan's initiation succeeded", tc.conn)
		}
		st, err := gw.waitState(ctx, tc.conn, control.StatePhase1Failed)
		if err != nil {
			t.Fatalf("%s: %v", tc.conn, err)
		}
		if !strings.Contains(st.LastError, tc.ipsecgwText) {
			t.Errorf("%s: ipsecgw's reason %q lacks %q", tc.conn, st.LastError, tc.ipsecgwText)
		}
		var found string
		for _, line := range charon.LogLines()[mark:] {
			if strings.Contains(line, tc.charonText) {
				found = strings.TrimSpace(line)
				break
			}
		}
		if found == "" {
			t.Errorf("%s: charon's log lacks %q", tc.conn, tc.charonText)
		}
		t.Logf("%s refused: ipsecgw: %s | strongSwan: %s", tc.conn, st.LastError, found)
	}
}

// TestCertInteropClassicMethods: with RFC 7427 turned off at strongSwan
// (signature_authentication = no: no SIGNATURE_HASH_ALGORITHMS), both
// sides fall back to the classic AUTH methods, RSA (1) and ECDSA (9, 10).
func TestCertInteropClassicMethods(t *testing.T) {
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	conns := []certConn{{name: "rsa", key: testpki.RSA2048}, {name: "p256", key: testpki.P256}, {name: "p384", key: testpki.P384}}
	f, files, cc := certLab(t, l, conns)
	cc.Extra = "signature_authentication = no"
	charon, err := l.GW2.StartCharon(ctx, cc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("charon log:\n%s", strings.Join(charon.LogLines(), "\n"))
		}
	})
	gw := startCertGateway(ctx, t, l.GW1, f, files)
	mark := 0
	// strongSwan names the classic methods "RSA signature" (method 1) and
	// "ECDSA-256 signature" (9), "ECDSA-384 signature" (10).
	want := map[string]string{"rsa": "with RSA signature", "p256": "with ECDSA-256 signature", "p384": "with ECDSA-384 signature"}
	for _, c := range conns {
		if out, err := gw.cli(ctx, "up", c.name); err != nil {
			t.Fatalf("%s: ipsecgw up: %v\n%s", c.name, err, out)
		}
		if _, err := charon.WaitEstablished(ctx, c.name, "net"); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		pingBothWays(ctx, t, l, 1)
		var schemes []string
		schemes, mark = authSchemes(charon, mark)
		if len(schemes) != 2 || !strings.Contains(schemes[0], want[c.name]) || !strings.Contains(schemes[1], want[c.name]) {
			t.Errorf("%s: want both authentications with %s: %v", c.name, want[c.name], schemes)
		}
		t.Logf("%-5s classic: %s", c.name, strings.Join(schemes, "; "))
		if out, err := gw.cli(ctx, "down", c.name); err != nil {
			t.Fatalf("%s: ipsecgw down: %v\n%s", c.name, err, out)
		}
		if err := charon.WaitDown(ctx, c.name); err != nil {
			t.Fatal(err)
		}
	}
}
