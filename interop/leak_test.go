package interop

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/internal/lab"
)

// The leak tests (issue 19, item 4): protected traffic must never leave
// gw1 in clear, whatever state the daemon or the tunnel is in. gw1 gets a
// default route to gw2 over the underlay, as a real gateway has, so that
// without ipsecgw's guard routes the kernel would forward host1's packets
// for LAN2 there in clear. A capture on gw1's underlay counts packets whose
// outer IP header goes between 10.1.0.0/16 and 10.2.0.0/16: tunnelled
// traffic never matches, because ESP and ESP in UDP carry the gateways'
// addresses outside. Each test ends with a negative control in the same
// lab: the guards removed, the same pings do show up in clear, so a count
// of 0 is proof and not a blind capture.

// clearBPF selects plain IP between the two LANs.
const clearBPF = "ip and ((src net 10.1.0.0/16 and dst net 10.2.0.0/16) or (src net 10.2.0.0/16 and dst net 10.1.0.0/16))"

// leakPings is the number of echo requests host1 sends per check.
const leakPings = 20

// guardLine is the route `ip route show proto 50` lists for LAN2.
const guardLine = "blackhole 10.2.0.0/24 metric 2147483647"

// leakLab builds a lab whose gw1 forwards everything it has no better
// route for to gw2 over the underlay.
func leakLab(t *testing.T) (*lab.Lab, context.Context) {
	t.Helper()
	if testing.Short() {
		t.Skip("the leak tests kill daemons and capture traffic")
	}
	l := lab.New(t, lab.Options{Tools: []string{"tcpdump", "tshark"}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	if _, err := l.GW1.Run(ctx, "ip", "route", "add", "default", "via", l.GW2.Addr.String(), "dev", lab.IfUnderlay); err != nil {
		t.Fatal(err)
	}
	return l, ctx
}

// pingSummaryRE reads ping's summary line.
var pingSummaryRE = regexp.MustCompile(`(\d+) packets transmitted, (\d+) (?:packets )?received`)

// clearPings sends count echo requests from host1 to host2, 50 ms apart
// (ping waits a second at most for the last answer), while capturing on
// gw1's underlay, and returns how many packets between the LANs crossed
// the underlay in clear and how many requests were answered.
func clearPings(ctx context.Context, t *testing.T, l *lab.Lab, count int) (clear, answered int) {
	t.Helper()
	capture, err := l.GW1.StartCapture(ctx, lab.IfUnderlay, clearBPF)
	if err != nil {
		t.Fatal(err)
	}
	// No -w: with a deadline ping keeps sending until enough answers come.
	out, _ := l.Host1.Run(ctx, "ping", "-n", "-q", "-c", strconv.Itoa(count), "-i", "0.05", "-W", "1", l.Host2.Addr.String())
	if err := capture.Stop(); err != nil {
		t.Fatal(err)
	}
	m := pingSummaryRE.FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("ping output without a summary:\n%s", out)
	}
	sent, _ := strconv.Atoi(m[1])
	answered, _ = strconv.Atoi(m[2])
	if sent != count {
		// Fewer requests than asked would make a count of 0 meaningless.
		t.Fatalf("ping sent %d of %d requests:\n%s", sent, count, out)
	}
	clear, err = capture.Count(ctx, "ip")
	if err != nil {
		t.Fatal(err)
	}
	return clear, answered
}

// expectNoLeak runs clearPings and fails the test if anything crossed in
// clear.
func expectNoLeak(ctx context.Context, t *testing.T, l *lab.Lab, what string) {
	t.Helper()
	clear, answered := clearPings(ctx, t, l, leakPings)
	t.Logf("%s: %d pings host1 → host2, %d answered, %d packets in clear on the underlay", what, leakPings, answered, clear)
	if clear != 0 {
		t.Errorf("%s: %d packets between the LANs crossed the underlay in clear", what, clear)
	}
}

// expectLeak is the negative control: with the guards gone, the same
// pings must be seen in clear, or the capture proves nothing.
func expectLeak(ctx context.Context, t *testing.T, l *lab.Lab, what string) {
	t.Helper()
	clear, answered := clearPings(ctx, t, l, leakPings)
	t.Logf("negative control, %s: %d pings host1 → host2, %d answered, %d packets in clear on the underlay", what, leakPings, answered, clear)
	if clear < leakPings {
		t.Errorf("negative control, %s: only %d packets in clear, want at least the %d requests: the capture does not see a leak",
			what, clear, leakPings)
	}
}

// guardRoutes lists gw1's routes of ipsecgw's route protocol.
func guardRoutes(ctx context.Context, t *testing.T, l *lab.Lab) []string {
	t.Helper()
	out, err := l.GW1.Run(ctx, "ip", "route", "show", "proto", "50")
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, line := range strings.Split(out, "\n") {
		if line = strings.Join(strings.Fields(strings.ReplaceAll(line, "proto 50 ", "")), " "); line != "" {
			lines = append(lines, line)
		}
	}
	return lines
}

// expectGuard fails the test unless gw1 has exactly the guard for LAN2.
func expectGuard(ctx context.Context, t *testing.T, l *lab.Lab, when string) {
	t.Helper()
	if got := guardRoutes(ctx, t, l); len(got) != 1 || got[0] != guardLine {
		t.Fatalf("%s: guard routes %q, want [%q]", when, got, guardLine)
	}
}

// flushGuards opens gw1 deliberately with `ipsecgw guard flush`, run
// inside gw1's namespace as an operator would.
func flushGuards(ctx context.Context, t *testing.T, l *lab.Lab) {
	t.Helper()
	out, err := l.GW1.Run(ctx, binary, "guard", "flush")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "removed 10.2.0.0/24") {
		t.Errorf("ipsecgw guard flush: %s", out)
	}
	if got := guardRoutes(ctx, t, l); len(got) != 0 {
		t.Fatalf("guard routes after ipsecgw guard flush: %q", got)
	}
}

