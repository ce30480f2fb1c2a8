// Command netbench measures network throughput, packet rate, latency and
// CPU cost of ipsecgw against a plain routed path, strongSwan
// (kernel-libipsec) and wireguard-go, all in the namespace lab of
// internal/lab (host1 ─ gw1 ══ veth ══ gw2 ─ host2). It needs root,
// iperf3, ping, strongSwan and wg (wireguard-tools); `make bench-net`
// installs what is missing and runs it.
//
//	go run ./bench/netbench [-systems plain,ipsecgw-aes128gcm,...] [-duration 10s] [-reps 3] [-streams 1,4]
//
// Interleaving: every repetition builds a fresh lab per system, sets the
// system up, runs all its measurements and tears the lab down, then moves
// on to the next system (A B C … A B C …), so slow drift in the machine's
// load (it is shared) hits every system alike rather than one of them.
//
// Per system and repetition, in this order: iperf3 TCP host1 → host2 with
// each -streams count (the gateway daemons' utime+stime from
// /proc/<pid>/stat is read before and after each run, giving CPU seconds
// per GB received); ping RTTs at idle (-ping-count echo requests 10 ms
// apart); ping RTTs under load (the same pings during an extra iperf3 TCP
// run with the largest stream count, lasting the pings plus two seconds,
// not counted in the throughput figures); and an iperf3 UDP flood of 64-byte datagrams (-b 0) for
// -udp-duration, reporting datagrams received per second; and an IMIX
// flood (imix.go) as long. -tests picks a subset, -perf profiles the
// gateways during the 64-byte flood.
//
// Results go to results/<UTC timestamp>/ as results.json (every sample)
// and results.md (the tables, also printed to stdout).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ipsecgw/ipsecgw/internal/benchhost"

	"github.com/ipsecgw/ipsecgw/internal/lab"
)

type options struct {
	Systems     []string      `json:"systems"`
	Duration    time.Duration `json:"duration_ns"`
	UDPDuration time.Duration `json:"udp_duration_ns"`
	Reps        int           `json:"reps"`
	Streams     []int         `json:"streams"`
	PingCount   int           `json:"ping_count"`
	// Tests are the measurements taken, a subset of allTests in that
	// order; fewer of them keep a run (and its hold of the lab) short.
	Tests []string `json:"tests"`
	// Perf, when set, is a directory for CPU profiles (perf record) of
	// the gateway daemons during each 64-byte flood.
	Perf string `json:"perf,omitempty"`
	Out  string `json:"-"`
	// Baseline is the git revision the ipsecgw-baseline-aes128gcm system
	// builds ipsecgw from (empty: that system is not measured).
	Baseline string `json:"baseline,omitempty"`
}

