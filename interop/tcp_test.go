package interop

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/internal/lab"
)

// IKE and ESP over TCP (RFC 9329) between two ipsecgw daemons.

// blockUDP makes the lab's NAT router a firewall that forwards TCP only:
// UDP (IKE on 500/4500, ESP in UDP) and raw ESP are dropped, as in the
// networks enable-tcp is for.
func blockUDP(ctx context.Context, t *testing.T, l *lab.Lab) {
	t.Helper()
	for _, cmd := range []string{
		"add table inet tcponly",
		"add chain inet tcponly gate { type filter hook forward priority 0 ; policy accept ; }",
		"add rule inet tcponly gate meta l4proto { udp, esp } counter drop",
	} {
		if out, err := l.NATRouter.Run(ctx, "nft", cmd); err != nil {
			t.Fatalf("nft %s: %v %s", cmd, err, out)
		}
	}
}

// tcpPair returns the conns of gw1 (initiator, behind the firewall, with
// extra keywords) and gw2 (responder for any address, enable-tcp=yes so
// that it accepts streams).
func tcpPair(l *lab.Lab, extra1 string) (gw1, gw2 gatewayFiles) {
	c1, c2 := siteConns(l, "aes128gcm16-prfsha256-ecp256", "aes128gcm16")
	c1.StartAction = "start"
	c2.RemoteAddr = "%any"
	return gatewayFiles{Conf: c1.IPsecConf() + extra1, Secrets: c1.IPsecSecrets()},
		gatewayFiles{Conf: c2.IPsecConf() + "  enable-tcp=yes\n", Secrets: c2.IPsecSecrets()}
}

