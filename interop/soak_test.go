package interop

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/internal/lab"
	"github.com/ipsecgw/ipsecgw/internal/pinger"
)

// soakSample is what the soak test reads off the daemon at one moment.
type soakSample struct {
	at                     time.Duration
	rssKiB, fds, goroutine int
}

func (s soakSample) String() string {
	return fmt.Sprintf("%6.0fs  RSS %6d KiB  fds %3d  goroutines %4d", s.at.Seconds(), s.rssKiB, s.fds, s.goroutine)
}

// sampleDaemon reads the daemon's resident memory and open descriptors
// from /proc and its goroutines from its Prometheus endpoint (go_goroutines
// of client_golang's Go collector), in node's namespace.
func sampleDaemon(ctx context.Context, node *lab.Node, pid int, metricsAddr string) (soakSample, error) {
	var s soakSample
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			s.rssKiB, _ = strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s, err
	}
	s.fds = len(fds)
	out, err := node.Run(ctx, "curl", "-sf", "http://"+metricsAddr+"/metrics")
	if err != nil {
		return s, fmt.Errorf("metrics endpoint: %v", err)
	}
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "go_goroutines "); ok {
			s.goroutine, _ = strconv.Atoi(strings.TrimSpace(v))
			return s, nil
		}
	}
	return s, fmt.Errorf("no go_goroutines in the metrics:\n%s", out)
}

