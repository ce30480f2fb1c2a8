package daemon

import (
	"bytes"
	"encoding/binary"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/esp/conn"
	"github.com/ipsecgw/ipsecgw/esp/tcpencap"
)

// tcpEnd is one side of a transport test: what reached it.
type tcpEnd struct {
	t   *tcpTransport
	mu  sync.Mutex
	ike []tcpIKE
	esp [][]byte
	src []netip.AddrPort
	got chan struct{}
}

type tcpIKE struct {
	local, remote netip.AddrPort
	msg           []byte
}

func newTCPEnd(t *testing.T) *tcpEnd {
	e := &tcpEnd{got: make(chan struct{}, 1024)}
	e.t = newTCPTransport(0, 0, slog.New(slog.DiscardHandler),
		func(local, remote netip.AddrPort, pkt []byte) {
			e.mu.Lock()
			e.ike = append(e.ike, tcpIKE{local, remote, bytes.Clone(pkt)})
			e.mu.Unlock()
			e.got <- struct{}{}
		},
		func(batch []conn.ESPPacket) {
			e.mu.Lock()
			for _, p := range batch {
				e.esp = append(e.esp, bytes.Clone(p.Bytes()))
				e.src = append(e.src, p.Src)
			}
			e.mu.Unlock()
			for range batch {
				e.got <- struct{}{}
			}
		})
	e.t.noListen = false
	t.Cleanup(e.t.close)
	return e
}

