package main

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/internal/lab"
)

// benchPSK only ever protects throw-away namespaces of this benchmark.
const benchPSK = "ipsecgw-ikebench-psk"

// responderID is the responder's IKE identity; initiator k is i<k>.bench.
const responderID = "responder.bench"

// initiatorNet holds the initiators' /32 traffic selectors, one per SA;
// the responder protects lab.LAN2 and accepts any /32 of initiatorNet.
var initiatorNet = netip.MustParsePrefix("10.64.0.0/10")

// initiatorTS is SA k's own /32 inside initiatorNet.
func initiatorTS(k int) string {
	a := initiatorNet.Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v += uint32(k) + 1
	return fmt.Sprintf("%d.%d.%d.%d/32", v>>24, v>>16&255, v>>8&255, v&255)
}

// espProposal is the same everywhere: only IKE's key exchange differs.
const espProposal = "aes128gcm16"

func ikeProposal(group string) string { return "aes128-sha256-" + groups[group] }

// Burst is one measurement: n SAs initiated at once against a responder.
type Burst struct {
	Responder string `json:"responder"`
	Group     string `json:"group"`
	N         int    `json:"n"`
	Rep       int    `json:"rep"`
	// Established is how many CHILD SAs the initiators saw come up within
	// the timeout; ResponderSAs how many IKE SAs the responder holds
	// afterwards.
	Established  int     `json:"established"`
	ResponderSAs int     `json:"responder_ike_sas"`
	Seconds      float64 `json:"seconds"`
	SetupsPerSec float64 `json:"setups_per_sec"`
	// CPUmsPerSA is the responder's utime+stime over the burst divided by
	// Established.
	CPUmsPerSA float64 `json:"cpu_ms_per_sa"`
	// RSS before the burst and after it once idle, in KiB.
	RSSBeforeKiB int64   `json:"rss_before_kib"`
	RSSAfterKiB  int64   `json:"rss_after_kib"`
	RSSKiBPerSA  float64 `json:"rss_kib_per_sa"`
	Initiators   int     `json:"initiator_processes"`
	Perf         string  `json:"perf_report,omitempty"`
	// Strace is the path of the responder's system call counts (-strace).
	Strace string `json:"strace_report,omitempty"`
	Error  string `json:"error,omitempty"`
}

// responder is the process under measurement.
type responder struct {
	pid int
	// count returns how many IKE SAs it holds.
	count func(ctx context.Context) (int, error)
}

func burst(ctx context.Context, bin, dir string, opts options, resp, group string, n int) (b Burst) {
	b = Burst{Responder: resp, Group: group, N: n}
	l, err := lab.Build(lab.Options{})
	if err != nil {
		b.Error = err.Error()
		return b
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout+2*time.Minute)
	defer cancel()
	if err := measureBurst(ctx, l, bin, dir, opts, &b); err != nil {
		b.Error = err.Error()
	}
	return b
}