// reloadGateway writes conf as the daemon's ipsec.conf and reloads it
// (SIGHUP), returning once the daemon logged the reload.
func reloadGateway(ctx context.Context, t *testing.T, gw *gateway, conf string) {
	t.Helper()
	if err := os.WriteFile(gw.ConfPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	before := strings.Count(gw.Log(), "configuration reloaded")
	gw.Proc.Signal(syscall.SIGHUP)
	for strings.Count(gw.Log(), "configuration reloaded") == before {
		select {
		case <-ctx.Done():
			t.Fatalf("no reload in the log:\n%s", tail(gw.Log(), 30))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestLeakGuardKilledDaemonAndRestart: (a) ipsecgw is SIGKILLed with the
// tunnel up: its TUN device and routes vanish with it, the guard stays,
// and 20 pings from host1 do not leave in clear. (f) Started again in the
// same namespace with the same files and control socket, the daemon
// starts cleanly, adopts the guard it finds (kept, not added again) and
// the tunnel is back within seconds, strongSwan replacing its stale SA
// through INITIAL_CONTACT. Negative control: killed again with the guard
// flushed, the pings leave in clear.
func TestLeakGuardKilledDaemonAndRestart(t *testing.T) {
	l, ctx := leakLab(t)
	c1, c2 := siteConns(l, "aes128-sha256-ecp256", "aes128gcm16")
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
	// Not startGateway: its clean-exit check does not fit a killed daemon.
	g1, err := l.GW1.StartIPsecGW(ctx, lab.IPsecGWConfig{Bin: binary, IPsecConf: c1.IPsecConf(), Secrets: c1.IPsecSecrets(),
		Settings: "tun:\n  name: " + tunName + "\nlog:\n  level: info\n"})
	if err != nil {
		t.Fatal(err)
	}
	current := g1
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("ipsecgw log (gw1):\n%s", tail(current.Log(), 80))
		}
	})
	old, err := charon.WaitEstablished(ctx, "s2s", "net")
	if err != nil {
		t.Fatal(err)
	}
	pingBothWays(ctx, t, l, 2)
	expectGuard(ctx, t, l, "tunnel up")

	// (a)
	if err := g1.Proc.Stop(syscall.SIGKILL, time.Second); err != nil {
		t.Fatal(err)
	}
	if out, err := l.GW1.Run(ctx, "ip", "link", "show", tunName); err == nil {
		t.Fatalf("TUN device still there after SIGKILL:\n%s", out)
	}
	expectGuard(ctx, t, l, "after SIGKILL")
	expectNoLeak(ctx, t, l, "ipsecgw killed (SIGKILL)")

	// (f)
	restarted := time.Now()
	g2, err := g1.Restart(ctx)
	if err != nil {
		t.Fatal(err)
	}
	current = g2
	listening := time.Since(restarted)
	if _, err := g2.WaitEstablished(ctx, "s2s"); err != nil {
		t.Fatal(err)
	}
	established := time.Since(restarted)
	if _, err := l.Host1.Ping(ctx, l.Host2.Addr, 1); err != nil {
		t.Fatal(err)
	}
	through := time.Since(restarted)
	t.Logf("restart after SIGKILL: control socket answering after %v, established after %v, first ping answered through the tunnel after %v",
		listening.Round(time.Millisecond), established.Round(time.Millisecond), through.Round(time.Millisecond))
	if !strings.Contains(g2.Log(), `msg="leak guards synced" guards=1 kept=1 added=0 removed=0`) {
		t.Errorf("the restarted daemon did not adopt the guard it found:\n%s", tail(g2.Log(), 40))
	}
	expectGuard(ctx, t, l, "after the restart")
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
	t.Logf("strongSwan lists %d IKE SA (initiator SPI %s, was %s)", len(sas), sas[0].InitiatorSPI, old.InitiatorSPI)
	pingBothWays(ctx, t, l, 2)

	// Negative control.
	if err := g2.Proc.Stop(syscall.SIGKILL, time.Second); err != nil {
		t.Fatal(err)
	}
	flushGuards(ctx, t, l)
	expectLeak(ctx, t, l, "ipsecgw killed, guard flushed")
}

// TestLeakGuardNoChildSA: the tunnel's CHILD SA is missing while the
// daemon runs, (c) after `ipsecgw down` and (b) after strongSwan deleted
// it, and then the daemon has stopped cleanly. Each time the TUN route is
// gone, the guard is there and no ping leaves in clear; and each time the
// negative control, `ipsecgw guard flush` in the same state, lets the
// pings out in clear. The flushed guard comes back by `ipsecgw guard sync`
// after (c) and by a reload of the daemon after (b).
func TestLeakGuardNoChildSA(t *testing.T) {
	l, ctx := leakLab(t)
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
	gw := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: c1.IPsecConf(), Secrets: c1.IPsecSecrets(), LogLevel: "info"})
	up := func() {
		t.Helper()
		if out, err := gw.cli(ctx, "up", "s2s"); err != nil {
			t.Fatalf("ipsecgw up: %v\n%s", err, out)
		}
		if _, err := gw.waitState(ctx, "s2s", control.StateEstablished); err != nil {
			t.Fatal(err)
		}
		if _, err := charon.WaitEstablished(ctx, "s2s", "net"); err != nil {
			t.Fatal(err)
		}
		pingBothWays(ctx, t, l, 2)
	}
	noTUNRoute := func(when string) {
		t.Helper()
		out, err := l.GW1.Run(ctx, "ip", "route", "show", "dev", tunName)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(out, l.GW2.LAN.String()) {
			t.Fatalf("%s: the TUN route is still there, so this checks nothing:\n%s", when, out)
		}
	}
	up()
	expectGuard(ctx, t, l, "tunnel up")

	// (c)
	if out, err := gw.cli(ctx, "down", "s2s"); err != nil {
		t.Fatalf("ipsecgw down: %v\n%s", err, out)
	}
	noTUNRoute("after ipsecgw down")
	expectGuard(ctx, t, l, "after ipsecgw down")
	expectNoLeak(ctx, t, l, "after ipsecgw down")
	flushGuards(ctx, t, l)
	expectLeak(ctx, t, l, "after ipsecgw down, guard flushed")
	out, err := l.GW1.Run(ctx, binary, "guard", "sync", "--config", gw.ConfPath,
		"--secrets", filepath.Join(gw.Dir, "ipsec.secrets"), "--settings", "")
	if err != nil || !strings.Contains(out, "added 10.2.0.0/24 (conns s2s)") {
		t.Fatalf("ipsecgw guard sync: %v\n%s", err, out)
	}
	expectGuard(ctx, t, l, "after ipsecgw guard sync")

	// (b)
	up()
	if out, err := charon.Swanctl(ctx, "--terminate", "--child", "net", "--timeout", "10"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if _, err := gw.waitStatus(ctx, "s2s", "without CHILD SA", func(st control.ConnStatus) bool { return len(st.Children) == 0 }); err != nil {
		t.Fatal(err)
	}
	noTUNRoute("after strongSwan deleted the CHILD SA")
	expectNoLeak(ctx, t, l, "CHILD SA deleted by strongSwan")
	flushGuards(ctx, t, l)
	expectLeak(ctx, t, l, "CHILD SA deleted by strongSwan, guard flushed")
	reloadGateway(ctx, t, gw, c1.IPsecConf())
	expectGuard(ctx, t, l, "after a reload")

	// A clean shutdown leaves the guard in place: the gateway fails closed.
	if err := gw.Stop(); err != nil {
		t.Fatal(err)
	}
	expectGuard(ctx, t, l, "after a clean shutdown")
	expectNoLeak(ctx, t, l, "after a clean shutdown")
	flushGuards(ctx, t, l)
	expectLeak(ctx, t, l, "daemon stopped, guard flushed")
}