// TestTCPEncapThroughUDPFirewall: with every UDP packet and raw ESP
// dropped between the gateways, enable-tcp=yes brings the tunnel up over
// TCP port 4500 and carries pings both ways; tshark dissects the IKE and
// ESP in the stream. Then gw1 restarts with enable-tcp=fallback: its
// IKE_SA_INIT over UDP goes unanswered, the retransmission goes over TCP,
// and status says so. Last, the stream runs in TLS (tcp.tls).
func TestTCPEncapThroughUDPFirewall(t *testing.T) {
	l := lab.New(t, lab.Options{NAT: true, Tools: []string{"tshark", "nft"}})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	blockUDP(ctx, t, l)
	f1, f2 := tcpPair(l, "  enable-tcp=yes\n")
	startGateway(ctx, t, l.GW2, f2)
	capt := captureWhole(ctx, t, l.GW2, "tcp port 4500")
	gw1 := startGateway(ctx, t, l.GW1, f1)
	start := time.Now()
	st, err := gw1.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("enable-tcp=yes: established over TCP in %v", time.Since(start).Round(time.Millisecond))
	if st.TCP == nil || st.TCP.Transport != "tcp" || st.TCP.State != "connected" || st.TCP.Reason != "enable-tcp=yes" {
		t.Fatalf("status does not show the TCP transport: %+v", st.TCP)
	}
	pingBothWays(ctx, t, l, 3)
	if err := capt.Proc.Stop(syscall.SIGINT, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	// tshark (its ISAKMP and ESP dissectors, fed by interop/testdata/
	// rfc9329.lua) finds the IKE exchanges and the ESP of both CHILD SA
	// directions inside the TCP stream.
	ch := st.Children[0]
	for _, filter := range []string{
		"rfc9329.kind == \"stream prefix\"",
		"isakmp.exchangetype == 34", // IKE_SA_INIT
		"isakmp.exchangetype == 35", // IKE_AUTH
		"esp.spi == 0x" + ch.SPIIn,
		"esp.spi == 0x" + ch.SPIOut,
	} {
		if n, err := countRFC9329(ctx, capt.File, filter); err != nil || n == 0 {
			t.Errorf("tshark finds %d packets matching %q in the TCP stream on gw2's uplink (%v)", n, filter, err)
		}
	}
	if n, err := countRFC9329(ctx, capt.File, "udp || esp && !tcp"); err != nil || n != 0 {
		t.Errorf("%d UDP or plain ESP packets in a capture of TCP port 4500 (%v)", n, err)
	}

	// The same tunnel with enable-tcp=fallback: UDP first, TCP after the
	// first IKE_SA_INIT timed out (retransmit.timeout 4 s by default;
	// 1 s here to keep the test short).
	if err := gw1.Stop(); err != nil {
		t.Fatal(err)
	}
	f1.Conf = strings.Replace(f1.Conf, "enable-tcp=yes", "enable-tcp=fallback", 1)
	f1.Settings = "retransmit:\n  timeout: 1s\n"
	gw1 = startGateway(ctx, t, l.GW1, f1)
	start = time.Now()
	st, err = gw1.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("enable-tcp=fallback: established over TCP %v after the start", time.Since(start).Round(time.Millisecond))
	if st.TCP == nil || st.TCP.Transport != "tcp" || !strings.Contains(st.TCP.Reason, "no answer over UDP") {
		t.Fatalf("status does not show the fallback: %+v", st.TCP)
	}
	pingBothWays(ctx, t, l, 3)

	// The stream in TLS (tcp.tls, RFC 9329 §8): nothing of RFC 9329's
	// framing shows on the wire, tshark sees a TLS session on port 4500.
	if err := gw1.Stop(); err != nil {
		t.Fatal(err)
	}
	f1.Conf = strings.Replace(f1.Conf, "enable-tcp=fallback", "enable-tcp=yes", 1)
	f1.Settings = "tcp:\n  tls: true\n"
	capt = captureWhole(ctx, t, l.GW2, "tcp port 4500")
	gw1 = startGateway(ctx, t, l.GW1, f1)
	start = time.Now()
	if st, err = gw1.waitState(ctx, "s2s", control.StateEstablished); err != nil {
		t.Fatal(err)
	}
	t.Logf("tcp.tls: established over TLS in %v", time.Since(start).Round(time.Millisecond))
	if st.TCP == nil || !st.TCP.TLS || st.TCP.State != "connected" {
		t.Fatalf("status does not show the stream in TLS: %+v", st.TCP)
	}
	pingBothWays(ctx, t, l, 3)
	if err := capt.Proc.Stop(syscall.SIGINT, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	for filter, want := range map[string]bool{
		"rfc9329.kind":                           false, // no framing in clear
		"tcp.payload contains 49:4b:45:54:43:50": false, // "IKETCP"
	} {
		if n, err := countRFC9329(ctx, capt.File, filter); err != nil || (n > 0) != want {
			t.Errorf("%d packets match %q in a capture of the stream in TLS (%v)", n, filter, err)
		}
	}
	out, err := exec.CommandContext(ctx, "tshark", "-n", "-d", "tcp.port==4500,tls", "-r", capt.File,
		"-Y", "tls.handshake.type == 1 || tls.app_data", "-T", "fields", "-e", "frame.number").Output()
	if err != nil || len(strings.Fields(string(out))) < 4 {
		t.Errorf("tshark finds %d TLS ClientHello/application data records on port 4500 (%v)", len(strings.Fields(string(out))), err)
	}
}

// captureWhole captures whole packets (lab.StartCapture keeps 256 bytes,
// too few for IKE_SA_INIT in a TCP segment) on a node's underlay.
func captureWhole(ctx context.Context, t *testing.T, n *lab.Node, bpf string) *lab.Capture {
	t.Helper()
	file := filepath.Join(n.Lab.Dir, n.Role+"-tcp4500.pcap")
	p, err := n.Start("tcpdump-whole", "tcpdump", "-i", lab.IfUnderlay, "-n", "-U", "--immediate-mode", "-s", "0", "-w", file, bpf)
	if err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(p.Output(), "listening on") {
		select {
		case <-p.Done():
			t.Fatalf("tcpdump exited: %s", p.Output())
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
	return &lab.Capture{Node: n, Iface: lab.IfUnderlay, File: file, Proc: p}
}

// countRFC9329 counts the packets of a capture that match a display
// filter, with the RFC 9329 dissector of testdata loaded.
func countRFC9329(ctx context.Context, file, filter string) (int, error) {
	script, err := filepath.Abs("testdata/rfc9329.lua")
	if err != nil {
		return 0, err
	}
	out, err := exec.CommandContext(ctx, "tshark", "-n", "-X", "lua_script:"+script, "-r", file, "-Y", filter, "-T", "fields", "-e", "frame.number").Output()
	if err != nil {
		return 0, fmt.Errorf("tshark -Y %q: %w", filter, err)
	}
	return len(strings.Fields(string(out))), nil
}

// Proxy passwords are at least 8 bytes, so that the lab's secret-leak
// check (which also covers tcp.proxy credentials) looks for them.
const (
	proxyUser     = "alice"
	proxyPassword = "proxy-pass-123"
	proxyHTTPPort = 8888
	proxyOpenPort = 8889
	proxySOCKS    = 1080
)

// blockForwarding makes the lab's NAT router forward nothing: gw1 reaches
// gw2 only through the proxies running on the router itself.
func blockForwarding(ctx context.Context, t *testing.T, l *lab.Lab) {
	t.Helper()
	for _, cmd := range []string{
		"add table inet proxyonly",
		"add chain inet proxyonly gate { type filter hook forward priority 0 ; policy drop ; }",
	} {
		if out, err := l.NATRouter.Run(ctx, "nft", cmd); err != nil {
			t.Fatalf("nft %s: %v %s", cmd, err, out)
		}
	}
}

// startTinyproxy runs tinyproxy on the router's inside address, with Basic
// credentials when auth is set, and returns once it listens.
func startTinyproxy(ctx context.Context, t *testing.T, l *lab.Lab, port int, auth bool) *lab.Process {
	t.Helper()
	conf := fmt.Sprintf("Port %d\nListen %s\nTimeout 600\nAllow %s/24\nConnectPort 4500\nLogLevel Info\nMaxClients 20\n",
		port, lab.NATInside, lab.NATInside)
	if auth {
		conf += fmt.Sprintf("BasicAuth %s %s\n", proxyUser, proxyPassword)
	}
	file := filepath.Join(l.Dir, fmt.Sprintf("tinyproxy-%d.conf", port))
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return startDaemon(ctx, t, l.NATRouter, "tinyproxy", "Accepting connections", "tinyproxy", "-d", "-c", file)
}

// startDante runs dante's SOCKS5 server (no authentication: dante checks
// user names against the system's accounts) on the router.
func startDante(ctx context.Context, t *testing.T, l *lab.Lab) *lab.Process {
	t.Helper()
	conf := fmt.Sprintf(`logoutput: stderr
internal: %s port = %d
external: %s
socksmethod: none
clientmethod: none
user.privileged: root
user.unprivileged: nobody
client pass { from: %s/24 to: 0.0.0.0/0 }
socks pass { from: %s/24 to: 0.0.0.0/0 command: connect }
`, lab.NATInside, proxySOCKS, lab.GW1Public, lab.NATInside, lab.NATInside)
	file := filepath.Join(l.Dir, "danted.conf")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	return startDaemon(ctx, t, l.NATRouter, "danted", "running", "danted", "-f", file, "-N", "1")
}

// startDaemon starts argv in node and waits for ready in its output.
func startDaemon(ctx context.Context, t *testing.T, n *lab.Node, name, ready string, argv ...string) *lab.Process {
	t.Helper()
	p, err := n.Start(name, argv...)
	if err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(p.Output(), ready) {
		select {
		case <-p.Done():
			t.Fatalf("%s exited: %s", name, p.Output())
		case <-ctx.Done():
			t.Fatalf("%s not ready: %s", name, p.Output())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Cleanup(func() { _ = p.Stop(syscall.SIGTERM, 2*time.Second) })
	return p
}

// TestTCPProxy: gw1 can reach gw2 only through proxies on the router.
// Through tinyproxy with Basic credentials (from the settings; never in
// the log: the lab's secret-leak check looks for them) the tunnel comes up
// and carries pings; tinyproxy is killed and started again, and the
// tunnel returns by itself with the same IKE and CHILD SAs (RFC 9329 §6).
// Then the same through tinyproxy without credentials and through dante's
// SOCKS5 server.
func TestTCPProxy(t *testing.T) {
	l := lab.New(t, lab.Options{NAT: true, Tools: []string{"nft", "tinyproxy", "danted"}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	blockForwarding(ctx, t, l)
	proxy := startTinyproxy(ctx, t, l, proxyHTTPPort, true)
	f1, f2 := tcpPair(l, "  enable-tcp=yes\n  dpddelay=2s\n")
	startGateway(ctx, t, l.GW2, f2)
	viaProxy := func(url string) gatewayFiles {
		f := f1
		f.Settings = "tcp:\n  proxy: " + url + "\n"
		return f
	}
	httpURL := fmt.Sprintf("http://%s:%s@%s:%d", proxyUser, proxyPassword, lab.NATInside, proxyHTTPPort)
	gw1 := startGateway(ctx, t, l.GW1, viaProxy(httpURL))
	before, err := gw1.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	if before.TCP == nil || before.TCP.Via != fmt.Sprintf("%s:%d", lab.NATInside, proxyHTTPPort) {
		t.Fatalf("the stream does not go through the proxy: %+v", before.TCP)
	}
	pingBothWays(ctx, t, l, 2)

	// The proxy dies and comes back: gw1 redials by itself.
	if err := proxy.Stop(syscall.SIGKILL, time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	restarted := time.Now()
	startTinyproxy(ctx, t, l, proxyHTTPPort, true)
	var after control.ConnStatus
	for {
		after, err = gw1.status(ctx, "s2s")
		if err == nil && after.TCP != nil && after.TCP.Reconnects >= 1 && after.TCP.State == "connected" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no reconnect through the restarted proxy: %+v", after.TCP)
		case <-time.After(20 * time.Millisecond):
		}
	}
	reconnect := time.Since(restarted)
	if _, err := l.Host1.Ping(ctx, l.Host2.Addr, 1); err != nil {
		t.Fatalf("no traffic after the reconnect: %v", err)
	}
	t.Logf("proxy restarted: stream redialled in %v, first ping through after %v",
		reconnect.Round(time.Millisecond), time.Since(restarted).Round(time.Millisecond))
	if after.IKE == nil || after.IKE.InitiatorSPI != before.IKE.InitiatorSPI || len(after.Children) != 1 ||
		after.Children[0].SPIIn != before.Children[0].SPIIn {
		t.Fatalf("the IKE or CHILD SA changed over the reconnect: before %+v %+v, after %+v %+v", before.IKE, before.Children, after.IKE, after.Children)
	}
	pingBothWays(ctx, t, l, 2)

	for _, url := range []string{
		fmt.Sprintf("http://%s:%d", lab.NATInside, proxyOpenPort),
		fmt.Sprintf("socks5://%s:%d", lab.NATInside, proxySOCKS),
	} {
		if strings.HasPrefix(url, "http") {
			startTinyproxy(ctx, t, l, proxyOpenPort, false)
		} else {
			startDante(ctx, t, l)
		}
		if err := gw1.Stop(); err != nil {
			t.Fatal(err)
		}
		gw1 = startGateway(ctx, t, l.GW1, viaProxy(url))
		st, err := gw1.waitState(ctx, "s2s", control.StateEstablished)
		if err != nil {
			t.Fatalf("through %s: %v", url, err)
		}
		if st.TCP == nil || !strings.HasSuffix(url, st.TCP.Via) {
			t.Fatalf("through %s: status %+v", url, st.TCP)
		}
		pingBothWays(ctx, t, l, 2)
	}
}

// TestTCPThroughput measures iperf3 (one TCP stream, 3 s) host1 → host2
// through a tunnel between two ipsecgw daemons over TCP (enable-tcp=yes)
// and then, in the same lab, over UDP (ESP in UDP 4500, the default
// between two ipsecgw), and logs both. TCP costs: the inner TCP flow rides
// on an outer TCP stream (two congestion controls, head-of-line blocking
// on loss), every ESP packet is copied into one write per batch, and the
// receiver re-frames a byte stream; the outer stream gets the kernel's
// TSO/GRO, which keeps the gap small in the lossless lab.
func TestTCPThroughput(t *testing.T) {
	l := lab.New(t, lab.Options{Tools: []string{"iperf3"}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f1, f2 := tcpPair(l, "")
	startGateway(ctx, t, l.GW2, gatewayFiles{Conf: f2.Conf, Secrets: f2.Secrets, LogLevel: "info"})
	measure := func(extra string) float64 {
		t.Helper()
		gw1 := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: f1.Conf + extra, Secrets: f1.Secrets, LogLevel: "info"})
		if _, err := gw1.waitState(ctx, "s2s", control.StateEstablished); err != nil {
			t.Fatal(err)
		}
		srv, err := l.Host2.StartIperfServer(ctx, 5201)
		if err != nil {
			t.Fatal(err)
		}
		res, err := l.Host1.Iperf(ctx, l.Host2.Addr, srv.Port, 3*time.Second, 1)
		srv.Stop()
		if err != nil {
			t.Fatal(err)
		}
		if err := gw1.Stop(); err != nil {
			t.Fatal(err)
		}
		return res.ReceivedBitsPerSecond / 1e6
	}
	tcp := measure("  enable-tcp=yes\n")
	udp := measure("")
	t.Logf("iperf3 1 stream through the tunnel: %.0f Mbit/s over TCP (RFC 9329), %.0f Mbit/s over UDP: TCP at %.0f%% of UDP", tcp, udp, 100*tcp/udp)
	if tcp <= 0 || udp <= 0 {
		t.Fatalf("no throughput: TCP %.1f, UDP %.1f Mbit/s", tcp, udp)
	}
}
