package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/internal/lab"
)

// The ways users run gateways, reproduced in the lab: under systemd's
// conditions (a non-root user with exactly three capabilities, sd_notify
// and the watchdog, a Prometheus server scraping the metrics), in a
// container's conditions (fresh mount and network namespace, read-only
// root, only /dev/net/tun, non-root with CAP_NET_ADMIN alone), and as a
// billing system sees it (usage across rekeys and reconnects, and the key
// export that lets Wireshark decrypt a capture).

// deployDir makes a directory the unprivileged daemon can use, owned by
// uid:gid, outside the lab's root-only directory.
func deployDir(t *testing.T, uid, gid int) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "isgw-deploy-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	return dir
}

// writeOwned writes a file owned by uid:gid with mode.
func writeOwned(t *testing.T, path, text string, mode os.FileMode, uid, gid int) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, uid, gid); err != nil {
		t.Fatal(err)
	}
}

// notifySocket plays systemd's notification socket; every message goes
// to the returned recorder.
type notifyRecorder struct {
	mu   sync.Mutex
	msgs []string
	ch   chan string
}

func listenNotify(t *testing.T, path string) *notifyRecorder {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := os.Chmod(path, 0o666); err != nil { // the daemon is not root
		t.Fatal(err)
	}
	r := &notifyRecorder{ch: make(chan string, 1000)}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := c.Read(b)
			if err != nil {
				return
			}
			m := string(b[:n])
			r.mu.Lock()
			r.msgs = append(r.msgs, m)
			r.mu.Unlock()
			r.ch <- m
		}
	}()
	return r
}

// waitFor returns the first message (skipping WATCHDOG=1 pings unless
// asked for) starting with prefix.
func (r *notifyRecorder) waitFor(ctx context.Context, prefix string) (string, error) {
	for {
		select {
		case m := <-r.ch:
			if strings.HasPrefix(m, prefix) {
				return m, nil
			}
		case <-ctx.Done():
			return "", fmt.Errorf("no sd_notify %q: %w", prefix, ctx.Err())
		}
	}
}

// sequence is the messages so far with runs of WATCHDOG=1 folded.
func (r *notifyRecorder) sequence() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, m := range r.msgs {
		m = strings.ReplaceAll(m, "\n", " ")
		if m == "WATCHDOG=1" && len(out) > 0 && strings.HasPrefix(out[len(out)-1], "WATCHDOG=1") {
			n := 1
			if _, after, ok := strings.Cut(out[len(out)-1], "×"); ok {
				n, _ = strconv.Atoi(after)
			}
			out[len(out)-1] = fmt.Sprintf("WATCHDOG=1 ×%d", n+1)
			continue
		}
		if strings.HasPrefix(m, "RELOADING=1") {
			m = "RELOADING=1 MONOTONIC_USEC=…"
		}
		out = append(out, m)
	}
	return out
}

// procStatus reads fields of /proc/PID/status.
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = strings.TrimSpace(v)
		}
	}
	return out
}

// ctl runs a control command as root against a daemon's socket.
func ctl(ctx context.Context, socket string, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, binary, append(args, "--socket", socket)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ipsecgw %v: %w: %s", args, err, out)
	}
	return string(out), nil
}

func ctlStatus(ctx context.Context, socket, name string) (control.ConnStatus, error) {
	out, err := exec.CommandContext(ctx, binary, "status", "--json", "--socket", socket).Output()
	if err != nil {
		return control.ConnStatus{}, err
	}
	var conns []control.ConnStatus
	if err := json.Unmarshal(out, &conns); err != nil {
		return control.ConnStatus{}, err
	}
	for _, c := range conns {
		if c.Name == name {
			return c, nil
		}
	}
	return control.ConnStatus{}, fmt.Errorf("no conn %q", name)
}

