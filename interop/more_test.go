package interop

import (
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/internal/lab"
)

// TestIpsecgwToIpsecgw: two daemons on one host, each in its own gateway
// namespace with its own files, control socket and TUN device: gw1 starts
// its conn at startup (auto=start), gw2 answers (auto=add, right=%any).
// ipsecgw down on one side takes the tunnel down on both.
// TestIpsecgwToIpsecgw: two ipsecgw daemons recognise each other and run
// ESP in UDP (esp.encapsulation auto, the default: faster in our
// dataplane), or raw ESP, IP protocol 50, with esp.encapsulation nat.
func TestIpsecgwToIpsecgw(t *testing.T) {
	for _, tc := range []struct {
		name, settings string
		wantUDP        bool
	}{
		{"auto", "", true},
		{"nat", "esp:\n  encapsulation: nat\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) { testIpsecgwToIpsecgw(t, tc.settings, tc.wantUDP) })
	}
}

func testIpsecgwToIpsecgw(t *testing.T, settings string, wantUDP bool) {
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c1, c2 := siteConns(l, "aes128gcm16-prfsha256-ecp256", "aes128gcm16")
	c1.StartAction = "start"
	c2.RemoteAddr = "%any"
	gw2 := startGateway(ctx, t, l.GW2, gatewayFiles{Conf: c2.IPsecConf(), Secrets: c2.IPsecSecrets(), Settings: settings})
	gw1 := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: c1.IPsecConf(), Secrets: c1.IPsecSecrets(), Settings: settings})
	if gw1.Socket == gw2.Socket {
		t.Fatal("the two daemons share a control socket")
	}
	s1, err := gw1.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := gw2.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	if !s1.IKE.Initiator || s2.IKE.Initiator || s1.IKE.InitiatorSPI != s2.IKE.InitiatorSPI || s1.IKE.ResponderSPI != s2.IKE.ResponderSPI {
		t.Errorf("IKE SAs do not match: gw1 %+v, gw2 %+v", s1.IKE, s2.IKE)
	}
	if len(s1.Children) != 1 || len(s2.Children) != 1 || s1.Children[0].SPIIn != s2.Children[0].SPIOut || s1.Children[0].SPIOut != s2.Children[0].SPIIn {
		t.Errorf("CHILD SAs do not pair up: gw1 %+v, gw2 %+v", s1.Children, s2.Children)
	}
	for _, c := range [][]control.ChildStatus{s1.Children, s2.Children} {
		if c[0].UDPEncap != wantUDP {
			t.Errorf("ESP in UDP: %v, want %v: %+v", c[0].UDPEncap, wantUDP, c[0])
		}
	}
	// The ESP that carries the pings is counted on the wire: in UDP to
	// port 4500, or IP protocol 50.
	filter := "esp && !udp"
	if wantUDP {
		filter = "esp && udp.port == 4500"
	}
	capt, err := l.GW2.StartCapture(ctx, lab.IfUnderlay, "")
	if err != nil {
		t.Fatal(err)
	}
	pingBothWays(ctx, t, l, 3)
	if err := capt.Stop(); err != nil {
		t.Fatal(err)
	}
	if n, err := capt.Count(ctx, filter); err != nil || n < 12 {
		t.Errorf("%d packets matching %q on gw2's uplink during 3+3 pings, want ≥ 12 (%v)", n, filter, err)
	}

	if out, err := gw1.cli(ctx, "down", "s2s"); err != nil {
		t.Fatalf("ipsecgw down: %v\n%s", err, out)
	}
	if _, err := gw1.waitState(ctx, "s2s", control.StateDown); err != nil {
		t.Error(err)
	}
	st, err := gw2.waitState(ctx, "s2s", control.StateDown)
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
	st, err := gw.waitState(ctx, "s2s", control.StateEstablished)
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

