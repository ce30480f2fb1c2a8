package interop

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/internal/lab"
)

// TestIKEFragmentation: 40 subnets on ipsecgw's side make IKE_AUTH larger than a
// 576-byte fragment size (ipsecgw: fragment_size: 576; strongSwan:
// charon.fragment_size = 576). ipsecgw initiates: its IKE_AUTH request and
// strongSwan's response must both travel as SKF fragments (RFC 7383), be
// reassembled by the other side, and the tunnel must carry traffic.
func TestIKEFragmentation(t *testing.T) {
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	extra := func(second int) string {
		var b []string
		for i := range 39 {
			b = append(b, fmt.Sprintf("10.%d.%d.0/24", second, i))
		}
		return "," + strings.Join(b, ",")
	}
	c1, c2 := siteConns(l, "aes128-sha256-modp2048", "aes128gcm16")
	// The extra subnets sit on ipsecgw's side only: strongSwan installs a
	// route per policy with a source address from its local_ts, and has
	// none in subnets that are not its own. 40 selectors in TSi of the
	// request and of the response are enough to need fragments both ways.
	c1.LocalTS += extra(101)
	c2.RemoteTS += extra(101)
	c2.ConnExtra += "fragmentation = yes\n"
	charon, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf(c2), Extra: "fragment_size = 576"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("charon log excerpt:\n%s", strings.Join(charon.LogExcerpt(), "\n"))
		}
	})
	gw := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: c1.IPsecConf(), Secrets: c1.IPsecSecrets(), Settings: "fragment_size: 576\n"})
	capt, err := l.GW2.StartCapture(ctx, lab.IfUnderlay, "udp port 500 or udp port 4500")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := gw.cli(ctx, "up", "s2s"); err != nil {
		t.Fatalf("ipsecgw up: %v\n%s", err, out)
	}
	st, err := gw.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := charon.WaitEstablished(ctx, "s2s", "net"); err != nil {
		t.Fatal(err)
	}
	if err := capt.Stop(); err != nil {
		t.Fatal(err)
	}
	count := func(src string) int {
		lines, err := capt.Fields(ctx, "isakmp.nextpayload == 53 && ip.src == "+src, "frame.len")
		if err != nil {
			t.Fatal(err)
		}
		for _, ln := range lines {
			var n int
			fmt.Sscan(strings.TrimSpace(ln), &n)
			if n-14 > 576 { // Ethernet header
				t.Errorf("a fragment from %s fills a %d-byte IP datagram, over 576", src, n-14)
			}
		}
		return len(lines)
	}
	fromGW, fromSwan := count(l.GW1.Addr.String()), count(l.GW2.Addr.String())
	t.Logf("IKE_AUTH with 40 subnets: %d SKF fragments from ipsecgw, %d from strongSwan; ipsecgw lists %d local and %d remote selectors",
		fromGW, fromSwan, len(st.Children[0].LocalTS), len(st.Children[0].RemoteTS))
	if fromGW < 2 || fromSwan < 2 {
		t.Errorf("IKE_AUTH was not fragmented both ways: %d fragments from ipsecgw, %d from strongSwan", fromGW, fromSwan)
	}
	pingBothWays(ctx, t, l, 2)
}
