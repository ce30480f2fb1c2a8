package pki

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
)

// Check names the check a peer's certificate failed.
type Check uint8

// The checks, in the order Verifier runs them.
const (
	CheckExpired   Check = iota + 1 // outside its validity period
	CheckUnknownCA                  // no chain to a trusted CA (or not to rightca=)
	CheckRevoked                    // listed in its issuer's CRL
	CheckID                         // the peer's ID is not in the certificate
	CheckSignature                  // AUTH did not verify, or no usable certificate
)

// Error is a failed check with a text that names the certificate and
// says what to change.
type Error struct {
	Check Check
	Text  string
}

func (e *Error) Error() string { return e.Text }

func fail(c Check, format string, args ...any) error {
	return &Error{Check: c, Text: fmt.Sprintf(format, args...)}
}

// Subject renders a certificate's subject as strongSwan shows it.
func Subject(c *x509.Certificate) string {
	if dn, err := config.ParseDERDN(c.RawSubject); err == nil {
		return config.FormatDN(dn)
	}
	return c.Subject.String()
}

// KeyHash is the SHA-1 hash of a certificate's SubjectPublicKeyInfo, by
// which CERTREQ payloads name CAs (RFC 7296 §3.7).
func KeyHash(c *x509.Certificate) [20]byte { return sha1.Sum(c.RawSubjectPublicKeyInfo) }

// CertReqData is the X.509 CERTREQ data for a set of CAs.
func CertReqData(cas []*x509.Certificate) []byte {
	out := make([]byte, 0, 20*len(cas))
	for _, c := range cas {
		h := KeyHash(c)
		out = append(out, h[:]...)
	}
	return out
}

// Verifier checks peers' certificates.
type Verifier struct {
	Trust *config.TrustStore
	Now   time.Time
	// CRLs fetches CRLs from HTTP distribution points; nil = only the CRL
	// files of the trust store.
	CRLs *CRLFetcher
}

// Verify checks the peer's end-entity certificate leaf (with the
// intermediates it sent): validity, a chain to a trusted CA (to the CA
// named by ca when that is set), and revocation. pinned, when set, is
// the certificate configured with rightcert=: trusted as it is (as
// strongSwan trusts a configured peer certificate), it must be the one
// the peer uses.
func (v *Verifier) Verify(leaf *x509.Certificate, intermediates []*x509.Certificate, ca config.Identity, pinned *x509.Certificate) error {
	if err := checkValidity(leaf, v.Now); err != nil {
		return err
	}
	if pinned != nil {
		if !leaf.Equal(pinned) {
			return fail(CheckUnknownCA, "the peer's certificate %q is not the one rightcert= names (%q)", Subject(leaf), Subject(pinned))
		}
		return nil
	}
	roots := x509.NewCertPool()
	for _, c := range v.Trust.CAs {
		roots.AddCert(c)
	}
	inter := x509.NewCertPool()
	for _, c := range intermediates {
		inter.AddCert(c)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: v.Now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		var inv x509.CertificateInvalidError
		if errors.As(err, &inv) && inv.Reason == x509.Expired {
			return fail(CheckExpired, "certificate %q of the peer's chain is outside its validity period", Subject(inv.Cert))
		}
		return fail(CheckUnknownCA, "the peer's certificate %q (issued by %q) does not chain to a trusted CA in ipsec.d/cacerts: %v", Subject(leaf), issuer(leaf), err)
	}
	if ca.Type == config.IDDERASN1DN {
		want, _ := config.ParseDN(ca.Value)
		chains = slices.DeleteFunc(chains, func(ch []*x509.Certificate) bool {
			for _, c := range ch[1:] {
				if dn, err := config.ParseDERDN(c.RawSubject); err == nil && config.MatchDN(want, dn) {
					return false
				}
			}
			return true
		})
		if len(chains) == 0 {
			return fail(CheckUnknownCA, "the peer's certificate %q is issued by %q, not by the CA that rightca= names (%s)", Subject(leaf), issuer(leaf), ca.Value)
		}
	}
	// Revocation of every certificate below the root of the first chain.
	ch := chains[0]
	for i := 0; i+1 < len(ch); i++ {
		if err := v.checkRevoked(ch[i], ch[i+1]); err != nil {
			return err
		}
	}
	return nil
}

func issuer(c *x509.Certificate) string {
	if dn, err := config.ParseDERDN(c.RawIssuer); err == nil {
		return config.FormatDN(dn)
	}
	return c.Issuer.String()
}