// TestFailures: misconfigurations end in the documented failure state with
// a reason that says what to change, and no SA on either side.
func TestFailures(t *testing.T) {
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
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
		name   string
		change func(gw1, gw2 *lab.Conn)
		state  string
		reason []string // each must appear in the reason (case-insensitive)
	}{
		{"ike-proposal-mismatch", func(gw1, gw2 *lab.Conn) { gw1.IKEProposals = "aes256-sha512-modp4096" },
			control.StatePhase1Failed, []string{"NO_PROPOSAL_CHOSEN"}},
		{"esp-proposal-mismatch", func(gw1, gw2 *lab.Conn) { gw1.ESPProposals = "aes256-sha512" },
			control.StatePhase2Failed, []string{"NO_PROPOSAL_CHOSEN"}},
		{"subnet-mismatch", func(gw1, gw2 *lab.Conn) { gw1.RemoteTS = "10.9.0.0/24" },
			control.StatePhase2Failed, []string{"TS_UNACCEPTABLE"}},
		{"wrong-remote-id", func(gw1, gw2 *lab.Conn) { gw1.RemoteID = "gw-somebody-else" },
			control.StatePhase1Failed, []string{"gw-somebody-else"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c1, c2 := siteConns(l, "aes128-sha256-modp2048", "aes128gcm16")
			tc.change(&c1, &c2)
			if err := charon.Reconfigure(ctx, lab.SwanctlConf(c2)); err != nil {
				t.Fatal(err)
			}
			gw := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: c1.IPsecConf(), Secrets: c1.IPsecSecrets()})
			out, err := gw.cli(ctx, "up", "s2s")
			if err == nil {
				t.Fatalf("ipsecgw up succeeded:\n%s", out)
			}
			st, err := gw.waitState(ctx, "s2s", tc.state)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("%s: %s", st.State, st.LastError)
			for _, want := range tc.reason {
				if !strings.Contains(strings.ToLower(st.LastError), strings.ToLower(want)) {
					t.Errorf("reason %q lacks %q", st.LastError, want)
				}
			}
			if len(st.Children) != 0 {
				t.Errorf("CHILD SAs after a failure: %+v", st.Children)
			}
			sas, err := charon.ListSAs(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, sa := range sas {
				if len(sa.Children) > 0 {
					t.Errorf("strongSwan has a CHILD SA: %+v", sa)
				}
			}
			if err := gw.Stop(); err != nil {
				t.Fatal(err)
			}
			if err := charon.WaitDown(ctx, "s2s"); err != nil {
				t.Errorf("strongSwan kept an IKE SA: %v", err)
			}
		})
	}
}

// TestChildRekeyByStrongSwan: strongSwan rekeys the CHILD SA after 12 s
// (CREATE_CHILD_SA with REKEY_SA and a PFS key exchange, ipsecgw
// responding); pings running across
// the rekey are all answered, and both sides end up on the new SPIs under
// the same IKE SA.
func TestChildRekeyByStrongSwan(t *testing.T) {
	if testing.Short() {
		t.Skip("rekey waits for a lifetime to pass")
	}
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// With a DH group in the ESP proposal the rekey carries a fresh key
	// exchange (PFS).
	c1, c2 := siteConns(l, "aes128-sha256-modp2048", "aes128gcm16-ecp256")
	c2.ChildExtra = "rekey_time = 12s"
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
	before, err := gw.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	// 75 pings 0.2 s apart span the rekey at 11-12 s and end before the
	// next one (at about 23 s).
	res, err := l.Host1.Ping(ctx, l.Host2.Addr, 75)
	if err != nil {
		t.Fatalf("pings across the rekey: %v\n%s", err, res.Output)
	}
	after, err := gw.status(ctx, "s2s")
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Children) != 1 || after.Children[0].SPIIn == before.Children[0].SPIIn {
		t.Fatalf("no rekey, or the old CHILD SA is still listed: before %+v, after %+v", before.Children, after.Children)
	}
	if after.IKE.InitiatorSPI != before.IKE.InitiatorSPI {
		t.Errorf("the IKE SA changed too: %+v -> %+v", before.IKE, after.IKE)
	}
	sa, err := charon.WaitEstablished(ctx, "s2s", "net")
	if err != nil {
		t.Fatal(err)
	}
	checkAgree(t, after, sa, "AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048", "AES_GCM_16-128/ECP_256")
	t.Logf("rekeyed: SPIs in/out %s/%s -> %s/%s, %d/%d pings answered", before.Children[0].SPIIn, before.Children[0].SPIOut,
		after.Children[0].SPIIn, after.Children[0].SPIOut, res.Received, res.Transmitted)
}

