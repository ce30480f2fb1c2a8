package interop

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/internal/lab"
)

// IKEv1 against strongSwan 5.9 (swanctl version = 1): the interop matrix
// of issue 15 in both directions, aggressive mode, NAT on either side,
// rekeys under traffic, DPD, INITIAL-CONTACT, failures, and ike-scan as an
// independent client. Cases share labs and charons where they can:
// charon is reconfigured and a fresh ipsecgw started per case.

// v1Conns returns siteConns as IKEv1 conns.
func v1Conns(l *lab.Lab, ike, esp string) (gw1, gw2 lab.Conn) {
	gw1, gw2 = siteConns(l, ike, esp)
	gw1.Version, gw2.Version = 1, 1
	return gw1, gw2
}

// v1Plugins are charon's plugins for the IKEv1 tests: des and md5 for the
// legacy 3des-md5 row, whatever OpenSSL was built with.
func v1Plugins() []string { return append(slices.Clone(lab.DefaultPlugins), "des", "md5") }

// fastRetransmit makes ipsecgw give up quickly where a test expects no
// answer.
const fastRetransmit = "retransmit:\n  timeout: 1s\n  tries: 2\n"

// charonLogOnFailure prints charon's log excerpt when the test fails.
func charonLogOnFailure(t *testing.T, charon *lab.Charon) {
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("charon log excerpt:\n%s", strings.Join(charon.LogExcerpt(), "\n"))
		}
	})
}

// v1Case is one row of the IKEv1 matrix.
type v1Case struct {
	name             string
	ike, esp         string
	wantIKE, wantESP string // as swanctl --list-sas prints them
	aggressive       bool   // aggressive mode with FQDN IDs
	anyRemote        bool   // ipsecgw's conn right=%any (strongSwan initiates only)
	keyexchangeIKE   bool   // ipsecgw's conn keyexchange=ike (strongSwan initiates only)
}

// TestV1Matrix: the IKEv1 interop matrix, each case in both directions
// where both make sense: the cloud VPN template, CloudStack with PFS,
// AES-256/SHA-256 with AES-GCM, 3DES/MD5, an ECP group, aggressive mode
// with FQDN IDs, a right=%any responder, and a keyexchange=ike conn
// accepting a strongSwan IKEv1 initiator. Each case checks that both ends
// agree on algorithms and SPIs, pings both ways and runs iperf3 for 2 s in
// both directions at once; the summary lists what strongSwan printed.
func TestV1Matrix(t *testing.T) {
	l := lab.New(t, lab.Options{Tools: []string{"iperf3"}})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	// strongSwan answers aggressive mode with a PSK only when told that
	// we do not care about its crackable hash.
	charon, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf(), Plugins: v1Plugins(),
		Extra: "  i_dont_care_about_security_and_use_aggressive_mode_psk = yes\n"})
	if err != nil {
		t.Fatal(err)
	}
	charonLogOnFailure(t, charon)
	const template = "AES_CBC-128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024"
	cases := []v1Case{
		{name: "cloud-template", ike: "aes128-sha1-modp1024", esp: "aes128-sha1", wantIKE: template, wantESP: "AES_CBC-128/HMAC_SHA1_96"},
		{name: "cloudstack-pfs", ike: "aes128-sha1-modp1536", esp: "aes128-sha1-modp1536",
			wantIKE: "AES_CBC-128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1536", wantESP: "AES_CBC-128/HMAC_SHA1_96/MODP_1536"},
		{name: "aes256-sha256-gcm", ike: "aes256-sha256-modp2048", esp: "aes256gcm16",
			wantIKE: "AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048", wantESP: "AES_GCM_16-256"},
		{name: "3des-md5", ike: "3des-md5-modp1024", esp: "3des-md5", wantIKE: "3DES_CBC/HMAC_MD5_96/PRF_HMAC_MD5/MODP_1024", wantESP: "3DES_CBC/HMAC_MD5_96"},
		{name: "ecp256", ike: "aes128-sha256-ecp256", esp: "aes128-sha256",
			wantIKE: "AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/ECP_256", wantESP: "AES_CBC-128/HMAC_SHA2_256_128"},
		{name: "aggressive-fqdn", ike: "aes128-sha256-modp2048", esp: "aes128gcm16", aggressive: true,
			wantIKE: "AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048", wantESP: "AES_GCM_16-128"},
	}
	responderOnly := []v1Case{
		{name: "right=%any", ike: "aes128-sha1-modp1024", esp: "aes128-sha1", wantIKE: template, wantESP: "AES_CBC-128/HMAC_SHA1_96", anyRemote: true},
		{name: "keyexchange=ike", ike: "aes128-sha1-modp1024", esp: "aes128-sha1", wantIKE: template, wantESP: "AES_CBC-128/HMAC_SHA1_96", keyexchangeIKE: true},
	}
	var rows []string
	run := func(tc v1Case, ipsecgwInitiates bool) {
		dir := "strongSwan→ipsecgw"
		if ipsecgwInitiates {
			dir = "ipsecgw→strongSwan"
		}
		var row string
		ok := t.Run(tc.name+"/"+strings.ReplaceAll(dir, "→", "-to-"), func(t *testing.T) {
			row = v1MatrixRun(ctx, t, l, charon, tc, ipsecgwInitiates)
		})
		res := "pass"
		if !ok {
			res = "FAIL"
		}
		rows = append(rows, fmt.Sprintf("%-18s %-20s %-4s %s", tc.name, dir, res, row))
	}
	for _, tc := range cases {
		run(tc, true)
		run(tc, false)
	}
	for _, tc := range responderOnly {
		run(tc, false)
	}
	t.Logf("IKEv1 interop matrix:\n%-18s %-20s %-4s %s\n%s", "case", "initiator→responder", "ok", "strongSwan IKE / ESP; ping; iperf3 Mbit/s 1→2 / 2→1", strings.Join(rows, "\n"))
}

