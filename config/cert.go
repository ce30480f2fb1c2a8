package config

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
)

// Certificates and private keys, laid out as strongSwan's starter reads
// them: relative leftcert=/rightcert= names under ipsec.d/certs/, private
// keys named in ipsec.secrets under ipsec.d/private/, trusted CAs in
// ipsec.d/cacerts/ and CRLs in ipsec.d/crls/, where ipsec.d is the
// directory beside ipsec.conf (/etc/ipsec.d for /etc/ipsec.conf).

// SendCert is leftsendcert=: when our certificate goes into IKE_AUTH.
type SendCert uint8

// leftsendcert= values (strongSwan's default is ifasked).
const (
	SendCertIfAsked SendCert = iota // when the peer sent a CERTREQ
	SendCertAlways                  // always (yes, always)
	SendCertNever                   // never (no, never): the peer has it
)

func (s SendCert) String() string {
	return [...]string{"ifasked", "always", "never"}[s]
}

// IPsecDir is the ipsec.d directory for a configuration file path.
func IPsecDir(confPath string) string {
	return filepath.Join(filepath.Dir(confPath), "ipsec.d")
}

// maxCredFile bounds a certificate, key or CRL file.
const maxCredFile = 1 << 20

// ParseCertificate reads a PEM or DER X.509 certificate.
func ParseCertificate(data []byte) (*x509.Certificate, error) {
	if b, _ := pem.Decode(data); b != nil {
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %q is not a CERTIFICATE", b.Type)
		}
		data = b.Bytes
	}
	return x509.ParseCertificate(data)
}

// ParsePrivateKey reads an RSA (PKCS#1), ECDSA (SEC 1) or PKCS#8 (RSA,
// ECDSA, Ed25519) private key, PEM or DER, as strongSwan's RSA, ECDSA and
// PKCS8 secrets. Encrypted PEM keys are refused with a hint.
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	if b, _ := pem.Decode(data); b != nil {
		if _, enc := b.Headers["DEK-Info"]; enc || b.Type == "ENCRYPTED PRIVATE KEY" {
			return nil, errors.New("the key is encrypted; decrypt it (openssl pkey -in KEY -out KEY) and protect the file with chmod 600")
		}
		data = b.Bytes
	}
	if k, err := x509.ParsePKCS8PrivateKey(data); err == nil {
		return signerOf(k)
	}
	if k, err := x509.ParsePKCS1PrivateKey(data); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(data); err == nil {
		return k, nil
	}
	return nil, errors.New("not an RSA, ECDSA or Ed25519 private key (PKCS#1, SEC 1 or PKCS#8, PEM or DER)")
}

func signerOf(k any) (crypto.Signer, error) {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return k, nil
	case *ecdsa.PrivateKey:
		return k, nil
	case ed25519.PrivateKey:
		return k, nil
	}
	return nil, fmt.Errorf("unsupported private key type %T", k)
}

// credPath resolves a file name relative to ipsec.d/<sub>.
func credPath(ipsecDir, sub, name string) string {
	name = strings.Trim(name, "\"")
	if filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(ipsecDir, sub, name)
}

func readCred(fsys fileSystem, path string) ([]byte, error) {
	fi, err := fsys.Stat(path)
	if err != nil {
		return nil, unwrapPathError(err)
	}
	if fi.Size() > maxCredFile {
		return nil, fmt.Errorf("larger than %d bytes", maxCredFile)
	}
	data, err := fsys.ReadFile(path)
	if err != nil {
		return nil, unwrapPathError(err)
	}
	return data, nil
}