// TestSoak runs for IPSECGW_SOAK (e.g. 1h; `make soak`): iperf3 UDP at
// udpRate each way and a ping every 10 ms through a tunnel to strongSwan
// whose CHILD SA ipsecgw rekeys every 30 s (lifetime 40 s - margintime
// 10 s, no fuzz) and whose IKE SA it rekeys every 2 min (ikelifetime
// 130 s). No echo request or reply may be lost, the daemon's RSS,
// goroutines and open descriptors stay flat (the last sample against the
// first taken after the first IKE rekey, when every pool and timer exists),
// and its log has no error line. It is a long run outside CI.
func TestSoak(t *testing.T) {
	d, err := time.ParseDuration(os.Getenv("IPSECGW_SOAK"))
	if err != nil || d < 3*time.Minute {
		t.Skip("set IPSECGW_SOAK to a duration of at least 3m (make soak SOAKTIME=1h)")
	}
	secs := int(d / time.Second)
	l := lab.New(t, lab.Options{Tools: []string{"iperf3", "curl"}})
	// The pinger sends secs*100 requests on a fixed 10 ms schedule; the
	// deadline leaves room for setup and a loaded machine, and the report
	// gives the rate achieved and how far the sender fell behind.
	ctx, cancel := context.WithTimeout(context.Background(), d*3/2+5*time.Minute)
	defer cancel()
	c1, c2 := siteConns(l, "aes128-sha256-ecp256", "aes128gcm16-ecp256")
	charon, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf(c2)})
	if err != nil {
		t.Fatal(err)
	}
	const metricsAddr = "127.0.0.1:9108"
	conf := c1.IPsecConf() + "  lifetime=40s\n  ikelifetime=130s\n  margintime=10s\n  rekeyfuzz=0%\n  reauth=no\n"
	gw := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: conf, Secrets: c1.IPsecSecrets(), LogLevel: "info",
		Settings: "metrics_listen: " + metricsAddr + "\n"})
	if out, err := gw.cli(ctx, "up", "s2s"); err != nil {
		t.Fatalf("ipsecgw up: %v\n%s", err, out)
	}
	if _, err := gw.waitState(ctx, "s2s", control.StateEstablished); err != nil {
		t.Fatal(err)
	}
	if _, err := charon.WaitEstablished(ctx, "s2s", "net"); err != nil {
		t.Fatal(err)
	}
	srv, err := l.Host2.StartIperfServer(ctx, 5201)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()

	start := time.Now()
	// Our own pinger (internal/pinger): iputils ping reaches only 57-59
	// requests a second at -i 0.01 here, and busy-waits a core below that.
	icmp, err := l.Host1.ListenICMP()
	if err != nil {
		t.Fatal(err)
	}
	defer icmp.Close()
	pingStart := time.Now()
	type pingResult struct {
		pinger.Result
		err error
	}
	pinged := make(chan pingResult, 1)
	go func() {
		var r pingResult
		r.Result, r.err = pinger.Run(ctx, icmp, pinger.Config{Dst: &net.IPAddr{IP: l.Host2.Addr.AsSlice()},
			Count: secs * 100, Interval: 10 * time.Millisecond, Size: 200})
		pinged <- r
	}()
	type iperfResult struct {
		run udpRun
		err error
	}
	iperfed := make(chan iperfResult, 1)
	go func() {
		var r iperfResult
		r.run, r.err = iperfUDPBidir(ctx, l.Host1, l.Host2.Addr, srv.Port, loadRate(), secs)
		iperfed <- r
	}()

	var samples []soakSample
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	var pr pingResult
	var ir iperfResult
	for pending := 2; pending > 0; {
		select {
		case pr = <-pinged:
			pending--
		case ir = <-iperfed:
			pending--
		case <-tick.C:
			s, err := sampleDaemon(ctx, l.GW1, gw.Proc.PID, metricsAddr)
			if err != nil {
				t.Fatal(err)
			}
			s.at = time.Since(start)
			samples = append(samples, s)
			t.Log(s)
		case <-ctx.Done():
			t.Fatal("the soak outlived its deadline")
		}
	}
	took := time.Since(start)
	if pr.err != nil {
		t.Fatal(pr.err)
	}
	if ir.err != nil {
		t.Fatal(ir.err)
	}
	log := gw.Log()
	childRekeys := strings.Count(log, "rekeying CHILD SA")
	ikeRekeys := strings.Count(log, "IKE SA rekeyed")
	errorLines := strings.Count(log, "level=ERROR")

	// The reference sample is the first after the first IKE rekey (2 min).
	if len(samples) == 0 {
		t.Fatal("no sample taken")
	}
	first := samples[0]
	for _, s := range samples {
		if s.at > 150*time.Second {
			first = s
			break
		}
	}
	last := samples[len(samples)-1]
	summary := fmt.Sprintf("soak %v: ping every 10 ms: %v; iperf3 UDP %s each way: forward %s, reverse %s; %d CHILD rekeys, %d IKE rekeys; %d error lines\nfirst: %s\nlast:  %s",
		took.Round(time.Second), pr.Result, loadRate(), ir.run.Fwd, ir.run.Rev,
		childRekeys, ikeRekeys, errorLines, first, last)
	t.Log(summary)
	if dir := os.Getenv("IPSECGW_SOAK_REPORT"); dir != "" {
		var b strings.Builder
		b.WriteString(summary + "\nsamples:\n")
		for _, s := range samples {
			b.WriteString(s.String() + "\n")
		}
		// Where iperf3 lost datagrams, next to when the rekeys happened,
		// to tell rekey loss from a starved machine.
		fmt.Fprintf(&b, "iperf3 seconds with loss, forward: %v\nreverse: %v\nrekeys:%s\n",
			ir.run.LossFwd, ir.run.LossRev, rekeyTimeline(log, ir.run.Start))
		fmt.Fprintf(&b, "lost pings (at most 100 indexes; request i left about %v + i*10ms): %v\n",
			pingStart.UTC().Format("15:04:05.000"), pr.LostSeqs)
		name := filepath.Join(dir, "soak-"+time.Now().UTC().Format("20060102T150405Z")+".txt")
		if err := os.WriteFile(name, []byte(b.String()), 0o644); err != nil {
			t.Error(err)
		}
	}

	if pr.Sent != secs*100 || pr.Lost != 0 || pr.Received != pr.Sent {
		t.Errorf("%d of %d echo requests or replies lost (sequence numbers %v)", pr.Lost, pr.Sent, pr.LostSeqs)
	}
	wantChild, wantIKE := int(took/(30*time.Second))-2, int(took/(2*time.Minute))-1
	if childRekeys < wantChild || ikeRekeys < wantIKE {
		t.Errorf("%d CHILD rekeys and %d IKE rekeys in %v, want at least %d and %d", childRekeys, ikeRekeys, took, wantChild, wantIKE)
	}
	if errorLines > 0 {
		t.Errorf("%d error lines in the daemon's log:\n%s", errorLines, grepLines(log, "level=ERROR", 20))
	}
	// Flat: a leak of one goroutine, descriptor or SA's worth of memory per
	// rekey would grow these by dozens to hundreds over an hour.
	if last.goroutine > first.goroutine+5 {
		t.Errorf("goroutines grew from %d to %d", first.goroutine, last.goroutine)
	}
	if last.fds > first.fds+2 {
		t.Errorf("open descriptors grew from %d to %d", first.fds, last.fds)
	}
	if last.rssKiB > first.rssKiB+first.rssKiB/4 {
		t.Errorf("RSS grew from %d KiB to %d KiB", first.rssKiB, last.rssKiB)
	}
}

// grepLines returns at most max lines of log that contain s.
func grepLines(log, s string, max int) string {
	var out []string
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, s) && len(out) < max {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