// v1MatrixRun runs one case and returns its summary.
func v1MatrixRun(ctx context.Context, t *testing.T, l *lab.Lab, charon *lab.Charon, tc v1Case, ipsecgwInitiates bool) string {
	c1, c2 := v1Conns(l, tc.ike, tc.esp)
	if tc.aggressive {
		c1.Aggressive, c2.Aggressive = true, true
		c1.LocalID, c1.RemoteID = "@gw1.example", "@gw2.example"
		c2.LocalID, c2.RemoteID = "gw2.example", "gw1.example"
	}
	if tc.anyRemote {
		c1.RemoteAddr = "%any"
	}
	if tc.keyexchangeIKE {
		c1.Version = 0
	}
	if err := charon.Reconfigure(ctx, lab.SwanctlConf(c2)); err != nil {
		t.Fatal(err)
	}
	gw := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: c1.IPsecConf(), Secrets: c1.IPsecSecrets()})
	if ipsecgwInitiates {
		if out, err := gw.cli(ctx, "up", "s2s"); err != nil {
			t.Fatalf("ipsecgw up: %v\n%s", err, out)
		}
	} else if err := charon.Initiate(ctx, "s2s", "net"); err != nil {
		t.Fatal(err)
	}
	st, err := gw.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	if st.IKE == nil || st.IKE.Initiator != ipsecgwInitiates {
		t.Fatalf("ipsecgw initiator=%v, want %v", st.IKE != nil && st.IKE.Initiator, ipsecgwInitiates)
	}
	sa, err := charon.WaitEstablished(ctx, "s2s", "net")
	if err != nil {
		t.Fatal(err)
	}
	if sa.Version != 1 {
		t.Errorf("strongSwan negotiated IKEv%d", sa.Version)
	}
	checkAgree(t, st, sa, tc.wantIKE, tc.wantESP)
	if tc.aggressive && (sa.LocalID != "gw2.example" || sa.RemoteID != "gw1.example" || st.IKE.RemoteID != "@gw2.example") {
		t.Errorf("aggressive mode IDs: strongSwan %s/%s, ipsecgw remote %s", sa.LocalID, sa.RemoteID, st.IKE.RemoteID)
	}
	pingBothWays(ctx, t, l, 2)
	i12, i21 := matrixIperf(ctx, t, l)
	ch, _ := sa.Child("net")
	if err := gw.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := charon.WaitDown(ctx, "s2s"); err != nil {
		t.Errorf("ISAKMP SA left at strongSwan: %v", err)
	}
	return fmt.Sprintf("%s / %s; 2+2 pings; %.0f / %.0f", sa.Proposal(), ch.Proposal(), i12, i21)
}

// logTimes returns the time stamps of the log lines containing each of
// marks, in order, each searched after the previous one.
var logTime = regexp.MustCompile(`time=(\S+)`)

