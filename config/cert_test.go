package config

import (
	"crypto"
	"strings"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/internal/testpki"
)

// certFiles lays out a CA, a gateway certificate and its key under
// /etc/ipsec.d as strongSwan's starter expects them.
func certFiles(t *testing.T, kt testpki.KeyType) (map[string]string, *testpki.CA, *testpki.Leaf) {
	t.Helper()
	ca, err := testpki.NewCA("Test Root", testpki.P256)
	if err != nil {
		t.Fatal(err)
	}
	gw, err := ca.Issue(testpki.LeafOptions{CN: "gw1", Key: kt, DNS: []string{"gw1.example.net"}})
	if err != nil {
		t.Fatal(err)
	}
	key, err := testpki.KeyPEM(gw.Key)
	if err != nil {
		t.Fatal(err)
	}
	crl, err := ca.CRL()
	if err != nil {
		t.Fatal(err)
	}
	return map[string]string{
		"/etc/ipsec.d/cacerts/root.pem":  string(testpki.CertPEM(ca.Cert)),
		"/etc/ipsec.d/certs/gw1.pem":     string(testpki.CertPEM(gw.Cert)),
		"/etc/ipsec.d/private/gw1.key":   string(key),
		"/etc/ipsec.d/crls/root.crl":     string(crl),
		"/etc/ipsec.d/cacerts/README":    "not a certificate",
		"/etc/ipsec.secrets":             ": " + testpki.SecretKind(gw.Key) + " gw1.key\n",
		"/etc/ipsec.d/certs/notcert.pem": "-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n",
	}, ca, gw
}

func loadFiles(files map[string]string, conf string) (*Config, Diagnostics, error) {
	files["/etc/ipsec.conf"] = conf
	return Load(Options{ConfPath: "/etc/ipsec.conf", SecretsPath: "/etc/ipsec.secrets", fs: memFS{files: files}})
}

const certConn = "conn c\n\tleft=198.51.100.1\n\tright=203.0.113.1\n\tauthby=pubkey\n\tauto=add\n\tleftcert=gw1.pem\n"

func TestCertConnLoadsCertKeyAndTrust(t *testing.T) {
	for _, kt := range []testpki.KeyType{testpki.RSA2048, testpki.P256, testpki.P384, testpki.Ed25519} {
		t.Run(string(kt), func(t *testing.T) {
			files, ca, gw := certFiles(t, kt)
			cfg, diags, err := loadFiles(files, certConn+"\trightca=\"C=CH, O=ipsecgw test, CN=Test Root\"\n\tleftsendcert=always\n\trightsendcert=never\n")
			if err != nil {
				t.Fatalf("%v\n%s", err, diagText(diags))
			}
			c, _ := cfg.Conn("c")
			if c.Local.Cert == nil || !c.Local.Cert.Equal(gw.Cert) || c.Local.CertFile != "/etc/ipsec.d/certs/gw1.pem" {
				t.Fatalf("leftcert not loaded: %+v", c.Local)
			}
			// Without leftid the certificate's subject is the ID.
			if c.Local.ID.Type != IDDERASN1DN || c.Local.ID.Value != "C=CH, O=ipsecgw test, CN=gw1" {
				t.Errorf("default ID %v, want the subject DN", c.Local.ID)
			}
			if c.Remote.CA.Value != "C=CH, O=ipsecgw test, CN=Test Root" || c.Local.SendCert != SendCertAlways || c.Remote.SendCert != SendCertNever {
				t.Errorf("rightca/sendcert: %+v / %+v", c.Remote.CA, c.Local.SendCert)
			}
			if _, ok := cfg.Secrets().PrivateKey(gw.Cert.PublicKey); !ok {
				t.Error("private key of leftcert not found")
			}
			tr := cfg.Trust()
			if len(tr.CAs) != 1 || !tr.CAs[0].Equal(ca.Cert) || len(tr.CRLs) != 1 {
				t.Errorf("trust store: %d CAs, %d CRLs", len(tr.CAs), len(tr.CRLs))
			}
			if !strings.Contains(diagText(diags), "/etc/ipsec.d/cacerts/README: warning: CA certificate skipped") {
				t.Errorf("a broken CA file must be named:\n%s", diagText(diags))
			}
		})
	}
}

