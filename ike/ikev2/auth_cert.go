package ikev2

import (
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
	"github.com/ipsecgw/ipsecgw/ike/shared"
	"github.com/ipsecgw/ipsecgw/ike/shared/pki"
)

// Certificate authentication in IKE_AUTH (RFC 7296 §2.15, §3.6-3.8; RFC
// 7427): the pieces authTask uses for an end whose auth is pubkey. The
// signed octets are those of PSK authentication; what differs is who
// vouches for the key (a certificate chain) and how the AUTH data is made.

// CRLFetchTimeout bounds the fetch of a CRL from a certificate's HTTP
// distribution point; it blocks only the IKE SA that verifies the peer.
const CRLFetchTimeout = 5 * time.Second

// ourCertPayloads are the CERT payloads we add for conn c: our
// certificate when leftsendcert=always, or ifasked and the peer sent a
// CERTREQ (strongSwan's default).
func ourCertPayloads(c *config.Conn, peerAsked bool) []message.Payload {
	if c.Local.Cert == nil || c.Local.SendCert == config.SendCertNever || (c.Local.SendCert == config.SendCertIfAsked && !peerAsked) {
		return nil
	}
	return []message.Payload{message.Cert{Encoding: message.CertX509Signature, Data: c.Local.Cert.Raw}}
}

// certReqPayload asks for the peer's certificate by the CAs we trust
// (RFC 7296 §3.7), for a conn whose peer authenticates with one; false
// when we trust no CA (a pinned rightcert= needs no CERT).
func (sa *ikeSA) certReqPayload(c *config.Conn) (message.Payload, bool) {
	cas := sa.e.host.Trust().CAs
	if c.Remote.Auth != config.AuthPubkey || len(cas) == 0 {
		return nil, false
	}
	return message.CertReq{Encoding: message.CertX509Signature, Data: pki.CertReqData(cas)}, true
}

// ourIDWithCert encodes our identity; a DN that is our certificate's
// subject goes out as the certificate encodes it, so that the peer's
// byte-wise comparison of ID and subject holds.
func ourIDWithCert(id config.Identity, cert *x509.Certificate, responder bool) (message.ID, bool) {
	if id.Type == config.IDDERASN1DN && cert != nil {
		if want, err := config.ParseDN(id.Value); err == nil {
			if got, err := config.ParseDERDN(cert.RawSubject); err == nil && config.MatchDN(want, got) {
				return message.ID{Responder: responder, Type: message.IDDERASN1DN, Data: cert.RawSubject}, true
			}
		}
	}
	return wireID(id, responder)
}

// signAuth makes our AUTH payload over the signed octets with the private
// key of our certificate.
func (sa *ikeSA) signAuth(c *config.Conn, octets []byte) (message.Auth, error) {
	if c.Local.Cert == nil {
		return message.Auth{}, configError(fmt.Errorf("conn %s authenticates with a certificate, but has no leftcert=", c.Name))
	}
	key, ok := sa.e.host.PrivateKey(c.Local.Cert.PublicKey)
	if !ok {
		return message.Auth{}, configError(fmt.Errorf("no private key in ipsec.secrets for %s", c.Local.CertFile))
	}
	m, data, err := pki.Sign(key, octets, pki.SignOptions{PeerHashes: sa.hs.peerHashes, PSS: c.Local.PSS})
	if err != nil {
		return message.Auth{}, configError(fmt.Errorf("signing with the key of %s: %w", c.Local.CertFile, err))
	}
	return message.Auth{Method: message.AuthMethod(m), Data: data}, nil
}

// certFailure is a refused peer certificate: the cause names the check.
type certFailure struct {
	cause shared.Cause
	text  string
}

// verifyPeerCert authenticates the peer of conn c that identified itself
// as peerID: its certificate (the first CERT payload, else rightcert=)
// must pass the Verifier, hold peerID, and verify the AUTH signature over
// the signed octets.
func (sa *ikeSA) verifyPeerCert(c *config.Conn, peerID config.Identity, in []message.RawPayload, auth message.Auth, octets []byte) *certFailure {
	var certs []*x509.Certificate
	for _, p := range in {
		if p.Type != message.PayloadCERT {
			continue
		}
		x, _, err := message.ParseCert(p.Body)
		if err != nil || x.Encoding != message.CertX509Signature {
			continue
		}
		cert, err := x509.ParseCertificate(x.Data)
		if err != nil {
			return &certFailure{shared.CauseCertInvalid, fmt.Sprintf("peer's CERT payload does not parse: %v", err)}
		}
		certs = append(certs, cert)
	}
	if len(certs) == 0 {
		if c.Remote.Cert == nil {
			return &certFailure{shared.CauseCertInvalid, fmt.Sprintf("peer %s sent no certificate and conn %s has no rightcert=; set rightsendcert=always on the peer or rightcert= here", peerID, c.Name)}
		}
		certs = []*x509.Certificate{c.Remote.Cert}
	}
	leaf := certs[0]
	v := pki.Verifier{Trust: sa.e.host.Trust(), Now: sa.e.clock.Now(), CRLs: sa.e.crls}
	if err := v.Verify(leaf, certs[1:], c.Remote.CA, c.Remote.Cert); err != nil {
		return &certFailure{certCause(err), err.Error()}
	}
	if !pki.HasID(leaf, peerID) {
		return &certFailure{shared.CauseCertIDMismatch, fmt.Sprintf("peer's ID %s is not in its certificate (subject %q, subjectAltNames %s)", peerID, pki.Subject(leaf), altNames(leaf))}
	}
	if !pki.Method(auth.Method).IsSignature() {
		return &certFailure{shared.CauseAuthFailed, fmt.Sprintf("peer authenticated with method %d; conn %s expects a signature (authby=pubkey)", auth.Method, c.Name)}
	}
	if err := pki.Verify(leaf.PublicKey, pki.Method(auth.Method), auth.Data, octets); err != nil {
		return &certFailure{shared.CauseAuthFailed, fmt.Sprintf("peer's AUTH signature failed: %v (certificate %q)", err, pki.Subject(leaf))}
	}
	sa.log.Info("peer authenticated with a certificate", "conn", c.Name, "subject", pki.Subject(leaf), "issuer", leaf.Issuer.String(), "method", int(auth.Method))
	return nil
}

func certCause(err error) shared.Cause {
	var e *pki.Error
	if !errors.As(err, &e) {
		return shared.CauseCertInvalid
	}
	switch e.Check {
	case pki.CheckExpired:
		return shared.CauseCertExpired
	case pki.CheckUnknownCA:
		return shared.CauseCertUnknownCA
	case pki.CheckRevoked:
		return shared.CauseCertRevoked
	case pki.CheckID:
		return shared.CauseCertIDMismatch
	}
	return shared.CauseCertInvalid
}

func altNames(c *x509.Certificate) string {
	var s []string
	s = append(s, c.DNSNames...)
	s = append(s, c.EmailAddresses...)
	for _, ip := range c.IPAddresses {
		s = append(s, ip.String())
	}
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}