func measureBurst(ctx context.Context, l *lab.Lab, bin, dir string, opts options, b *Burst) error {
	var r responder
	var err error
	switch b.Responder {
	case "strongswan":
		r, err = startStrongSwanResponder(ctx, l, b.Group)
	default:
		r, err = startIpsecgwResponder(ctx, l, bin, b.Group, true)
	}
	if err != nil {
		return err
	}
	// Let the responder settle before the baseline.
	time.Sleep(time.Second)
	if b.RSSBeforeKiB, err = rssKiB(r.pid); err != nil {
		return err
	}
	cpu0, err := cpuTicks(r.pid)
	if err != nil {
		return err
	}
	var stopPerf func() (string, error)
	if opts.Perf && b.Responder != "strongswan" {
		stopPerf, err = startPerf(ctx, r.pid, filepath.Join(dir, fmt.Sprintf("perf-%s-%s-%d-rep%d", b.Responder, b.Group, b.N, b.Rep)))
		if err != nil {
			return err
		}
	}
	var stopStrace func() error
	if opts.Strace && b.Responder != "strongswan" {
		b.Strace = filepath.Join(dir, fmt.Sprintf("strace-%s-%s-%d-rep%d.txt", b.Responder, b.Group, b.N, b.Rep))
		if stopStrace, err = startStrace(ctx, r.pid, b.Strace); err != nil {
			return err
		}
	}
	var elapsed time.Duration
	if b.Responder == "ipsecgw-pair" {
		b.Initiators = 1
		elapsed, b.Established, err = ipsecgwInitiators(ctx, l, bin, b.Group, b.N, opts.Timeout)
	} else {
		b.Initiators = (b.N + opts.PerCharon - 1) / opts.PerCharon
		elapsed, b.Established, err = strongSwanInitiators(ctx, l, b.Group, b.N, opts.PerCharon, opts.Timeout)
	}
	cpu1, cerr := cpuTicks(r.pid)
	if stopStrace != nil {
		if serr := stopStrace(); serr != nil && err == nil {
			err = serr
		}
	}
	if stopPerf != nil {
		rep, perr := stopPerf()
		b.Perf = rep
		if perr != nil && err == nil {
			err = perr
		}
	}
	if err != nil {
		return err
	}
	if cerr != nil {
		return cerr
	}
	b.Seconds = elapsed.Seconds()
	if b.Established > 0 {
		b.SetupsPerSec = float64(b.Established) / b.Seconds
		b.CPUmsPerSA = float64(cpu1-cpu0) * 1000 / clockTicks / float64(b.Established)
	}
	// Idle: no more setups; give the runtime a moment to return what the
	// burst's garbage held.
	time.Sleep(3 * time.Second)
	if b.RSSAfterKiB, err = rssKiB(r.pid); err != nil {
		return err
	}
	if b.Established > 0 {
		b.RSSKiBPerSA = float64(b.RSSAfterKiB-b.RSSBeforeKiB) / float64(b.Established)
	}
	if b.ResponderSAs, err = r.count(ctx); err != nil {
		return err
	}
	if b.Established < b.N {
		return fmt.Errorf("only %d of %d CHILD SAs came up within %v (responder holds %d IKE SAs)", b.Established, b.N, opts.Timeout, b.ResponderSAs)
	}
	return nil
}

// startStrongSwanResponder runs charon in gw2 tuned for many peers: the
// cookie and per-address block thresholds would otherwise throttle a
// burst from one address (the initiators share gw1's), and a hash table
// of one row (the default) would make every lookup a list walk.
func startStrongSwanResponder(ctx context.Context, l *lab.Lab, group string) (responder, error) {
	conf := fmt.Sprintf(`connections {
  resp {
    version = 2
    local_addrs = %s
    remote_addrs = %%any
    proposals = %s
    local {
      auth = psk
      id = %s
    }
    remote {
      auth = psk
    }
    children {
      net {
        local_ts = %s
        remote_ts = %s
        esp_proposals = %s
      }
    }
  }
}
secrets {
  ike-any {
    secret = %q
  }
}
`, l.GW2.Addr, ikeProposal(group), responderID, lab.LAN2, initiatorNet, espProposal, benchPSK)
	ch, err := l.GW2.StartCharon(ctx, lab.CharonConfig{
		Name:    "resp",
		Swanctl: conf,
		Extra: `  cookie_threshold = 1000000
  block_threshold = 1000000
  ikesa_table_size = 16384
  ikesa_table_segments = 16`,
		LogLevels: quietCharon,
	})
	if err != nil {
		return responder{}, err
	}
	sock := filepath.Join(ch.Dir, "charon.vici")
	return responder{pid: ch.Proc.PID, count: func(ctx context.Context) (int, error) {
		v, err := dialVICI(sock)
		if err != nil {
			return 0, err
		}
		defer v.Close()
		m, err := v.request("stats", nil, nil)
		if err != nil {
			return 0, err
		}
		return strconv.Atoi(m.get("ikesas.total"))
	}}, nil
}

// quietCharon logs only what charon logs at level 0 (SAs established,
// errors): per-message logging of ike=2 would cost CPU that ipsecgw's info
// level does not spend.
var quietCharon = map[string]int{"default": 0, "ike": 0, "cfg": 0}

// ipsecgwSettings lifts the flood protections that would throttle a
// benchmark burst from one address, as for strongSwan; protect=true keeps
// the daemon's defaults (the restart storm).
func ipsecgwSettings(protect bool) string {
	s := "tun:\n  name: isgw0\nlog:\n  level: info\n"
	if !protect {
		s += "ike:\n  cookie_threshold: 0\n  cookie_threshold_ip: 0\n  half_open_limit: 1000000\n"
	}
	return s
}