func TestCertConnProblemsNameFileAndLine(t *testing.T) {
	files, _, _ := certFiles(t, testpki.P256)
	tests := []struct {
		conf, secrets, want string
	}{
		{certConn + "\trightcert=missing.pem\n", "", `/etc/ipsec.conf:7: error: conn "c": rightcert: certificate /etc/ipsec.d/certs/missing.pem: file does not exist`},
		{certConn + "\trightcert=notcert.pem\n", "", `/etc/ipsec.conf:7: error: conn "c": rightcert: certificate /etc/ipsec.d/certs/notcert.pem: PEM block "PRIVATE KEY" is not a CERTIFICATE`},
		{certConn, ": ECDSA other.key\n", `/etc/ipsec.conf:4: error: conn "c": authby: no private key in ipsec.secrets for /etc/ipsec.d/certs/gw1.pem (leftcert=)`},
		{certConn, ": ECDSA other.key\n", `/etc/ipsec.secrets:1: warning: ECDSA key /etc/ipsec.d/private/other.key not loaded: file does not exist`},
		{certConn + "\tleftsendcert=sometimes\n", "", `leftsendcert: invalid value "sometimes"`},
		{certConn + "\tleftca=CN=x, Q=y\n", "", `leftca: unknown attribute "Q" in distinguished name`},
		{strings.Replace(certConn, "authby=pubkey", "authby=secret", 1), ": PSK \"x\"\n", `leftcert: leftcert= is not used: this end authenticates with psk`},
	}
	for _, tc := range tests {
		f := map[string]string{}
		for k, v := range files {
			f[k] = v
		}
		if tc.secrets != "" {
			f["/etc/ipsec.secrets"] = tc.secrets
		}
		_, diags, _ := loadFiles(f, tc.conf)
		if !strings.Contains(diagText(diags), tc.want) {
			t.Errorf("want %q in:\n%s", tc.want, diagText(diags))
		}
	}
}

func TestParsePrivateKeyForms(t *testing.T) {
	for _, kt := range []testpki.KeyType{testpki.RSA2048, testpki.P384, testpki.Ed25519} {
		k, err := testpki.NewKey(kt)
		if err != nil {
			t.Fatal(err)
		}
		p, err := testpki.KeyPEM(k)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ParsePrivateKey(p)
		if err != nil {
			t.Fatalf("%s: %v", kt, err)
		}
		if !got.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(k.Public()) {
			t.Errorf("%s: a different key came back", kt)
		}
	}
	if _, err := ParsePrivateKey([]byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAA==\n-----END ENCRYPTED PRIVATE KEY-----\n")); err == nil || !strings.Contains(err.Error(), "encrypted") {
		t.Errorf("encrypted key: %v", err)
	}
}

func TestDNParseMatchAndDER(t *testing.T) {
	a, err := ParseDN("C=CH,  O=Example Corp, CN=gw")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := ParseDN("/C=ch/O=example corp/CN=GW")
	if !MatchDN(a, b) || FormatDN(a) != "C=CH, O=Example Corp, CN=gw" {
		t.Errorf("same DN in two spellings: %v %v", a, b)
	}
	w, _ := ParseDN("C=CH, O=Example Corp, CN=*")
	if !MatchDN(w, a) || MatchDN(a, w[:2]) {
		t.Error("wildcard or length")
	}
	der, err := MarshalDN(a)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ParseDERDN(der)
	if err != nil || !MatchDN(a, back) {
		t.Errorf("DER round trip: %v %v", back, err)
	}
	if _, err := ParseDERDN(append(der, 0)); err == nil {
		t.Error("trailing byte accepted")
	}
	esc, _ := ParseDN(`CN=a\, b, O=x`)
	if len(esc) != 2 || esc[0].Value != "a, b" || FormatDN(esc) != `CN=a\, b, O=x` {
		t.Errorf("escaped comma: %v", esc)
	}
	id1, _ := ParseIdentity("C=CH, O=Example Corp, CN=gw")
	id2, _ := ParseIdentity("C=CH,O=example corp,CN=gw")
	if !id1.Matches(id2) || id1.Matches(Identity{Type: IDFQDN, Value: "gw"}) {
		t.Error("Identity.Matches on DNs")
	}
}

func TestShowCertConn(t *testing.T) {
	files, _, gw := certFiles(t, testpki.P256)
	cfg, diags, err := loadFiles(files, certConn+"\trightca=\"C=CH, O=ipsecgw test, CN=Test Root\"\n")
	if err != nil {
		t.Fatalf("%v\n%s", err, diagText(diags))
	}
	v, ok := cfg.View("c")
	if !ok {
		t.Fatal("no conn c")
	}
	text := v.Text()
	for _, want := range []string{
		"local cert:      /etc/ipsec.d/certs/gw1.pem (C=CH, O=ipsecgw test, CN=gw1, valid until " + gw.Cert.NotAfter.UTC().Format(time.RFC3339) + ")",
		"remote ca:       C=CH, O=ipsecgw test, CN=Test Root",
		"local id:        C=CH, O=ipsecgw test, CN=gw1",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("missing %q in:\n%s", want, text)
		}
	}
}

func TestRSAPSSEndAuth(t *testing.T) {
	files, _, _ := certFiles(t, testpki.RSA2048)
	cfg, diags, err := loadFiles(files, certConn+"\tleftauth=rsa/pss\n\trightauth=pubkey\n")
	if err != nil {
		t.Fatalf("%v\n%s", err, diagText(diags))
	}
	c, _ := cfg.Conn("c")
	if c.Local.Auth != AuthPubkey || !c.Local.PSS || c.Remote.PSS {
		t.Errorf("leftauth=rsa/pss: %v pss=%v, remote pss=%v", c.Local.Auth, c.Local.PSS, c.Remote.PSS)
	}
}