// TestReloadOnSIGHUP: SIGHUP reloads ipsec.conf. An unchanged conn keeps
// its SAs, a changed ESP proposal re-negotiates the conn with the new one,
// and a file with errors is refused while the tunnel stays up.
func TestReloadOnSIGHUP(t *testing.T) {
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c1, c2 := siteConns(l, "aes128-sha256-modp2048", "aes128gcm16")
	c2.ESPProposals = "aes128gcm16,aes256gcm16"
	c1.StartAction = "start"
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
	first, err := gw.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	confPath := gw.ConfPath
	reload := func(text, wantLog string) {
		t.Helper()
		if err := os.WriteFile(confPath, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		n := strings.Count(gw.Proc.Output(), wantLog)
		gw.Proc.Signal(syscall.SIGHUP)
		for strings.Count(gw.Proc.Output(), wantLog) == n {
			select {
			case <-ctx.Done():
				t.Fatalf("no %q in the log after SIGHUP:\n%s", wantLog, tail(gw.Proc.Output(), 30))
			case <-time.After(20 * time.Millisecond):
			}
		}
	}

	reload(c1.IPsecConf()+"# a comment changes nothing\n", "configuration reloaded")
	same, err := gw.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	if same.Children[0].SPIIn != first.Children[0].SPIIn || same.IKE.InitiatorSPI != first.IKE.InitiatorSPI {
		t.Errorf("an unchanged conn was re-negotiated: %+v -> %+v", first.Children, same.Children)
	}

	c1.ESPProposals = "aes256gcm16"
	reload(c1.IPsecConf(), "configuration reloaded")
	var changed control.ConnStatus
	for {
		changed, err = gw.waitState(ctx, "s2s", control.StateEstablished)
		if err != nil {
			t.Fatal(err)
		}
		if len(changed.Children) == 1 && changed.Children[0].Proposal == "aes256gcm16" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	sa, err := charon.WaitEstablished(ctx, "s2s", "net")
	if err != nil {
		t.Fatal(err)
	}
	checkAgree(t, changed, sa, "AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048", "AES_GCM_16-256")
	pingBothWays(ctx, t, l, 2)

	reload(c1.IPsecConf()+"conn broken\n  ike=nonsense-proposal\n  auto=start\n", "reload refused")
	kept, err := gw.status(ctx, "s2s")
	if err != nil {
		t.Fatal(err)
	}
	if kept.State != control.StateEstablished || kept.Children[0].SPIIn != changed.Children[0].SPIIn {
		t.Errorf("a refused reload disturbed the tunnel: %+v", kept)
	}
	if !strings.Contains(gw.Proc.Output(), "ipsec.conf:") {
		t.Errorf("the refused reload does not name FILE:LINE:\n%s", tail(gw.Proc.Output(), 20))
	}
	pingBothWays(ctx, t, l, 1)
}

// enableIPv6Underlay turns IPv6 on for the gateways' underlay link (the lab
// disables it everywhere) and gives them documentation addresses.
func enableIPv6Underlay(ctx context.Context, t *testing.T, l *lab.Lab) (gw1, gw2 string) {
	t.Helper()
	gw1, gw2 = "2001:db8:100::1", "2001:db8:100::2"
	for _, n := range []struct {
		node *lab.Node
		addr string
	}{{l.GW1, gw1}, {l.GW2, gw2}} {
		for _, argv := range [][]string{
			{"sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=0"},
			{"sysctl", "-qw", "net.ipv6.conf.ul.disable_ipv6=0"},
			{"ip", "-6", "addr", "add", n.addr + "/64", "dev", "ul", "nodad"},
		} {
			if out, err := n.node.Run(ctx, argv...); err != nil {
				if os.Getenv("IPSECGW_REQUIRE_INTEROP") == "1" {
					t.Fatalf("no IPv6 on the lab underlay: %v\n%s", err, out)
				}
				t.Skipf("no IPv6 on the lab underlay: %v\n%s", err, out)
			}
		}
	}
	return gw1, gw2
}

// TestIPv6Underlay: ipsecgw and strongSwan build the tunnel between IPv6
// gateway addresses (IPv4 LANs inside).
func TestIPv6Underlay(t *testing.T) {
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	a1, a2 := enableIPv6Underlay(ctx, t, l)
	c1, c2 := siteConns(l, "aes128-sha256-modp2048", "aes128gcm16")
	c1.LocalAddr, c1.RemoteAddr, c1.LocalID, c1.RemoteID = a1, a2, a1, a2
	c2.LocalAddr, c2.RemoteAddr, c2.LocalID, c2.RemoteID = a2, a1, a2, a1
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
	st, err := gw.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	sa, err := charon.WaitEstablished(ctx, "s2s", "net")
	if err != nil {
		t.Fatal(err)
	}
	checkAgree(t, st, sa, "AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048", "AES_GCM_16-128")
	if !strings.HasPrefix(st.Remote, "[2001:db8:100::2]:") {
		t.Errorf("remote %q is not the IPv6 peer", st.Remote)
	}
	pingBothWays(ctx, t, l, 3)
}

// TestDeadPeerDetection: when strongSwan dies without a word, ipsecgw's DPD
// (dpddelay=2s, dpdaction=clear, 1 s retransmission timeout, 2 tries)
// notices, removes the SAs and shows the conn down with a reason.
func TestDeadPeerDetection(t *testing.T) {
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c1, c2 := siteConns(l, "aes128-sha256-modp2048", "aes128gcm16")
	charon, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf(c2)})
	if err != nil {
		t.Fatal(err)
	}
	conf := c1.IPsecConf() + "  dpddelay=2s\n  dpdaction=clear\n"
	gw := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: conf, Secrets: c1.IPsecSecrets(),
		Settings: "retransmit:\n  timeout: 1s\n  tries: 2\n"})
	if out, err := gw.cli(ctx, "up", "s2s"); err != nil {
		t.Fatalf("ipsecgw up: %v\n%s", err, out)
	}
	if _, err := gw.waitState(ctx, "s2s", control.StateEstablished); err != nil {
		t.Fatal(err)
	}
	if err := charon.Proc.Stop(syscall.SIGKILL, time.Second); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	st, err := gw.waitState(ctx, "s2s", control.StateDown, control.StatePhase1Failed)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("dead peer noticed after %v: %s (%s)", time.Since(start).Round(100*time.Millisecond), st.State, st.LastError)
	if len(st.Children) != 0 || st.IKE != nil {
		t.Errorf("SAs left after the peer died: %+v", st)
	}
	if st.LastError == "" {
		t.Error("no reason given for the dead peer")
	}
}