func waitCtlState(ctx context.Context, socket, name, state string) (control.ConnStatus, error) {
	for {
		c, err := ctlStatus(ctx, socket, name)
		if err == nil && c.State == state {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return c, fmt.Errorf("conn %s: %q (%v), not %s: %w", name, c.State, err, state, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stopDaemon sends SIGTERM and waits for a clean exit.
func stopDaemon(t *testing.T, p *lab.Process) {
	t.Helper()
	if err := p.Stop(syscall.SIGTERM, 20*time.Second); err != nil {
		t.Errorf("stopping ipsecgw: %v", err)
	}
	if err := p.ExitErr(); err != nil {
		t.Errorf("ipsecgw exited with %v after SIGTERM:\n%s", err, tail(p.Output(), 40))
	}
}

// Capability bits (linux/capability.h).
const (
	capNetBindService = 1 << 10
	capNetAdmin       = 1 << 12
	capNetRaw         = 1 << 13
)

// TestSystemdConditions runs the daemon as systemd's unit does: user
// nobody with exactly CAP_NET_ADMIN, CAP_NET_BIND_SERVICE and CAP_NET_RAW
// (setpriv, no systemd as PID 1 here), $NOTIFY_SOCKET and a watchdog. It
// brings an auto=start tunnel up against strongSwan; systemd's socket
// hears READY=1 with the tunnel count once the conn had its first try,
// the watchdog pings, RELOADING=1/READY=1 around SIGHUP and `ipsecgw
// reload`, and STOPPING=1. A real Prometheus server scrapes the metrics
// endpoint meanwhile: a query shows the tunnel up, and down after
// `ipsecgw down`.
func TestSystemdConditions(t *testing.T) {
	lab.Require(t, "setpriv", "prometheus", "promtool")
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c1, c2 := siteConns(l, "aes128-sha256-modp2048", "aes128gcm16")
	c1.StartAction = "start"
	charon, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf(c2)})
	if err != nil {
		t.Fatal(err)
	}
	const uid, gid = 65534, 65534 // nobody
	dir := deployDir(t, uid, gid)
	writeOwned(t, filepath.Join(dir, "ipsec.conf"), c1.IPsecConf(), 0o644, uid, gid)
	writeOwned(t, filepath.Join(dir, "ipsec.secrets"), c1.IPsecSecrets(), 0o600, uid, gid)
	writeOwned(t, filepath.Join(dir, "ipsecgw.yaml"), "tun:\n  name: "+tunName+"\nlog:\n  level: info\nmetrics_listen: 127.0.0.1:9108\n", 0o644, uid, gid)
	notify := listenNotify(t, filepath.Join(dir, "notify.sock"))
	socket, pidFile := filepath.Join(dir, "ctl.sock"), filepath.Join(dir, "ipsecgw.pid")
	caps := "+net_admin,+net_bind_service,+net_raw"
	p, err := l.GW1.Start("ipsecgw-nonroot", "env", "NOTIFY_SOCKET="+filepath.Join(dir, "notify.sock"), "WATCHDOG_USEC=2000000",
		"setpriv", "--reuid="+strconv.Itoa(uid), "--regid="+strconv.Itoa(gid), "--clear-groups",
		"--inh-caps=-all,"+caps, "--ambient-caps=-all,"+caps, "--bounding-set=-all,"+caps, "--no-new-privs",
		binary, "run", "--config", filepath.Join(dir, "ipsec.conf"), "--secrets", filepath.Join(dir, "ipsec.secrets"),
		"--settings", filepath.Join(dir, "ipsecgw.yaml"), "--socket", socket, "--pid-file", pidFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("ipsecgw log:\n%s\ncharon:\n%s", tail(p.Output(), 80), strings.Join(charon.LogExcerpt(), "\n"))
		}
	})
	ready, err := notify.waitFor(ctx, "READY=1")
	if err != nil {
		t.Fatalf("%v\n%s", err, p.Output())
	}
	if ready != "READY=1\nSTATUS=1 of 1 tunnels established" {
		t.Errorf("READY message %q, want the auto=start tunnel established", ready)
	}
	st := procStatus(t, p.PID)
	want := fmt.Sprintf("%016x", capNetAdmin|capNetBindService|capNetRaw)
	if !strings.HasPrefix(st["Uid"], "65534\t") || st["CapEff"] != want || st["CapPrm"] != want || st["CapBnd"] != want || st["CapAmb"] != want {
		t.Errorf("daemon runs as Uid %q with CapEff %s CapPrm %s CapBnd %s CapAmb %s, want uid 65534 and exactly %s",
			st["Uid"], st["CapEff"], st["CapPrm"], st["CapBnd"], st["CapAmb"], want)
	}
	t.Logf("non-root daemon (pid %d): Uid %s, CapEff %s (NET_ADMIN, NET_BIND_SERVICE, NET_RAW)", p.PID, st["Uid"], st["CapEff"])
	if b, err := os.ReadFile(pidFile); err != nil || strings.TrimSpace(string(b)) != strconv.Itoa(p.PID) {
		t.Errorf("pid file %q %v, want %d", b, err, p.PID)
	}
	if _, err := charon.WaitEstablished(ctx, "s2s", "net"); err != nil {
		t.Fatal(err)
	}
	pingBothWays(ctx, t, l, 3)
	if _, err := notify.waitFor(ctx, "WATCHDOG=1"); err != nil {
		t.Fatal(err)
	}

	// Prometheus in gw1's namespace scrapes the endpoint every second.
	promDir := t.TempDir()
	promConf := filepath.Join(promDir, "prometheus.yml")
	if err := os.WriteFile(promConf, []byte("global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: ipsecgw\n    static_configs:\n      - targets: ['127.0.0.1:9108']\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := l.GW1.Start("prometheus", "prometheus", "--config.file="+promConf, "--storage.tsdb.path="+filepath.Join(promDir, "data"),
		"--web.listen-address=127.0.0.1:9090"); err != nil {
		t.Fatal(err)
	}
	query := func(want string) string {
		t.Helper()
		var out string
		for {
			out, _ = l.GW1.Run(ctx, "promtool", "query", "instant", "http://127.0.0.1:9090", `ipsecgw_conn_up{conn="s2s"}`)
			if strings.Contains(out, "=> "+want+" @") {
				return strings.TrimSpace(out)
			}
			select {
			case <-ctx.Done():
				t.Fatalf("Prometheus never showed ipsecgw_conn_up{conn=\"s2s\"} %s; last answer: %s", want, out)
			case <-time.After(250 * time.Millisecond):
			}
		}
	}
	t.Logf("Prometheus, tunnel up: %s", query("1"))
	if out, err := ctl(ctx, socket, "down", "s2s"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Logf("Prometheus, after `ipsecgw down s2s`: %s", query("0"))
	if out, err := ctl(ctx, socket, "up", "s2s"); err != nil {
		t.Fatalf("%v: %s", err, out)
	}

	// Reloads: SIGHUP and the control command, each bracketed.
	p.Signal(syscall.SIGHUP)
	if _, err := notify.waitFor(ctx, "RELOADING=1"); err != nil {
		t.Fatal(err)
	}
	if m, err := notify.waitFor(ctx, "READY=1"); err != nil || m != "READY=1\nSTATUS=1 of 1 tunnels established" {
		t.Fatalf("after SIGHUP: %q %v", m, err)
	}
	if out, err := ctl(ctx, socket, "reload", "--json"); err != nil || !strings.Contains(out, `"conns": 1`) {
		t.Fatalf("ipsecgw reload: %v %s", err, out)
	}
	if _, err := notify.waitFor(ctx, "RELOADING=1"); err != nil {
		t.Fatal(err)
	}
	if _, err := notify.waitFor(ctx, "READY=1"); err != nil {
		t.Fatal(err)
	}
	p.Signal(syscall.SIGUSR2)
	for !strings.Contains(p.Output(), "stats: conn") {
		select {
		case <-ctx.Done():
			t.Fatal("SIGUSR2 wrote no stats to the log")
		case <-time.After(50 * time.Millisecond):
		}
	}
	stopDaemon(t, p)
	if _, err := notify.waitFor(ctx, "STOPPING=1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(pidFile); !os.IsNotExist(err) {
		t.Errorf("pid file left behind: %v", err)
	}
	t.Logf("NOTIFY_SOCKET sequence: %s", strings.Join(notify.sequence(), " | "))
}

// TestContainerConditions reproduces what `podman run --cap-add NET_ADMIN
// --device /dev/net/tun` gives a container (this machine's runtime cannot
// start one): gw1's fresh network namespace, a fresh mount namespace with
// the root and the configuration read-only, a /dev holding only net/tun, a
// writable directory for the control socket, and a non-root user with
// CAP_NET_ADMIN alone (binding UDP 500 is allowed by
// ip_unprivileged_port_start=0, as container runtimes set it; without
// CAP_NET_RAW ESP goes in UDP). The tunnel comes up against strongSwan and
// carries traffic.
func TestContainerConditions(t *testing.T) {
	lab.Require(t, "setpriv", "unshare")
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c1, c2 := siteConns(l, "aes128-sha256-modp2048", "aes128gcm16")
	c1.StartAction = "start"
	charon, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf(c2)})
	if err != nil {
		t.Fatal(err)
	}
	const uid, gid = 65532, 65532 // the image's user
	dir := deployDir(t, 0, 0)
	writeOwned(t, filepath.Join(dir, "ipsec.conf"), c1.IPsecConf(), 0o644, 0, gid)
	writeOwned(t, filepath.Join(dir, "ipsec.secrets"), c1.IPsecSecrets(), 0o640, 0, gid)
	writeOwned(t, filepath.Join(dir, "ipsecgw.yaml"), "tun:\n  name: "+tunName+"\nlog:\n  level: info\n", 0o644, 0, gid)
	writeOwned(t, filepath.Join(dir, "tun"), "", 0o600, 0, 0) // mount point for the device
	if err := os.Mkdir(filepath.Join(dir, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := l.GW1.Run(ctx, "sysctl", "-qw", "net.ipv4.ip_unprivileged_port_start=0"); err != nil {
		t.Fatal(err)
	}
	socket := filepath.Join(dir, "run", "ipsecgw.sock")
	script := `set -e
d=$0
mount --bind "$d" "$d"; mount -o remount,bind,ro "$d"
mount -t tmpfs -o mode=0755,uid=65532,gid=65532 tmpfs "$d/run"
mount --bind /dev/net/tun "$d/tun"
mount -t tmpfs -o mode=0755 tmpfs /dev
mkdir /dev/net; touch /dev/net/tun; mount --bind "$d/tun" /dev/net/tun
mount --bind / /; mount -o remount,bind,ro /
exec setpriv --reuid=65532 --regid=65532 --clear-groups --inh-caps=-all,+net_admin --ambient-caps=-all,+net_admin \
  --bounding-set=-all,+net_admin --no-new-privs "$1" run --config "$d/ipsec.conf" --secrets "$d/ipsec.secrets" \
  --settings "$d/ipsecgw.yaml" --socket "$d/run/ipsecgw.sock"`
	p, err := l.GW1.Start("ipsecgw-container", "unshare", "--mount", "--propagation", "private", "sh", "-c", script, dir, binary)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("ipsecgw log:\n%s\ncharon:\n%s", tail(p.Output(), 80), strings.Join(charon.LogExcerpt(), "\n"))
		}
	})
	defer stopDaemon(t, p)
	for {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d/root/%s", p.PID, socket)); err == nil {
			break
		}
		select {
		case <-p.Done():
			t.Fatalf("ipsecgw exited: %v\n%s", p.ExitErr(), p.Output())
		case <-ctx.Done():
			t.Fatalf("no control socket:\n%s", p.Output())
		case <-time.After(50 * time.Millisecond):
		}
	}
	// The socket lives on the daemon's private tmpfs: reach it through
	// its root.
	sock := fmt.Sprintf("/proc/%d/root%s", p.PID, socket)
	stat, err := waitCtlState(ctx, sock, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	if len(stat.Children) != 1 || !stat.Children[0].UDPEncap {
		t.Errorf("CHILD SA %+v: want one, in UDP (no CAP_NET_RAW)", stat.Children)
	}
	pingBothWays(ctx, t, l, 3)
	st := procStatus(t, p.PID)
	if !strings.HasPrefix(st["Uid"], "65532\t") || st["CapEff"] != fmt.Sprintf("%016x", capNetAdmin) || st["CapBnd"] != fmt.Sprintf("%016x", capNetAdmin) {
		t.Errorf("Uid %q CapEff %s CapBnd %s, want 65532 with CAP_NET_ADMIN only", st["Uid"], st["CapEff"], st["CapBnd"])
	}
	mounts, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", p.PID))
	if err != nil {
		t.Fatal(err)
	}
	rootRO := regexp.MustCompile(`(?m)^\S+ \S+ \S+ \S+ / (ro|ro,\S*) `).Match(mounts)
	confRO := regexp.MustCompile(`(?m)^\S+ \S+ \S+ \S+ ` + regexp.QuoteMeta(dir) + ` (ro|ro,\S*) `).Match(mounts)
	if !rootRO || !confRO {
		t.Errorf("root read-only %v, configuration read-only %v:\n%s", rootRO, confRO, mounts)
	}
	devs, err := os.ReadDir(fmt.Sprintf("/proc/%d/root/dev", p.PID))
	if err != nil || len(devs) != 1 || devs[0].Name() != "net" {
		t.Errorf("the daemon's /dev has %v (%v), want only net/tun", devs, err)
	}
	if !strings.Contains(p.Output(), "no raw ESP socket") {
		t.Error("the daemon did not say that ESP goes in UDP without CAP_NET_RAW")
	}
	t.Logf("container conditions: uid 65532, CapEff %s (CAP_NET_ADMIN only), root and configuration read-only, /dev = {net/tun}; conn %s %s, ESP %s in UDP",
		st["CapEff"], stat.State, stat.IKE.Proposal, stat.Children[0].Proposal)
}

