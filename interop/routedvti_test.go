package interop

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/internal/lab"
)

// TestRoutedVTIKeywords: a Libreswan-style route-based conn with
// leftvti= and vti-routing=yes and no updown script, against strongSwan:
// ipsecgw puts the address on ipsec100 and routes LAN2 into it, and hosts
// ping through it. A reload without the two keywords takes both away.
func TestRoutedVTIKeywords(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test")
	}
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c1, c2 := siteConns(l, "aes128-sha256-modp2048", "aes128gcm16")
	c1.StartAction = "start"
	charon, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf(c2), Extra: "install_routes = no\n  routing_table = 0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("charon log excerpt:\n%s", strings.Join(charon.LogExcerpt(), "\n"))
		}
	})
	vti := strings.Replace(c1.IPsecConf(), "  auto=start\n", "  auto=start\n  mark=100\n  leftvti=169.254.10.2/30\n  vti-routing=yes\n", 1)
	gw := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: vti, Secrets: c1.IPsecSecrets()})
	if _, err := charon.WaitEstablished(ctx, "s2s", "net"); err != nil {
		t.Fatal(err)
	}
	if out, err := l.GW2.Run(ctx, "ip", "route", "replace", lab.LAN1.String(), "dev", "ipsec0"); err != nil {
		t.Fatalf("route on strongSwan's side: %v %s", err, out)
	}
	waitRoute(ctx, t, l.GW1, lab.LAN2.String(), "dev ipsec100")
	if out, _ := l.GW1.Run(ctx, "ip", "-o", "addr", "show", "dev", "ipsec100"); !strings.Contains(out, "169.254.10.2/30") {
		t.Errorf("ipsec100 lacks leftvti's 169.254.10.2/30:\n%s", out)
	}
	if out, _ := l.GW1.Run(ctx, "ip", "route", "show", "dev", tunName); strings.Contains(out, lab.LAN2.String()) {
		t.Errorf("the main TUN got the route-based conn's route:\n%s", out)
	}
	pingBothWays(ctx, t, l, 2)

	reloadGateway(ctx, t, gw, strings.Replace(c1.IPsecConf(), "  auto=start\n", "  auto=start\n  mark=100\n", 1))
	if out, _ := l.GW1.Run(ctx, "ip", "-o", "addr", "show", "dev", "ipsec100"); strings.Contains(out, "169.254.10.2") {
		t.Errorf("after a reload without leftvti=, ipsec100 keeps the address:\n%s", out)
	}
	if out, _ := l.GW1.Run(ctx, "ip", "route", "show", lab.LAN2.String()); strings.Contains(out, "ipsec100") {
		t.Errorf("after a reload without vti-routing=yes, the route stays: %s", out)
	}
}