func main() {
	var names, defaults []string
	for _, s := range allSystems() {
		names = append(names, s.Name)
		if s.Name != baselineSystem {
			defaults = append(defaults, s.Name)
		}
	}
	systemsFlag := flag.String("systems", strings.Join(defaults, ","), "comma-separated systems to measure, in this order")
	baseline := flag.String("baseline", "", "also measure ipsecgw built from this git revision (system "+baselineSystem+
		", right after ipsecgw-aes128gcm unless -systems names it), for before/after ratios in one run")
	duration := flag.Duration("duration", 10*time.Second, "length of each iperf3 TCP run (whole seconds)")
	udpDuration := flag.Duration("udp-duration", 5*time.Second, "length of each 64-byte UDP flood (whole seconds)")
	reps := flag.Int("reps", 3, "repetitions per system (interleaved)")
	streamsFlag := flag.String("streams", "1,4", "comma-separated iperf3 TCP stream counts")
	pingCount := flag.Int("ping-count", 300, "echo requests per latency measurement (10 ms apart)")
	out := flag.String("out", "results", "directory under which results/<timestamp>/ is created")
	testsFlag := flag.String("tests", strings.Join(allTests, ","), "comma-separated measurements to take: "+strings.Join(allTests, ","))
	perf := flag.String("perf", "", "record CPU profiles (perf record -g) of the gateway daemons during each 64-byte flood into this directory")
	flag.Parse()

	opts := options{Duration: *duration, UDPDuration: *udpDuration, Reps: *reps, PingCount: *pingCount, Out: *out, Baseline: *baseline, Perf: *perf}
	for _, t := range strings.Split(*testsFlag, ",") {
		if t = strings.TrimSpace(t); t == "" {
			continue
		}
		if !slices.Contains(allTests, t) {
			fatalf("unknown test %q; known: %s", t, strings.Join(allTests, ","))
		}
		opts.Tests = append(opts.Tests, t)
	}
	if len(opts.Tests) == 0 {
		fatalf("-tests names no test")
	}
	known := map[string]bool{}
	for _, n := range names {
		known[n] = true
	}
	for _, s := range strings.Split(*systemsFlag, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !known[s] {
			fatalf("unknown system %q; known: %s", s, strings.Join(names, ","))
		}
		if s == baselineSystem && opts.Baseline == "" {
			fatalf("system %s needs -baseline REV", s)
		}
		opts.Systems = append(opts.Systems, s)
	}
	if opts.Baseline != "" && !slices.Contains(opts.Systems, baselineSystem) {
		i := slices.Index(opts.Systems, "ipsecgw-aes128gcm")
		opts.Systems = slices.Insert(opts.Systems, i+1, baselineSystem)
	}
	for _, s := range strings.Split(*streamsFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 128 {
			fatalf("bad -streams entry %q", s)
		}
		opts.Streams = append(opts.Streams, n)
	}
	if len(opts.Systems) == 0 || opts.Reps < 1 || opts.Duration < time.Second || opts.UDPDuration < time.Second || opts.PingCount < 1 {
		fatalf("need at least one system, -reps ≥ 1, durations ≥ 1s, -ping-count ≥ 1")
	}
	if err := run(opts); err != nil {
		fatalf("%v", err)
	}
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "netbench: "+format+"\n", args...)
	os.Exit(1)
}

