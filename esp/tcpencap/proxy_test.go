package tcpencap

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// echoServer accepts one connection and echoes it.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

// testProxy serves one proxy protocol on loopback; handshake does the
// protocol's part and returns the target address or "" to refuse.
func testProxy(t *testing.T, handshake func(c net.Conn, br *bufio.Reader) string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				br := bufio.NewReader(c)
				target := handshake(c, br)
				if target == "" {
					return
				}
				up, err := net.Dial("tcp", target)
				if err != nil {
					return
				}
				defer up.Close()
				go io.Copy(up, br)
				io.Copy(c, up)
			}()
		}
	}()
	return ln.Addr().String()
}

func httpProxy(t *testing.T, wantAuth string) string {
	return testProxy(t, func(c net.Conn, br *bufio.Reader) string {
		req, err := http.ReadRequest(br)
		if err != nil || req.Method != http.MethodConnect {
			return ""
		}
		if got := req.Header.Get("Proxy-Authorization"); got != wantAuth {
			io.WriteString(c, "HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
			return ""
		}
		io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
		return req.Host
	})
}

func socks5Proxy(t *testing.T, user, pass string) string {
	return testProxy(t, func(c net.Conn, br *bufio.Reader) string {
		var hdr [2]byte
		io.ReadFull(br, hdr[:])
		methods := make([]byte, hdr[1])
		io.ReadFull(br, methods)
		if user == "" {
			c.Write([]byte{5, 0})
		} else {
			c.Write([]byte{5, 2})
			var v [2]byte
			io.ReadFull(br, v[:])
			u := make([]byte, v[1])
			io.ReadFull(br, u)
			io.ReadFull(br, v[:1])
			p := make([]byte, v[0])
			io.ReadFull(br, p)
			if string(u) != user || string(p) != pass {
				c.Write([]byte{1, 1})
				return ""
			}
			c.Write([]byte{1, 0})
		}
		var req [4]byte
		io.ReadFull(br, req[:])
		if req[3] != 1 {
			return ""
		}
		var a [6]byte
		io.ReadFull(br, a[:])
		c.Write([]byte{5, 0, 0, 1, 127, 0, 0, 1, 0, 0})
		return net.JoinHostPort(net.IP(a[:4]).String(), strconv.Itoa(int(binary.BigEndian.Uint16(a[4:]))))
	})
}

func roundTrip(t *testing.T, p *Proxy, target string) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := p.DialContext(ctx, "tcp", target)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := io.WriteString(c, "IKETCP"); err != nil {
		return err
	}
	var b [6]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return err
	}
	if string(b[:]) != "IKETCP" {
		t.Fatalf("echo through the proxy: %q", b[:])
	}
	return nil
}

func TestProxies(t *testing.T) {
	target := echoServer(t)
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte("alice:s3cret-pass"))
	for _, tc := range []struct {
		name, url string
		ok        bool
	}{
		{"http", "http://" + httpProxy(t, ""), true},
		{"http basic", "http://alice:s3cret-pass@" + httpProxy(t, basic), true},
		{"http wrong password", "http://alice:wrong-pass@" + httpProxy(t, basic), false},
		{"socks5", "socks5://" + socks5Proxy(t, "", ""), true},
		{"socks5 user", "socks5://bob:hunter2-long@" + socks5Proxy(t, "bob", "hunter2-long"), true},
		{"socks5 wrong password", "socks5://bob:nope-nope@" + socks5Proxy(t, "bob", "hunter2-long"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParseProxy(tc.url)
			if err != nil {
				t.Fatal(err)
			}
			err = roundTrip(t, p, target)
			if (err == nil) != tc.ok {
				t.Fatalf("dial through %s: %v, want success %v", p, err, tc.ok)
			}
			if err != nil && p.Password != "" && strings.Contains(err.Error(), p.Password) {
				t.Fatalf("error shows the password: %v", err)
			}
		})
	}
}

func TestParseProxy(t *testing.T) {
	p, err := ParseProxy("http://alice:s3cret-pass@proxy.example:3128")
	if err != nil {
		t.Fatal(err)
	}
	if p.User != "alice" || p.Password != "s3cret-pass" || p.Addr != "proxy.example:3128" {
		t.Fatalf("parsed %+v", *p)
	}
	if s := p.String(); strings.Contains(s, "s3cret") || s != "http://alice:***@proxy.example:3128" {
		t.Fatalf("String() = %q", s)
	}
	for _, bad := range []string{"ftp://h:1", "http://h", "socks5://h:1/x", "http://alice:s3cret-pass@%zz:1"} {
		_, err := ParseProxy(bad)
		if err == nil {
			t.Errorf("%q accepted", bad)
		} else if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%q: error shows the password: %v", bad, err)
		}
	}
}
