// Command ikebench measures the IKEv2 control plane at scale: how fast a
// responder brings up N IKE+CHILD SAs that real strongSwan initiators
// start at once, what CPU time and memory each costs it, and how long an
// ipsecgw initiator restarted with many auto=start conns takes to bring
// them all back. It needs root and strongSwan (kernel-libipsec); `make
// bench-ike` installs what is missing and runs it.
//
//	go run ./bench/ikebench [-n 200,1000,10000] [-groups modp2048,x25519]
//	    [-responders strongswan,ipsecgw,ipsecgw-pair] [-reps 1] [-restart 1000]
//	    [-baseline REV]
//
// The lab is internal/lab's gw1 ══ gw2. The responder runs in gw2 with one
// connection accepting any identity (PSK) and any /32 inside 10.64.0.0/10.
// The initiators run in gw1: strongSwan charons (one per -per-charon
// connections, each on its own IKE ports) whose swanctl.conf holds one
// connection per SA with a distinct identity and a distinct /32 traffic
// selector, so that no SA replaces another. Once every connection is
// loaded, the benchmark asks all of them to initiate at once over VICI
// without waiting (the clock starts), and stops the clock when the
// initiators have reported N CHILD SAs up. For the responder it reads
// utime+stime from /proc/PID/stat before and after (CPU ms per SA) and
// VmRSS before the burst and after it, once idle (KiB per SA).
//
// Responders: strongswan (charon with raised cookie/half-open thresholds
// and a sized IKE SA table, as one would tune it for many peers), ipsecgw
// (cookies off and the half-open limit raised likewise), and ipsecgw-pair:
// ipsecgw responder with an ipsecgw initiator holding N auto=start conns
// (the clock runs from the initiator's start). With -baseline REV, the
// responder ipsecgw-baseline is ipsecgw built from that git revision,
// configured as the ipsecgw responder and measured in the same run beside
// it, so a change is compared with what it changed side by side.
//
// Interleaving: for each repetition, N and group, the responders run one
// after the other, each in a fresh lab, so that drift in the shared
// machine's load hits all of them alike; ipsecgw and ipsecgw-baseline
// swap places in every second repetition.
//
// Idle tunnels (-idle N, 0 = skip): an ipsecgw initiator with one active
// conn (host1's LAN ⇄ host2's) and N idle ones against an ipsecgw
// responder; once all are up, one iperf3 TCP stream host1 → host2 through
// the active tunnel, compared with the same with no idle SA (each
// repetition runs both, in fresh labs): does holding N idle tunnels cost
// the active ones throughput?
//
// The restart storm (-restart N, 0 = skip): an ipsecgw initiator with N
// auto=start conns against an ipsecgw responder with the default cookie
// and half-open protections on; once all are up, the initiator is stopped
// (SIGTERM) and started again, and the time until all N are established
// once more is reported.
//
// Results go to results/ike-<UTC timestamp>/ as results.json (every
// sample) and results.md (the tables, also printed to stdout). -perf
// records the ipsecgw responder with perf(1) during each burst, and the
// initiator during each idle-tunnels iperf3 run, and keeps the reports
// next to the tables.
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
	"time"

	"github.com/ipsecgw/ipsecgw/config"

	"github.com/ipsecgw/ipsecgw/internal/benchhost"
)

type options struct {
	Ns         []int         `json:"n"`
	Groups     []string      `json:"groups"`
	Responders []string      `json:"responders"`
	Reps       int           `json:"reps"`
	PerCharon  int           `json:"per_charon"`
	Timeout    time.Duration `json:"timeout_ns"`
	Restart    int           `json:"restart"`
	Perf       bool          `json:"perf"`
	// Strace counts the ipsecgw responder's system calls during each
	// burst (strace -c -f); the tracing slows it, so its CPU figures are
	// not comparable with a run without.
	Strace bool `json:"strace,omitempty"`
	// IdleN is the number of idle SAs of the idle-tunnels benchmark (0:
	// skip it), IdleDuration the length of its iperf3 runs.
	IdleN        int           `json:"idle"`
	IdleDuration time.Duration `json:"idle_duration_ns"`
	// IdleSettle is how long the -idle daemons sit idle after the setup
	// before their RSS is taken a second time: the idle figure a hub
	// shows, once the setup's garbage and the heap headroom it needed
	// are gone.
	IdleSettle time.Duration `json:"idle_settle_ns"`
	// Baseline is the git revision the ipsecgw-baseline responder is
	// built from.
	Baseline string `json:"baseline,omitempty"`
	Out      string `json:"-"`
}

// groups are the -groups names with the proposal keyword each stands for.
var groups = map[string]string{"modp2048": "modp2048", "x25519": "curve25519"}

var responderNames = []string{"strongswan", "ipsecgw", "ipsecgw-pair", baselineResponder}

// baselineResponder is the ipsecgw responder built from -baseline.
const baselineResponder = "ipsecgw-baseline"