func run(opts options) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces)")
	}
	if miss := lab.Missing("iperf3", "ping", "wg"); miss != "" {
		return fmt.Errorf("missing: %s (make bench-net installs them)", miss)
	}
	if opts.Perf != "" {
		if miss := lab.Missing("perf"); miss != "" {
			return fmt.Errorf("-perf needs perf (linux-perf)")
		}
		if err := os.MkdirAll(opts.Perf, 0o755); err != nil {
			return err
		}
	}
	// While a lab exists, the lab package catches SIGINT/SIGTERM, tears
	// every lab down and exits 130. Between labs nobody would, so this
	// handler cancels the context: the loop then stops and returns through
	// the ordinary deferred cleanup.
	ctx, tmp, done, err := benchhost.Workspace("ipsecgw-netbench-")
	if err != nil {
		return err
	}
	defer done()
	bin, versions, err := build(ctx, tmp, opts.Baseline)
	if err != nil {
		return err
	}

	started := time.Now().UTC()
	dir := filepath.Join(opts.Out, started.Format("20060102T150405Z"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	rep := &Report{Started: started, Options: opts, Versions: versions, Host: benchhost.Info()}
	rep.LoadBefore = benchhost.LoadAvg()

	byName := map[string]system{}
	for _, s := range allSystems() {
		byName[s.Name] = s
	}
	total := opts.Reps * len(opts.Systems)
	i := 0
	for r := 1; r <= opts.Reps; r++ {
		for _, name := range opts.Systems {
			i++
			if ctx.Err() != nil {
				return errors.New("interrupted")
			}
			fmt.Fprintf(os.Stderr, "[%d/%d] rep %d %s (load %s)\n", i, total, r, name, benchhost.LoadAvg())
			s := measureOnce(ctx, byName[name], bin, opts, r)
			s.Rep = r
			if s.Error != "" {
				fmt.Fprintf(os.Stderr, "  FAILED: %s\n", s.Error)
				// On Ctrl-C the lab package tears the lab down under us
				// (failing the sample) and exits once done; wait for our
				// own handler to see the signal too rather than build the
				// next lab, which that exit would leave behind.
				select {
				case <-ctx.Done():
					return errors.New("interrupted")
				case <-time.After(time.Second):
				}
			} else {
				for _, t := range s.TCP {
					fmt.Fprintf(os.Stderr, "  tcp %d: %.2f Gbit/s, %d retransmits, %d UDP receive-buffer drops at the gateways, cpu %.2f s\n",
						t.Streams, t.BitsPerSec/1e9, t.Retransmits, t.UDPRcvbufErrors, t.CPUSeconds)
				}
				if opts.has(testUDP64) {
					fmt.Fprintf(os.Stderr, "  udp 64B: %.0f pps received (%d sent, %d lost)\n", s.UDP.RecvPPS, s.UDP.SentPackets, s.UDP.LostPackets)
				}
				if opts.has(testIMIX) {
					fmt.Fprintf(os.Stderr, "  imix: %.0f pps received, %.2f Gbit/s (%d sent, %d lost)\n",
						s.IMIX.RecvPPS, s.IMIX.RecvBitsPerSec/1e9, s.IMIX.SentPackets, s.IMIX.LostPackets)
				}
				if opts.has(testPing) {
					fmt.Fprintf(os.Stderr, "  ping idle p50 %.3f ms, load p50 %.3f ms (%d/%d answered)\n",
						percentile(s.PingIdle.RTTs, 50), percentile(s.PingLoad.RTTs, 50), len(s.PingLoad.RTTs), s.PingLoad.Sent)
				}
			}
			rep.Samples = append(rep.Samples, s)
			// Save as we go: a long run interrupted late keeps its samples.
			if err := rep.write(dir); err != nil {
				return err
			}
		}
	}
	rep.LoadAfter = benchhost.LoadAvg()
	rep.Finished = time.Now().UTC()
	rep.summarize()
	if err := rep.write(dir); err != nil {
		return err
	}
	fmt.Print(rep.Markdown())
	fmt.Fprintf(os.Stderr, "results in %s\n", dir)
	return nil
}

// measureOnce builds a lab, sets the system up, measures and tears down.
func measureOnce(ctx context.Context, sys system, bin binaries, opts options, rep int) (s Sample) {
	s.System = sys.Name
	s.Load = benchhost.LoadAvg()
	fail := func(err error) Sample {
		s.Error = err.Error()
		return s
	}
	l, err := lab.Build(lab.Options{})
	if err != nil {
		return fail(err)
	}
	defer func() {
		if err := l.Close(); err != nil && s.Error == "" {
			s.Error = "teardown: " + err.Error()
		}
		// On Ctrl-C the lab package's handler may be closing this lab at
		// the same time; our Close then returns at once. Its state
		// directory goes last, so wait for that before the program exits.
		if ctx.Err() != nil {
			for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
				if _, err := os.Stat(l.Dir); errors.Is(err, os.ErrNotExist) {
					break
				}
			}
		}
	}()
	setupCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	info, err := sys.setup(setupCtx, l, bin)
	if err != nil {
		return fail(fmt.Errorf("setup: %w", err))
	}
	s.Negotiated = info.Negotiated
	// The first packets may wait for a handshake (wireguard-go) or an
	// ARP resolution; this also proves the path works before measuring.
	if _, err := l.Host1.Ping(setupCtx, l.Host2.Addr, 3); err != nil {
		return fail(fmt.Errorf("path check: %w", err))
	}
	runCtx, cancel2 := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel2()
	for _, test := range opts.Tests {
		switch test {
		case testTCP:
			for _, n := range opts.Streams {
				t, err := runTCP(runCtx, l, info.PIDs, opts.Duration, n)
				if err != nil {
					return fail(fmt.Errorf("tcp %d streams: %w", n, err))
				}
				s.TCP = append(s.TCP, t)
			}
		case testPing:
			if s.PingIdle, err = runPing(runCtx, l.Host1, l.Host2.Addr, opts.PingCount); err != nil {
				return fail(fmt.Errorf("ping idle: %w", err))
			}
			if s.PingLoad, err = pingUnderLoad(runCtx, l, opts); err != nil {
				return fail(fmt.Errorf("ping under load: %w", err))
			}
		case testUDP64:
			var prof *profiler
			if opts.Perf != "" && len(info.PIDs) > 0 {
				out := filepath.Join(opts.Perf, fmt.Sprintf("%s-rep%d-udp64", sys.Name, rep))
				if prof, err = startPerf(out, info.PIDs); err != nil {
					return fail(fmt.Errorf("perf: %w", err))
				}
			}
			s.UDP, err = runUDP(runCtx, l, opts.UDPDuration)
			if prof != nil {
				if perr := prof.stop(); perr != nil {
					fmt.Fprintf(os.Stderr, "  perf: %v\n", perr)
				}
			}
			if err != nil {
				return fail(fmt.Errorf("udp: %w", err))
			}
		case testIMIX:
			if s.IMIX, err = runIMIX(runCtx, l, opts.UDPDuration); err != nil {
				return fail(fmt.Errorf("imix: %w", err))
			}
		}
	}
	return s
}

