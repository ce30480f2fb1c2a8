package pki

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/internal/testpki"
)

func TestSignVerifyEveryScheme(t *testing.T) {
	octets := []byte("RealMessage1 | NonceRData | MACedIDForI")
	tests := []struct {
		key    testpki.KeyType
		opts   SignOptions
		method Method
	}{
		{testpki.RSA2048, SignOptions{PeerHashes: Announced}, MethodDigitalSignature},
		{testpki.RSA2048, SignOptions{PeerHashes: []Hash{HashSHA512}}, MethodDigitalSignature},
		{testpki.RSA2048, SignOptions{PeerHashes: []Hash{HashSHA384}, PSS: true}, MethodDigitalSignature},
		{testpki.RSA2048, SignOptions{}, MethodRSA},
		{testpki.P256, SignOptions{PeerHashes: Announced}, MethodDigitalSignature},
		{testpki.P256, SignOptions{}, MethodECDSA256},
		{testpki.P384, SignOptions{PeerHashes: Announced}, MethodDigitalSignature},
		{testpki.P384, SignOptions{PeerHashes: []Hash{HashSHA256}}, MethodECDSA384},
		{testpki.Ed25519, SignOptions{PeerHashes: Announced}, MethodDigitalSignature},
		{testpki.Ed25519, SignOptions{}, MethodDigitalSignature},
	}
	// One key and another per type: RSA key generation is slow.
	keys := map[testpki.KeyType][2]crypto.Signer{}
	for _, tc := range tests {
		if _, ok := keys[tc.key]; ok {
			continue
		}
		a, err1 := testpki.NewKey(tc.key)
		b, err2 := testpki.NewKey(tc.key)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		keys[tc.key] = [2]crypto.Signer{a, b}
	}
	for _, tc := range tests {
		k, other := keys[tc.key][0], keys[tc.key][1]
		m, data, err := Sign(k, octets, tc.opts)
		if err != nil || m != tc.method {
			t.Fatalf("%s %+v: method %d, %v; want %d", tc.key, tc.opts, m, err, tc.method)
		}
		if err := Verify(k.Public(), m, data, octets); err != nil {
			t.Errorf("%s %+v: %v", tc.key, tc.opts, err)
		}
		if err := Verify(k.Public(), m, data, append([]byte("x"), octets...)); err == nil {
			t.Errorf("%s %+v: other octets verified", tc.key, tc.opts)
		}
		if err := Verify(other.Public(), m, data, octets); err == nil {
			t.Errorf("%s %+v: another key verified", tc.key, tc.opts)
		}
	}
}

// TestRFC7427AlgorithmIdentifiers pins the AlgorithmIdentifier bytes to
// those of RFC 7427 Appendix A.
func TestRFC7427AlgorithmIdentifiers(t *testing.T) {
	k256, _ := testpki.NewKey(testpki.P256)
	_, data, _ := Sign(k256, []byte("m"), SignOptions{PeerHashes: Announced})
	// A.3.1: ecdsa-with-sha256, 0x0c length.
	if want := "\x0c\x30\x0a\x06\x08\x2a\x86\x48\xce\x3d\x04\x03\x02"; string(data[:13]) != want {
		t.Errorf("ECDSA-SHA256 identifier % x", data[:13])
	}
	rk, _ := testpki.NewKey(testpki.RSA2048)
	_, data, _ = Sign(rk, []byte("m"), SignOptions{PeerHashes: []Hash{HashSHA256}})
	// A.1.2: sha256WithRSAEncryption with NULL parameters, 0x0f length.
	if want := "\x0f\x30\x0d\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x0b\x05\x00"; string(data[:16]) != want {
		t.Errorf("RSA-SHA256 identifier % x", data[:16])
	}
	ek, _ := testpki.NewKey(testpki.Ed25519)
	_, data, _ = Sign(ek, []byte("m"), SignOptions{})
	// RFC 8420 §2: id-Ed25519 without parameters.
	if want := "\x07\x30\x05\x06\x03\x2b\x65\x70"; string(data[:8]) != want || len(data) != 8+64 {
		t.Errorf("Ed25519 identifier % x (%d bytes)", data[:8], len(data))
	}
}