func main() {
	ns := flag.String("n", "200,1000,10000", "comma-separated numbers of IKE+CHILD SAs per burst")
	grp := flag.String("groups", "modp2048,x25519", "comma-separated DH groups (modp2048, x25519)")
	resp := flag.String("responders", strings.Join(responderNames[:3], ","), "comma-separated responders, in this order")
	baseline := flag.String("baseline", "", "also measure the ipsecgw responder built from this git revision (responder "+
		baselineResponder+", run beside ipsecgw)")
	reps := flag.Int("reps", 1, "repetitions (interleaved)")
	perCharon := flag.Int("per-charon", 2500, "connections per initiating charon")
	timeout := flag.Duration("timeout", 10*time.Minute, "longest wait for one burst")
	restart := flag.Int("restart", 1000, "conns of the restart storm (0 = skip it)")
	perf := flag.Bool("perf", false, "record the ipsecgw responder with perf(1) during each burst, and the initiator during each -idle iperf3 run")
	strace := flag.Bool("strace", false, "count the ipsecgw responder's system calls during each burst with strace -c -f (slows it: its CPU figures do not compare)")
	idle := flag.Int("idle", 0, "idle IKE+CHILD SAs beside one active tunnel for the throughput comparison (0 = skip it)")
	idleDuration := flag.Duration("idle-duration", 10*time.Second, "length of each iperf3 run of -idle (whole seconds)")
	idleSettle := flag.Duration("idle-settle", 90*time.Second, "how long the -idle daemons sit idle after the setup before their RSS is taken again")
	out := flag.String("out", "results", "directory under which ike-<timestamp>/ is created")
	flag.Parse()

	opts := options{Reps: *reps, PerCharon: *perCharon, Timeout: *timeout, Restart: *restart, Perf: *perf, Strace: *strace, Out: *out, Baseline: *baseline,
		IdleN: *idle, IdleDuration: *idleDuration, IdleSettle: *idleSettle}
	for _, s := range splitList(*ns) {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1<<20 {
			fatalf("bad -n entry %q", s)
		}
		opts.Ns = append(opts.Ns, n)
	}
	for _, g := range splitList(*grp) {
		if groups[g] == "" {
			fatalf("unknown group %q (modp2048, x25519)", g)
		}
		opts.Groups = append(opts.Groups, g)
	}
	for _, r := range splitList(*resp) {
		known := false
		for _, k := range responderNames {
			known = known || k == r
		}
		if !known {
			fatalf("unknown responder %q; known: %s", r, strings.Join(responderNames, ","))
		}
		if r == baselineResponder && opts.Baseline == "" {
			fatalf("responder %s needs -baseline REV", r)
		}
		opts.Responders = append(opts.Responders, r)
	}
	if opts.Baseline != "" && !slices.Contains(opts.Responders, baselineResponder) {
		i := slices.Index(opts.Responders, "ipsecgw")
		opts.Responders = slices.Insert(opts.Responders, i+1, baselineResponder)
	}
	if opts.Reps < 1 || opts.PerCharon < 1 || opts.Restart < 0 || opts.IdleN < 0 ||
		(len(opts.Ns)*len(opts.Groups)*len(opts.Responders) == 0 && opts.Restart == 0 && opts.IdleN == 0) {
		fatalf("nothing to measure, or -reps/-per-charon below 1")
	}
	if opts.IdleN >= config.MaxConns {
		// The initiator's ipsec.conf holds the idle conns and the active one.
		fatalf("-idle %d: at most %d (an ipsec.conf holds at most %d conns, one of them the active tunnel)", opts.IdleN, config.MaxConns-1, config.MaxConns)
	}
	if err := run(opts); err != nil {
		fatalf("%v", err)
	}
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "ikebench: "+format+"\n", args...)
	os.Exit(1)
}

