package interop

import (
	"context"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/internal/lab"
)

// fastDPDCharon makes strongSwan give up on an unanswered exchange after
// ~6 s (1 s, then ×1.8 twice) instead of ~165 s, so that its DPD notices a
// dead peer within a test.
const fastDPDCharon = "retransmit_timeout = 1\n  retransmit_base = 1.8\n  retransmit_tries = 2\n"

// fastDPDGateway is the same for ipsecgw.
const fastDPDGateway = "retransmit:\n  timeout: 1s\n  tries: 2\n"

// waitStatus polls ipsecgw's status of conn until ok accepts it.
func (g *gateway) waitStatus(ctx context.Context, conn, what string, ok func(control.ConnStatus) bool) (control.ConnStatus, error) {
	var last control.ConnStatus
	for {
		st, err := g.status(ctx, conn)
		if err == nil {
			last = st
			if ok(st) {
				return st, nil
			}
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("conn %s never %s: last %s %q, IKE %+v, %d CHILD SAs", conn, what, last.State, last.LastError, last.IKE, len(last.Children))
		case <-g.Proc.Done():
			return last, fmt.Errorf("ipsecgw exited while waiting for conn %s to be %s", conn, what)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stillDown checks, after d (a few DPD periods), that conn has no CHILD SA
// on either side: nothing came back by itself. It counts SAs; d is only
// how long to give a wrong behaviour to show itself.
func stillDown(ctx context.Context, t *testing.T, gw *gateway, charon *lab.Charon, conn string, d time.Duration, wantIKE bool) {
	t.Helper()
	select {
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	case <-time.After(d):
	}
	st, err := gw.status(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != control.StateDown || len(st.Children) != 0 || (st.IKE != nil) != wantIKE {
		t.Fatalf("after %v ipsecgw shows %s with IKE SA %v and %d CHILD SAs; want down, IKE SA %v, no CHILD SA", d, st.State, st.IKE != nil, len(st.Children), wantIKE)
	}
	sas, err := charon.ListSAs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	children := 0
	for _, sa := range sas {
		children += len(sa.Children)
	}
	if children != 0 || (len(sas) == 1) != wantIKE || len(sas) > 1 {
		t.Fatalf("after %v strongSwan lists %d IKE SAs with %d CHILD SAs; want IKE SA %v, no CHILD SA: %+v", d, len(sas), children, wantIKE, sas)
	}
}

// TestReverseDPDStrongSwanRestarts: strongSwan initiates (ipsecgw is a
// responder, auto=add) with dpd_delay=2s and dpd_action=restart. ipsecgw
// is SIGKILLed while pings cross the tunnel and started again at once with
// no SA: strongSwan's liveness check goes unanswered (the new ipsecgw does
// not know the IKE SA), strongSwan declares the peer dead and initiates
// again by itself, and the tunnel carries traffic both ways without any
// command. Detection and recovery times are reported, not asserted.
func TestReverseDPDStrongSwanRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("DPD waits for timeouts")
	}
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c1, c2 := siteConns(l, "aes128-sha256-ecp256", "aes128gcm16")
	// keyingtries = 0: a restart attempt that times out is retried
	// (strongSwan's default of 1 would give up; see the namespace notes).
	c2.ConnExtra = "dpd_delay = 2s\n    keyingtries = 0"
	c2.ChildExtra = "dpd_action = restart"
	charon, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf(c2), Extra: fastDPDCharon})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("charon log excerpt:\n%s", strings.Join(charon.LogExcerpt(), "\n"))
		}
	})
	files := gatewayFiles{Conf: c1.IPsecConf(), Secrets: c1.IPsecSecrets()}
	// The first daemon is killed, so it does not get startGateway's
	// clean-exit check.
	g1, err := l.GW1.StartIPsecGW(ctx, lab.IPsecGWConfig{Bin: binary, IPsecConf: files.Conf, Secrets: files.Secrets,
		Settings: "tun:\n  name: " + tunName + "\nlog:\n  level: debug\n"})
	if err != nil {
		t.Fatal(err)
	}
	if err := charon.Initiate(ctx, "s2s", "net"); err != nil {
		t.Fatalf("%v\nipsecgw log:\n%s", err, tail(g1.Log(), 60))
	}
	old, err := charon.WaitEstablished(ctx, "s2s", "net")
	if err != nil {
		t.Fatal(err)
	}
	pingBothWays(ctx, t, l, 2)

	pingDone := make(chan struct{})
	go func() {
		defer close(pingDone)
		_, _ = l.Host2.Ping(ctx, l.Host1.Addr, 10) // answers stop at the kill: an error is expected
	}()
	time.Sleep(500 * time.Millisecond)
	if err := g1.Proc.Stop(syscall.SIGKILL, time.Second); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	gw := startGateway(ctx, t, l.GW1, files)
	t.Logf("ipsecgw killed and started again in %v", time.Since(killed).Round(10*time.Millisecond))

	// strongSwan drops the old IKE SA (DPD gave up) and makes a new one.
	var detected time.Duration
	var sa lab.IKESA
	for {
		sas, err := charon.ListSAs(ctx)
		if err == nil {
			oldGone := true
			for _, s := range sas {
				if s.InitiatorSPI == old.InitiatorSPI {
					oldGone = false
				}
			}
			if oldGone && detected == 0 {
				detected = time.Since(killed)
			}
			if oldGone && len(sas) == 1 && sas[0].State == "ESTABLISHED" && len(sas[0].Children) == 1 && sas[0].Children[0].State == "INSTALLED" {
				sa = sas[0]
				break
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("strongSwan did not re-establish the tunnel by itself: %v %+v", err, sas)
		case <-time.After(100 * time.Millisecond):
		}
	}
	recovered := time.Since(killed)
	<-pingDone
	st, err := gw.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	if st.IKE.Initiator {
		t.Errorf("ipsecgw initiated the new IKE SA; strongSwan's dpd_action=restart should have")
	}
	t.Logf("strongSwan dropped the dead IKE SA %v after the kill (dpd_delay 2s, then 1 s + 1.8 s + 3.24 s of retransmissions) and had a new one %v after it", detected.Round(10*time.Millisecond), recovered.Round(10*time.Millisecond))
	checkAgree(t, st, sa, "AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/ECP_256", "AES_GCM_16-128")
	pingBothWays(ctx, t, l, 2)
}

