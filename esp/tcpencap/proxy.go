package tcpencap

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"time"
)

// Proxy dials through an HTTP proxy (CONNECT, RFC 9110 §9.3.6, with Basic
// credentials) or a SOCKS5 proxy (RFC 1928, with username/password, RFC
// 1929). It implements Dialer. Its String never shows the password.
type Proxy struct {
	// Scheme is "http" or "socks5".
	Scheme string
	// Addr is the proxy's host:port.
	Addr string
	// User and Password are the credentials (none when User is empty).
	User, Password string
	// Forward dials the proxy itself; nil means a net.Dialer with TCP
	// keepalives.
	Forward Dialer
}

// ParseProxy reads "http://[user:password@]host:port" or
// "socks5://[user:password@]host:port". Errors never quote the password.
func ParseProxy(s string) (*Proxy, error) {
	u, err := url.Parse(s)
	if err != nil {
		// url's errors quote the input, password included.
		return nil, errors.New("proxy: not a URL (expected http://[user:password@]host:port or socks5://...)")
	}
	p := &Proxy{Scheme: u.Scheme, Addr: u.Host}
	if u.User != nil {
		p.User = u.User.Username()
		p.Password, _ = u.User.Password()
	}
	switch p.Scheme {
	case "http", "socks5":
	default:
		return nil, fmt.Errorf("proxy: scheme %q is not http or socks5", p.Scheme)
	}
	if _, port, err := net.SplitHostPort(p.Addr); err != nil || port == "" {
		return nil, fmt.Errorf("proxy: %s://%s needs host:port", p.Scheme, p.Addr)
	}
	if u.Path != "" && u.Path != "/" {
		return nil, fmt.Errorf("proxy: %s has a path; expected only host:port", p)
	}
	if p.Scheme == "socks5" && (len(p.User) > 255 || len(p.Password) > 255) {
		return nil, errors.New("proxy: SOCKS5 user name and password are at most 255 bytes each")
	}
	return p, nil
}

// String is the proxy URL with the password masked.
func (p *Proxy) String() string {
	if p.User == "" {
		return p.Scheme + "://" + p.Addr
	}
	return p.Scheme + "://" + url.User(p.User).String() + ":***@" + p.Addr
}

// handshakeTimeout bounds the proxy's answer once connected.
const handshakeTimeout = 10 * time.Second

// DialContext connects to address through the proxy.
func (p *Proxy) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	fwd := p.Forward
	if fwd == nil {
		fwd = &net.Dialer{KeepAlive: 20 * time.Second}
	}
	c, err := fwd.DialContext(ctx, "tcp", p.Addr)
	if err != nil {
		return nil, fmt.Errorf("proxy %s: %w", p, err)
	}
	deadline := time.Now().Add(handshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.SetDeadline(deadline)
	var out net.Conn
	switch p.Scheme {
	case "http":
		out, err = p.connect(c, address)
	default:
		err = p.socks5(c, address)
		out = c
	}
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("proxy %s: %w", p, err)
	}
	_ = c.SetDeadline(time.Time{})
	return out, nil
}