func logTimes(log string, marks ...string) ([]time.Time, error) {
	var out []time.Time
	rest := log
	for _, m := range marks {
		i := strings.Index(rest, m)
		if i < 0 {
			return nil, fmt.Errorf("no log line with %q", m)
		}
		start := strings.LastIndex(rest[:i], "\n") + 1
		line := rest[start:]
		if j := strings.IndexByte(line, '\n'); j >= 0 {
			line = line[:j]
		}
		mt := logTime.FindStringSubmatch(line)
		if mt == nil {
			return nil, fmt.Errorf("no time in %q", line)
		}
		ts, err := time.Parse(time.RFC3339Nano, mt[1])
		if err != nil {
			return nil, err
		}
		out = append(out, ts)
		rest = rest[i+len(m):]
	}
	return out, nil
}

// TestV1SetupTime measures how long ipsecgw takes from initiating to the
// installed IPsec SA (from its own log, so that the CLI's polling does not
// count) with the cloud template's algorithms, IKEv1 main + quick mode
// next to IKEv2 IKE_SA_INIT + IKE_AUTH, 21 times each, against the same
// charon in the same lab.
func TestV1SetupTime(t *testing.T) {
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	charon, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf()})
	if err != nil {
		t.Fatal(err)
	}
	charonLogOnFailure(t, charon)
	const rounds = 21
	medians := map[int]time.Duration{}
	for _, version := range []int{1, 2} {
		c1, c2 := siteConns(l, "aes128-sha1-modp1024", "aes128-sha1")
		c1.Version, c2.Version = version, version
		if err := charon.Reconfigure(ctx, lab.SwanctlConf(c2)); err != nil {
			t.Fatal(err)
		}
		gw := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: c1.IPsecConf(), Secrets: c1.IPsecSecrets(), LogLevel: "info"})
		start, done := "initiating IKE SA", "CHILD SA established"
		if version == 1 {
			start, done = "initiating ISAKMP SA", "IPsec SA established"
		}
		var took []time.Duration
		for range rounds {
			mark := len(gw.Log())
			if out, err := gw.cli(ctx, "up", "s2s"); err != nil {
				t.Fatalf("ipsecgw up: %v\n%s", err, out)
			}
			ts, err := logTimes(gw.Log()[mark:], start, done)
			if err != nil {
				t.Fatal(err)
			}
			took = append(took, ts[1].Sub(ts[0]))
			if out, err := gw.cli(ctx, "down", "s2s"); err != nil {
				t.Fatalf("ipsecgw down: %v\n%s", err, out)
			}
			if err := charon.WaitDown(ctx, "s2s"); err != nil {
				t.Fatal(err)
			}
		}
		if err := gw.Stop(); err != nil {
			t.Fatal(err)
		}
		sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
		var sum time.Duration
		for _, d := range took {
			sum += d
		}
		medians[version] = took[rounds/2]
		t.Logf("IKEv%d setup (initiating → IPsec SA installed, log time stamps in ms), aes128-sha1-modp1024 / aes128-sha1: median %v, mean %v, min %v, max %v",
			version, took[rounds/2], (sum / rounds).Round(10*time.Microsecond), took[0], took[rounds-1])
	}
	t.Logf("setup time: IKEv1 %v, IKEv2 %v", medians[1], medians[2])
}