// pingUnderLoad pings through the path while an iperf3 TCP run with the
// largest stream count saturates it. The pings start a second into the
// run (past slow start) and end before it does.
func pingUnderLoad(ctx context.Context, l *lab.Lab, opts options) (PingResult, error) {
	streams := 1
	for _, n := range opts.Streams {
		streams = max(streams, n)
	}
	// Long enough for the pings plus a second on each side, at most -duration.
	load := max(min(opts.Duration, time.Duration(opts.PingCount)*10*time.Millisecond+2*time.Second), 3*time.Second)
	count := min(opts.PingCount, int((load-2*time.Second)/(10*time.Millisecond)))
	srv, err := l.Host2.StartIperfServer(ctx, iperfPort)
	if err != nil {
		return PingResult{}, err
	}
	defer srv.Stop()
	var wg sync.WaitGroup
	var loadErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, loadErr = l.Host1.Iperf(ctx, l.Host2.Addr, srv.Port, load, streams)
	}()
	var res PingResult
	select {
	case <-time.After(time.Second):
		res, err = runPing(ctx, l.Host1, l.Host2.Addr, count)
	case <-ctx.Done():
		err = ctx.Err()
	}
	wg.Wait()
	return res, errors.Join(err, loadErr)
}

// build compiles ipsecgw and wireguard-go (at the version pinned in go.mod)
// into dir, and ipsecgw at the git revision baseline when one is given.
func build(ctx context.Context, dir, baseline string) (binaries, map[string]string, error) {
	b := binaries{ipsecgw: filepath.Join(dir, "ipsecgw"), wireguard: filepath.Join(dir, "wireguard-go")}
	steps := [][]string{
		{"go", "build", "-trimpath", "-o", b.ipsecgw, "github.com/ipsecgw/ipsecgw/cmd/ipsecgw"},
		{"go", "build", "-trimpath", "-o", b.wireguard, "golang.zx2c4.com/wireguard"},
	}
	src := filepath.Join(dir, "baseline-src")
	if baseline != "" {
		// A throw-away worktree of the revision, built with the same
		// toolchain, then removed again.
		b.baseline = filepath.Join(dir, "ipsecgw-baseline")
		steps = append(steps,
			[]string{"git", "worktree", "add", "--detach", src, baseline},
			[]string{"sh", "-c", `cd "$0" && go build -trimpath -o "$1" ./cmd/ipsecgw`, src, b.baseline},
			[]string{"git", "worktree", "remove", "--force", src})
	}
	for _, step := range steps {
		if out, err := exec.CommandContext(ctx, step[0], step[1:]...).CombinedOutput(); err != nil {
			if baseline != "" {
				exec.Command("git", "worktree", "remove", "--force", src).Run()
			}
			return b, nil, fmt.Errorf("%s: %w\n%s", strings.Join(step, " "), err, out)
		}
	}
	v := benchhost.NewVersions()
	v.Query(ctx, "ipsecgw", "git", "describe", "--always", "--dirty")
	if baseline != "" {
		v.Query(ctx, "ipsecgw-baseline", "git", "describe", "--always", baseline)
	}
	v.Query(ctx, "wireguard-go", "go", "list", "-m", "-f", "{{.Version}}", "golang.zx2c4.com/wireguard")
	v.Query(ctx, "strongswan", "dpkg-query", "-W", "-f", "${Version}", "strongswan-charon")
	v.Query(ctx, "iperf3", "dpkg-query", "-W", "-f", "${Version}", "iperf3")
	v.Query(ctx, "kernel", "uname", "-r")
	return b, v, nil
}

// The measurements -tests can pick, in the order they run.
const (
	testTCP   = "tcp"
	testPing  = "ping"
	testUDP64 = "udp64"
	testIMIX  = "imix"
)

var allTests = []string{testTCP, testPing, testUDP64, testIMIX}

func (o options) has(test string) bool { return slices.Contains(o.Tests, test) }