func startIpsecgwResponder(ctx context.Context, l *lab.Lab, bin, group string, raised bool) (responder, error) {
	conf := fmt.Sprintf(`conn resp
  keyexchange=ikev2
  authby=secret
  left=%s
  leftid=%s
  leftsubnet=%s
  right=%%any
  rightid=%%any
  rightsubnet=%s
  ike=%s!
  esp=%s!
  auto=add
`, l.GW2.Addr, responderID, lab.LAN2, initiatorNet, ikeProposal(group), espProposal)
	g, err := startGateway(ctx, bin, l.GW2, conf, fmt.Sprintf(": PSK %q\n", benchPSK), ipsecgwSettings(!raised))
	if err != nil {
		return responder{}, err
	}
	return responder{pid: g.proc.PID, count: g.ikeSAs}, nil
}

// strongSwanInitiators starts the initiating charons in gw1, each with its
// share of the n connections loaded, then asks every connection to
// initiate at once and waits until n CHILD SAs are up. It returns the time
// from the first request to the last CHILD SA up.
func strongSwanInitiators(ctx context.Context, l *lab.Lab, group string, n, perCharon int, timeout time.Duration) (time.Duration, int, error) {
	type inst struct {
		ch    *lab.Charon
		first int
		count int
	}
	// kernel-libipsec routes each CHILD SA's remote selector with a
	// source address from its local one and fails the CHILD SA when gw1
	// has no such address: give gw1 all n.
	var batch strings.Builder
	for k := range n {
		fmt.Fprintf(&batch, "address add %s dev lo\n", initiatorTS(k))
	}
	file := filepath.Join(l.Dir, "initiator-addrs.batch")
	if err := os.WriteFile(file, []byte(batch.String()), 0o600); err != nil {
		return 0, 0, err
	}
	if _, err := l.GW1.Run(ctx, "ip", "-batch", file); err != nil {
		return 0, 0, err
	}
	var insts []inst
	for i, first := 0, 0; first < n; i, first = i+1, first+perCharon {
		cnt := min(perCharon, n-first)
		// Each instance on its own ports (one namespace).
		// Retransmissions start late and go on long, so that a slow
		// responder is measured rather than initiators giving up.
		ch, err := l.GW1.StartCharon(ctx, lab.CharonConfig{
			Name:    fmt.Sprintf("init%d", i),
			Swanctl: initiatorSwanctl(l, group, first, cnt),
			Extra: fmt.Sprintf(`  port = %d
  port_nat_t = %d
  retransmit_timeout = 8
  retransmit_tries = 8
  ikesa_table_size = 4096
  ikesa_table_segments = 16`, 10500+i, 14500+i),
			LogLevels: quietCharon,
		})
		if err != nil {
			return 0, 0, err
		}
		insts = append(insts, inst{ch, first, cnt})
	}
	var up atomic.Int64
	done := make(chan struct{})
	var once sync.Once
	var evConns []*viciConn
	defer func() {
		for _, v := range evConns {
			v.Close()
		}
	}()
	for _, in := range insts {
		v, err := dialVICI(filepath.Join(in.ch.Dir, "charon.vici"))
		if err != nil {
			return 0, 0, err
		}
		evConns = append(evConns, v)
		if err := v.register("child-updown"); err != nil {
			return 0, 0, err
		}
		// The session ends when the deferred Close runs.
		go v.events(func(name string, m viciMsg) {
			if name == "child-updown" && m.get("up") == "yes" && up.Add(1) == int64(n) {
				once.Do(func() { close(done) })
			}
		})
	}
	start := time.Now()
	errs := make(chan error, len(insts))
	for _, in := range insts {
		go func() {
			v, err := dialVICI(filepath.Join(in.ch.Dir, "charon.vici"))
			if err != nil {
				errs <- err
				return
			}
			defer v.Close()
			for k := in.first; k < in.first+in.count; k++ {
				// timeout -1: charon starts the initiation and answers at
				// once instead of waiting for its outcome.
				m, err := v.request("initiate", [][2]string{{"child", "net"}, {"ike", connName(k)}, {"timeout", "-1"}}, nil)
				if err == nil && m.get("success") != "yes" {
					err = fmt.Errorf("initiate %s: %s", connName(k), m.get("errmsg"))
				}
				if err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for range insts {
		if err := <-errs; err != nil {
			return 0, int(up.Load()), err
		}
	}
	select {
	case <-done:
	case <-time.After(timeout - time.Since(start)):
	case <-ctx.Done():
	}
	elapsed, got := time.Since(start), int(up.Load())
	if got < n {
		// What the first initiator saw explains the missing SAs.
		lines := insts[0].ch.LogExcerpt()
		return elapsed, got, fmt.Errorf("%d of %d CHILD SAs up within %v; charon %s says:\n%s",
			got, n, timeout, insts[0].ch.Name, strings.Join(lines[max(len(lines)-25, 0):], "\n"))
	}
	return elapsed, got, nil
}

func connName(k int) string { return fmt.Sprintf("c%d", k) }

func initiatorID(k int) string { return fmt.Sprintf("i%d.bench", k) }

// initiatorSwanctl renders connections first … first+count-1 and one PSK
// for any identity.
func initiatorSwanctl(l *lab.Lab, group string, first, count int) string {
	var b strings.Builder
	b.WriteString("connections {\n")
	for k := first; k < first+count; k++ {
		fmt.Fprintf(&b, `  %s {
    version = 2
    local_addrs = %s
    remote_addrs = %s
    proposals = %s
    local {
      auth = psk
      id = %s
    }
    remote {
      auth = psk
      id = %s
    }
    children {
      net {
        local_ts = %s
        remote_ts = %s
        esp_proposals = %s
      }
    }
  }
`, connName(k), l.GW1.Addr, l.GW2.Addr, ikeProposal(group), initiatorID(k), responderID, initiatorTS(k), lab.LAN2, espProposal)
	}
	fmt.Fprintf(&b, "}\nsecrets {\n  ike-any {\n    secret = %q\n  }\n}\n", benchPSK)
	return b.String()
}

// initiatorConf is an ipsecgw initiator's ipsec.conf with n auto=start
// conns, the ipsec.conf twin of initiatorSwanctl.
func initiatorConf(l *lab.Lab, group string, n int) string {
	var b strings.Builder
	for k := range n {
		writeInitiatorConn(&b, l, group, connName(k), initiatorID(k), initiatorTS(k))
	}
	return b.String()
}

// writeInitiatorConn writes one auto=start conn of an ipsecgw initiator
// (ID id, local subnet subnet) towards the responder's LAN2.
func writeInitiatorConn(b *strings.Builder, l *lab.Lab, group, name, id, subnet string) {
	fmt.Fprintf(b, `conn %s
  keyexchange=ikev2
  authby=secret
  left=%s
  leftid=%s
  leftsubnet=%s
  right=%s
  rightid=%s
  rightsubnet=%s
  ike=%s!
  esp=%s!
  auto=start

`, name, l.GW1.Addr, id, subnet, l.GW2.Addr, responderID, lab.LAN2, ikeProposal(group), espProposal)
}

// ipsecgwInitiators starts an ipsecgw in gw1 with n auto=start conns and
// returns the time from its start until all n are established.
func ipsecgwInitiators(ctx context.Context, l *lab.Lab, bin, group string, n int, timeout time.Duration) (time.Duration, int, error) {
	g, start, err := startInitiatorGateway(ctx, l, bin, group, n)
	if err != nil {
		return 0, 0, err
	}
	got, err := g.waitEstablished(ctx, n, start.Add(timeout))
	return time.Since(start), got, err
}

func startInitiatorGateway(ctx context.Context, l *lab.Lab, bin, group string, n int) (*gateway, time.Time, error) {
	start := time.Now()
	g, err := startGateway(ctx, bin, l.GW1, initiatorConf(l, group, n), fmt.Sprintf(": PSK %q\n", benchPSK), ipsecgwSettings(false))
	return g, start, err
}

// gateway is an `ipsecgw run` inside a lab node. Its files live in the lab
// directory, so lab.Close removes them along with the process.
type gateway struct {
	node   *lab.Node
	bin    string
	dir    string
	socket string
	proc   *lab.Process
}

// startGateway writes the files and starts the daemon, returning once its
// control socket answers.
func startGateway(ctx context.Context, bin string, node *lab.Node, conf, secrets, settings string) (*gateway, error) {
	dir := filepath.Join(node.Lab.Dir, "ipsecgw-"+node.Role)
	if err := os.MkdirAll(filepath.Join(dir, "run"), 0o700); err != nil {
		return nil, err
	}
	for name, text := range map[string]string{"ipsec.conf": conf, "ipsec.secrets": secrets, "ipsecgw.yaml": settings} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			return nil, err
		}
	}
	g := &gateway{node: node, bin: bin, dir: dir, socket: filepath.Join(dir, "run", "ipsecgw.sock")}
	return g, g.start(ctx)
}

func (g *gateway) start(ctx context.Context) error {
	var err error
	g.proc, err = g.node.Start("ipsecgw", "sh", "-c", `exec "$@" >>"$0" 2>&1`, filepath.Join(g.dir, "ipsecgw.log"),
		g.bin, "run", "--config", filepath.Join(g.dir, "ipsec.conf"), "--secrets", filepath.Join(g.dir, "ipsec.secrets"),
		"--settings", filepath.Join(g.dir, "ipsecgw.yaml"), "--socket", g.socket)
	if err != nil {
		return err
	}
	for {
		cl, err := control.Dial(ctx, g.socket)
		if err == nil {
			cl.Close()
			return nil
		}
		select {
		case <-g.proc.Done():
			return fmt.Errorf("ipsecgw in %s exited at startup (%v):\n%s", g.node.Role, g.proc.ExitErr(), g.logTail())
		case <-ctx.Done():
			return fmt.Errorf("ipsecgw control socket in %s did not answer: %w", g.node.Role, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (g *gateway) logTail() string {
	b, _ := os.ReadFile(filepath.Join(g.dir, "ipsecgw.log"))
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 30 {
		lines = lines[len(lines)-30:]
	}
	return strings.Join(lines, "\n")
}

// stop ends the daemon with SIGTERM (its orderly shutdown).
func (g *gateway) stop() error {
	return g.proc.Stop(syscall.SIGTERM, 30*time.Second)
}

// ikeSAs counts the daemon's IKE SAs.
func (g *gateway) ikeSAs(ctx context.Context) (int, error) {
	cl, err := control.Dial(ctx, g.socket)
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	st, err := cl.Stats(ctx)
	if err != nil {
		return 0, err
	}
	return st.IKE.IKESAs, nil
}

// waitEstablished polls until want conns are established with a CHILD SA
// or the deadline passes, returning how many were.
func (g *gateway) waitEstablished(ctx context.Context, want int, deadline time.Time) (int, error) {
	got := 0
	for {
		cl, err := control.Dial(ctx, g.socket)
		if err == nil {
			conns, err := cl.Status(ctx)
			cl.Close()
			if err == nil {
				got = 0
				for _, c := range conns {
					if c.State == control.StateEstablished && len(c.Children) > 0 {
						got++
					}
				}
				if got >= want {
					return got, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return got, ctx.Err()
		case <-g.proc.Done():
			return got, fmt.Errorf("ipsecgw in %s exited (%v):\n%s", g.node.Role, g.proc.ExitErr(), g.logTail())
		case <-time.After(250 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return got, nil
		}
	}
}

// startPerf records pid with perf(1) until the returned function is
// called, which writes the report to base.txt and returns its path.
func startPerf(ctx context.Context, pid int, base string) (func() (string, error), error) {
	data := base + ".data"
	cmd := exec.CommandContext(ctx, "perf", "record", "-F", "499", "-g", "-p", strconv.Itoa(pid), "-o", data)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return func() (string, error) {
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
		out, err := exec.CommandContext(ctx, "perf", "report", "-i", data, "--stdio", "--no-children", "--percent-limit", "0.5", "-g", "none").Output()
		if err != nil {
			return "", fmt.Errorf("perf report: %w", err)
		}
		os.Remove(data)
		return base + ".txt", os.WriteFile(base+".txt", out, 0o644)
	}, nil
}

// startStrace counts the system calls of pid and its threads with
// strace(1) until the returned function is called, which leaves the
// counts in out.
func startStrace(ctx context.Context, pid int, out string) (func() error, error) {
	cmd := exec.CommandContext(ctx, "strace", "-c", "-f", "-p", strconv.Itoa(pid), "-o", out)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	// strace attaches to the threads one by one; a burst starting
	// meanwhile would be counted only in part.
	time.Sleep(500 * time.Millisecond)
	return func() error {
		cmd.Process.Signal(syscall.SIGINT)
		if err := cmd.Wait(); err != nil && ctx.Err() == nil {
			if _, statErr := os.Stat(out); statErr != nil {
				return fmt.Errorf("strace: %w", err)
			}
		}
		return nil
	}, nil
}
