package interop

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/internal/lab"
)

// TestDPDRestartAfterPeerReturns: strongSwan is SIGKILLed while pings
// cross the tunnel; ipsecgw's DPD (dpddelay=2s, 1 s retransmission timeout,
// 2 tries) notices, and dpdaction=restart with keyingtries=%forever keeps
// initiating until a new strongSwan instance with the same configuration
// is up, when the tunnel comes back without any command and carries
// traffic. The detection time is measured and logged.
func TestDPDRestartAfterPeerReturns(t *testing.T) {
	if testing.Short() {
		t.Skip("DPD waits for timeouts")
	}
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c1, c2 := siteConns(l, "aes128-sha256-ecp256", "aes128gcm16")
	charon, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf(c2)})
	if err != nil {
		t.Fatal(err)
	}
	conf := c1.IPsecConf() + "  dpddelay=2s\n  dpdaction=restart\n  keyingtries=%forever\n"
	gw := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: conf, Secrets: c1.IPsecSecrets(),
		Settings: "retransmit:\n  timeout: 1s\n  tries: 2\n"})
	if out, err := gw.cli(ctx, "up", "s2s"); err != nil {
		t.Fatalf("ipsecgw up: %v\n%s", err, out)
	}
	first, err := gw.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	pingBothWays(ctx, t, l, 2)

	// Traffic is flowing (a ping every 0.2 s) when the peer dies.
	pingDone := make(chan struct{})
	go func() {
		defer close(pingDone)
		_, _ = l.Host1.Ping(ctx, l.Host2.Addr, 10) // answers stop at the kill: an error is expected
	}()
	time.Sleep(500 * time.Millisecond)
	if err := charon.Proc.Stop(syscall.SIGKILL, time.Second); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	var detected time.Duration
	for {
		st, err := gw.status(ctx, "s2s")
		if err != nil {
			t.Fatal(err)
		}
		if st.IKE == nil || st.IKE.InitiatorSPI != first.IKE.InitiatorSPI {
			detected = time.Since(killed)
			t.Logf("dead peer detected after %v (idle for dpddelay 2s, checked every 2s, then the request and 2 retransmissions: 1s + 1.8s + 3.2s): %s %q", detected.Round(100*time.Millisecond), st.State, st.LastError)
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("DPD never noticed the dead peer: %+v", st)
		case <-time.After(50 * time.Millisecond):
		}
	}
	<-pingDone
	if !strings.Contains(gw.Log(), "peer is not answering") {
		t.Errorf("ipsecgw's log does not say why the IKE SA went away")
	}

	// A new strongSwan (a new instance directory, same configuration)
	// answers the next attempt of the restart.
	charon2, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Name: "gw2-again", Swanctl: lab.SwanctlConf(c2)})
	if err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	st, err := gw.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	if st.IKE.InitiatorSPI == first.IKE.InitiatorSPI {
		t.Fatalf("still the old IKE SA: %+v", st)
	}
	sa, err := charon2.WaitEstablished(ctx, "s2s", "net")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("tunnel back %v after strongSwan restarted", time.Since(restarted).Round(100*time.Millisecond))
	checkAgree(t, st, sa, "AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/ECP_256", "AES_GCM_16-128")
	pingBothWays(ctx, t, l, 2)
}