// TestUsageAcrossRekeysAndKeyExport: the usage of a conn counts every
// byte of pings that crossed a CHILD rekey and an IKE rekey under traffic
// (strongSwan rekeys with swanctl while the ping runs) and a reconnect
// (ipsecgw reset) — exactly the inner bytes the hosts exchanged, none
// lost or counted twice. Then `ipsecgw export-keys` writes Wireshark's
// tables, and tshark decrypts the capture of the gateway's underlay with
// them: the ESP of the current CHILD SA and the IKE_AUTH of the current
// IKE SA.
func TestUsageAcrossRekeysAndKeyExport(t *testing.T) {
	lab.Require(t, "tshark", "tcpdump")
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c1, c2 := siteConns(l, "aes128-sha256-modp2048", "aes128gcm16")
	charon, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf(c2)})
	if err != nil {
		t.Fatal(err)
	}
	gw := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: c1.IPsecConf(), Secrets: c1.IPsecSecrets(), LogLevel: "info"})
	// Whole packets (the lab's captures keep 256 bytes, less than an
	// IKE_AUTH request, which tshark cannot decrypt truncated).
	pcap := filepath.Join(t.TempDir(), "ul.pcap")
	capture, err := l.GW1.Start("tcpdump-ul", "tcpdump", "-i", "ul", "-n", "-U", "--immediate-mode", "-s", "0", "-w", pcap, "udp")
	if err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(capture.Output(), "listening on") {
		select {
		case <-capture.Done():
			t.Fatalf("tcpdump: %s", capture.Output())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if out, err := gw.cli(ctx, "up", "s2s"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	first, err := gw.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	const size, inner = 100, 100 + 8 + 20 // ICMP payload, whole inner packet
	ping := func(n int) {
		t.Helper()
		out, err := l.Host2.Run(ctx, "ping", "-q", "-c", strconv.Itoa(n), "-i", "0.005", "-s", strconv.Itoa(size), "-W", "2", l.Host1.Addr.String())
		if err != nil || !strings.Contains(out, fmt.Sprintf("%d packets transmitted, %d received", n, n)) {
			t.Fatalf("ping through the tunnel lost packets: %v\n%s", err, out)
		}
	}
	// Round 1 under rekeys: strongSwan rekeys the CHILD SA, then the IKE
	// SA, while 1000 pings (5 s) cross.
	const n1, n2 = 1000, 300
	done := make(chan struct{})
	go func() {
		defer close(done)
		ping(n1)
	}()
	time.Sleep(1500 * time.Millisecond)
	if out, err := charon.Swanctl(ctx, "--rekey", "--child", "net"); err != nil {
		t.Errorf("CHILD rekey: %v %s", err, out)
	}
	time.Sleep(1500 * time.Millisecond)
	if out, err := charon.Swanctl(ctx, "--rekey", "--ike", "s2s"); err != nil {
		t.Errorf("IKE rekey: %v %s", err, out)
	}
	<-done
	after, err := gw.status(ctx, "s2s")
	if err != nil {
		t.Fatal(err)
	}
	if after.IKE == nil || after.IKE.InitiatorSPI == first.IKE.InitiatorSPI || len(after.Children) == 0 || after.Children[0].SPIIn == first.Children[0].SPIIn {
		t.Fatalf("the rekeys did not happen: before %+v %+v, after %+v %+v", first.IKE, first.Children, after.IKE, after.Children)
	}
	checkUsage := func(step string, n int) control.ConnStatus {
		t.Helper()
		st, err := gw.status(ctx, "s2s")
		if err != nil {
			t.Fatal(err)
		}
		u := st.Usage
		if u.PacketsIn != uint64(n) || u.PacketsOut != uint64(n) || u.BytesIn != uint64(n*inner) || u.BytesOut != uint64(n*inner) {
			t.Errorf("%s: usage %+v, want %d packets and %d bytes each way", step, u, n, n*inner)
		}
		t.Logf("%s: usage in %d B / %d pkts, out %d B / %d pkts (CHILD SA now in %s, its own counters %d/%d pkts)",
			step, u.BytesIn, u.PacketsIn, u.BytesOut, u.PacketsOut, st.Children[0].SPIIn, st.Children[0].PacketsIn, st.Children[0].PacketsOut)
		return st
	}
	checkUsage("after a CHILD and an IKE rekey under traffic", n1)

	// A reconnect: new IKE and CHILD SAs, the record goes on.
	if out, err := gw.cli(ctx, "reset", "s2s", "--json"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var reconnected control.ConnStatus
	for {
		reconnected, err = gw.waitState(ctx, "s2s", control.StateEstablished)
		if err != nil {
			t.Fatal(err)
		}
		if reconnected.IKE != nil && reconnected.IKE.InitiatorSPI != after.IKE.InitiatorSPI {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	ping(n2)
	cur := checkUsage("after a reconnect", n1+n2)
	out, err := gw.cli(ctx, "stats", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var stats control.Stats
	if err := json.Unmarshal([]byte(out), &stats); err != nil || len(stats.Conns) != 1 || stats.Conns[0].Usage.BytesIn != uint64((n1+n2)*inner) {
		t.Errorf("stats --json usage: %v %+v", err, stats.Conns)
	}

	// Key export: the current SAs' keys decrypt the capture.
	keys := t.TempDir()
	out, err = gw.cli(ctx, "export-keys", "--dir", keys)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("export-keys: %s", strings.TrimSpace(out))
	if !strings.Contains(gw.Log(), "SA keys exported to a client") {
		t.Error("no warning in the daemon's log about the exported keys")
	}
	for _, f := range []string{"esp_sa", "ikev2_decryption_table"} {
		if fi, err := os.Stat(filepath.Join(keys, "wireshark", f)); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v %v, want mode 0600", f, fi, err)
		}
	}
	if err := capture.Stop(syscall.SIGINT, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	tshark := func(args ...string) string {
		cmd := exec.CommandContext(ctx, "tshark", append([]string{"-n", "-r", pcap, "-o", "esp.enable_encryption_decode:TRUE",
			"-o", "esp.enable_authentication_check:TRUE", "-o", "udp.try_heuristic_first:FALSE"}, args...)...)
		cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+keys, "HOME="+keys)
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("tshark %v: %v", args, err)
		}
		return string(b)
	}
	spiIn, spiOut := "0x"+cur.Children[0].SPIIn, "0x"+cur.Children[0].SPIOut
	lines := strings.Fields(tshark("-Y", fmt.Sprintf("esp && icmp && (esp.spi == %s || esp.spi == %s)", spiIn, spiOut), "-T", "fields", "-e", "frame.number"))
	if len(lines) != 2*n2 {
		t.Errorf("tshark decrypted %d ICMP packets of the current CHILD SA, want %d", len(lines), 2*n2)
	}
	// The AUTH payload (type 39) is inside the encrypted SK payload: it
	// shows only in messages tshark decrypted and verified.
	auth := strings.Fields(tshark("-Y", "isakmp.exchangetype == 35 && isakmp.typepayload == 39 && isakmp.ispi == "+colons(cur.IKE.InitiatorSPI),
		"-T", "fields", "-e", "frame.number"))
	if len(auth) != 2 {
		t.Errorf("tshark decrypted %d IKE_AUTH messages of the current IKE SA, want 2", len(auth))
	}
	t.Logf("tshark with the exported keys: %d ICMP packets of CHILD SA %s/%s decrypted, %d IKE_AUTH messages of IKE SA %s decrypted",
		len(lines), cur.Children[0].SPIIn, cur.Children[0].SPIOut, len(auth), cur.IKE.InitiatorSPI)
}

// colons writes hex bytes as Wireshark's byte-string filters spell them.
func colons(hexs string) string {
	var parts []string
	for i := 0; i+2 <= len(hexs); i += 2 {
		parts = append(parts, hexs[i:i+2])
	}
	return strings.Join(parts, ":")
}
