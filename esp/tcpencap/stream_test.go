package tcpencap

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/esp/conn"
)

// pair returns a client and a server stream over loopback TCP.
func pair(t testing.TB) (client, server *Stream) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type res struct {
		s   *Stream
		err error
	}
	ch := make(chan res, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			ch <- res{err: err}
			return
		}
		s, err := Server(c, time.Second)
		ch <- res{s, err}
	}()
	client, err = Dial(context.Background(), &net.Dialer{}, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}
	t.Cleanup(func() { client.Close(); r.s.Close() })
	return client, r.s
}

// collector records what a stream delivers.
type collector struct {
	mu  sync.Mutex
	ike [][]byte
	esp [][]byte
	src []netip.AddrPort
	got chan struct{}
}

func newCollector() *collector { return &collector{got: make(chan struct{}, 1024)} }

func (c *collector) handler(src netip.AddrPort) Handler {
	return Handler{
		Src: src,
		IKE: func(m []byte) {
			c.mu.Lock()
			c.ike = append(c.ike, bytes.Clone(m))
			c.mu.Unlock()
			c.got <- struct{}{}
		},
		ESP: func(batch []conn.ESPPacket) {
			c.mu.Lock()
			for _, p := range batch {
				if !p.UDP {
					panic("ESP from a stream must be reported as ESP in UDP")
				}
				c.esp = append(c.esp, bytes.Clone(p.Bytes()))
				c.src = append(c.src, p.Src)
			}
			c.mu.Unlock()
			for range batch {
				c.got <- struct{}{}
			}
		},
	}
}

func (c *collector) wait(t *testing.T, n int) {
	t.Helper()
	for range n {
		select {
		case <-c.got:
		case <-time.After(5 * time.Second):
			t.Fatalf("timed out: %d IKE and %d ESP received", len(c.ike), len(c.esp))
		}
	}
}

func TestStreamBothWays(t *testing.T) {
	client, server := pair(t)
	src := netip.MustParseAddrPort("192.0.2.1:4500")
	atServer, atClient := newCollector(), newCollector()
	errs := make(chan error, 2)
	go func() { errs <- server.Serve(atServer.handler(src)) }()
	go func() { errs <- client.Serve(atClient.handler(src)) }()

	if err := client.WriteIKE(ikeMsg(1)); err != nil {
		t.Fatal(err)
	}
	if err := client.WriteKeepalive(); err != nil {
		t.Fatal(err)
	}
	batch := []conn.OutPacket{{B: espPkt(0xa, 100)}, {B: espPkt(0xb, 1400)}, {B: espPkt(0xc, 9000)}}
	if n, err := client.Send(batch); n != 3 || err != nil {
		t.Fatalf("Send = %d, %v", n, err)
	}
	atServer.wait(t, 4)
	if err := server.WriteIKE(ikeMsg(2)); err != nil {
		t.Fatal(err)
	}
	if n, err := server.Send(batch[:1]); n != 1 || err != nil {
		t.Fatalf("Send = %d, %v", n, err)
	}
	atClient.wait(t, 2)

	if len(atServer.ike) != 1 || !bytes.Equal(atServer.ike[0], ikeMsg(1)) {
		t.Fatalf("server got IKE %x", atServer.ike)
	}
	for i, p := range batch {
		if !bytes.Equal(atServer.esp[i], p.B) || atServer.src[i] != src {
			t.Fatalf("ESP %d: got %d bytes from %v", i, len(atServer.esp[i]), atServer.src[i])
		}
	}
	if len(atClient.ike) != 1 || !bytes.Equal(atClient.ike[0], ikeMsg(2)) || !bytes.Equal(atClient.esp[0], batch[0].B) {
		t.Fatalf("client got IKE %x ESP %d", atClient.ike, len(atClient.esp))
	}
	if st := server.Stats(); st.IKEIn != 1 || st.ESPIn != 3 || st.KeepalivesIn != 1 || st.ESPOut != 1 || st.IKEOut != 1 {
		t.Fatalf("server stats %+v", st)
	}

	client.Close()
	for range 2 {
		select {
		case err := <-errs:
			if err == nil {
				t.Fatal("Serve returned nil")
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Serve did not return after the client closed")
		}
	}
}

// oneByteConn delivers what was written one byte per Read, the worst a
// TCP peer (or a proxy) can do to the decoder.
type oneByteConn struct {
	net.Conn
	r io.Reader
}

func (c oneByteConn) Read(b []byte) (int, error) {
	if len(b) > 1 {
		b = b[:1]
	}
	return c.r.Read(b)
}

func TestStreamByteByByte(t *testing.T) {
	var wire []byte
	var msgs [][]byte
	for i := range 50 {
		var err error
		if i%7 == 0 {
			m := ikeMsg(byte(i))
			msgs = append(msgs, m)
			wire, err = AppendIKE(wire, m)
		} else {
			p := espPkt(uint32(i+1), 8+i*31)
			msgs = append(msgs, p)
			wire, err = AppendESP(wire, p)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	a, b := net.Pipe()
	defer a.Close()
	s := newStream(oneByteConn{Conn: b, r: bytes.NewReader(wire)})
	var got [][]byte
	err := s.Serve(Handler{
		IKE: func(m []byte) { got = append(got, bytes.Clone(m)) },
		ESP: func(batch []conn.ESPPacket) {
			for _, p := range batch {
				got = append(got, bytes.Clone(p.Bytes()))
			}
		},
	})
	if !errors.Is(err, io.EOF) {
		t.Fatalf("Serve = %v, want EOF", err)
	}
	if len(got) != len(msgs) {
		t.Fatalf("got %d messages, want %d", len(got), len(msgs))
	}
	for i := range msgs {
		if !bytes.Equal(got[i], msgs[i]) {
			t.Fatalf("message %d differs", i)
		}
	}
}

func TestServerRejectsWrongPrefix(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	go a.Write([]byte("GET / HTTP/1.1\r\n"))
	if _, err := Server(b, time.Second); !errors.Is(err, ErrNoPrefix) {
		t.Fatalf("Server = %v, want ErrNoPrefix", err)
	}
}

func TestServerPrefixTimeout(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	start := time.Now()
	if _, err := Server(b, 50*time.Millisecond); err == nil {
		t.Fatal("Server accepted a silent connection")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Server waited %v", d)
	}
}

func TestBadLengthEndsStream(t *testing.T) {
	a, b := net.Pipe()
	s := newStream(b)
	go func() {
		w, _ := AppendESP(nil, espPkt(9, 20))
		a.Write(append(w, 0, 1))
	}()
	n := 0
	err := s.Serve(Handler{ESP: func(batch []conn.ESPPacket) { n += len(batch) }})
	if !errors.Is(err, ErrBadLength) || n != 1 {
		t.Fatalf("Serve = %v after %d packets, want ErrBadLength after 1", err, n)
	}
	select {
	case <-s.Done():
	default:
		t.Fatal("stream not closed after a framing error")
	}
	a.Close()
}

func TestWriteFailsAfterClose(t *testing.T) {
	client, _ := pair(t)
	client.Close()
	if err := client.WriteIKE(ikeMsg(1)); err == nil {
		t.Fatal("WriteIKE on a closed stream succeeded")
	}
	if n, err := client.Send([]conn.OutPacket{{B: espPkt(1, 20)}}); n != 0 || err == nil {
		t.Fatalf("Send on a closed stream = %d, %v", n, err)
	}
}