// TestDPDHoldRenegotiatesOnTraffic: ipsecgw with dpddelay=2s and
// dpdaction=hold; strongSwan is SIGKILLed. ipsecgw notices, drops its SAs
// and installs the conn's trap policy instead of initiating: nothing is
// negotiated without traffic, even once a new strongSwan is up. Then a
// ping from host1 hits the trap, the conn is negotiated again, and pings
// cross both ways.
func TestDPDHoldRenegotiatesOnTraffic(t *testing.T) {
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
	conf := c1.IPsecConf() + "  dpddelay=2s\n  dpdaction=hold\n"
	gw := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: conf, Secrets: c1.IPsecSecrets(), Settings: fastDPDGateway})
	if out, err := gw.cli(ctx, "up", "s2s"); err != nil {
		t.Fatalf("ipsecgw up: %v\n%s", err, out)
	}
	first, err := gw.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	pingBothWays(ctx, t, l, 2)
	if err := charon.Proc.Stop(syscall.SIGKILL, time.Second); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	st, err := gw.waitStatus(ctx, "s2s", "without its IKE SA", func(st control.ConnStatus) bool {
		return st.IKE == nil || st.IKE.InitiatorSPI != first.IKE.InitiatorSPI
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("dead peer detected after %v: %s %q", time.Since(killed).Round(10*time.Millisecond), st.State, st.LastError)
	if st.IKE != nil || len(st.Children) != 0 || !strings.Contains(st.LastError, "peer is not answering") {
		t.Fatalf("after the dead peer: %s %q, IKE %+v, %d CHILD SAs; want no SA", st.State, st.LastError, st.IKE, len(st.Children))
	}
	if !strings.Contains(gw.Log(), "dpdaction=hold: trap policy installed") {
		t.Errorf("ipsecgw's log does not say that dpdaction=hold installed the trap policy")
	}

	charon2, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Name: "gw2-again", Swanctl: lab.SwanctlConf(c2)})
	if err != nil {
		t.Fatal(err)
	}
	// hold waits for traffic: three DPD periods with the peer back and no
	// packet leave the conn down on both sides.
	stillDown(ctx, t, gw, charon2, "s2s", 6*time.Second, false)

	trafficAt := time.Now()
	// The first echo request triggers the negotiation; it may be lost.
	res, _ := l.Host1.Ping(ctx, l.Host2.Addr, 1)
	t.Logf("first echo request (it hits the trap): %d of %d answered", res.Received, res.Transmitted)
	st, err = gw.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	sa, err := charon2.WaitEstablished(ctx, "s2s", "net")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("tunnel up %v after the first packet hit the trap", time.Since(trafficAt).Round(10*time.Millisecond))
	if !st.IKE.Initiator || st.IKE.InitiatorSPI == first.IKE.InitiatorSPI {
		t.Errorf("want a new IKE SA initiated by ipsecgw: %+v", st.IKE)
	}
	checkAgree(t, st, sa, "AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/ECP_256", "AES_GCM_16-128")
	pingBothWays(ctx, t, l, 2)
}