func TestVerifyRefusesMismatchedOrMalformed(t *testing.T) {
	rk, _ := testpki.NewKey(testpki.RSA2048)
	ek, _ := testpki.NewKey(testpki.P256)
	_, rsaSig, _ := Sign(rk, []byte("m"), SignOptions{PeerHashes: Announced})
	for name, tc := range map[string]struct {
		m    Method
		data []byte
	}{
		"RSA AUTH, ECDSA key":   {MethodDigitalSignature, rsaSig},
		"ECDSA method, RSA sig": {MethodECDSA256, rsaSig},
		"truncated identifier":  {MethodDigitalSignature, rsaSig[:5]},
		"empty":                 {MethodDigitalSignature, nil},
		"PSK method":            {2, rsaSig},
	} {
		if err := Verify(ek.Public(), tc.m, tc.data, []byte("m")); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
}

type pkiFixture struct {
	ca, other *testpki.CA
	trust     *config.TrustStore
}

func newFixture(t *testing.T) *pkiFixture {
	t.Helper()
	ca, err := testpki.NewCA("Root", testpki.P256)
	if err != nil {
		t.Fatal(err)
	}
	other, err := testpki.NewCA("Other", testpki.P256)
	if err != nil {
		t.Fatal(err)
	}
	return &pkiFixture{ca: ca, other: other, trust: &config.TrustStore{CAs: []*x509.Certificate{ca.Cert}}}
}

func (f *pkiFixture) leaf(t *testing.T, ca *testpki.CA, o testpki.LeafOptions) *x509.Certificate {
	t.Helper()
	if o.Key == "" {
		o.Key = testpki.P256
	}
	l, err := ca.Issue(o)
	if err != nil {
		t.Fatal(err)
	}
	return l.Cert
}

func checkOf(err error) Check {
	var e *Error
	if errors.As(err, &e) {
		return e.Check
	}
	return 0
}

func TestVerifyChecks(t *testing.T) {
	f := newFixture(t)
	good := f.leaf(t, f.ca, testpki.LeafOptions{CN: "good"})
	revoked := f.leaf(t, f.ca, testpki.LeafOptions{CN: "revoked"})
	f.ca.Revoke(revoked)
	crl, err := f.ca.CRL()
	if err != nil {
		t.Fatal(err)
	}
	list, _ := x509.ParseRevocationList(crl)
	withCRL := &config.TrustStore{CAs: f.trust.CAs, CRLs: []*x509.RevocationList{list}}
	rootDN := config.Identity{Type: config.IDDERASN1DN, Value: "C=CH, O=ipsecgw test, CN=Root"}
	otherDN := config.Identity{Type: config.IDDERASN1DN, Value: "C=CH, O=ipsecgw test, CN=Other"}
	tests := []struct {
		name   string
		trust  *config.TrustStore
		leaf   *x509.Certificate
		ca     config.Identity
		pinned *x509.Certificate
		want   Check
	}{
		{"good", withCRL, good, config.Identity{}, nil, 0},
		{"good under rightca", withCRL, good, rootDN, nil, 0},
		{"other rightca", withCRL, good, otherDN, nil, CheckUnknownCA},
		{"expired", withCRL, f.leaf(t, f.ca, testpki.LeafOptions{CN: "old", Expired: true}), config.Identity{}, nil, CheckExpired},
		{"unknown CA", withCRL, f.leaf(t, f.other, testpki.LeafOptions{CN: "stranger"}), config.Identity{}, nil, CheckUnknownCA},
		{"revoked", withCRL, revoked, config.Identity{}, nil, CheckRevoked},
		{"revoked, no CRL", f.trust, revoked, config.Identity{}, nil, 0},
		{"pinned", &config.TrustStore{}, good, config.Identity{}, good, 0},
		{"not the pinned one", &config.TrustStore{}, good, config.Identity{}, revoked, CheckUnknownCA},
	}
	for _, tc := range tests {
		v := &Verifier{Trust: tc.trust, Now: time.Now()}
		err := v.Verify(tc.leaf, nil, tc.ca, tc.pinned)
		if checkOf(err) != tc.want || (tc.want == 0) != (err == nil) {
			t.Errorf("%s: %v (check %d), want check %d", tc.name, err, checkOf(err), tc.want)
		}
	}
}

func TestVerifyFetchesCRLFromDistributionPoint(t *testing.T) {
	f := newFixture(t)
	var hits int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		crl, err := f.ca.CRL()
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		w.Write(crl)
	}))
	defer srv.Close()
	revoked := f.leaf(t, f.ca, testpki.LeafOptions{CN: "revoked", CRLURL: srv.URL + "/root.crl"})
	f.ca.Revoke(revoked)
	good := f.leaf(t, f.ca, testpki.LeafOptions{CN: "good", CRLURL: srv.URL + "/root.crl"})
	v := &Verifier{Trust: f.trust, Now: time.Now(), CRLs: &CRLFetcher{Timeout: 2 * time.Second, MaxAge: time.Hour}}
	if err := v.Verify(revoked, nil, config.Identity{}, nil); checkOf(err) != CheckRevoked {
		t.Errorf("revoked via HTTP CRL: %v", err)
	}
	if err := v.Verify(good, nil, config.Identity{}, nil); err != nil {
		t.Errorf("good: %v", err)
	}
	if hits != 1 {
		t.Errorf("%d fetches, want 1 (cached until nextUpdate)", hits)
	}
	// An unreachable distribution point does not refuse the certificate
	// (strictcrlpolicy=no), and the timeout bounds the wait.
	dead := f.leaf(t, f.ca, testpki.LeafOptions{CN: "dead", CRLURL: "http://127.0.0.1:1/x.crl"})
	start := time.Now()
	if err := v.Verify(dead, nil, config.Identity{}, nil); err != nil || time.Since(start) > 3*time.Second {
		t.Errorf("unreachable CRL: %v after %v", err, time.Since(start))
	}
}

