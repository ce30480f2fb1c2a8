package tcpencap

import (
	"context"
	"net"
)

// DefaultPort is the TCP port a responder listens on unless configured
// otherwise (RFC 9329 §4 names 4500; 443 passes more firewalls).
const DefaultPort = 4500

// Dialer opens the TCP connection: a net.Dialer, or a proxy client that
// returns a connection tunnelled through an HTTP or SOCKS5 proxy.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Dial connects to address ("host:port") through d and starts the stream
// (sends the prefix).
func Dial(ctx context.Context, d Dialer, address string) (*Stream, error) {
	c, err := d.DialContext(ctx, "tcp", address)
	if err != nil {
		return nil, err
	}
	return Client(c)
}
