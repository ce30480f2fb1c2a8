package lab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain checks, after every test, that no lab namespace, veth or
// recorded process (charon, iperf3, tcpdump) is left behind.
func TestMain(m *testing.M) {
	code := m.Run()
	if os.Getenv(interruptHelperEnv) == "" && os.Geteuid() == 0 {
		if err := AssertClean(); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: lab leftovers after tests: %v\n", err)
			code = 1
		}
	}
	os.Exit(code)
}

const testPSK = "lab-test-psk-0123456789"

// startPair starts one charon per gateway with mirrored site-to-site
// connections named s2s/net.
func startPair(ctx context.Context, t *testing.T, l *Lab, c1, c2 Conn) (*Charon, *Charon) {
	t.Helper()
	gw1, err := l.GW1.StartCharon(ctx, CharonConfig{Swanctl: SwanctlConf(c1)})
	if err != nil {
		t.Fatal(err)
	}
	gw2, err := l.GW2.StartCharon(ctx, CharonConfig{Swanctl: SwanctlConf(c2)})
	if err != nil {
		t.Fatal(err)
	}
	return gw1, gw2
}

func pingBothWays(ctx context.Context, t *testing.T, l *Lab, count int) {
	t.Helper()
	if _, err := l.Host1.Ping(ctx, l.Host2.Addr, count); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Host2.Ping(ctx, l.Host1.Addr, count); err != nil {
		t.Fatal(err)
	}
}

func checkIKE(t *testing.T, who string, sa IKESA, version int, proposal string) {
	t.Helper()
	if sa.Version != version || sa.State != "ESTABLISHED" || sa.Proposal() != proposal {
		t.Errorf("%s IKE SA: IKEv%d %s %s, want IKEv%d ESTABLISHED %s", who, sa.Version, sa.State, sa.Proposal(), version, proposal)
	}
}

func checkChild(t *testing.T, who string, sa IKESA, proposal string) ChildSA {
	t.Helper()
	ch, ok := sa.Child("net")
	if !ok {
		t.Fatalf("%s: no CHILD SA net in %+v", who, sa)
	}
	if ch.State != "INSTALLED" || ch.Protocol != "ESP" || ch.Mode != "TUNNEL" || ch.Proposal() != proposal {
		t.Errorf("%s CHILD SA: %s %s %s %s, want INSTALLED ESP TUNNEL %s", who, ch.State, ch.Protocol, ch.Mode, ch.Proposal(), proposal)
	}
	if ch.SPIIn == "" || ch.SPIOut == "" {
		t.Errorf("%s CHILD SA without SPIs: %+v", who, ch)
	}
	return ch
}

func currentSA(ctx context.Context, t *testing.T, c *Charon) IKESA {
	t.Helper()
	sa, ok, err := c.SA(ctx, "s2s")
	if err != nil || !ok {
		t.Fatalf("%s: SA s2s missing (%v)", c.Name, err)
	}
	return sa
}