// TestCloseAction: ipsecgw initiates, then strongSwan deletes the CHILD SA
// (swanctl --terminate --child) or the IKE SA (--terminate --ike). With
// ipsecgw's closeaction=restart the tunnel comes back at once (over the
// same IKE SA when only the CHILD SA went); with closeaction=none it stays
// down through three DPD periods; with closeaction=hold it stays down
// until a packet hits the trap policy, which brings it back.
func TestCloseAction(t *testing.T) {
	for _, tc := range []struct {
		action string
		ike    bool // strongSwan deletes the IKE SA, not only the CHILD SA
	}{
		{"restart", false}, {"restart", true},
		{"none", false}, {"none", true},
		{"hold", false}, {"hold", true},
	} {
		what := "child"
		if tc.ike {
			what = "ike"
		}
		t.Run(tc.action+"-"+what, func(t *testing.T) {
			testCloseAction(t, tc.action, tc.ike)
		})
	}
}

func testCloseAction(t *testing.T, action string, ike bool) {
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c1, c2 := siteConns(l, "aes128-sha256-ecp256", "aes128gcm16")
	charon, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf(c2)})
	if err != nil {
		t.Fatal(err)
	}
	conf := c1.IPsecConf() + "  dpddelay=2s\n  dpdaction=clear\n  closeaction=" + action + "\n"
	gw := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: conf, Secrets: c1.IPsecSecrets()})
	if out, err := gw.cli(ctx, "up", "s2s"); err != nil {
		t.Fatalf("ipsecgw up: %v\n%s", err, out)
	}
	first, err := gw.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := charon.WaitEstablished(ctx, "s2s", "net"); err != nil {
		t.Fatal(err)
	}
	pingBothWays(ctx, t, l, 2)
	args := []string{"--terminate", "--child", "net", "--timeout", "10"}
	if ike {
		args = []string{"--terminate", "--ike", "s2s", "--timeout", "10"}
	}
	if out, err := charon.Swanctl(ctx, args...); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	terminated := time.Now()
	sameIKE := func(st control.ConnStatus) bool {
		return st.IKE != nil && st.IKE.InitiatorSPI == first.IKE.InitiatorSPI
	}
	switch action {
	case "restart":
		st, err := gw.waitStatus(ctx, "s2s", "re-established", func(st control.ConnStatus) bool {
			return st.State == control.StateEstablished && len(st.Children) == 1 && st.Children[0].SPIIn != first.Children[0].SPIIn
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("closeaction=restart: tunnel back %v after strongSwan's delete", time.Since(terminated).Round(10*time.Millisecond))
		if sameIKE(st) == ike {
			t.Errorf("IKE SA %s before, %s after: the same one only when strongSwan deleted the CHILD SA alone", first.IKE.InitiatorSPI, st.IKE.InitiatorSPI)
		}
		sa, err := charon.WaitEstablished(ctx, "s2s", "net")
		if err != nil {
			t.Fatal(err)
		}
		checkAgree(t, st, sa, "AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/ECP_256", "AES_GCM_16-128")
		pingBothWays(ctx, t, l, 2)
	case "none", "hold":
		st, err := gw.waitStatus(ctx, "s2s", "down", func(st control.ConnStatus) bool {
			return st.State == control.StateDown && len(st.Children) == 0
		})
		if err != nil {
			t.Fatal(err)
		}
		if sameIKE(st) == ike {
			t.Errorf("after strongSwan's delete: IKE SA %+v; want the first one kept only when the CHILD SA alone went", st.IKE)
		}
		stillDown(ctx, t, gw, charon, "s2s", 6*time.Second, !ike)
		logged := strings.Contains(gw.Log(), "closeaction=hold: trap policy installed")
		if logged != (action == "hold") {
			t.Errorf("closeaction=%s: the log says a hold trap policy was installed: %v", action, logged)
		}
		if action == "none" {
			// Traffic does not bring it back either: no trap policy.
			_, _ = l.Host1.Ping(ctx, l.Host2.Addr, 1)
			stillDown(ctx, t, gw, charon, "s2s", 2*time.Second, !ike)
			return
		}
		trafficAt := time.Now()
		res, _ := l.Host1.Ping(ctx, l.Host2.Addr, 1) // hits the trap; may be lost
		t.Logf("first echo request (it hits the trap): %d of %d answered", res.Received, res.Transmitted)
		st, err = gw.waitState(ctx, "s2s", control.StateEstablished)
		if err != nil {
			t.Fatal(err)
		}
		sa, err := charon.WaitEstablished(ctx, "s2s", "net")
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("closeaction=hold: tunnel up %v after the first packet hit the trap", time.Since(trafficAt).Round(10*time.Millisecond))
		if sameIKE(st) == ike {
			t.Errorf("IKE SA %+v: want the first one reused only when the CHILD SA alone went", st.IKE)
		}
		checkAgree(t, st, sa, "AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/ECP_256", "AES_GCM_16-128")
		pingBothWays(ctx, t, l, 2)
	}
}