// connect asks an HTTP proxy for a tunnel to address.
func (p *Proxy) connect(c net.Conn, address string) (net.Conn, error) {
	req := "CONNECT " + address + " HTTP/1.1\r\nHost: " + address + "\r\n"
	if p.User != "" {
		req += "Proxy-Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(p.User+":"+p.Password)) + "\r\n"
	}
	if _, err := io.WriteString(c, req+"\r\n"); err != nil {
		return nil, err
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		return nil, fmt.Errorf("CONNECT: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("CONNECT %s refused: %s", address, resp.Status)
	}
	if br.Buffered() > 0 {
		// The peer spoke first: what the reader holds comes before the
		// rest of the connection.
		return &bufferedConn{Conn: c, r: br}, nil
	}
	return c, nil
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (b *bufferedConn) Read(p []byte) (int, error) { return b.r.Read(p) }

// SOCKS5 constants (RFC 1928, RFC 1929).
const (
	socksVersion      = 5
	socksNoAuth       = 0
	socksUserPass     = 2
	socksNoAcceptable = 0xFF
	socksConnect      = 1
	socksIPv4         = 1
	socksDomain       = 3
	socksIPv6         = 4
)

var socksReplies = map[byte]string{
	1: "general failure", 2: "connection not allowed by ruleset", 3: "network unreachable",
	4: "host unreachable", 5: "connection refused", 6: "TTL expired", 7: "command not supported",
	8: "address type not supported",
}

// socks5 runs the SOCKS5 handshake for a CONNECT to address.
func (p *Proxy) socks5(c net.Conn, address string) error {
	host, portS, err := net.SplitHostPort(address)
	if err != nil {
		return err
	}
	port, err := strconv.ParseUint(portS, 10, 16)
	if err != nil {
		return fmt.Errorf("port %q: %w", portS, err)
	}
	methods := []byte{socksNoAuth}
	if p.User != "" {
		methods = []byte{socksUserPass}
	}
	if _, err := c.Write(append([]byte{socksVersion, byte(len(methods))}, methods...)); err != nil {
		return err
	}
	var sel [2]byte
	if _, err := io.ReadFull(c, sel[:]); err != nil {
		return fmt.Errorf("SOCKS5 greeting: %w", err)
	}
	if sel[0] != socksVersion || sel[1] == socksNoAcceptable || (sel[1] != socksNoAuth && sel[1] != socksUserPass) {
		return fmt.Errorf("SOCKS5: no acceptable authentication method (proxy chose %d)", sel[1])
	}
	if sel[1] == socksUserPass {
		if p.User == "" {
			return errors.New("SOCKS5: the proxy wants a user name and password")
		}
		auth := append([]byte{1, byte(len(p.User))}, p.User...)
		auth = append(append(auth, byte(len(p.Password))), p.Password...)
		if _, err := c.Write(auth); err != nil {
			return err
		}
		var st [2]byte
		if _, err := io.ReadFull(c, st[:]); err != nil {
			return fmt.Errorf("SOCKS5 authentication: %w", err)
		}
		if st[1] != 0 {
			return errors.New("SOCKS5: user name or password refused")
		}
	}
	req := []byte{socksVersion, socksConnect, 0}
	if a, err := netip.ParseAddr(host); err == nil {
		if a.Is4() {
			req = append(append(req, socksIPv4), a.AsSlice()...)
		} else {
			req = append(append(req, socksIPv6), a.AsSlice()...)
		}
	} else {
		if len(host) > 255 {
			return errors.New("SOCKS5: host name longer than 255 bytes")
		}
		req = append(append(req, socksDomain, byte(len(host))), host...)
	}
	req = binary.BigEndian.AppendUint16(req, uint16(port))
	if _, err := c.Write(req); err != nil {
		return err
	}
	var rep [4]byte
	if _, err := io.ReadFull(c, rep[:]); err != nil {
		return fmt.Errorf("SOCKS5 CONNECT: %w", err)
	}
	if rep[1] != 0 {
		why := socksReplies[rep[1]]
		if why == "" {
			why = "reply " + strconv.Itoa(int(rep[1]))
		}
		return fmt.Errorf("SOCKS5 CONNECT %s: %s", address, why)
	}
	// The bound address, which we do not need.
	var skip int
	switch rep[3] {
	case socksIPv4:
		skip = 4
	case socksIPv6:
		skip = 16
	case socksDomain:
		var l [1]byte
		if _, err := io.ReadFull(c, l[:]); err != nil {
			return err
		}
		skip = int(l[0])
	default:
		return fmt.Errorf("SOCKS5: bound address of unknown type %d", rep[3])
	}
	_, err = io.ReadFull(c, make([]byte, skip+2))
	return err
}
