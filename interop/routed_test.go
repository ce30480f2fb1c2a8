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

// providerUpdown is a provider-style updown script (the shape cloud
// providers hand out for strongSwan, minus the VTI creation ipsecgw does
// not need): on up it puts the tunnel's inside address on
// PLUTO_INTERFACE and routes the far LAN into it; on down it takes both
// away. It also records its environment in DIR/<verb>.
const providerUpdown = `#!/bin/sh
set -e
env | grep -E '^PLUTO_' | sort > "%DIR%/$PLUTO_VERB"
case "$PLUTO_VERB" in
up-client)
	ip addr add "$1" dev "$PLUTO_INTERFACE"
	ip route add "$2" dev "$PLUTO_INTERFACE"
	;;
down-client)
	ip route del "$2" dev "$PLUTO_INTERFACE" || true
	ip addr del "$1" dev "$PLUTO_INTERFACE" || true
	;;
esac
`

// routedConf is one conn of the provider's template: 0.0.0.0/0 both
// ways, a mark that makes it route-based, the updown script.
func routedConf(name, version string, local, remote, localID, remoteID string, mark int, updown string) string {
	return fmt.Sprintf(`conn %s
  keyexchange=%s
  authby=secret
  left=%s
  leftid=%s
  leftsubnet=0.0.0.0/0
  right=%s
  rightid=%s
  rightsubnet=0.0.0.0/0
  ike=aes128-sha256-modp2048!
  esp=aes128gcm16!
  mark=%d
  leftupdown="%s"
  dpddelay=2s
  dpdtimeout=6s
  dpdaction=restart
  closeaction=restart
  keyingtries=%%forever
  auto=start
`, name, version, local, localID, remote, remoteID, mark, updown)
}

// TestRoutedProviderShape: the provider's route-based template against a
// strongSwan endpoint that, like the provider's, routes into its own
// tunnel interface (kernel-libipsec with install_routes = no and routing_table = 0, a route
// into ipsec0): ipsecgw creates device ipsec100 for mark=100 with an MTU
// derived from the underlay, the updown script puts the inside /30 and
// the route on it through PLUTO_INTERFACE, hosts ping through it, and
// the main TUN carries none of it. IKEv2 and IKEv1.
func TestRoutedProviderShape(t *testing.T) {
	for _, version := range []string{"ikev2", "ikev1"} {
		t.Run(version, func(t *testing.T) { testRoutedProviderShape(t, version) })
	}
}