// TestRekeyByIpsecgw: ipsecgw rekeys the CHILD SA (lifetime 20 s, margin
// 8 s: at 12 s) and the IKE SA (ikelifetime 30 s, margin 8 s: at 22 s)
// with CREATE_CHILD_SA while pings run; none is lost and strongSwan ends
// up on the same new SAs.
func TestRekeyByIpsecgw(t *testing.T) {
	if testing.Short() {
		t.Skip("rekey waits for lifetimes to pass")
	}
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
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
	conf := c1.IPsecConf() + "  lifetime=20s\n  ikelifetime=30s\n  margintime=8s\n  rekeyfuzz=0%\n  reauth=no\n"
	gw := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: conf, Secrets: c1.IPsecSecrets()})
	if out, err := gw.cli(ctx, "up", "s2s"); err != nil {
		t.Fatalf("ipsecgw up: %v\n%s", err, out)
	}
	before, err := gw.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	// 125 pings 0.2 s apart (25 s) span both rekeys.
	res, err := l.Host1.Ping(ctx, l.Host2.Addr, 125)
	if err != nil {
		t.Fatalf("pings across the rekeys: %v\n%s", err, res.Output)
	}
	after, err := gw.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	if len(after.Children) != 1 || after.Children[0].SPIIn == before.Children[0].SPIIn {
		t.Errorf("CHILD SA not rekeyed, or the old one still listed: before %+v, after %+v", before.Children, after.Children)
	}
	if after.IKE.InitiatorSPI == before.IKE.InitiatorSPI {
		t.Errorf("IKE SA not rekeyed: %+v", after.IKE)
	}
	sa, err := charon.WaitEstablished(ctx, "s2s", "net")
	if err != nil {
		t.Fatal(err)
	}
	checkAgree(t, after, sa, "AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048", "AES_GCM_16-128")
	sas, err := charon.ListSAs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sas) != 1 || len(sas[0].Children) != 1 {
		t.Errorf("strongSwan keeps old SAs after the rekeys: %+v", sas)
	}
	t.Logf("rekeyed: IKE %s -> %s, CHILD in/out %s/%s -> %s/%s, %d/%d pings answered",
		before.IKE.InitiatorSPI, after.IKE.InitiatorSPI, before.Children[0].SPIIn, before.Children[0].SPIOut,
		after.Children[0].SPIIn, after.Children[0].SPIOut, res.Received, res.Transmitted)
}