func (e *tcpEnd) wait(t *testing.T, what string) {
	t.Helper()
	select {
	case <-e.got:
	case <-time.After(5 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func (e *tcpEnd) lastIKE() tcpIKE {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.ike[len(e.ike)-1]
}

// udpRecorder stands in for the UDP sockets.
type udpRecorder struct{ pkts []conn.OutPacket }

func (u *udpRecorder) Send(p []conn.OutPacket) (int, error) {
	u.pkts = append(u.pkts, p...)
	return len(p), nil
}

func tcpTestConfig(t *testing.T, body string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "ipsec.conf")
	secrets := filepath.Join(dir, "ipsec.secrets")
	os.WriteFile(conf, []byte("conn peer\n\tleft=127.0.0.1\n\tright=127.0.0.2\n\tleftsubnet=10.1.0.0/24\n\trightsubnet=10.2.0.0/24\n\tauthby=secret\n\tauto=add\n"+body), 0o644)
	os.WriteFile(secrets, []byte(`: PSK "test-secret-123456"`+"\n"), 0o600)
	cfg, diags, err := config.Load(config.Options{ConfPath: conf, SecretsPath: secrets})
	if cfg == nil || diags.HasErrors() {
		t.Fatalf("config: %v %v", err, diags)
	}
	return cfg
}

// initRequest is an IKEv2 IKE_SA_INIT request header (enough for the
// transport, which only looks at the header).
func initRequest() []byte {
	m := make([]byte, 28)
	binary.BigEndian.PutUint64(m, 0x1111)
	m[17], m[18], m[19] = 0x20, 34, 0x08
	binary.BigEndian.PutUint32(m[24:], 28)
	return m
}

func espTo(spi uint32, dst netip.AddrPort) conn.OutPacket {
	b := make([]byte, 64)
	binary.BigEndian.PutUint32(b, spi)
	return conn.OutPacket{B: b, Dst: dst, UDP: true}
}

// TestTCPTransportFallbackAndReconnect: a fallback peer uses UDP for its
// first IKE_SA_INIT, TCP for the retransmission; IKE and ESP then flow
// both ways over the stream, with the endpoints the design promises; a
// dropped stream is redialled by itself and traffic resumes.
func TestTCPTransportFallbackAndReconnect(t *testing.T) {
	resp := newTCPEnd(t)
	// The responder listens once a conn sets enable-tcp.
	if err := resp.t.configure(tcpTestConfig(t, "\tenable-tcp=yes\n")); err != nil {
		t.Fatal(err)
	}
	init := newTCPEnd(t)
	peer := netip.MustParseAddrPort("127.0.0.2:500")
	cfg := tcpTestConfig(t, "\tenable-tcp=fallback\n\ttcp-remoteport="+itoa(resp.t.port)+"\n")
	// The initiator's peer is 127.0.0.2 in the config; the responder
	// listens on all addresses of the loopback.
	if err := init.t.configure(cfg); err != nil {
		t.Fatal(err)
	}
	c, _ := cfg.Conn("peer")
	if st := init.t.status(c, netip.AddrPort{}); st.Transport != "udp" || !strings.Contains(st.Reason, "UDP first") {
		t.Fatalf("before any message: %+v", st)
	}
	if tcp, _ := init.t.sendIKE(peer, initRequest()); tcp {
		t.Fatal("first IKE_SA_INIT of a fallback conn went over TCP")
	}
	if tcp, err := init.t.sendIKE(peer, initRequest()); !tcp || err != nil {
		t.Fatalf("retransmitted IKE_SA_INIT: tcp=%v err=%v", tcp, err)
	}
	resp.wait(t, "IKE_SA_INIT over TCP")
	got := resp.lastIKE()
	if !bytes.Equal(got.msg, initRequest()) || got.local.Port() != resp.t.port || got.remote.Addr() != netip.MustParseAddr("127.0.0.2") && got.remote.Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Fatalf("responder got %+v", got)
	}
	if st := init.t.status(c, netip.AddrPort{}); st.Transport != "tcp" || st.State != "connected" || !strings.Contains(st.Reason, "no answer over UDP") {
		t.Fatalf("after fallback: %+v", st)
	}

	if st := resp.t.status(c, got.remote); st.Transport != "tcp" || st.State != "connected" {
		t.Fatalf("responder status %+v", st)
	}
	// The responder answers to the endpoint IKE reported.
	if tcp, err := resp.t.sendIKE(got.remote, []byte("reply-reply-reply-reply-reply")); !tcp || err != nil {
		t.Fatalf("responder reply: tcp=%v err=%v", tcp, err)
	}
	init.wait(t, "reply over TCP")
	if r := init.lastIKE(); r.remote != netip.MustParseAddrPort("127.0.0.2:4500") || r.local.Port() != 4500 {
		t.Fatalf("initiator sees the reply from %v at %v, want the peer's 4500 at our 4500", r.remote, r.local)
	}

	// ESP both ways, mixed with UDP traffic for another peer.
	other := netip.MustParseAddrPort("192.0.2.9:4500")
	iu, ru := &udpRecorder{}, &udpRecorder{}
	is, rs := &tcpSender{t: init.t, udp: iu}, &tcpSender{t: resp.t, udp: ru}
	if n, err := is.Send([]conn.OutPacket{espTo(0x100, netip.MustParseAddrPort("127.0.0.2:4500")), espTo(0x101, other)}); n != 2 || err != nil {
		t.Fatalf("initiator Send = %d, %v", n, err)
	}
	resp.wait(t, "ESP from the initiator")
	if len(iu.pkts) != 1 || iu.pkts[0].Dst != other {
		t.Fatalf("UDP got %+v, want only the packet for %v", iu.pkts, other)
	}
	if n, err := rs.Send([]conn.OutPacket{espTo(0x200, got.remote)}); n != 1 || err != nil {
		t.Fatalf("responder Send = %d, %v", n, err)
	}
	init.wait(t, "ESP from the responder")
	if init.src[0] != netip.MustParseAddrPort("127.0.0.2:4500") || binary.BigEndian.Uint32(init.esp[0]) != 0x200 {
		t.Fatalf("initiator got ESP %x from %v", init.esp[0][:4], init.src[0])
	}

	// Drop the stream at the responder: the initiator redials by itself.
	start := time.Now()
	resp.t.mu.Lock()
	for _, s := range resp.t.exact {
		s.Close()
	}
	resp.t.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for {
		st := init.t.status(c, netip.AddrPort{})
		if st.Reconnects == 1 && st.State == "connected" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no reconnect: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Logf("redialled in %v", time.Since(start).Round(time.Millisecond))
	// The responder's SA still names the old endpoint: the newest stream
	// from the peer's address carries it.
	for {
		if n, _ := rs.Send([]conn.OutPacket{espTo(0x201, got.remote)}); n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("responder cannot reach the initiator after the reconnect")
		}
		time.Sleep(10 * time.Millisecond)
	}
	init.wait(t, "ESP after the reconnect")
}

// TestTCPFallbackStaysOnUDP: a peer that answers over UDP keeps a
// fallback conn on UDP.
func TestTCPFallbackStaysOnUDP(t *testing.T) {
	e := newTCPEnd(t)
	e.t.noListen = true
	cfg := tcpTestConfig(t, "\tenable-tcp=fallback\n")
	if err := e.t.configure(cfg); err != nil {
		t.Fatal(err)
	}
	peer := netip.MustParseAddrPort("127.0.0.2:500")
	e.t.sendIKE(peer, initRequest())
	e.t.heardUDP(peer)
	if tcp, _ := e.t.sendIKE(peer, initRequest()); tcp {
		t.Fatal("a peer that answered over UDP was switched to TCP")
	}
	c, _ := cfg.Conn("peer")
	if st := e.t.status(c, netip.AddrPort{}); st.Transport != "udp" || !strings.Contains(st.Reason, "answers over UDP") {
		t.Fatalf("status %+v", st)
	}
}

func TestIsInitRequest(t *testing.T) {
	if !isInitRequest(initRequest()) {
		t.Fatal("IKE_SA_INIT request not recognised")
	}
	resp := initRequest()
	resp[19] |= 0x20
	if isInitRequest(resp) {
		t.Fatal("IKE_SA_INIT response taken for a request")
	}
	v1 := initRequest()
	v1[17], v1[18] = 0x10, 2
	if !isInitRequest(v1) {
		t.Fatal("IKEv1 main mode 1 not recognised")
	}
	binary.BigEndian.PutUint64(v1[8:], 7)
	if isInitRequest(v1) {
		t.Fatal("IKEv1 message with a responder cookie taken for a first message")
	}
}

// TestTCPSenderNoAlloc: the ESP path through the TCP transport stays at 0
// allocations per batch, with and without TCP peers.
func TestTCPSenderNoAlloc(t *testing.T) {
	e := newTCPEnd(t)
	e.t.noListen = true
	s := &tcpSender{t: e.t, udp: &nopSender{}}
	batch := []conn.OutPacket{espTo(1, netip.MustParseAddrPort("192.0.2.1:4500")), espTo(2, netip.MustParseAddrPort("192.0.2.2:4500"))}
	if a := testing.AllocsPerRun(100, func() { s.Send(batch) }); a != 0 {
		t.Fatalf("%.1f allocations per batch without TCP peers", a)
	}
	if err := e.t.configure(tcpTestConfig(t, "\tenable-tcp=yes\n")); err != nil {
		t.Fatal(err)
	}
	batch = append(batch, espTo(3, netip.MustParseAddrPort("127.0.0.2:4500"))) // a TCP peer whose stream is down
	if a := testing.AllocsPerRun(100, func() { s.Send(batch) }); a != 0 {
		t.Fatalf("%.1f allocations per batch with a TCP peer", a)
	}
}

type nopSender struct{}

func (nopSender) Send(p []conn.OutPacket) (int, error) { return len(p), nil }

func itoa(n uint16) string { return strconv.Itoa(int(n)) }

// TestKeepStreamAlive: an idle stream gets keepalive frames, which the
// peer drops (counts), and a busy one none.
func TestKeepStreamAlive(t *testing.T) {
	a, b := net.Pipe()
	clientc := make(chan *tcpencap.Stream, 1)
	go func() {
		c, err := tcpencap.Client(a)
		if err != nil {
			t.Error(err)
		}
		clientc <- c
	}()
	server, err := tcpencap.Server(b, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	client := <-clientc
	if client == nil {
		t.FailNow()
	}
	defer client.Close()
	go server.Serve(tcpencap.Handler{})
	done := make(chan struct{})
	go keepStreamAlive(client, 20*time.Millisecond, done)
	deadline := time.Now().Add(5 * time.Second)
	for server.Stats().KeepalivesIn < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("keepalives received: %d", server.Stats().KeepalivesIn)
		}
		time.Sleep(5 * time.Millisecond)
	}
	close(done)
}

