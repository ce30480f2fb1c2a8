// Package testpki makes certificate authorities, end-entity certificates
// and CRLs for tests: the lab's PKI, generated with crypto/x509 in the
// test itself so that no key material is checked in.
package testpki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"sync/atomic"
	"time"
)

// KeyType is the kind of key to generate.
type KeyType string

// Key types.
const (
	RSA2048 KeyType = "rsa2048"
	P256    KeyType = "p256"
	P384    KeyType = "p384"
	Ed25519 KeyType = "ed25519"
)

// NewKey generates a key of type t.
func NewKey(t KeyType) (crypto.Signer, error) {
	switch t {
	case RSA2048:
		return rsa.GenerateKey(rand.Reader, 2048)
	case P256:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case P384:
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case Ed25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		return k, err
	}
	return nil, fmt.Errorf("unknown key type %q", t)
}

// CA is a certificate authority that issues certificates and CRLs.
type CA struct {
	Cert    *x509.Certificate
	Key     crypto.Signer
	at      time.Time
	serial  atomic.Int64
	revoked []x509.RevocationListEntry
}

// NewCA makes a self-signed root CA with subject "C=CH, O=ipsecgw test, CN=<cn>".
func NewCA(cn string, t KeyType) (*CA, error) { return NewCAAt(cn, t, time.Time{}) }

// NewCAAt is NewCA for tests on a fake clock: the CA, its certificates
// and CRLs are valid around at instead of the present (zero = now).
func NewCAAt(cn string, t KeyType, at time.Time) (*CA, error) {
	key, err := NewKey(t)
	if err != nil {
		return nil, err
	}
	now := at
	if now.IsZero() {
		now = time.Now()
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{Country: []string{"CH"}, Organization: []string{"ipsecgw test"}, CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	ca := &CA{Cert: c, Key: key, at: at}
	ca.serial.Store(1)
	return ca, nil
}

// Leaf is an issued end-entity certificate with its key.
type Leaf struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// LeafOptions describe an end-entity certificate.
type LeafOptions struct {
	CN       string // subject "C=CH, O=ipsecgw test, CN=<CN>"
	Key      KeyType
	DNS      []string
	Emails   []string
	IPs      []net.IP
	Expired  bool   // valid until an hour ago
	CRLURL   string // CRL distribution point
	Lifetime time.Duration
}

// Issue makes an end-entity certificate signed by the CA.
func (ca *CA) Issue(o LeafOptions) (*Leaf, error) {
	key, err := NewKey(o.Key)
	if err != nil {
		return nil, err
	}
	now := ca.now()
	life := o.Lifetime
	if life == 0 {
		life = 24 * time.Hour
	}
	tmpl := &x509.Certificate{
		SerialNumber:   big.NewInt(ca.serial.Add(1)),
		Subject:        pkix.Name{Country: []string{"CH"}, Organization: []string{"ipsecgw test"}, CommonName: o.CN},
		NotBefore:      now.Add(-time.Hour),
		NotAfter:       now.Add(life),
		KeyUsage:       x509.KeyUsageDigitalSignature,
		DNSNames:       o.DNS,
		EmailAddresses: o.Emails,
		IPAddresses:    o.IPs,
	}
	if o.Expired {
		tmpl.NotBefore, tmpl.NotAfter = now.Add(-48*time.Hour), now.Add(-time.Hour)
	}
	if o.CRLURL != "" {
		tmpl.CRLDistributionPoints = []string{o.CRLURL}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return nil, err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &Leaf{Cert: c, Key: key}, nil
}

func (ca *CA) now() time.Time {
	if ca.at.IsZero() {
		return time.Now()
	}
	return ca.at
}

// Revoke adds a certificate to the CA's next CRL.
func (ca *CA) Revoke(c *x509.Certificate) {
	ca.revoked = append(ca.revoked, x509.RevocationListEntry{SerialNumber: c.SerialNumber, RevocationTime: ca.now().Add(-time.Minute)})
}

// CRL returns a DER CRL of the revoked certificates, valid for a day.
func (ca *CA) CRL() ([]byte, error) {
	now := ca.now()
	return x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(now.UnixNano()),
		ThisUpdate:                now.Add(-time.Hour),
		NextUpdate:                now.Add(24 * time.Hour),
		RevokedCertificateEntries: ca.revoked,
	}, ca.Cert, ca.Key)
}

// CertPEM encodes a certificate as PEM.
func CertPEM(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// KeyPEM encodes a private key as PEM in the form strongSwan's secrets
// name it: PKCS#1 for RSA ("RSA PRIVATE KEY"), SEC 1 for ECDSA ("EC
// PRIVATE KEY") and PKCS#8 for Ed25519 ("PRIVATE KEY").
func KeyPEM(k crypto.Signer) ([]byte, error) {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), nil
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return nil, err
		}
		return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
	}
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// SecretKind is the ipsec.secrets type for a key written by KeyPEM.
func SecretKind(k crypto.Signer) string {
	switch k.(type) {
	case *rsa.PrivateKey:
		return "RSA"
	case *ecdsa.PrivateKey:
		return "ECDSA"
	}
	return "PKCS8"
}
