package interop

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/internal/lab"
)

// idempotentUpdown is providerUpdown written to be run again over what it
// left: after a crash the persistent device keeps the address and the
// route the last up-client put there, and the restarted daemon's
// up-client must not fail on them.
const idempotentUpdown = `#!/bin/sh
set -e
case "$PLUTO_VERB" in
up-client)
	ip addr replace "$1" dev "$PLUTO_INTERFACE"
	ip route replace "$2" dev "$PLUTO_INTERFACE"
	;;
down-client)
	ip route del "$2" dev "$PLUTO_INTERFACE" || true
	ip addr del "$1" dev "$PLUTO_INTERFACE" || true
	;;
esac
`

// TestRoutedLeakGuardKilledDaemon: the provider's route-based shape
// (0.0.0.0/0 selectors, mark=100, the LAN2 route put on ipsec100 by the
// updown script) with a default route on gw1's underlay. SIGKILLed, the
// daemon leaves ipsec100 (persistent, without carrier) and the route on
// it: host1's pings to LAN2 go into the device and are dropped, 0 in
// clear on the underlay. Restarted, the daemon attaches to the device
// and the pings pass through the tunnel again. Stopped cleanly, it removes
// the device and the route goes with it; the same pings then leave in
// clear, which is the negative control showing the capture sees a leak.
func TestRoutedLeakGuardKilledDaemon(t *testing.T) {
	l, ctx := leakLab(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "updown.sh")
	if err := os.WriteFile(script, []byte(idempotentUpdown), 0o755); err != nil {
		t.Fatal(err)
	}
	_, c2 := siteConns(l, "aes128-sha256-modp2048", "aes128gcm16")
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
	conf := "config setup\n  uniqueids=no\n\n" + routedConf("s2s", "ikev2", gw1, gw2, gw1, gw2, 100, script+" 169.254.10.2/30 "+lab.LAN2.String())
	g1, err := l.GW1.StartIPsecGW(ctx, lab.IPsecGWConfig{Bin: binary, IPsecConf: conf,
		Secrets:  fmt.Sprintf("%s %s : PSK %q\n", gw1, gw2, testPSK),
		Settings: "tun:\n  name: " + tunName + "\nlog:\n  level: info\n"})
	if err != nil {
		t.Fatal(err)
	}
	current := g1
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("ipsecgw log (gw1):\n%s", tail(current.Log(), 80))
		}
	})
	if _, err := charon.WaitEstablished(ctx, "s2s", "net"); err != nil {
		t.Fatal(err)
	}
	if out, err := l.GW2.Run(ctx, "ip", "route", "add", lab.LAN1.String(), "dev", "ipsec0"); err != nil {
		t.Fatalf("route on strongSwan's side: %v %s", err, out)
	}
	waitRoute(ctx, t, l.GW1, lab.LAN2.String(), "dev ipsec100")
	pingBothWays(ctx, t, l, 2)

	if err := g1.Proc.Stop(syscall.SIGKILL, time.Second); err != nil {
		t.Fatal(err)
	}
	link, err := l.GW1.Run(ctx, "ip", "-d", "link", "show", "ipsec100")
	if err != nil || !strings.Contains(link, "NO-CARRIER") || !strings.Contains(link, "persist on") {
		t.Fatalf("after SIGKILL ipsec100 should stay, persistent and without carrier: %v\n%s", err, link)
	}
	if out, _ := l.GW1.Run(ctx, "ip", "route", "show", lab.LAN2.String()); !strings.Contains(out, "dev ipsec100") {
		t.Fatalf("after SIGKILL the route into ipsec100 is gone: %q", out)
	}
	if out, _ := l.GW1.Run(ctx, binary, "guard", "list"); !strings.Contains(out, "device ipsec100 (route-based conn, left by a stopped daemon") {
		t.Errorf("ipsecgw guard list after SIGKILL:\n%s", out)
	}
	expectNoLeak(ctx, t, l, "route-based conn, ipsecgw killed (SIGKILL)")

	restarted := time.Now()
	g2, err := g1.Restart(ctx)
	if err != nil {
		t.Fatal(err)
	}
	current = g2
	if _, err := g2.WaitEstablished(ctx, "s2s"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Host1.Ping(ctx, l.Host2.Addr, 1); err != nil {
		t.Fatal(err)
	}
	t.Logf("restart after SIGKILL: first ping through ipsec100 answered after %v", time.Since(restarted).Round(time.Millisecond))
	pingBothWays(ctx, t, l, 2)
	expectNoLeak(ctx, t, l, "route-based conn, restarted daemon")

	if err := g2.Stop(); err != nil {
		t.Fatal(err)
	}
	if out, err := l.GW1.Run(ctx, "ip", "link", "show", "ipsec100"); err == nil {
		t.Fatalf("ipsec100 stays after a clean stop:\n%s", out)
	}
	expectLeak(ctx, t, l, "route-based conn, daemon stopped cleanly (device and route removed)")
}