// TestTCPTransportTLS: with tcp.tls the initiator's stream runs in TLS
// and the responder's listener (which takes both) accepts it.
func TestTCPTransportTLS(t *testing.T) {
	resp := newTCPEnd(t)
	if err := resp.t.configure(tcpTestConfig(t, "\tenable-tcp=yes\n")); err != nil {
		t.Fatal(err)
	}
	init := newTCPEnd(t)
	init.t.dialer = &tcpencap.TLSDialer{Forward: init.t.dialer}
	init.t.tlsDial = true
	cfg := tcpTestConfig(t, "\tenable-tcp=yes\n\ttcp-remoteport="+itoa(resp.t.port)+"\n")
	if err := init.t.configure(cfg); err != nil {
		t.Fatal(err)
	}
	peer := netip.MustParseAddrPort("127.0.0.2:500")
	if tcp, err := init.t.sendIKE(peer, initRequest()); !tcp || err != nil {
		t.Fatalf("IKE_SA_INIT: tcp=%v err=%v", tcp, err)
	}
	resp.wait(t, "IKE_SA_INIT over TLS")
	is := &tcpSender{t: init.t, udp: &udpRecorder{}}
	for {
		if n, _ := is.Send([]conn.OutPacket{espTo(0x300, netip.MustParseAddrPort("127.0.0.2:4500"))}); n == 1 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp.wait(t, "ESP over TLS")
	c, _ := cfg.Conn("peer")
	if st := init.t.status(c, netip.AddrPort{}); !st.TLS || st.State != "connected" {
		t.Fatalf("status %+v", st)
	}
}
