// Package interop runs ipsecgw against strongSwan in network namespaces
// (internal/lab): ipsecgw in gw1, charon in gw2, hosts behind each. The
// tests skip when not root or strongSwan is missing, and fail instead with
// IPSECGW_REQUIRE_INTEROP=1.
package interop

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/internal/lab"
)

const testPSK = "interop-psk-0123456789abcdef"

// siteConns returns the mirrored connections of gw1 (ipsecgw) and gw2
// (charon) protecting the two LANs, identified by their IP addresses.
func siteConns(l *lab.Lab, ike, esp string) (gw1, gw2 lab.Conn) {
	gw1 = lab.SiteToSite(l.GW1, l.GW2, 2, testPSK, ike, esp)
	gw2 = lab.SiteToSite(l.GW2, l.GW1, 2, testPSK, ike, esp)
	gw1.LocalID, gw1.RemoteID = l.GW1.PublicAddr.String(), l.GW2.PublicAddr.String()
	gw2.LocalID, gw2.RemoteID = l.GW2.PublicAddr.String(), l.GW1.PublicAddr.String()
	return gw1, gw2
}

func pingBothWays(ctx context.Context, t *testing.T, l *lab.Lab, count int) {
	t.Helper()
	if _, err := l.Host1.Ping(ctx, l.Host2.Addr, count); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Host2.Ping(ctx, l.Host1.Addr, count); err != nil {
		t.Fatal(err)
	}
}

// checkAgree compares ipsecgw's status of an established conn with what
// charon lists for the same IKE SA: algorithms, IKE SPIs and CHILD SPIs.
func checkAgree(t *testing.T, st control.ConnStatus, sa lab.IKESA, wantIKE, wantESP string) {
	t.Helper()
	if st.IKE == nil || len(st.Children) != 1 {
		t.Fatalf("ipsecgw status lacks the IKE SA or the CHILD SA: %+v", st)
	}
	if sa.State != "ESTABLISHED" || sa.Proposal() != wantIKE {
		t.Errorf("strongSwan IKE SA: %s %s, want ESTABLISHED %s", sa.State, sa.Proposal(), wantIKE)
	}
	if !strings.EqualFold(st.IKE.InitiatorSPI, sa.InitiatorSPI) || !strings.EqualFold(st.IKE.ResponderSPI, sa.ResponderSPI) {
		t.Errorf("IKE SPIs: ipsecgw %s/%s, strongSwan %s/%s", st.IKE.InitiatorSPI, st.IKE.ResponderSPI, sa.InitiatorSPI, sa.ResponderSPI)
	}
	ch, ok := sa.Child("net")
	if !ok {
		t.Fatalf("strongSwan has no CHILD SA net: %+v", sa)
	}
	if ch.State != "INSTALLED" || ch.Proposal() != wantESP {
		t.Errorf("strongSwan CHILD SA: %s %s, want INSTALLED %s", ch.State, ch.Proposal(), wantESP)
	}
	c := st.Children[0]
	if !strings.EqualFold(c.SPIIn, ch.SPIOut) || !strings.EqualFold(c.SPIOut, ch.SPIIn) {
		t.Errorf("CHILD SPIs do not pair up: ipsecgw in/out %s/%s, strongSwan in/out %s/%s", c.SPIIn, c.SPIOut, ch.SPIIn, ch.SPIOut)
	}
	t.Logf("ipsecgw: IKE %s, ESP %s; strongSwan: IKE %s, ESP %s", st.IKE.Proposal, c.Proposal, sa.Proposal(), ch.Proposal())
}

