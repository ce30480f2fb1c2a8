package tcpencap

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"math/big"
	"net"
	"time"
)

// TLS around the stream (RFC 9329 §8), for middleboxes that pass only
// TLS: the whole stream, prefix included, runs inside a TLS session.
// IKE authenticates the peer and ESP protects the traffic, so TLS here
// adds no security of its own and needs none: the client does not verify
// the server's certificate, and the server presents a self-signed one
// made at start. TLS only makes the stream look like HTTPS.

// TLSDialer dials through Forward (a net.Dialer or a Proxy) and runs a
// TLS client handshake on the connection.
type TLSDialer struct {
	Forward Dialer
}

// DialContext implements Dialer.
func (d *TLSDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	c, err := d.Forward.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	host, _, _ := net.SplitHostPort(address)
	tc := tls.Client(c, &tls.Config{
		ServerName: host,
		// IKE authenticates the peer; see the comment above.
		InsecureSkipVerify: true, //nolint:gosec
		MinVersion:         tls.VersionTLS12,
	})
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("TLS handshake with %s: %w", address, err)
	}
	return tc, nil
}

// ServerTLSConfig returns a TLS server configuration with a fresh
// self-signed certificate.
func ServerTLSConfig() (*tls.Config, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "ipsecgw"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}},
		MinVersion:   tls.VersionTLS12,
	}, nil
}

// tlsHandshakeRecord is the first byte of a TLS connection (a handshake
// record); a plain stream starts with 'I' of "IKETCP".
const tlsHandshakeRecord = 0x16

// Accept starts the accepting side on c, plain or in TLS (told apart by
// the first byte), and reads the prefix; all within timeout (0:
// DefaultPrefixTimeout). It reports whether the stream is in TLS. On an
// error c is closed.
func Accept(c net.Conn, cfg *tls.Config, timeout time.Duration) (*Stream, bool, error) {
	if timeout <= 0 {
		timeout = DefaultPrefixTimeout
	}
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	var first [1]byte
	if _, err := io.ReadFull(c, first[:]); err != nil {
		c.Close()
		return nil, false, fmt.Errorf("tcpencap: reading prefix: %w", err)
	}
	pc := &peekedConn{Conn: c, first: first[0], has: true}
	if first[0] != tlsHandshakeRecord || cfg == nil {
		s, err := Server(pc, timeout)
		return s, false, err
	}
	tc := tls.Server(pc, cfg)
	if err := tc.Handshake(); err != nil {
		c.Close()
		return nil, true, fmt.Errorf("tcpencap: TLS handshake: %w", err)
	}
	s, err := Server(tc, timeout)
	return s, true, err
}

// peekedConn gives back the byte Accept read to tell TLS from plain.
type peekedConn struct {
	net.Conn
	first byte
	has   bool
}

func (p *peekedConn) Read(b []byte) (int, error) {
	if p.has && len(b) > 0 {
		b[0], p.has = p.first, false
		return 1, nil
	}
	return p.Conn.Read(b)
}