// TestV1NAT: NAT on either side: ipsecgw behind a MASQUERADE NAT
// initiating to strongSwan, then strongSwan behind it initiating to an
// ipsecgw responder with right=%any. Both detect the NAT with NAT-D,
// float to 4500 and carry ESP in UDP.
func TestV1NAT(t *testing.T) {
	l := lab.New(t, lab.Options{NAT: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const ike, esp = "aes128-sha1-modp1024", "aes128-sha1"
	const wantIKE, wantESP = "AES_CBC-128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024", "AES_CBC-128/HMAC_SHA1_96"
	t.Run("ipsecgw-behind-NAT", func(t *testing.T) {
		c1, c2 := v1Conns(l, ike, esp)
		charon, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Name: "gw2-nat", Swanctl: lab.SwanctlConf(c2)})
		if err != nil {
			t.Fatal(err)
		}
		charonLogOnFailure(t, charon)
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
		checkAgree(t, st, sa, wantIKE, wantESP)
		if !st.IKE.NATDetected || !st.Children[0].UDPEncap || !sa.NATRemote || sa.RemotePort == 500 {
			t.Errorf("NAT: ipsecgw %+v %+v; strongSwan nat-remote %v, remote port %d", st.IKE, st.Children[0], sa.NATRemote, sa.RemotePort)
		}
		pingBothWays(ctx, t, l, 3)
		if err := gw.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := charon.Proc.Stop(syscall.SIGTERM, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("strongSwan-behind-NAT", func(t *testing.T) {
		gwConn, swConn := v1Conns(l, ike, esp)
		swConn, gwConn = gwConn, swConn // ipsecgw is gw2 here
		swConn.LocalAddr = l.GW1.Addr.String()
		gwConn.RemoteAddr = "%any"
		charon, err := l.GW1.StartCharon(ctx, lab.CharonConfig{Name: "gw1-nat", Swanctl: lab.SwanctlConf(swConn)})
		if err != nil {
			t.Fatal(err)
		}
		charonLogOnFailure(t, charon)
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
		checkAgree(t, st, sa, wantIKE, wantESP)
		if !st.IKE.NATDetected || !st.Children[0].UDPEncap || st.IKE.Initiator || !sa.NATLocal {
			t.Errorf("NAT: ipsecgw %+v %+v; strongSwan nat-local %v", st.IKE, st.Children[0], sa.NATLocal)
		}
		pingBothWays(ctx, t, l, 3)
		if err := gw.Stop(); err != nil {
			t.Fatal(err)
		}
		if err := charon.Proc.Stop(syscall.SIGTERM, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	})
}

// TestV1RekeyNoLoss: phase 2 rekeys and phase 1 reauthentications with
// short lifetimes under a 100 pps ping for at least 40 s, first driven by
// ipsecgw (IPsec SA lifetime 20 s - margin 8 s, ISAKMP SA 30 s - margin
// 8 s), then by strongSwan (rekey_time 10 s for the IPsec SA,
// reauth_time 20 s, and like every strongSwan it keeps the SA it
// rekeyed or reauthenticated until that expires): not one echo request
// or reply may be lost, the IPsec SAs move to each new ISAKMP SA without
// a quick mode, and none runs into its lifetime without a successor.
func TestV1RekeyNoLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("rekeys wait for lifetimes to pass")
	}
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	const ike, esp = "aes128-sha1-modp1024", "aes128-sha1-modp1024"
	for _, ipsecgwDrives := range []bool{true, false} {
		name := "strongSwan-drives"
		if ipsecgwDrives {
			name = "ipsecgw-drives"
		}
		t.Run(name, func(t *testing.T) {
			c1, c2 := v1Conns(l, ike, esp)
			conf := c1.IPsecConf()
			if ipsecgwDrives {
				conf += "  lifetime=20s\n  margintime=8s\n  ikelifetime=30s\n  rekeyfuzz=0%\n"
				c2.ConnExtra = "rekey_time = 0s\n    reauth_time = 0s"
				c2.ChildExtra = "rekey_time = 0s\n        life_time = 1h"
			} else {
				c2.ConnExtra = "reauth_time = 20s\n    rand_time = 0s\n    over_time = 60s"
				c2.ChildExtra = "rekey_time = 10s\n        rand_time = 0s\n        life_time = 30s"
			}
			charon, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Name: "gw2-" + name, Swanctl: lab.SwanctlConf(c2)})
			if err != nil {
				t.Fatal(err)
			}
			charonLogOnFailure(t, charon)
			gw := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: conf, Secrets: c1.IPsecSecrets(), LogLevel: "info"})
			if out, err := gw.cli(ctx, "up", "s2s"); err != nil {
				t.Fatalf("ipsecgw up: %v\n%s", err, out)
			}
			before, err := gw.waitState(ctx, "s2s", control.StateEstablished)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			// 10 ms apart: 100 pps for at least 40 s (a busy machine
			// sends them more slowly; the rate achieved is logged).
			const count = 4000
			sent, received, out, err := floodPing(ctx, l.Host1, l.Host2.Addr, count, "0.01")
			if err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			log := gw.Log()
			rekeys := strings.Count(log, "rekeying IPsec SA")
			reauths := strings.Count(log, "reauthenticating ISAKMP SA")
			swLog := strings.Join(charon.LogLines(), "\n")
			// charon logs "generating QUICK_MODE request" for messages 1 and 3.
			peerRekeys := strings.Count(swLog, "generating QUICK_MODE request") / 2
			peerReauths := strings.Count(swLog, "reauthenticating IKE_SA")
			t.Logf("ping for %v (%.0f pps): %d sent, %d received, %d lost; ipsecgw rekeyed %d IPsec SAs and reauthenticated %d times, strongSwan %d and %d",
				took.Round(time.Second), float64(sent)/took.Seconds(), sent, received, sent-received, rekeys, reauths, peerRekeys, peerReauths)
			if sent != count || received != sent {
				t.Errorf("lost %d of %d echo requests/replies across the rekeys:\n%s", sent-received, sent, out)
			}
			// The side that does not drive does not reauthenticate; ipsecgw
			// may rekey an SA strongSwan let run on (at 90 % of its
			// lifetime: strongSwan skips a CHILD rekey that falls due
			// while it reauthenticates, and here both fall due together).
			if ipsecgwDrives && (rekeys < 2 || reauths < 1 || peerRekeys+peerReauths > 0) ||
				!ipsecgwDrives && (peerRekeys < 2 || peerReauths < 1 || reauths > 0 || rekeys >= peerRekeys) {
				t.Errorf("rekeys: ipsecgw %d/%d, strongSwan %d/%d; want at least 2/1 from the side that drives, no reauthentication and fewer rekeys from the other", rekeys, reauths, peerRekeys, peerReauths)
			}
			// When ipsecgw drives, no IPsec SA may run into its lifetime.
			// When strongSwan drives, its reauthentication (every 20 s)
			// falls due with a CHILD rekey (every 10 s) and strongSwan
			// then skips that rekey; the SA runs out at both ends while a
			// newer SA of the same selectors carries the traffic (no
			// ping is lost, checked above). That is counted, not failed.
			if n := strings.Count(log, "expired without a successor"); n > 0 {
				if ipsecgwDrives {
					t.Errorf("%d IPsec SAs ran into their lifetime without a successor", n)
				} else {
					t.Logf("%d IPsec SAs strongSwan did not rekey ran into their lifetime (a newer SA carried the traffic)", n)
				}
			}
			after, err := gw.status(ctx, "s2s")
			if err != nil {
				t.Fatal(err)
			}
			if after.State != control.StateEstablished || after.IKE == nil || after.IKE.InitiatorSPI == before.IKE.InitiatorSPI {
				t.Errorf("after the reauthentications: %+v", after)
			}
			if err := gw.Stop(); err != nil {
				t.Fatal(err)
			}
			if err := charon.Proc.Stop(syscall.SIGTERM, 5*time.Second); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestV1DPD: strongSwan is killed (SIGKILL); ipsecgw's DPD (dpddelay 3 s,
// dpdtimeout 9 s) declares the peer dead within dpdtimeout, and
// dpdaction=restart brings the tunnel back when a new strongSwan answers.
func TestV1DPD(t *testing.T) {
	if testing.Short() {
		t.Skip("DPD waits for timeouts")
	}
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c1, c2 := v1Conns(l, "aes128-sha1-modp1024", "aes128-sha1")
	charon, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf(c2)})
	if err != nil {
		t.Fatal(err)
	}
	conf := c1.IPsecConf() + "  dpddelay=3s\n  dpdtimeout=9s\n  dpdaction=restart\n  keyingtries=%forever\n"
	gw := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: conf, Secrets: c1.IPsecSecrets(), Settings: fastRetransmit})
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
	var detected time.Duration
	for {
		st, err := gw.status(ctx, "s2s")
		if err != nil {
			t.Fatal(err)
		}
		if st.IKE == nil || st.IKE.InitiatorSPI != first.IKE.InitiatorSPI {
			detected = time.Since(killed)
			t.Logf("DPD: dead peer detected %v after SIGKILL (dpddelay 3s, dpdtimeout 9s): %s %q", detected.Round(100*time.Millisecond), st.State, st.LastError)
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("DPD never noticed the dead peer: %+v", st)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if detected > 9*time.Second+time.Second {
		t.Errorf("detection took %v, more than dpdtimeout", detected)
	}
	if !strings.Contains(gw.Log(), "R-U-THERE") {
		t.Error("ipsecgw's log does not say DPD found the peer dead")
	}
	charon2, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Name: "gw2-again", Swanctl: lab.SwanctlConf(c2)})
	if err != nil {
		t.Fatal(err)
	}
	charonLogOnFailure(t, charon2)
	restarted := time.Now()
	st, err := gw.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	sa, err := charon2.WaitEstablished(ctx, "s2s", "net")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("tunnel back %v after strongSwan restarted", time.Since(restarted).Round(100*time.Millisecond))
	checkAgree(t, st, sa, "AES_CBC-128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024", "AES_CBC-128/HMAC_SHA1_96")
	pingBothWays(ctx, t, l, 2)
}