// TestIpsecgwInitiatesToStrongSwan: ipsecgw initiates (ipsecgw up) an IKEv2
// PSK tunnel to a strongSwan responder, both agree on algorithms and SPIs,
// hosts ping each other through it, the counters move, and SIGTERM deletes
// the SA at strongSwan and removes the TUN device.
func TestIpsecgwInitiatesToStrongSwan(t *testing.T) {
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const ike, esp = "aes128-sha256-modp2048", "aes128gcm16"
	c1, c2 := siteConns(l, ike, esp)
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

	st, err := gw.status(ctx, "s2s")
	if err != nil {
		t.Fatal(err)
	}
	if st.State != control.StateDown || st.Auto != "add" {
		t.Errorf("before up: %+v", st)
	}

	start := time.Now()
	out, err := gw.cli(ctx, "up", "s2s")
	if err != nil {
		t.Fatalf("ipsecgw up: %v\n%s", err, out)
	}
	upTook := time.Since(start)
	if _, err := l.Host1.Ping(ctx, l.Host2.Addr, 1); err != nil {
		t.Fatal(err)
	}
	firstPacket := time.Since(start)
	t.Logf("ipsecgw up: %s; established after %v, first ping answered through the tunnel after %v", strings.TrimSpace(out), upTook, firstPacket)

	st, err = gw.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	sa, err := charon.WaitEstablished(ctx, "s2s", "net")
	if err != nil {
		t.Fatal(err)
	}
	checkAgree(t, st, sa, "AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048", "AES_GCM_16-128")

	const n = 5
	pingBothWays(ctx, t, l, n)
	after, err := gw.status(ctx, "s2s")
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Children) != 1 {
		t.Fatalf("after pings: %+v", after)
	}
	ch := after.Children[0]
	// 1 + n requests from host1 and n replies to host2's requests leave
	// through the tunnel; as many come back.
	if ch.PacketsOut < 2*n+1 || ch.PacketsIn < 2*n+1 || ch.BytesOut == 0 || ch.BytesIn == 0 {
		t.Errorf("ipsecgw counters after %d pings each way: %+v", n, ch)
	}
	js, err := gw.cli(ctx, "status", "--json")
	if err != nil {
		t.Fatalf("status --json: %v\n%s", err, js)
	}
	var conns []control.ConnStatus
	if err := json.Unmarshal([]byte(js), &conns); err != nil || len(conns) != 1 || conns[0].State != "established" {
		t.Errorf("ipsecgw status --json: %v\n%s", err, js)
	}
	table, err := gw.cli(ctx, "status")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ipsecgw status:\n%s", table)

	// Shutdown deletes the SAs at the peer and removes the TUN device.
	if err := gw.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := charon.WaitDown(ctx, "s2s"); err != nil {
		t.Errorf("strongSwan still has the IKE SA after ipsecgw shut down: %v", err)
	}
	if out, err := l.GW1.Run(ctx, "ip", "link", "show", tunName); err == nil {
		t.Errorf("TUN device still exists after shutdown:\n%s", out)
	}
	if !strings.Contains(gw.Proc.Output(), `msg="connection state" conn=s2s state=established`) {
		t.Errorf("no state change line for established in the log:\n%s", tail(gw.Proc.Output(), 30))
	}
	if !strings.Contains(gw.Proc.Output(), "ipsecgw stopped") {
		t.Errorf("no clean stop in the log:\n%s", tail(gw.Proc.Output(), 20))
	}
}

// TestStrongSwanInitiatesToIpsecgw: strongSwan initiates to ipsecgw, which
// accepts as responder on an auto=add conn with right=%any.
func TestStrongSwanInitiatesToIpsecgw(t *testing.T) {
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const ike, esp = "aes256-sha384-ecp384", "aes256gcm16"
	c1, c2 := siteConns(l, ike, esp)
	c1.RemoteAddr = "%any"
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
	if err := charon.Initiate(ctx, "s2s", "net"); err != nil {
		t.Fatal(err)
	}
	st, err := gw.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	if st.IKE == nil || st.IKE.Initiator {
		t.Errorf("ipsecgw should be the responder: %+v", st.IKE)
	}
	sa, err := charon.WaitEstablished(ctx, "s2s", "net")
	if err != nil {
		t.Fatal(err)
	}
	checkAgree(t, st, sa, "AES_CBC-256/HMAC_SHA2_384_192/PRF_HMAC_SHA2_384/ECP_384", "AES_GCM_16-256")
	pingBothWays(ctx, t, l, 3)

	// strongSwan closes the tunnel: ipsecgw follows.
	if err := charon.Terminate(ctx, "s2s"); err != nil {
		t.Fatal(err)
	}
	if _, err := gw.waitState(ctx, "s2s", control.StateDown); err != nil {
		t.Error(err)
	}
}