func TestHasID(t *testing.T) {
	f := newFixture(t)
	c := f.leaf(t, f.ca, testpki.LeafOptions{CN: "gw", DNS: []string{"gw.example.net"}, Emails: []string{"ops@example.net"}, IPs: []net.IP{net.ParseIP("198.51.100.7")}})
	h := KeyHash(c)
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{"C=CH, O=ipsecgw test, CN=gw", true},
		{"C=CH, O=ipsecgw test, CN=*", true},
		{"C=CH, O=ipsecgw test, CN=other", false},
		{"@gw.example.net", true},
		{"@GW.example.NET", true},
		{"@other.example.net", false},
		{"ops@example.net", true},
		{"198.51.100.7", true},
		{"198.51.100.8", false},
		{"@#" + hex.EncodeToString(h[:]), true},
	} {
		id, err := config.ParseIdentity(tc.id)
		if err != nil {
			t.Fatal(err)
		}
		if got := HasID(c, id); got != tc.want {
			t.Errorf("HasID(%s) = %v", tc.id, got)
		}
	}
	if n := len(CertReqData([]*x509.Certificate{f.ca.Cert, f.other.Cert})); n != 40 {
		t.Errorf("CERTREQ data %d bytes, want 40", n)
	}
}

// TestCRLFetchFailureLogged: an unreachable distribution point is logged
// (the certificate is accepted without its CRL), once per interval.
func TestCRLFetchFailureLogged(t *testing.T) {
	f := newFixture(t)
	var buf bytes.Buffer
	fetcher := &CRLFetcher{Timeout: time.Second, MaxAge: time.Hour, Logger: slog.New(slog.NewTextHandler(&buf, nil))}
	v := &Verifier{Trust: f.trust, Now: time.Now(), CRLs: fetcher}
	dead := f.leaf(t, f.ca, testpki.LeafOptions{CN: "dead", CRLURL: "http://127.0.0.1:1/x.crl"})
	for range 3 {
		if err := v.Verify(dead, nil, config.Identity{}, nil); err != nil {
			t.Fatalf("unreachable CRL refused the certificate: %v", err)
		}
	}
	if n := strings.Count(buf.String(), "CRL not fetched"); n != 1 || !strings.Contains(buf.String(), "http://127.0.0.1:1/x.crl") {
		t.Errorf("%d log lines, want 1 naming the URL:\n%s", n, buf.String())
	}
}