// TestV1RestartInitialContact: ipsecgw is killed and started again
// (auto=start): its new main mode carries INITIAL-CONTACT, so strongSwan
// replaces its stale ISAKMP and IPsec SAs with the new ones.
func TestV1RestartInitialContact(t *testing.T) {
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c1, c2 := v1Conns(l, "aes128-sha1-modp1024", "aes128-sha1")
	c1.StartAction = "start"
	charon, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf(c2)})
	if err != nil {
		t.Fatal(err)
	}
	charonLogOnFailure(t, charon)
	g1, err := l.GW1.StartIPsecGW(ctx, lab.IPsecGWConfig{Bin: binary, IPsecConf: c1.IPsecConf(), Secrets: c1.IPsecSecrets(),
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
	g2, err := g1.Restart(ctx)
	if err != nil {
		t.Fatal(err)
	}
	gw := &gateway{g2}
	t.Cleanup(func() {
		if err := g2.Stop(); err != nil {
			t.Errorf("%v:\n%s", err, tail(g2.Log(), 60))
		}
	})
	st, err := gw.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	var sas []lab.IKESA
	for {
		sas, err = charon.ListSAs(ctx)
		if err == nil && len(sas) == 1 && sas[0].InitiatorSPI != old.InitiatorSPI && len(sas[0].Children) == 1 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("strongSwan does not list exactly the new SAs: %+v", sas)
		case <-time.After(100 * time.Millisecond):
		}
	}
	checkAgree(t, st, sas[0], "AES_CBC-128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024", "AES_CBC-128/HMAC_SHA1_96")
	pingBothWays(ctx, t, l, 2)
}