func run(opts options) error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (network namespaces)")
	}
	ctx, tmp, done, err := benchhost.Workspace("ipsecgw-ikebench-")
	if err != nil {
		return err
	}
	defer done()
	// Not stripped: perf needs the symbols.
	bin := filepath.Join(tmp, "ipsecgw")
	if out, err := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", bin, "github.com/ipsecgw/ipsecgw/cmd/ipsecgw").CombinedOutput(); err != nil {
		return fmt.Errorf("go build: %w\n%s", err, out)
	}
	baseBin := ""
	if opts.Baseline != "" {
		baseBin = filepath.Join(tmp, "ipsecgw-baseline")
		if err := buildRevision(ctx, tmp, opts.Baseline, baseBin); err != nil {
			return err
		}
	}
	started := time.Now().UTC()
	dir := filepath.Join(opts.Out, "ike-"+started.Format("20060102T150405Z"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	rep := &Report{Started: started, Options: opts, Versions: versions(ctx, opts.Baseline), Host: benchhost.Info(), LoadBefore: benchhost.LoadAvg()}
	total := opts.Reps * len(opts.Ns) * len(opts.Groups) * len(opts.Responders)
	i := 0
	for r := 1; r <= opts.Reps; r++ {
		for _, n := range opts.Ns {
			for _, g := range opts.Groups {
				for _, resp := range roundOrder(opts.Responders, r) {
					i++
					if ctx.Err() != nil {
						return errors.New("interrupted")
					}
					fmt.Fprintf(os.Stderr, "[%d/%d] rep %d n=%d %s %s (load %s)\n", i, total, r, n, g, resp, benchhost.LoadAvg())
					b := bin
					if resp == baselineResponder {
						b = baseBin
					}
					s := burst(ctx, b, dir, opts, resp, g, n)
					s.Rep = r
					if s.Error != "" {
						fmt.Fprintf(os.Stderr, "  FAILED: %s\n", s.Error)
					} else {
						fmt.Fprintf(os.Stderr, "  %d up in %.2f s: %.0f/s, responder %.2f ms CPU/SA, %.1f KiB RSS/SA\n",
							s.Established, s.Seconds, s.SetupsPerSec, s.CPUmsPerSA, s.RSSKiBPerSA)
					}
					rep.Bursts = append(rep.Bursts, s)
					if err := rep.write(dir); err != nil {
						return err
					}
				}
			}
		}
	}
	// Idle tunnels: the single tunnel and the one beside N idle ones in
	// turn, each repetition in fresh labs.
	for r := 1; opts.IdleN > 0 && r <= opts.Reps && ctx.Err() == nil; r++ {
		for _, idle := range []int{0, opts.IdleN} {
			fmt.Fprintf(os.Stderr, "idle tunnels: rep %d, %d idle (load %s)\n", r, idle, benchhost.LoadAvg())
			s := idleRun(ctx, bin, dir, opts, idle, r)
			if s.Error != "" {
				fmt.Fprintf(os.Stderr, "  FAILED: %s\n", s.Error)
			} else {
				fmt.Fprintf(os.Stderr, "  %d up in %.1f s; %.2f Gbit/s; RSS after the setup: initiator %.1f MiB, responder %.1f MiB; "+
					"after %v idle: %.1f MiB, %.1f MiB\n", s.Established, s.SetupSeconds, s.BitsPerSec/1e9,
					float64(s.InitiatorRSSKiB)/1024, float64(s.ResponderRSSKiB)/1024, opts.IdleSettle,
					float64(s.InitiatorIdleRSSKiB)/1024, float64(s.ResponderIdleRSSKiB)/1024)
			}
			rep.Idle = append(rep.Idle, s)
			if err := rep.write(dir); err != nil {
				return err
			}
		}
	}
	if opts.Restart > 0 && ctx.Err() == nil {
		fmt.Fprintf(os.Stderr, "restart storm: %d auto=start conns (load %s)\n", opts.Restart, benchhost.LoadAvg())
		s := restartStorm(ctx, bin, opts)
		if s.Error != "" {
			fmt.Fprintf(os.Stderr, "  FAILED: %s\n", s.Error)
		} else {
			fmt.Fprintf(os.Stderr, "  first start %.2f s, after restart %.2f s, %d established\n", s.FirstSeconds, s.RestartSeconds, s.Established)
		}
		rep.Restart = &s
	}
	rep.LoadAfter = benchhost.LoadAvg()
	if err := rep.write(dir); err != nil {
		return err
	}
	fmt.Print(rep.Markdown())
	fmt.Fprintf(os.Stderr, "results in %s\n", dir)
	return nil
}

// roundOrder is the order of the responders in repetition rep: as given,
// except that ipsecgw and ipsecgw-baseline swap places in every second
// repetition, so that a drift of the shared machine's load over a run
// (other jobs starting or ending) does not favour whichever of the two
// always ran second.
func roundOrder(responders []string, rep int) []string {
	i, j := slices.Index(responders, "ipsecgw"), slices.Index(responders, baselineResponder)
	if rep%2 == 1 || i < 0 || j < 0 {
		return responders
	}
	out := slices.Clone(responders)
	out[i], out[j] = out[j], out[i]
	return out
}

// buildRevision builds ipsecgw at a git revision into out, from a
// throw-away worktree under dir, with the same toolchain as the current
// build.
func buildRevision(ctx context.Context, dir, rev, out string) error {
	src := filepath.Join(dir, "baseline-src")
	defer exec.Command("git", "worktree", "remove", "--force", src).Run()
	for _, step := range [][]string{
		{"git", "worktree", "add", "--detach", src, rev},
		{"sh", "-c", `cd "$0" && go build -trimpath -o "$1" ./cmd/ipsecgw`, src, out},
	} {
		if b, err := exec.CommandContext(ctx, step[0], step[1:]...).CombinedOutput(); err != nil {
			return fmt.Errorf("%s: %w\n%s", strings.Join(step, " "), err, b)
		}
	}
	return nil
}

func versions(ctx context.Context, baseline string) map[string]string {
	v := benchhost.NewVersions()
	v.Query(ctx, "ipsecgw", "git", "describe", "--always", "--dirty")
	if baseline != "" {
		v.Query(ctx, "ipsecgw-baseline", "git", "describe", "--always", baseline)
	}
	v.Query(ctx, "strongswan", "dpkg-query", "-W", "-f", "${Version}", "strongswan-charon")
	v.Query(ctx, "kernel", "uname", "-r")
	return v
}