// TestIpsecgwResponderPeerBehindNAT: strongSwan behind a MASQUERADE NAT
// (gw1) initiates to ipsecgw (gw2, auto=add, right=%any), which sees the
// NAT, answers on 4500 to the NAT's port and encapsulates ESP.
func TestIpsecgwResponderPeerBehindNAT(t *testing.T) {
	l := lab.New(t, lab.Options{NAT: true})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	gwConn, swConn := siteConns(l, "aes256-sha256-ecp256", "aes256gcm16")
	// siteConns gives gw1's view first; here ipsecgw is gw2.
	swConn, gwConn = gwConn, swConn
	swConn.LocalAddr = l.GW1.Addr.String() // its own address behind the NAT
	gwConn.RemoteAddr = "%any"
	charon, err := l.GW1.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf(swConn)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("charon log excerpt:\n%s", strings.Join(charon.LogExcerpt(), "\n"))
		}
	})
	gw := startGateway(ctx, t, l.GW2, gatewayFiles{Conf: gwConn.IPsecConf(), Secrets: gwConn.IPsecSecrets()})
	if err := charon.Initiate(ctx, "s2s", "net"); err != nil {
		t.Fatal(err)
	}
	st, err := gw.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	sa, err := charon.WaitEstablished(ctx, "s2s", "net")
	if err != nil {
		t.Fatal(err)
	}
	checkAgree(t, st, sa, "AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/ECP_256", "AES_GCM_16-256")
	if !st.IKE.NATDetected || !st.Children[0].UDPEncap || st.IKE.Initiator {
		t.Errorf("ipsecgw responder behind-NAT view: %+v %+v", st.IKE, st.Children[0])
	}
	if !sa.NATLocal {
		t.Errorf("strongSwan does not see itself behind the NAT: %+v", sa)
	}
	pingBothWays(ctx, t, l, 3)
}