// TestIpsecgwRebootInitialContact: ipsecgw dies without a word (SIGKILL)
// and starts again (auto=start): its new IKE_AUTH carries INITIAL_CONTACT,
// so strongSwan deletes the stale IKE SA of the same identities instead of
// keeping both, and lists exactly one IKE SA with one CHILD SA, the new
// one, over which traffic flows.
func TestIpsecgwRebootInitialContact(t *testing.T) {
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c1, c2 := siteConns(l, "aes128-sha256-ecp256", "aes128gcm16")
	charon, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf(c2)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("charon log excerpt:\n%s", strings.Join(charon.LogExcerpt(), "\n"))
		}
	})
	conf := strings.Replace(c1.IPsecConf(), "auto=add", "auto=start", 1)
	if !strings.Contains(conf, "auto=start") {
		conf += "  auto=start\n"
	}
	files := gatewayFiles{Conf: conf, Secrets: c1.IPsecSecrets()}
	// The first daemon is killed, so it does not get startGateway's
	// clean-exit check.
	g1, err := l.GW1.StartIPsecGW(ctx, lab.IPsecGWConfig{Bin: binary, IPsecConf: conf, Secrets: files.Secrets,
		Settings: "tun:\n  name: " + tunName + "\nlog:\n  level: debug\n"})
	if err != nil {
		t.Fatal(err)
	}
	old, err := charon.WaitEstablished(ctx, "s2s", "net")
	if err != nil {
		t.Fatalf("%v\nipsecgw log:\n%s", err, tail(g1.Log(), 60))
	}
	pingBothWays(ctx, t, l, 2)
	if err := g1.Proc.Stop(syscall.SIGKILL, time.Second); err != nil {
		t.Fatal(err)
	}
	gw := startGateway(ctx, t, l.GW1, files)
	st, err := gw.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	// charon deletes the stale SA when it processes the IKE_AUTH with
	// INITIAL_CONTACT; wait for its list to settle on one SA.
	var sas []lab.IKESA
	for {
		sas, err = charon.ListSAs(ctx)
		if err == nil && len(sas) == 1 && sas[0].InitiatorSPI != old.InitiatorSPI {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("strongSwan does not list exactly the new IKE SA: %+v", sas)
		case <-time.After(100 * time.Millisecond):
		}
	}
	checkAgree(t, st, sas[0], "AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/ECP_256", "AES_GCM_16-128")
	if !strings.Contains(strings.Join(charon.LogLines(), "\n"), "INIT_CONTACT") {
		t.Errorf("charon's log does not mention INITIAL_CONTACT")
	}
	pingBothWays(ctx, t, l, 2)
}

// TestDPDTimeoutBoundsDeadPeer: with the default retransmission schedule
// (5 tries, ~165 s) but dpddelay=3s and dpdtimeout=15s, as the cloud VPN
// templates set them, ipsecgw gives up on a SIGKILLed strongSwan because
// dpdtimeout passed since the last message it received, not because the
// schedule ran out: the reason names dpdtimeout and the conn is down long
// before the schedule would have ended. The detection time is logged.
func TestDPDTimeoutBoundsDeadPeer(t *testing.T) {
	if testing.Short() {
		t.Skip("DPD waits for timeouts")
	}
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c1, c2 := siteConns(l, "aes128-sha256-modp2048", "aes128gcm16")
	charon, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf(c2)})
	if err != nil {
		t.Fatal(err)
	}
	conf := c1.IPsecConf() + "  dpddelay=3s\n  dpdtimeout=15s\n  dpdaction=clear\n"
	gw := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: conf, Secrets: c1.IPsecSecrets()})
	if out, err := gw.cli(ctx, "up", "s2s"); err != nil {
		t.Fatalf("ipsecgw up: %v\n%s", err, out)
	}
	if _, err := gw.waitState(ctx, "s2s", control.StateEstablished); err != nil {
		t.Fatal(err)
	}
	pingBothWays(ctx, t, l, 2)
	if err := charon.Proc.Stop(syscall.SIGKILL, time.Second); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	st, err := gw.waitState(ctx, "s2s", control.StateDown)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("dead peer declared after %v (dpdtimeout 15s after the last message received): %q",
		time.Since(killed).Round(100*time.Millisecond), st.LastError)
	if !strings.Contains(st.LastError, "dpdtimeout") {
		t.Errorf("reason %q does not name dpdtimeout: the retransmission schedule, not dpdtimeout, ended the wait", st.LastError)
	}
	if len(st.Children) != 0 || st.IKE != nil {
		t.Errorf("SAs left after the peer was declared dead: %+v", st)
	}
}