// TestProposals: further proposals, ipsecgw initiating; each runs a fresh
// daemon against a reconfigured charon in one lab.
func TestProposals(t *testing.T) {
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	charon, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("charon log excerpt:\n%s", strings.Join(charon.LogExcerpt(), "\n"))
		}
	})
	for _, tc := range []struct {
		ike, esp         string
		wantIKE, wantESP string
	}{
		{"aes128-sha256-modp2048", "aes128-sha256", "AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048", "AES_CBC-128/HMAC_SHA2_256_128"},
		{"aes256gcm16-prfsha256-curve25519", "aes256gcm16", "AES_GCM_16-256/PRF_HMAC_SHA2_256/CURVE_25519", "AES_GCM_16-256"},
		{"aes128-sha1-modp2048", "aes128-sha1", "AES_CBC-128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_2048", "AES_CBC-128/HMAC_SHA1_96"},
		{"chacha20poly1305-prfsha256-curve25519", "chacha20poly1305", "CHACHA20_POLY1305/PRF_HMAC_SHA2_256/CURVE_25519", "CHACHA20_POLY1305"},
		{"aes256-sha512-ecp521", "aes256gcm16-modp2048", "AES_CBC-256/HMAC_SHA2_512_256/PRF_HMAC_SHA2_512/ECP_521", "AES_GCM_16-256"},
	} {
		t.Run(tc.ike+"/"+tc.esp, func(t *testing.T) {
			c1, c2 := siteConns(l, tc.ike, tc.esp)
			if err := charon.Reconfigure(ctx, lab.SwanctlConf(c2)); err != nil {
				t.Fatal(err)
			}
			gw := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: c1.IPsecConf(), Secrets: c1.IPsecSecrets()})
			if out, err := gw.cli(ctx, "up", "s2s"); err != nil {
				t.Fatalf("ipsecgw up: %v\n%s", err, out)
			}
			st, err := gw.waitState(ctx, "s2s", control.StateEstablished)
			if err != nil {
				t.Fatal(err)
			}
			sa, err := charon.WaitEstablished(ctx, "s2s", "net")
			if err != nil {
				t.Fatal(err)
			}
			checkAgree(t, st, sa, tc.wantIKE, tc.wantESP)
			pingBothWays(ctx, t, l, 2)
			if err := gw.Stop(); err != nil {
				t.Fatal(err)
			}
			if err := charon.WaitDown(ctx, "s2s"); err != nil {
				t.Errorf("IKE SA left at strongSwan: %v", err)
			}
		})
	}
}

// TestWrongPSK: with a PSK strongSwan does not share, the conn ends in
// phase1-failed with a reason that points at the PSK, and no SA exists on
// either side.
func TestWrongPSK(t *testing.T) {
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const ike, esp = "aes128-sha256-modp2048", "aes128gcm16"
	c1, c2 := siteConns(l, ike, esp)
	c1.PSK = "a-different-psk-9876543210"
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
	out, err := gw.cli(ctx, "up", "s2s")
	if err == nil {
		t.Fatalf("ipsecgw up succeeded with a wrong PSK:\n%s", out)
	}
	t.Logf("ipsecgw up with a wrong PSK: %s", strings.TrimSpace(out))
	st, err := gw.waitState(ctx, "s2s", control.StatePhase1Failed)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(strings.ToLower(st.LastError), "psk") && !strings.Contains(st.LastError, "AUTHENTICATION_FAILED") {
		t.Errorf("reason does not point at the PSK: %q", st.LastError)
	}
	if strings.Contains(st.LastError, testPSK) || strings.Contains(st.LastError, c1.PSK) || strings.Contains(gw.Proc.Output(), c1.PSK) {
		t.Error("the PSK leaked into the status or the log")
	}
	if len(st.Children) != 0 {
		t.Errorf("CHILD SAs after a failed authentication: %+v", st.Children)
	}
	for !strings.Contains(gw.Proc.Output(), `conn=s2s state=phase1-failed`) {
		select {
		case <-ctx.Done():
			t.Fatalf("no state change line for phase1-failed in the log:\n%s", tail(gw.Proc.Output(), 30))
		case <-time.After(20 * time.Millisecond):
		}
	}
	sas, err := charon.ListSAs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, sa := range sas {
		if sa.State == "ESTABLISHED" || len(sa.Children) > 0 {
			t.Errorf("strongSwan has an SA after a failed authentication: %+v", sa)
		}
	}
	if _, err := l.Host1.Ping(ctx, l.Host2.Addr, 1); err == nil {
		t.Error("ping between the LANs works without a tunnel")
	}
}

// TestTrapPolicy: an auto=route conn negotiates when traffic hits its
// policy; the held first packets go through once the SA is up.
func TestTrapPolicy(t *testing.T) {
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const ike, esp = "aes128-sha256-modp2048", "aes128gcm16"
	c1, c2 := siteConns(l, ike, esp)
	c1.StartAction = "trap"
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
	st, err := gw.status(ctx, "s2s")
	if err != nil {
		t.Fatal(err)
	}
	if st.State != control.StateDown || st.Auto != "route" {
		t.Errorf("before traffic: %+v", st)
	}
	start := time.Now()
	// Ping's deadline (2 s + count) covers the negotiation.
	if _, err := l.Host1.Ping(ctx, l.Host2.Addr, 3); err != nil {
		t.Fatal(err)
	}
	t.Logf("trap: 3 pings answered %v after the first was sent", time.Since(start))
	if _, err := gw.waitState(ctx, "s2s", control.StateEstablished); err != nil {
		t.Fatal(err)
	}
	if _, err := charon.WaitEstablished(ctx, "s2s", "net"); err != nil {
		t.Fatal(err)
	}
}