// TestV1Failures: misconfigurations end in the documented state with a
// reason that says what to change, and no IPsec SA on either side, with
// ipsecgw as initiator and, where the responder is the side that knows,
// as responder.
func TestV1Failures(t *testing.T) {
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	charon, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf(), Plugins: v1Plugins()})
	if err != nil {
		t.Fatal(err)
	}
	charonLogOnFailure(t, charon)
	for _, tc := range []struct {
		name             string
		change           func(gw1, gw2 *lab.Conn)
		ipsecgwInitiates bool
		state            string
		reason           []string // each must appear in the reason (case-insensitive)
	}{
		{"wrong-psk", func(gw1, gw2 *lab.Conn) { gw1.PSK = "a-different-psk-9876543210" }, true,
			control.StatePhase1Failed, []string{"PSK"}},
		{"wrong-psk-responder", func(gw1, gw2 *lab.Conn) { gw1.PSK = "a-different-psk-9876543210" }, false,
			control.StatePhase1Failed, []string{"main mode message 5 did not decrypt", "PSK", "differs"}},
		{"ike-proposal-mismatch", func(gw1, gw2 *lab.Conn) { gw1.IKEProposals = "3des-md5-modp1024" }, true,
			control.StatePhase1Failed, []string{"NO-PROPOSAL-CHOSEN", "3des-md5-modp1024"}},
		{"ike-proposal-mismatch-responder", func(gw1, gw2 *lab.Conn) { gw1.IKEProposals = "3des-md5-modp1024" }, false,
			control.StatePhase1Failed, []string{"peer proposed aes128-sha1-modp1024; we accept 3des-md5-modp1024"}},
		{"esp-proposal-mismatch", func(gw1, gw2 *lab.Conn) { gw1.ESPProposals = "aes256-sha512" }, true,
			control.StatePhase2Failed, []string{"NO-PROPOSAL-CHOSEN", "aes256-sha512"}},
		{"esp-proposal-mismatch-responder", func(gw1, gw2 *lab.Conn) { gw1.ESPProposals = "aes256-sha512" }, false,
			control.StatePhase2Failed, []string{"peer proposed ESP aes128-sha1; we accept aes256-sha512"}},
		{"subnet-mismatch", func(gw1, gw2 *lab.Conn) { gw1.RemoteTS = "10.9.0.0/24" }, true,
			control.StatePhase2Failed, []string{"INVALID-ID-INFORMATION", "10.9.0.0/24"}},
		{"subnet-mismatch-responder", func(gw1, gw2 *lab.Conn) { gw1.RemoteTS = "10.9.0.0/24" }, false,
			control.StatePhase2Failed, []string{"traffic selectors did not match: we want 10.1.0.0/24 ↔ 10.9.0.0/24, peer proposed 10.1.0.0/24 ↔ 10.2.0.0/24"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c1, c2 := v1Conns(l, "aes128-sha1-modp1024", "aes128-sha1")
			tc.change(&c1, &c2)
			if err := charon.Reconfigure(ctx, lab.SwanctlConf(c2)); err != nil {
				t.Fatal(err)
			}
			gw := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: c1.IPsecConf(), Secrets: c1.IPsecSecrets(), Settings: fastRetransmit})
			if tc.ipsecgwInitiates {
				if out, err := gw.cli(ctx, "up", "s2s"); err == nil {
					t.Fatalf("ipsecgw up succeeded:\n%s", out)
				}
			} else {
				// It fails, and charon's error is not the point: do not
				// wait for its retransmissions.
				ictx, icancel := context.WithTimeout(ctx, 2*time.Second)
				_ = charon.Initiate(ictx, "s2s", "net")
				icancel()
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
			if strings.Contains(st.LastError, testPSK) || strings.Contains(gw.Log(), testPSK) {
				t.Error("the PSK leaked into the status or the log")
			}
			if len(st.Children) != 0 {
				t.Errorf("IPsec SAs after a failure: %+v", st.Children)
			}
			sas, err := charon.ListSAs(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, sa := range sas {
				for _, ch := range sa.Children {
					if ch.State == "INSTALLED" {
						t.Errorf("strongSwan has an IPsec SA: %+v", sa)
					}
				}
			}
			if err := gw.Stop(); err != nil {
				t.Fatal(err)
			}
			_ = charon.Terminate(ctx, "s2s")
		})
	}
}