// Proof 1: IKEv2 PSK site-to-site with aes128-sha256-modp2048 / aes128gcm16;
// traffic both ways goes through the tunnel (the gateways have no other
// route between the LANs) and shows up in the SA counters.
func TestInteropIKEv2PSK(t *testing.T) {
	l := New(t, Options{Tools: []string{"iperf3"}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const ike, esp = "aes128-sha256-modp2048", "aes128gcm16"
	gw1, gw2 := startPair(ctx, t, l,
		SiteToSite(l.GW1, l.GW2, 2, testPSK, ike, esp),
		SiteToSite(l.GW2, l.GW1, 2, testPSK, ike, esp))
	if _, err := Establish(ctx, gw1, gw2, "s2s", "net"); err != nil {
		t.Fatal(err)
	}
	const wantIKE = "AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048"
	before1 := currentSA(ctx, t, gw1)
	before2 := currentSA(ctx, t, gw2)
	checkIKE(t, "gw1", before1, 2, wantIKE)
	checkIKE(t, "gw2", before2, 2, wantIKE)
	c1 := checkChild(t, "gw1", before1, "AES_GCM_16-128")
	c2 := checkChild(t, "gw2", before2, "AES_GCM_16-128")
	if c1.SPIIn != c2.SPIOut || c1.SPIOut != c2.SPIIn {
		t.Errorf("SPIs do not pair up: gw1 in/out %s/%s, gw2 in/out %s/%s", c1.SPIIn, c1.SPIOut, c2.SPIIn, c2.SPIOut)
	}
	if before1.NATLocal {
		t.Errorf("gw1 reports itself behind NAT on a NAT-free underlay")
	}

	const n = 5
	pingBothWays(ctx, t, l, n)
	after := checkChild(t, "gw1", currentSA(ctx, t, gw1), "AES_GCM_16-128")
	// Each direction carries n requests of one ping run and n replies of
	// the other.
	if after.PacketsOut-c1.PacketsOut < 2*n || after.PacketsIn-c1.PacketsIn < 2*n || after.BytesOut <= c1.BytesOut || after.BytesIn <= c1.BytesIn {
		t.Errorf("gw1 counters did not grow by the pings: before %+v after %+v", c1, after)
	}

	srv, err := l.Host2.StartIperfServer(ctx, 5201)
	if err != nil {
		t.Fatal(err)
	}
	res, err := l.Host1.Iperf(ctx, l.Host2.Addr, srv.Port, time.Second, 1)
	if err != nil {
		t.Fatal(err)
	}
	if res.ReceivedBitsPerSecond <= 0 {
		t.Errorf("iperf3 through the tunnel received nothing: %+v", res)
	}
	t.Logf("iperf3 1 s through strongSwan tunnel: %.1f Mbit/s received, %d retransmits", res.ReceivedBitsPerSecond/1e6, res.Retransmits)
	final := checkChild(t, "gw2", currentSA(ctx, t, gw2), "AES_GCM_16-128")
	if final.BytesIn-c2.BytesIn < 100_000 {
		t.Errorf("gw2 inbound bytes grew by only %d during iperf3", final.BytesIn-c2.BytesIn)
	}

	out, err := gw1.Swanctl(ctx, "--list-sas")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("gw1 swanctl --list-sas:\n%s", out)
	if err := gw1.Terminate(ctx, "s2s"); err != nil {
		t.Fatal(err)
	}
	if err := gw2.WaitDown(ctx, "s2s"); err != nil {
		t.Fatal(err)
	}
	// Negative control: without the tunnel there is no path between the
	// LANs, so the pings above can only have gone through it.
	if _, err := l.Host1.Ping(ctx, l.Host2.Addr, 1); err == nil {
		t.Errorf("ping between the LANs works without the tunnel")
	}
}

// Proof 2: the same tunnel with GW1 behind a MASQUERADE NAT. On the
// underlay behind the NAT, ESP travels in UDP 4500 from the NAT's public
// address, GW1's private address never appears, and both ends detect the
// real NAT (GW1 "behind NAT", GW2 "peer behind NAT").
func TestInteropIKEv2NAT(t *testing.T) {
	// Parallel: several labs with their charon pairs run side by side.
	t.Parallel()
	l := New(t, Options{NAT: true, Tools: []string{"tcpdump", "tshark"}})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const ike, esp = "aes128-sha256-modp2048", "aes128gcm16"
	gw1, gw2 := startPair(ctx, t, l,
		SiteToSite(l.GW1, l.GW2, 2, testPSK, ike, esp),
		SiteToSite(l.GW2, l.GW1, 2, testPSK, ike, esp))
	capt, err := l.GW2.StartCapture(ctx, IfUnderlay, "udp")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Establish(ctx, gw1, gw2, "s2s", "net"); err != nil {
		t.Fatal(err)
	}
	pingBothWays(ctx, t, l, 5)
	if err := capt.Stop(); err != nil {
		t.Fatal(err)
	}

	sa1, sa2 := currentSA(ctx, t, gw1), currentSA(ctx, t, gw2)
	if !sa1.NATLocal {
		t.Errorf("gw1 did not detect that it is behind a NAT: %+v", sa1.Raw)
	}
	if !sa2.NATRemote || sa2.RemoteHost != GW1Public.String() || sa2.RemotePort != 4500 {
		t.Errorf("gw2 sees peer %s:%d nat-remote=%v, want %s:4500 behind NAT", sa2.RemoteHost, sa2.RemotePort, sa2.NATRemote, GW1Public)
	}
	if ch := checkChild(t, "gw2", sa2, "AES_GCM_16-128"); !ch.Encap {
		t.Errorf("gw2 CHILD SA not UDP-encapsulated")
	}

	counts := map[string]int{}
	for _, f := range []string{
		"ip.src == 198.51.100.1 && udp.srcport == 4500 && esp",
		"ip.dst == 198.51.100.1 && udp.dstport == 4500 && esp",
		"ip.src == 198.51.100.1 && udp.dstport == 500 && isakmp",
		"ip.addr == 203.0.113.0/24",
	} {
		n, err := capt.Count(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		counts[f] = n
	}
	t.Logf("underlay capture behind the NAT: %v", counts)
	if counts["ip.src == 198.51.100.1 && udp.srcport == 4500 && esp"] < 10 || counts["ip.dst == 198.51.100.1 && udp.dstport == 4500 && esp"] < 10 {
		t.Errorf("too few ESP-in-UDP/4500 packets from/to the NAT's public address: %v", counts)
	}
	if counts["ip.src == 198.51.100.1 && udp.dstport == 500 && isakmp"] == 0 {
		t.Errorf("IKE_SA_INIT from the NAT's public address to port 500 not captured: %v", counts)
	}
	if counts["ip.addr == 203.0.113.0/24"] != 0 {
		t.Errorf("GW1's private address leaked past the NAT: %v", counts)
	}
}

// Proof 3: IKEv1 main mode with aes128-sha1-modp1024, ESP aes128-sha1.
func TestInteropIKEv1MainMode(t *testing.T) {
	// Parallel: several labs with their charon pairs run side by side.
	t.Parallel()
	l := New(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const ike, esp = "aes128-sha1-modp1024", "aes128-sha1"
	gw1, gw2 := startPair(ctx, t, l,
		SiteToSite(l.GW1, l.GW2, 1, testPSK, ike, esp),
		SiteToSite(l.GW2, l.GW1, 1, testPSK, ike, esp))
	if _, err := Establish(ctx, gw1, gw2, "s2s", "net"); err != nil {
		t.Fatal(err)
	}
	sa1 := currentSA(ctx, t, gw1)
	checkIKE(t, "gw1", sa1, 1, "AES_CBC-128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024")
	checkIKE(t, "gw2", currentSA(ctx, t, gw2), 1, "AES_CBC-128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024")
	before := checkChild(t, "gw1", sa1, "AES_CBC-128/HMAC_SHA1_96")
	pingBothWays(ctx, t, l, 3)
	after := checkChild(t, "gw1", currentSA(ctx, t, gw1), "AES_CBC-128/HMAC_SHA1_96")
	if after.PacketsOut-before.PacketsOut < 6 || after.PacketsIn-before.PacketsIn < 6 {
		t.Errorf("gw1 counters did not grow by the pings: before %+v after %+v", before, after)
	}
	if !strings.Contains(strings.Join(gw1.LogLines(), "\n"), "initiating Main Mode IKE_SA s2s") {
		t.Errorf("gw1 log shows no Main Mode initiation")
	}
}

// Legacy configuration: gw1 runs starter with ipsec.conf/ipsec.secrets
// (stroke), gw2 runs charon with swanctl.conf; both driven over VICI.
func TestInteropStarterIPsecConf(t *testing.T) {
	// Parallel: several labs with their charon pairs run side by side.
	t.Parallel()
	l := New(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const ike, esp = "aes128-sha256-modp2048", "aes128gcm16"
	c1 := SiteToSite(l.GW1, l.GW2, 2, testPSK, ike, esp)
	gw1, err := l.GW1.StartStarter(ctx, StarterConfig{IPsec: c1.IPsecConf(), Secrets: c1.IPsecSecrets()})
	if err != nil {
		t.Fatal(err)
	}
	gw2, err := l.GW2.StartCharon(ctx, CharonConfig{Swanctl: SwanctlConf(SiteToSite(l.GW2, l.GW1, 2, testPSK, ike, esp))})
	if err != nil {
		t.Fatal(err)
	}
	sa, err := Establish(ctx, gw1, gw2, "s2s", "s2s")
	if err != nil {
		t.Fatal(err)
	}
	checkIKE(t, "gw1", sa, 2, "AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048")
	pingBothWays(ctx, t, l, 3)
}

// Proof 4: a broken strongSwan configuration fails with strongSwan's own
// log lines in the error, from both instances, not a bare timeout.
func TestBrokenConfigErrorCarriesCharonLog(t *testing.T) {
	// Parallel: several labs with their charon pairs run side by side.
	t.Parallel()
	l := New(t, Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	const ike, esp = "aes128-sha256-modp2048", "aes128gcm16"
	c1 := SiteToSite(l.GW1, l.GW2, 2, testPSK, ike, esp)
	c2 := SiteToSite(l.GW2, l.GW1, 2, "a-different-psk", ike, esp)
	gw1, gw2 := startPair(ctx, t, l, c1, c2)

	_, err := Establish(ctx, gw1, gw2, "s2s", "net")
	var ce *CharonError
	if !errors.As(err, &ce) {
		t.Fatalf("PSK mismatch: want a CharonError, got %v", err)
	}
	msg := err.Error()
	for _, want := range []string{
		"--- charon gw1 log ---", "--- charon gw2 log ---",
		"received AUTHENTICATION_FAILED notify error", // initiator's log
		"but MAC mismatched",                          // responder's log
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("PSK mismatch error lacks %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, testPSK) || strings.Contains(msg, "a-different-psk") {
		t.Errorf("error text reveals a PSK")
	}

	c2.PSK = testPSK
	c2.IKEProposals = "aes256-sha384-ecp384"
	if err := gw2.Reconfigure(ctx, SwanctlConf(c2)); err != nil {
		t.Fatal(err)
	}
	_, err = Establish(ctx, gw1, gw2, "s2s", "net")
	if err == nil {
		t.Fatal("proposal mismatch: SA established")
	}
	msg = err.Error()
	for _, want := range []string{
		"received NO_PROPOSAL_CHOSEN notify error", // initiator's log
		"received proposals unacceptable",          // responder's log
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("proposal mismatch error lacks %q:\n%s", want, msg)
		}
	}

	// A syntactically broken swanctl.conf is rejected at load time with
	// swanctl's reason.
	err = gw2.Reconfigure(ctx, "connections {\n s2s {\n proposals = aes999-nonsense\n }\n}\n")
	if err == nil || !strings.Contains(err.Error(), "invalid value for: proposals") {
		t.Errorf("invalid swanctl.conf accepted or unexplained: %v", err)
	}
}

// A lab whose owner died is removed by the next lab's start, killing only
// the recorded processes; a lab with a live owner is left alone.
func TestStaleLabIsCleaned(t *testing.T) {
	Require(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// A dead owner: a process that has exited and been reaped.
	owner := exec.Command("sleep", "0")
	if err := owner.Start(); err != nil {
		t.Fatal(err)
	}
	deadOwner := procRecord{PID: owner.Process.Pid, Name: "sleep"}
	deadOwner.Start, _ = procStart(deadOwner.PID)
	_ = owner.Wait()

	mk := func(owner procRecord) (string, string, *exec.Cmd) {
		id := "t" + newID()[:5]
		ns := testPrefix + id + "-gw1"
		dir := filepath.Join(StateRoot, id)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if _, err := run(ctx, "", "ip", "netns", "add", ns); err != nil {
			t.Fatal(err)
		}
		child := exec.Command("ip", "netns", "exec", ns, "sleep", "300")
		if err := child.Start(); err != nil {
			t.Fatal(err)
		}
		rec := procRecord{PID: child.Process.Pid, Name: "sleep"}
		for rec.Start == 0 {
			rec.Start, _ = procStart(rec.PID)
		}
		st := labState{ID: id, Owner: owner, Netns: []string{ns}, Procs: []procRecord{rec}}
		if err := writeState(dir, &st); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = teardownState(dir, &st); _ = child.Wait() })
		return dir, ns, child
	}
	staleDir, staleNS, staleChild := mk(deadOwner)
	liveDir, liveNS, liveChild := mk(selfRecord())

	if err := CleanStale(); err != nil {
		t.Fatal(err)
	}
	_ = staleChild.Wait() // reap: it was killed by CleanStale
	if netnsExists(staleNS) {
		t.Errorf("stale namespace %s survived", staleNS)
	}
	if _, err := os.Stat(staleDir); err == nil {
		t.Errorf("stale state dir %s survived", staleDir)
	}
	if !netnsExists(liveNS) || procState(liveChild.Process.Pid) == "Z" || syscall.Kill(liveChild.Process.Pid, 0) != nil {
		t.Errorf("a lab with a live owner was touched")
	}
	if _, err := os.Stat(liveDir); err != nil {
		t.Errorf("live state dir removed: %v", err)
	}
}

const interruptHelperEnv = "IPSECGW_LAB_INTERRUPT_HELPER"

// TestInterruptHelper is not a test of its own: TestInterruptTearsDown runs
// it in a child process, which builds a lab and waits to be interrupted.
func TestInterruptHelper(t *testing.T) {
	if os.Getenv(interruptHelperEnv) != "1" {
		t.Skip("helper process for TestInterruptTearsDown")
	}
	nsPrefix = testPrefix
	l, err := Build(Options{NAT: true})
	if err != nil {
		t.Fatal(err)
	}
	p, err := l.Host1.Start("sleep", "sleep", "300")
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("READY %s %d %s\n", l.ID, p.PID, strings.Join(l.state.Netns, " "))
	time.Sleep(time.Minute)
	t.Error("not interrupted")
}

// startHelper runs TestInterruptHelper in a child process and returns it
// with its lab ID, the PID of a process in its lab and its namespaces.
func startHelper(t *testing.T) (*exec.Cmd, string, int, []string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestInterruptHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), interruptHelperEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	var fields []string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) > 3 && f[0] == "READY" {
			fields = f
			break
		}
	}
	if fields == nil {
		t.Fatal("helper did not build its lab")
	}
	go func() { _, _ = bufio.NewReader(out).WriteTo(os.Stderr) }()
	var pid int
	if _, err := fmt.Sscan(fields[2], &pid); err != nil {
		t.Fatal(err)
	}
	for _, ns := range fields[3:] {
		if !netnsExists(ns) {
			t.Fatalf("helper namespace %s missing", ns)
		}
	}
	return cmd, fields[1], pid, fields[3:]
}

func assertLabGone(t *testing.T, id string, pid int, nss []string) {
	t.Helper()
	for _, ns := range nss {
		if netnsExists(ns) {
			t.Errorf("namespace %s survived", ns)
		}
	}
	if _, err := os.Stat(filepath.Join(StateRoot, id)); err == nil {
		t.Errorf("state dir of %s survived", id)
	}
	if err := syscall.Kill(pid, 0); err == nil && procState(pid) != "Z" {
		t.Errorf("process %d of the lab survived", pid)
	}
}

// Ctrl-C (SIGINT) during a run tears the lab down before the program exits.
func TestInterruptTearsDown(t *testing.T) {
	Require(t)
	cmd, id, pid, nss := startHelper(t)
	_ = cmd.Process.Signal(syscall.SIGINT)
	err := cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 130 {
		t.Errorf("helper exit: %v, want status 130 from the lab's signal handler", err)
	}
	assertLabGone(t, id, pid, nss)
}

// A run killed outright (SIGKILL, go test -timeout) cannot clean up: its
// processes die with it (parent-death signal) and the next lab's start
// removes its namespaces and state.
func TestKilledRunCleanedByNextRun(t *testing.T) {
	Require(t)
	cmd, id, pid, nss := startHelper(t)
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	for _, ns := range nss {
		if !netnsExists(ns) {
			t.Fatalf("namespace %s vanished without cleanup; the test proves nothing", ns)
		}
	}
	if err := CleanStale(); err != nil {
		t.Fatal(err)
	}
	assertLabGone(t, id, pid, nss)
}

// AssertClean's orphan check notices a lab namespace nobody owns. (The
// check runs on the test prefix, so a concurrently running test binary's
// AssertClean never sees this deliberate orphan.)
func TestAssertCleanFindsOrphans(t *testing.T) {
	Require(t)
	ns := testPrefix + "zz" + newID() + "-gw1"
	if _, err := run(context.Background(), "", "ip", "netns", "add", ns); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = deleteNetns(ns) }()
	if got := orphans(testPrefix); !slices.Contains(got, ns) {
		t.Errorf("orphan %s not found: %v", ns, got)
	}
	if err := AssertClean(); err != nil {
		t.Errorf("AssertClean with only test-prefix leftovers: %v", err)
	}
}