func testRoutedProviderShape(t *testing.T, version string) {
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	script := filepath.Join(dir, "provider-updown.sh")
	if err := os.WriteFile(script, []byte(strings.ReplaceAll(providerUpdown, "%DIR%", dir)), 0o755); err != nil {
		t.Fatal(err)
	}
	v := 2
	if version == "ikev1" {
		v = 1
	}
	_, c2 := siteConns(l, "aes128-sha256-modp2048", "aes128gcm16")
	c2.Version, c2.LocalTS, c2.RemoteTS = v, "0.0.0.0/0", "0.0.0.0/0"
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
	conf := "config setup\n  uniqueids=no\n\n" + routedConf("s2s", version, gw1, gw2, gw1, gw2, 100, script+" 169.254.10.2/30 "+lab.LAN2.String())
	gw := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: conf, Secrets: fmt.Sprintf("%s %s : PSK %q\n", gw1, gw2, testPSK)})
	st, err := gw.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := charon.WaitEstablished(ctx, "s2s", "net"); err != nil {
		t.Fatal(err)
	}
	if len(st.Children) != 1 || strings.Join(st.Children[0].LocalTS, ",") != "0.0.0.0/0" || strings.Join(st.Children[0].RemoteTS, ",") != "0.0.0.0/0" {
		t.Errorf("CHILD SA: %+v", st.Children)
	}
	// The provider side routes into its tunnel interface, as into a VTI.
	if out, err := l.GW2.Run(ctx, "ip", "route", "add", lab.LAN1.String(), "dev", "ipsec0"); err != nil {
		t.Fatalf("route on strongSwan's side: %v %s", err, out)
	}

	waitFile(ctx, t, filepath.Join(dir, "up-client"))
	env := readEnvFile(t, filepath.Join(dir, "up-client"))
	for k, want := range map[string]string{"PLUTO_INTERFACE": "ipsec100", "PLUTO_MARK_IN": "100/0xffffffff", "PLUTO_MARK_OUT": "100/0xffffffff",
		"PLUTO_MY_CLIENT": "0.0.0.0/0", "PLUTO_PEER_CLIENT": "0.0.0.0/0"} {
		if env[k] != want {
			t.Errorf("%s = %q, want %q", k, env[k], want)
		}
	}
	link, err := l.GW1.Run(ctx, "ip", "-o", "link", "show", "ipsec100")
	if err != nil {
		t.Fatalf("device ipsec100: %v %s", err, link)
	}
	// 1500 (veth) − outer IPv4 20, UDP 8, ESP 8, IV 8, ICV 16, aligned,
	// − 2 trailer bytes: AES-GCM's 1438.
	if !strings.Contains(link, "mtu 1438 ") {
		t.Errorf("ipsec100: want mtu 1438 for aes128gcm16 over a 1500-byte underlay:\n%s", link)
	}
	for _, want := range []string{"169.254.10.2/30"} {
		if out, _ := l.GW1.Run(ctx, "ip", "-o", "addr", "show", "dev", "ipsec100"); !strings.Contains(out, want) {
			t.Errorf("ipsec100 lacks the updown script's %s:\n%s", want, out)
		}
	}
	waitRoute(ctx, t, l.GW1, lab.LAN2.String(), "dev ipsec100")
	if out, _ := l.GW1.Run(ctx, "ip", "route", "show", "dev", tunName); strings.Contains(out, "0.0.0.0") || strings.Contains(out, "default") {
		t.Errorf("the main TUN got a route for the route-based conn:\n%s", out)
	}
	res, err := l.Host1.Ping(ctx, l.Host2.Addr, 5)
	if err != nil {
		out, _ := l.Host1.Run(ctx, "ping", "-n", "-c", "2", "-W", "1", l.Host2.Addr.String())
		stats, _ := gw.cli(ctx, "stats")
		gw1Links, _ := l.GW1.Run(ctx, "ip", "-s", "link")
		gw1Routes, _ := l.GW1.Run(ctx, "ip", "route")
		gw2Links, _ := l.GW2.Run(ctx, "ip", "-s", "link")
		gw2Routes, _ := l.GW2.Run(ctx, "ip", "route", "show", "table", "all")
		gw2Rules, _ := l.GW2.Run(ctx, "ip", "rule")
		gw2Routes += gw2Rules
		t.Fatalf("ping through ipsec100: %v\n%s\nipsecgw stats:\n%s\ngw1 links:\n%s\ngw1 routes:\n%s\ngw2 links:\n%s\ngw2 routes:\n%s",
			err, out, stats, gw1Links, gw1Routes, gw2Links, gw2Routes)
	}
	t.Logf("ping host1 → host2 through ipsec100: %+v", res)
	if _, err := l.Host2.Ping(ctx, l.Host1.Addr, 3); err != nil {
		t.Fatalf("ping host2 → host1: %v", err)
	}
	after, err := gw.status(ctx, "s2s")
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Children) != 1 || after.Children[0].PacketsOut < 8 || after.Children[0].PacketsIn < 8 {
		t.Errorf("the route-based CHILD SA did not carry the pings: %+v", after.Children)
	}

	// The provider deletes the SA for maintenance and never initiates:
	// closeaction=restart brings the tunnel back from our side, with no
	// traffic to trigger it.
	oldSPI := after.IKE.InitiatorSPI
	start := time.Now()
	if err := charon.Terminate(ctx, "s2s"); err != nil {
		t.Fatal(err)
	}
	for {
		st, err := gw.status(ctx, "s2s")
		if err == nil && st.State == control.StateEstablished && st.IKE != nil && st.IKE.InitiatorSPI != oldSPI && len(st.Children) == 1 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the tunnel did not come back after the provider deleted it: %+v", st)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Logf("provider-side delete: tunnel re-established by closeaction=restart after %v", time.Since(start).Round(time.Millisecond))
	waitRoute(ctx, t, l.GW1, lab.LAN2.String(), "dev ipsec100")
	if _, err := l.Host1.Ping(ctx, l.Host2.Addr, 2); err != nil {
		t.Fatalf("ping after the tunnel came back: %v", err)
	}
}

// waitRoute waits until `ip route show PREFIX` in node mentions want.
func waitRoute(ctx context.Context, t *testing.T, node *lab.Node, prefix, want string) {
	t.Helper()
	for {
		out, _ := node.Run(ctx, "ip", "route", "show", prefix)
		if strings.Contains(out, want) {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("route %s never showed %q: %q", prefix, want, out)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
