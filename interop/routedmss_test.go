package interop

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/internal/lab"
)

// mssPort is where host2 listens for the handshakes whose MSS the
// route-based MSS test reads.
const mssPort = 5201

// TestRoutedMSSClampAndReloadMTU: the provider's route-based shape with
// tcpmss=yes against strongSwan. host1 and host2 (MTU 1500, so both
// announce MSS 1460) open a TCP connection through ipsec100; a capture on
// each host reads the MSS the other end's SYN or SYN-ACK arrives with:
// the device MTU minus 40, in both directions. A reload that changes the
// ESP proposal changes the device's MTU (1438 for aes128gcm16, 1406 for
// aes256-sha512) and the clamp follows it; a reload to tcpmss=no is the
// negative control (1460 arrives).
func TestRoutedMSSClampAndReloadMTU(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test")
	}
	l := lab.New(t, lab.Options{Tools: []string{"tcpdump", "tshark", "iperf3"}})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := t.TempDir()
	script := filepath.Join(dir, "provider-updown.sh")
	if err := os.WriteFile(script, []byte(strings.ReplaceAll(providerUpdown, "%DIR%", dir)), 0o755); err != nil {
		t.Fatal(err)
	}
	_, c2 := siteConns(l, "aes128-sha256-modp2048", "aes128gcm16,aes256-sha512")
	c2.LocalTS, c2.RemoteTS = "0.0.0.0/0", "0.0.0.0/0"
	charon, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf(c2), Extra: "install_routes = no\n  routing_table = 0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("charon log excerpt:\n%s", strings.Join(charon.LogExcerpt(), "\n"))
		}
	})
	gw1, gw2 := l.GW1.Addr.String(), l.GW2.PublicAddr.String()
	conf := func(esp, tcpmss string) string {
		c := routedConf("s2s", "ikev2", gw1, gw2, gw1, gw2, 100, script+" 169.254.10.2/30 "+lab.LAN2.String())
		c = strings.Replace(c, "esp=aes128gcm16!", "esp="+esp+"!", 1)
		return "config setup\n  uniqueids=no\n\n" + c + "  tcpmss=" + tcpmss + "\n"
	}
	gw := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: conf("aes128gcm16", "yes"),
		Secrets: fmt.Sprintf("%s %s : PSK %q\n", gw1, gw2, testPSK)})
	if _, err := charon.WaitEstablished(ctx, "s2s", "net"); err != nil {
		t.Fatal(err)
	}
	if out, err := l.GW2.Run(ctx, "ip", "route", "add", lab.LAN1.String(), "dev", "ipsec0"); err != nil {
		t.Fatalf("route on strongSwan's side: %v %s", err, out)
	}
	for i, step := range []struct {
		esp, tcpmss string
		mtu         int
		want        string // MSS arriving at either end
	}{
		{"aes128gcm16", "yes", 1438, "1398"},
		{"aes256-sha512", "yes", 1406, "1366"},
		{"aes256-sha512", "no", 1406, "1460"},
	} {
		start := time.Now()
		if i > 0 {
			reloadGateway(ctx, t, gw, conf(step.esp, step.tcpmss))
		}
		waitChild(ctx, t, gw, step.esp)
		waitRoute(ctx, t, l.GW1, lab.LAN2.String(), "dev ipsec100")
		link, err := l.GW1.Run(ctx, "ip", "-o", "link", "show", "ipsec100")
		if err != nil || !strings.Contains(link, fmt.Sprintf("mtu %d ", step.mtu)) {
			t.Errorf("esp=%s: ipsec100 should have MTU %d: %v\n%s", step.esp, step.mtu, err, link)
		}
		syn, synAck := handshakeMSS(ctx, t, l)
		t.Logf("esp=%s tcpmss=%s: ipsec100 MTU %d; SYN from host1 (MSS 1460) arrives at host2 with MSS %s, "+
			"SYN-ACK from host2 (MSS 1460) arrives at host1 with MSS %s (%v with the reload)",
			step.esp, step.tcpmss, step.mtu, syn, synAck, time.Since(start).Round(time.Millisecond))
		if syn != step.want || synAck != step.want {
			t.Errorf("esp=%s tcpmss=%s: MSS arriving %s (SYN) and %s (SYN-ACK), want %s both ways",
				step.esp, step.tcpmss, syn, synAck, step.want)
		}
	}
}

// waitChild waits until s2s has a CHILD SA of proposal esp.
func waitChild(ctx context.Context, t *testing.T, gw *gateway, esp string) {
	t.Helper()
	for {
		st, err := gw.status(ctx, "s2s")
		if err == nil && st.State == control.StateEstablished && len(st.Children) == 1 && st.Children[0].Proposal == esp {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no CHILD SA with %s: %+v (%v)", esp, st, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// handshakeMSS opens a TCP connection from host1 to host2 through the
// tunnel, with a capture on each host, and returns the MSS option of the
// SYN as host2 received it and of the SYN-ACK as host1 received it.
func handshakeMSS(ctx context.Context, t *testing.T, l *lab.Lab) (syn, synAck string) {
	t.Helper()
	// A fresh listener each time: iperf3's server does not take a second
	// connection that left without speaking its protocol at once.
	server, err := l.Host2.StartIperfServer(ctx, mssPort)
	if err != nil {
		t.Fatal(err)
	}
	defer server.Stop()
	bpf := fmt.Sprintf("tcp port %d and tcp[tcpflags] & tcp-syn != 0", mssPort)
	c1, err := l.Host1.StartCapture(ctx, lab.IfHost, bpf)
	if err != nil {
		t.Fatal(err)
	}
	c2, err := l.Host2.StartCapture(ctx, lab.IfHost, bpf)
	if err != nil {
		t.Fatal(err)
	}
	connect := fmt.Sprintf("exec 3<>/dev/tcp/%s/%d", l.Host2.Addr, mssPort)
	out, err := l.Host1.Run(ctx, "timeout", "5", "bash", "-c", connect)
	for _, c := range []*lab.Capture{c1, c2} {
		if err := c.Stop(); err != nil {
			t.Fatal(err)
		}
	}
	if err != nil {
		t.Fatalf("TCP connection host1 → host2:%d: %v %s", mssPort, err, out)
	}
	read := func(c *lab.Capture, filter string) string {
		lines, err := c.Fields(ctx, filter, "tcp.options.mss_val")
		if err != nil || len(lines) != 1 {
			t.Fatalf("%s in %s: %q %v", filter, c.File, lines, err)
		}
		return strings.TrimSpace(lines[0])
	}
	return read(c2, "tcp.flags.syn == 1 && tcp.flags.ack == 0"), read(c1, "tcp.flags.syn == 1 && tcp.flags.ack == 1")
}