// TestLeakGuardTrapPeerSilent: (d) an auto=route conn whose peer does not
// answer (no IKE daemon at gw2): pings hit the trap, which starts a
// negotiation that never completes, and nothing leaves in clear. The
// operator then sets the conn to auto=ignore and reloads: the trap and the
// guard go, and the pings do leave in clear (the negative control, and the
// documented way to open the gateway); back to auto=route and reloaded, the
// guard is there again and nothing leaks.
func TestLeakGuardTrapPeerSilent(t *testing.T) {
	l, ctx := leakLab(t)
	c1, _ := siteConns(l, "aes128-sha256-ecp256", "aes128gcm16")
	c1.StartAction = "trap"
	conf := c1.IPsecConf() + "  keyingtries=%forever\n"
	gw := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: conf, Secrets: c1.IPsecSecrets(), LogLevel: "info"})
	expectGuard(ctx, t, l, "auto=route conn loaded")
	expectNoLeak(ctx, t, l, "trap waiting for a silent peer")
	st, err := gw.status(ctx, "s2s")
	if err != nil {
		t.Fatal(err)
	}
	if st.State != control.StateConnecting {
		t.Errorf("after the pings the conn is %q (%s), want connecting: the trap did not fire", st.State, st.LastError)
	}

	reload := func(conf string, wantGuards int) {
		t.Helper()
		reloadGateway(ctx, t, gw, conf)
		if got := guardRoutes(ctx, t, l); len(got) != wantGuards {
			t.Fatalf("after the reload: guard routes %q, want %d", got, wantGuards)
		}
	}
	// Negative control.
	reload(strings.Replace(conf, "auto=route", "auto=ignore", 1), 0)
	expectLeak(ctx, t, l, "conn set to auto=ignore and reloaded")

	reload(conf, 1)
	expectGuard(ctx, t, l, "back to auto=route")
	expectNoLeak(ctx, t, l, "auto=route again")
}

