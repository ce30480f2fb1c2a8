package lab

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"
)

// TestIPsecGWLauncher drives the launcher the demo and the interop tests
// share: a broken ipsec.conf makes StartIPsecGW fail with the daemon's
// explanation; a good one starts a daemon whose conn Up brings up against
// charon, Status reports it with moving counters, and Stop ends it cleanly.
func TestIPsecGWLauncher(t *testing.T) {
	t.Parallel()
	l := New(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	bin, err := BuildIPsecGW(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}

	const ike, esp = "aes128-sha256-modp2048", "aes128gcm16"
	c1 := SiteToSite(l.GW1, l.GW2, 2, testPSK, ike, esp)
	c2 := SiteToSite(l.GW2, l.GW1, 2, testPSK, ike, esp)
	c1.LocalID, c1.RemoteID = l.GW1.PublicAddr.String(), l.GW2.PublicAddr.String()
	c2.LocalID, c2.RemoteID = l.GW2.PublicAddr.String(), l.GW1.PublicAddr.String()

	if _, err := l.GW1.StartIPsecGW(ctx, IPsecGWConfig{}); err == nil {
		t.Error("StartIPsecGW without a binary succeeded")
	}
	broken := strings.Replace(c1.IPsecConf(), "auto=add", "auto=sometimes", 1)
	_, err = l.GW1.StartIPsecGW(ctx, IPsecGWConfig{Bin: bin, IPsecConf: broken, Secrets: c1.IPsecSecrets()})
	if err == nil || !strings.Contains(err.Error(), "exited at startup") || !strings.Contains(err.Error(), "sometimes") {
		t.Errorf("broken ipsec.conf: want a startup failure naming the bad value, got %v", err)
	}

	charon, err := l.GW2.StartCharon(ctx, CharonConfig{Swanctl: SwanctlConf(c2)})
	if err != nil {
		t.Fatal(err)
	}
	gw, err := l.GW1.StartIPsecGW(ctx, IPsecGWConfig{Bin: bin, IPsecConf: c1.IPsecConf(), Secrets: c1.IPsecSecrets()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("ipsecgw log:\n%s", gw.Log())
		}
	})
	if fi, err := os.Stat(gw.Dir + "/ipsec.secrets"); err != nil {
		t.Error(err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Errorf("ipsec.secrets mode %v, want 0600", fi.Mode().Perm())
	}
	st, err := gw.Conn(ctx, "s2s")
	if err != nil || st.State != GWDown || st.Auto != "add" {
		t.Fatalf("before Up: %+v (%v)", st, err)
	}
	if err := gw.Up(ctx, "s2s"); err != nil {
		t.Fatal(err)
	}
	st, err = gw.WaitEstablished(ctx, "s2s")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := charon.WaitEstablished(ctx, "s2s", "net"); err != nil {
		t.Fatal(err)
	}
	if st.IKE == nil || st.IKE.Proposal != "aes128-sha256-prfsha256-modp2048" {
		t.Errorf("established conn: %+v", st)
	}
	pingBothWays(ctx, t, l, 2)
	conns, err := gw.Status(ctx)
	if err != nil || len(conns) != 1 || len(conns[0].Children) != 1 {
		t.Fatalf("status after pings: %+v (%v)", conns, err)
	}
	if ch := conns[0].Children[0]; ch.PacketsIn < 4 || ch.PacketsOut < 4 {
		t.Errorf("counters after 2 pings each way: %+v", ch)
	}
	if out, err := gw.CLI(ctx, "status"); err != nil || !strings.Contains(out, "established") {
		t.Errorf("ipsecgw status: %v\n%s", err, out)
	}

	if err := gw.Stop(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-gw.Proc.Done():
	default:
		t.Fatal("Stop returned with the daemon still running")
	}
	if err := gw.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if strings.Contains(gw.Log(), testPSK) {
		t.Error("the daemon's log reveals the PSK")
	}
	// Stopping deletes the IKE SA at the peer.
	if err := charon.WaitDown(ctx, "s2s"); err != nil {
		t.Error(err)
	}
}