// TestV1IkeScan: ike-scan, an IKEv1 client nobody here wrote, against
// ipsecgw as responder: main mode is answered with ipsecgw's choice;
// aggressive mode is refused without a message 2 (its HASH_R could be
// cracked offline) unless the conn sets aggressive=yes.
func TestV1IkeScan(t *testing.T) {
	l := lab.New(t, lab.Options{Tools: []string{"ike-scan"}})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	target := l.GW1.PublicAddr.String()
	scan := func(t *testing.T, args ...string) string {
		t.Helper()
		// 3DES, SHA-1, PSK, MODP-1024: the transform ike-scan offers.
		argv := append([]string{"ike-scan", "--trans=5,2,1,2", "--retry=2", "--timeout=500"}, args...)
		out, err := l.GW2.Run(ctx, append(argv, target)...)
		if err != nil && !strings.Contains(out, "Ending ike-scan") {
			t.Fatalf("ike-scan: %v\n%s", err, out)
		}
		t.Logf("%s:\n%s", strings.Join(argv[1:], " "), strings.TrimSpace(out))
		return out
	}
	for _, aggressive := range []bool{false, true} {
		name := "aggressive=no"
		if aggressive {
			name = "aggressive=yes"
		}
		t.Run(name, func(t *testing.T) {
			c1, _ := v1Conns(l, "3des-sha1-modp1024", "aes128-sha1")
			c1.LocalID, c1.RemoteID = "@gw1.example", "@gw2.example"
			c1.Aggressive = aggressive
			gw := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: c1.IPsecConf(), Secrets: c1.IPsecSecrets()})
			if out := scan(t); !strings.Contains(out, "Main Mode Handshake returned") || !strings.Contains(out, "Enc=3DES") {
				t.Errorf("main mode not answered:\n%s", out)
			}
			out := scan(t, "--aggressive", "--id=gw2.example", "--idtype=2")
			answered := strings.Contains(out, "Aggressive Mode Handshake returned")
			if answered != aggressive {
				t.Errorf("aggressive mode answered %v with %s:\n%s", answered, name, out)
			}
			if !aggressive {
				st, err := gw.waitState(ctx, "s2s", control.StatePhase1Failed)
				if err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(st.LastError, "aggressive=yes") {
					t.Errorf("reason %q does not say what allows aggressive mode", st.LastError)
				}
			}
			if err := gw.Stop(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
