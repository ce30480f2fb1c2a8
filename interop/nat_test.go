package interop

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/internal/lab"
)

// TestNATKeepaliveAndMappingChange: ipsecgw in gw1 behind the lab's
// MASQUERADE router initiates to strongSwan with nat_keepalive: 1s.
//
//   - The NAT keepalives (one 0xFF byte in UDP from port 4500, RFC 3948
//     §2.3) are seen on the wire at gw2, about one a second.
//   - Then the NAT loses its state and hands out other ports
//     (conntrack -F and a masquerade rule restricted to 20000-20099):
//     the next packets of the tunnel leave from a new public port, and
//     traffic must recover once strongSwan followed the new mapping on an
//     authenticated IKE message (ipsecgw's DPD, dpddelay=2s).
func TestNATKeepaliveAndMappingChange(t *testing.T) {
	l := lab.New(t, lab.Options{NAT: true})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c1, c2 := siteConns(l, "aes128-sha256-modp2048", "aes128gcm16")
	charon, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf(c2)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("charon log excerpt:\n%s", strings.Join(charon.LogExcerpt(), "\n"))
		}
	})
	conf := strings.Replace(c1.IPsecConf(), "  auto=", "  dpddelay=2s\n  dpdaction=restart\n  auto=", 1)
	gw := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: conf, Secrets: c1.IPsecSecrets(), Settings: "nat_keepalive: 1s\n"})
	if out, err := gw.cli(ctx, "up", "s2s"); err != nil {
		t.Fatalf("ipsecgw up: %v\n%s", err, out)
	}
	st, err := gw.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	if !st.IKE.NATDetected || !st.Children[0].UDPEncap {
		t.Fatalf("ipsecgw did not detect the NAT or does not encapsulate: %+v %+v", st.IKE, st.Children[0])
	}
	if _, err := charon.WaitEstablished(ctx, "s2s", "net"); err != nil {
		t.Fatal(err)
	}

	// Keepalives: one 0xFF byte in UDP to gw2:4500 (tshark: udpencap.nat_keepalive).
	capt, err := l.GW2.CaptureFor(ctx, lab.IfUnderlay, "udp port 4500", 4500*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	times, err := capt.Fields(ctx, "udp.dstport == 4500 && udpencap.nat_keepalive", "frame.time_relative")
	if err != nil {
		t.Fatal(err)
	}
	if len(times) < 3 {
		t.Fatalf("%d NAT keepalives in 4.5 s with nat_keepalive: 1s, want at least 3", len(times))
	}
	var gaps []string
	for i := 1; i < len(times); i++ {
		a, _ := strconv.ParseFloat(strings.TrimSpace(times[i-1]), 64)
		b, _ := strconv.ParseFloat(strings.TrimSpace(times[i]), 64)
		gaps = append(gaps, strconv.FormatFloat(b-a, 'f', 3, 64)+"s")
	}
	t.Logf("%d NAT keepalives seen at gw2, intervals %s", len(times), strings.Join(gaps, " "))

	// The NAT forgets its mappings and uses another port range.
	rules := "flush table ip labnat\ntable ip labnat {\n chain post {\n  type nat hook postrouting priority srcnat; policy accept;\n  oifname \"" +
		lab.IfNATOut + "\" meta l4proto { tcp, udp } masquerade to :20000-20099\n  oifname \"" + lab.IfNATOut + "\" masquerade\n }\n}\n"
	if out, err := l.NATRouter.Run(ctx, "sh", "-c", "printf '%s' '"+rules+"' | nft -f - && conntrack -F"); err != nil {
		t.Fatalf("changing the NAT: %v\n%s", err, out)
	}
	t0 := time.Now()
	recovered := false
	for range 20 {
		if _, err := l.Host1.Ping(ctx, l.Host2.Addr, 1); err == nil {
			recovered = true
			break
		}
		if ctx.Err() != nil {
			break
		}
	}
	if !recovered {
		t.Fatalf("traffic did not recover after the NAT mapping changed")
	}
	t.Logf("traffic recovered %v after the NAT mapping changed", time.Since(t0).Round(100*time.Millisecond))
	sa, err := charon.WaitEstablished(ctx, "s2s", "net")
	if err != nil {
		t.Fatal(err)
	}
	if sa.RemotePort < 20000 || sa.RemotePort > 20099 {
		t.Errorf("strongSwan still talks to port %d, not the NAT's new one (20000-20099)", sa.RemotePort)
	}
	pingBothWays(ctx, t, l, 2)
}
