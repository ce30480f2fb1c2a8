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

// BGP over the two route-based tunnels: BIRD on ipsecgw's gateway and on
// each provider endpoint, one session per tunnel over its inside /30
// (169.254.10.0/30 on tunnel 1, 169.254.20.0/30 on tunnel 2). The
// endpoints announce 10.2.0.0/24, gw3 with a longer AS path, so tunnel 1
// is preferred; gw1 announces 10.1.0.0/24. BGP timers are short (hold 3 s)
// so that a dead endpoint is withdrawn before DPD notices it.

// birdConf is a BIRD 2 configuration: announce the LAN (interface
// "lan"), install what BGP learns in the kernel, one BGP session per
// neighbor (local address, neighbor address, neighbor AS).
func birdConf(routerID string, as int, prepend bool, sessions [][3]string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "router id %s;\nprotocol device { scan time 1; }\n", routerID)
	b.WriteString("protocol direct { ipv4; interface \"lan\"; }\n")
	b.WriteString("protocol kernel { ipv4 { import none; export where source = RTS_BGP; }; }\n")
	export := "export where source = RTS_DEVICE;"
	if prepend {
		export = fmt.Sprintf("export filter { if source = RTS_DEVICE then { bgp_path.prepend(%d); bgp_path.prepend(%d); accept; } reject; };", as, as)
	}
	for i, s := range sessions {
		fmt.Fprintf(&b, `protocol bgp tunnel%d {
  local %s as %d;
  neighbor %s as %s;
  hold time 3; keepalive time 1; connect retry time 1; error wait time 1, 2;
  ipv4 { import all; %s };
}
`, i+1, s[0], as, s[1], s[2], export)
	}
	return b.String()
}

// startBird runs BIRD in node's namespace with conf and returns its
// control socket.
func startBird(t *testing.T, node *lab.Node, dir, name, conf string) string {
	t.Helper()
	cfgPath := filepath.Join(dir, name+".conf")
	sock := filepath.Join(dir, name+".ctl")
	if err := os.WriteFile(cfgPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := node.Start("bird", "bird", "-f", "-c", cfgPath, "-s", sock, "-P", filepath.Join(dir, name+".pid")); err != nil {
		t.Fatal(err)
	}
	return sock
}

// addrOnTunnel puts addr on the provider endpoint's ipsec0 once charon
// made it (again).
func addrOnTunnel(ctx context.Context, t *testing.T, node *lab.Node, addr string) {
	t.Helper()
	for {
		out, err := node.Run(ctx, "ip", "addr", "replace", addr, "dev", "ipsec0")
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("address on %s's ipsec0: %v %s", node.Role, err, out)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TestBGPFailover: both tunnels up, BGP over both; traffic follows the
// BGP-preferred tunnel 1. Its endpoint is SIGKILLed under a ~100 pps
// ping: its BGP session times out (hold 3 s), the route is withdrawn and
// traffic continues through tunnel 2; when the endpoint returns, the
// tunnel, its session and the preferred route come back.
func TestBGPFailover(t *testing.T) {
	l := lab.New(t, lab.Options{SecondPeer: true, Tools: []string{"bird", "birdc"}})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := t.TempDir()
	script := filepath.Join(dir, "updown.sh")
	body := `#!/bin/sh
case "$PLUTO_VERB" in
up-client) ip addr replace "$1" dev "$PLUTO_INTERFACE" ;;
down-client) ip addr del "$1" dev "$PLUTO_INTERFACE" || true ;;
esac
`
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	gw2 := providerCharon(ctx, t, l, l.GW2, "gw2", 2)
	providerCharon(ctx, t, l, l.GW3, "gw3", 2)
	gw1 := l.GW1.Addr.String()
	conf := "config setup\n  uniqueids=no\n\n" +
		routedConf("tunnel1", "ikev2", gw1, l.GW2.Addr.String(), gw1, l.GW2.Addr.String(), 100, script+" 169.254.10.2/30") + "\n" +
		routedConf("tunnel2", "ikev2", gw1, l.GW3.Addr.String(), gw1, l.GW3.Addr.String(), 200, script+" 169.254.20.2/30")
	secrets := fmt.Sprintf("%s %s : PSK %q\n%s %s : PSK %q\n", gw1, l.GW2.Addr, testPSK, gw1, l.GW3.Addr, testPSK)
	gw := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: conf, Secrets: secrets, Settings: failoverSettings, LogLevel: "info"})
	for _, name := range []string{"tunnel1", "tunnel2"} {
		if _, err := gw.waitState(ctx, name, control.StateEstablished); err != nil {
			t.Fatal(err)
		}
	}
	addrOnTunnel(ctx, t, l.GW2, "169.254.10.1/30")
	addrOnTunnel(ctx, t, l.GW3, "169.254.20.1/30")
	startBird(t, l.GW1, dir, "gw1", birdConf(gw1, 65000, false, [][3]string{
		{"169.254.10.2", "169.254.10.1", "64512"}, {"169.254.20.2", "169.254.20.1", "64512"}}))
	startBird(t, l.GW2, dir, "gw2", birdConf(l.GW2.Addr.String(), 64512, false, [][3]string{{"169.254.10.1", "169.254.10.2", "65000"}}))
	startBird(t, l.GW3, dir, "gw3", birdConf(l.GW3.Addr.String(), 64512, true, [][3]string{{"169.254.20.1", "169.254.20.2", "65000"}}))
	start := time.Now()
	waitRoute(ctx, t, l.GW1, lab.LAN2.String(), "via 169.254.10.1 dev ipsec100")
	waitRoute(ctx, t, l.GW2, lab.LAN1.String(), "dev ipsec0")
	waitRoute(ctx, t, l.GW3, lab.LAN1.String(), "dev ipsec0")
	t.Logf("BGP routes over both tunnels after %v", time.Since(start).Round(time.Millisecond))
	if _, err := l.Host1.Ping(ctx, l.Host2.Addr, 2); err != nil {
		t.Fatalf("ping over the BGP route through tunnel 1: %v", err)
	}
	measureFailover(ctx, t, l, gw, gw2, "tunnel1", func() {
		providerCharon(ctx, t, l, l.GW2, "gw2b", 2)
		addrOnTunnel(ctx, t, l.GW2, "169.254.10.1/30")
	}, func() {
		waitRoute(ctx, t, l.GW1, lab.LAN2.String(), "via 169.254.10.1 dev ipsec100")
	})
}
