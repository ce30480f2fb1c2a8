package tcpencap

import (
	"bytes"
	"context"
	"net"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/esp/conn"
)

// TestAcceptPlainAndTLS: one listener takes plain streams and streams in
// TLS, and both carry IKE and ESP; a TLS stream sends nothing in clear
// (no prefix, no message).
func TestAcceptPlainAndTLS(t *testing.T) {
	cfg, err := ServerTLSConfig()
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	for _, useTLS := range []bool{false, true} {
		var d Dialer = &net.Dialer{}
		var wire bytes.Buffer
		d = &recordingDialer{d, &wire}
		if useTLS {
			d = &TLSDialer{Forward: d}
		}
		type res struct {
			s   *Stream
			tls bool
			err error
		}
		ch := make(chan res, 1)
		go func() {
			c, err := ln.Accept()
			if err != nil {
				ch <- res{err: err}
				return
			}
			s, isTLS, err := Accept(c, cfg, time.Second)
			ch <- res{s, isTLS, err}
		}()
		client, err := Dial(context.Background(), d, ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		r := <-ch
		if r.err != nil || r.tls != useTLS {
			t.Fatalf("Accept: tls=%v err=%v, want tls=%v", r.tls, r.err, useTLS)
		}
		got := make(chan []byte, 2)
		go r.s.Serve(Handler{
			IKE: func(m []byte) { got <- bytes.Clone(m) },
			ESP: func(b []conn.ESPPacket) {
				for _, p := range b {
					got <- bytes.Clone(p.Bytes())
				}
			},
		})
		ike, esp := ikeMsg(9), espPkt(0x77, 100)
		if err := client.WriteIKE(ike); err != nil {
			t.Fatal(err)
		}
		if _, err := client.Send([]conn.OutPacket{{B: esp}}); err != nil {
			t.Fatal(err)
		}
		for _, want := range [][]byte{ike, esp} {
			select {
			case m := <-got:
				if !bytes.Equal(m, want) {
					t.Fatalf("tls=%v: got %x, want %x", useTLS, m, want)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("tls=%v: nothing received", useTLS)
			}
		}
		clear := bytes.Contains(wire.Bytes(), []byte(Prefix)) || bytes.Contains(wire.Bytes(), esp)
		if clear == useTLS {
			t.Fatalf("tls=%v: prefix or ESP in clear on the wire: %v", useTLS, clear)
		}
		client.Close()
		r.s.Close()
	}
}

// recordingDialer records what the client writes on the TCP connection.
type recordingDialer struct {
	d   Dialer
	buf *bytes.Buffer
}

func (r *recordingDialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	c, err := r.d.DialContext(ctx, network, address)
	if err != nil {
		return nil, err
	}
	return &recordingConn{c, r.buf}, nil
}

type recordingConn struct {
	net.Conn
	buf *bytes.Buffer
}

func (c *recordingConn) Write(b []byte) (int, error) {
	c.buf.Write(b)
	return c.Conn.Write(b)
}