// TestLeakGuardDuringRekeys: (e) ipsecgw rekeys the CHILD SA every 3 s
// (lifetime 10 s, the shortest it takes, margintime 7 s, no fuzz) while
// host1 pings host2 every 50 ms for 12 s: no packet crosses the underlay
// in clear between the old and the new SA. Negative control: guard flushed and the conn taken down,
// the pings leave in clear.
func TestLeakGuardDuringRekeys(t *testing.T) {
	l, ctx := leakLab(t)
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
	conf := c1.IPsecConf() + "  lifetime=10s\n  margintime=7s\n  rekeyfuzz=0%\n"
	gw := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: conf, Secrets: c1.IPsecSecrets(), LogLevel: "info"})
	if out, err := gw.cli(ctx, "up", "s2s"); err != nil {
		t.Fatalf("ipsecgw up: %v\n%s", err, out)
	}
	if _, err := gw.waitState(ctx, "s2s", control.StateEstablished); err != nil {
		t.Fatal(err)
	}
	expectGuard(ctx, t, l, "tunnel up")
	rekeysBefore := strings.Count(gw.Log(), "rekeying CHILD SA")
	const stream = 240 // 12 s at 50 ms
	clear, answered := clearPings(ctx, t, l, stream)
	rekeys := strings.Count(gw.Log(), "rekeying CHILD SA") - rekeysBefore
	t.Logf("ping stream across %d CHILD rekeys: %d pings, %d answered, %d packets in clear on the underlay", rekeys, stream, answered, clear)
	if rekeys < 3 {
		t.Errorf("only %d CHILD rekeys during the stream, want at least 3", rekeys)
	}
	if clear != 0 {
		t.Errorf("%d packets between the LANs crossed the underlay in clear during the rekeys", clear)
	}

	// Negative control.
	flushGuards(ctx, t, l)
	if out, err := gw.cli(ctx, "down", "s2s"); err != nil {
		t.Fatalf("ipsecgw down: %v\n%s", err, out)
	}
	expectLeak(ctx, t, l, "guard flushed, conn down")
}