func checkValidity(c *x509.Certificate, now time.Time) error {
	switch {
	case now.After(c.NotAfter):
		return fail(CheckExpired, "the peer's certificate %q expired on %s", Subject(c), c.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(c.NotBefore):
		return fail(CheckExpired, "the peer's certificate %q is not valid before %s (check both clocks)", Subject(c), c.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}

// checkRevoked looks c up in the CRLs its issuer signed: the trust
// store's files first, then the certificate's HTTP distribution points.
// Without any CRL the certificate is accepted, as strongSwan does with
// its default strictcrlpolicy=no.
func (v *Verifier) checkRevoked(c, iss *x509.Certificate) error {
	lists := slices.Clone(v.Trust.CRLs)
	haveFile := slices.ContainsFunc(lists, func(l *x509.RevocationList) bool { return bytes.Equal(l.RawIssuer, iss.RawSubject) })
	if !haveFile && v.CRLs != nil {
		for _, u := range c.CRLDistributionPoints {
			if l, err := v.CRLs.Get(u); err == nil {
				lists = append(lists, l)
			}
		}
	}
	for _, l := range lists {
		if !bytes.Equal(l.RawIssuer, iss.RawSubject) || l.CheckSignatureFrom(iss) != nil {
			continue
		}
		for _, e := range l.RevokedCertificateEntries {
			if e.SerialNumber.Cmp(c.SerialNumber) == 0 {
				return fail(CheckRevoked, "the peer's certificate %q (serial %s) was revoked on %s by %q", Subject(c), hex.EncodeToString(c.SerialNumber.Bytes()), e.RevocationTime.UTC().Format(time.RFC3339), Subject(iss))
			}
		}
	}
	return nil
}

// HasID reports whether the certificate holds the identity: a DN as its
// subject, an FQDN, e-mail address or IP address among its
// subjectAltNames, a key ID as its subjectKeyIdentifier or the SHA-1 of
// its public key (RFC 4945 §3.1, as strongSwan matches them).
func HasID(c *x509.Certificate, id config.Identity) bool {
	switch id.Type {
	case config.IDDERASN1DN:
		want, err1 := config.ParseDN(id.Value)
		got, err2 := config.ParseDERDN(c.RawSubject)
		return err1 == nil && err2 == nil && config.MatchDN(want, got)
	case config.IDFQDN:
		return slices.ContainsFunc(c.DNSNames, func(n string) bool { return strings.EqualFold(n, id.Value) })
	case config.IDRFC822:
		return slices.ContainsFunc(c.EmailAddresses, func(n string) bool { return strings.EqualFold(n, id.Value) })
	case config.IDIPv4, config.IDIPv6:
		return slices.ContainsFunc(c.IPAddresses, func(ip net.IP) bool {
			a, ok := netipFrom(ip)
			return ok && a == id.Addr.Unmap()
		})
	case config.IDKeyID:
		h := KeyHash(c)
		return id.Value == hex.EncodeToString(c.SubjectKeyId) || id.Value == hex.EncodeToString(h[:])
	}
	return false
}

// CRLFetcher fetches CRLs from HTTP distribution points, with a timeout,
// and keeps each until its nextUpdate (at most MaxAge).
type CRLFetcher struct {
	Timeout time.Duration // per fetch; strongSwan's default is 10 s
	MaxAge  time.Duration
	Client  *http.Client // nil = a client with Timeout
	// Logger, when set, hears of a failed fetch (once per URL and
	// failureLogInterval): the certificate is then accepted without that
	// CRL, as strongSwan does with strictcrlpolicy=no, and an operator
	// must be able to tell "unreachable" from "not revoked".
	Logger *slog.Logger

	mu     sync.Mutex
	cache  map[string]cachedCRL
	logged map[string]time.Time
}

// failureLogInterval bounds how often one distribution point's failures
// are logged.
const failureLogInterval = 5 * time.Minute

type cachedCRL struct {
	l     *x509.RevocationList
	until time.Time
}

// maxCRLSize bounds a fetched CRL.
const maxCRLSize = 4 << 20

// Get returns the CRL at url (http:// only; LDAP is not supported).
func (f *CRLFetcher) Get(url string) (*x509.RevocationList, error) {
	l, err := f.get(url)
	if err != nil && f.Logger != nil {
		f.mu.Lock()
		now := time.Now()
		last, seen := f.logged[url]
		if !seen || now.Sub(last) >= failureLogInterval {
			if f.logged == nil {
				f.logged = map[string]time.Time{}
			}
			f.logged[url] = now
			f.Logger.Warn("CRL not fetched: revocation by this distribution point not checked", "url", url, "err", err)
		}
		f.mu.Unlock()
	}
	return l, err
}

func (f *CRLFetcher) get(url string) (*x509.RevocationList, error) {
	if !strings.HasPrefix(url, "http://") {
		return nil, fmt.Errorf("CRL distribution point %s: only http:// is fetched", url)
	}
	now := time.Now()
	f.mu.Lock()
	if c, ok := f.cache[url]; ok && now.Before(c.until) {
		f.mu.Unlock()
		return c.l, nil
	}
	f.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), f.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	client := f.Client
	if client == nil {
		client = &http.Client{Timeout: f.Timeout}
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("CRL %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("CRL %s: HTTP %s", url, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxCRLSize))
	if err != nil {
		return nil, fmt.Errorf("CRL %s: %w", url, err)
	}
	if b, _ := pem.Decode(data); b != nil {
		data = b.Bytes
	}
	l, err := x509.ParseRevocationList(data)
	if err != nil {
		return nil, fmt.Errorf("CRL %s: %w", url, err)
	}
	until := now.Add(f.MaxAge)
	if !l.NextUpdate.IsZero() && l.NextUpdate.Before(until) {
		until = l.NextUpdate
	}
	f.mu.Lock()
	if f.cache == nil {
		f.cache = map[string]cachedCRL{}
	}
	f.cache[url] = cachedCRL{l: l, until: until}
	f.mu.Unlock()
	return l, nil
}

func netipFrom(ip net.IP) (netip.Addr, bool) {
	a, ok := netip.AddrFromSlice(ip)
	return a.Unmap(), ok
}