// convertCert reads leftcert=/leftca=/leftsendcert= of one side. A cert
// of an end that authenticates with a PSK is not used (warning); a
// pubkey end's cert is loaded now, so that config check names the file
// and line of one that is missing or broken.
func (cb *connBuilder) convertCert(side string, e *End) {
	if kv, ok := cb.get(side + "sendcert"); ok {
		switch strings.ToLower(kv.Value) {
		case "ifasked":
			e.SendCert = SendCertIfAsked
		case "yes", "always":
			e.SendCert = SendCertAlways
		case "no", "never":
			e.SendCert = SendCertNever
		default:
			cb.errf(kv, "invalid value %q; expected ifasked, always (yes) or never (no)", kv.Value)
		}
	}
	if kv, ok := cb.get(side + "ca"); ok && kv.Value != "%same" {
		if _, err := ParseDN(kv.Value); err != nil {
			cb.errf(kv, "%v; write the CA's subject, e.g. \"C=CH, O=Example, CN=Example Root CA\"", err)
		} else {
			e.CA = Identity{Type: IDDERASN1DN, Value: kv.Value}
		}
	}
	kv, ok := cb.get(side + "cert")
	if !ok {
		return
	}
	if e.Auth != AuthPubkey {
		cb.warnf(kv, "%scert= is not used: this end authenticates with %s", side, e.Auth)
		return
	}
	path := credPath(IPsecDir(cb.b.opts.ConfPath), "certs", kv.Value)
	data, err := readCred(cb.b.p.fs, path)
	if err == nil {
		e.Cert, err = ParseCertificate(data)
	}
	if err != nil {
		cb.errf(kv, "certificate %s: %v", path, err)
		return
	}
	e.CertFile = path
	if _, hasID := cb.get(side + "id"); !hasID {
		// strongSwan's default ID of a certificate end: its subject.
		// RawSubject keeps the certificate's order of attributes.
		if dn, err := ParseDERDN(e.Cert.RawSubject); err == nil {
			e.ID = Identity{Type: IDDERASN1DN, Value: FormatDN(dn)}
		}
	}
}

// checkPubkey reports what a pubkey conn lacks: IKEv1 (not supported with
// certificates), our certificate, or the private key for it.
func (b *builder) checkPubkey(c Conn, s *Secrets) {
	if c.Local.Auth != AuthPubkey && c.Remote.Auth != AuthPubkey {
		return
	}
	kv, ok := b.authLine[c.Name]
	if !ok {
		kv = rawKV{File: c.File, Line: c.Line}
	}
	if c.Version == IKEv1 || c.Version == IKEv1First {
		b.add(SeverityWarning, kv, c.Name, "certificate authentication is supported with IKEv2 only; this IKEv1 conn cannot authenticate (use keyexchange=ikev2 or authby=secret)")
		return
	}
	if c.Local.Auth != AuthPubkey {
		return
	}
	side := "left"
	if !c.LocalIsLeft {
		side = "right"
	}
	if c.Local.Cert == nil {
		b.add(SeverityWarning, kv, c.Name, fmt.Sprintf("authby=pubkey needs our certificate: set %scert= (a file in ipsec.d/certs/) and its private key in ipsec.secrets (: RSA|ECDSA|PKCS8 file)", side))
		return
	}
	if _, ok := s.PrivateKey(c.Local.Cert.PublicKey); !ok {
		b.add(SeverityError, kv, c.Name, fmt.Sprintf("no private key in ipsec.secrets for %s (%scert=); add \": RSA|ECDSA|PKCS8 <file in ipsec.d/private/>\"", c.Local.CertFile, side))
	}
}

// TrustStore holds the CA certificates and CRLs of ipsec.d.
type TrustStore struct {
	CAs  []*x509.Certificate
	CRLs []*x509.RevocationList
}

// loadTrust reads every file of ipsec.d/cacerts and ipsec.d/crls; a file
// that does not parse is a warning naming it (strongSwan skips it too).
func loadTrust(fsys fileSystem, dir string) (*TrustStore, Diagnostics) {
	ts := &TrustStore{}
	var diags Diagnostics
	warn := func(path string, err error) {
		diags = append(diags, Diagnostic{File: path, Severity: SeverityWarning, Msg: err.Error()})
	}
	cas, _ := fsys.Glob(filepath.Join(dir, "cacerts", "*"))
	for _, p := range cas {
		data, err := readCred(fsys, p)
		var c *x509.Certificate
		if err == nil {
			c, err = ParseCertificate(data)
		}
		if err != nil {
			warn(p, fmt.Errorf("CA certificate skipped: %v", err))
			continue
		}
		if !c.IsCA {
			warn(p, errors.New("CA certificate skipped: it lacks the CA basic constraint"))
			continue
		}
		ts.CAs = append(ts.CAs, c)
	}
	crls, _ := fsys.Glob(filepath.Join(dir, "crls", "*"))
	for _, p := range crls {
		data, err := readCred(fsys, p)
		var l *x509.RevocationList
		if err == nil {
			if b, _ := pem.Decode(data); b != nil {
				data = b.Bytes
			}
			l, err = x509.ParseRevocationList(data)
		}
		if err != nil {
			warn(p, fmt.Errorf("CRL skipped: %v", err))
			continue
		}
		ts.CRLs = append(ts.CRLs, l)
	}
	return ts, diags
}
