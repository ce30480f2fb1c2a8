package interop

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/daemon"
	"github.com/ipsecgw/ipsecgw/internal/lab"
)

// TestIpsecgwToIpsecgw: two daemons on one host, each in its own gateway
// namespace with its own files, control socket and TUN device: gw1 starts
// its conn at startup (auto=start), gw2 answers (auto=add, right=%any).
// ipsecgw down on one side takes the tunnel down on both.
func TestIpsecgwToIpsecgw(t *testing.T) {
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c1, c2 := siteConns(l, "aes128gcm16-prfsha256-ecp256", "aes128gcm16")
	c1.StartAction = "start"
	c2.RemoteAddr = "%any"
	gw2 := startGateway(ctx, t, l.GW2, gatewayFiles{Conf: c2.IPsecConf(), Secrets: c2.IPsecSecrets()})
	gw1 := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: c1.IPsecConf(), Secrets: c1.IPsecSecrets()})
	if gw1.socket == gw2.socket {
		t.Fatal("the two daemons share a control socket")
	}
	s1, err := gw1.waitState(ctx, "s2s", daemon.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := gw2.waitState(ctx, "s2s", daemon.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	if !s1.IKE.Initiator || s2.IKE.Initiator || s1.IKE.InitiatorSPI != s2.IKE.InitiatorSPI || s1.IKE.ResponderSPI != s2.IKE.ResponderSPI {
		t.Errorf("IKE SAs do not match: gw1 %+v, gw2 %+v", s1.IKE, s2.IKE)
	}
	if len(s1.Children) != 1 || len(s2.Children) != 1 || s1.Children[0].SPIIn != s2.Children[0].SPIOut || s1.Children[0].SPIOut != s2.Children[0].SPIIn {
		t.Errorf("CHILD SAs do not pair up: gw1 %+v, gw2 %+v", s1.Children, s2.Children)
	}
	pingBothWays(ctx, t, l, 3)

	if out, err := gw1.cli(ctx, "down", "s2s"); err != nil {
		t.Fatalf("ipsecgw down: %v\n%s", err, out)
	}
	if _, err := gw1.waitState(ctx, "s2s", daemon.StateDown); err != nil {
		t.Error(err)
	}
	st, err := gw2.waitState(ctx, "s2s", daemon.StateDown)
	if err != nil {
		t.Error(err)
	}
	if len(st.Children) != 0 {
		t.Errorf("gw2 kept CHILD SAs after the peer's delete: %+v", st.Children)
	}
	if _, err := l.Host1.Ping(ctx, l.Host2.Addr, 1); err == nil {
		t.Error("ping between the LANs works after ipsecgw down")
	}
	// And up again, by hand.
	if out, err := gw1.cli(ctx, "up", "s2s"); err != nil {
		t.Fatalf("ipsecgw up after down: %v\n%s", err, out)
	}
	pingBothWays(ctx, t, l, 2)
}

// TestIpsecgwBehindNAT: ipsecgw in gw1 behind a MASQUERADE NAT initiates
// to strongSwan; both detect the NAT and ESP runs in UDP 4500.
func TestIpsecgwBehindNAT(t *testing.T) {
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
	gw := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: c1.IPsecConf(), Secrets: c1.IPsecSecrets()})
	if out, err := gw.cli(ctx, "up", "s2s"); err != nil {
		t.Fatalf("ipsecgw up: %v\n%s", err, out)
	}
	st, err := gw.waitState(ctx, "s2s", daemon.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	sa, err := charon.WaitEstablished(ctx, "s2s", "net")
	if err != nil {
		t.Fatal(err)
	}
	checkAgree(t, st, sa, "AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048", "AES_GCM_16-128")
	if !st.IKE.NATDetected || !st.Children[0].UDPEncap {
		t.Errorf("ipsecgw did not detect the NAT or does not encapsulate: %+v %+v", st.IKE, st.Children[0])
	}
	if !sa.NATRemote {
		t.Errorf("strongSwan does not see its peer behind a NAT: %+v", sa)
	}
	pingBothWays(ctx, t, l, 3)
}
