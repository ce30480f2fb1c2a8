package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/ipsecgw/ipsecgw/internal/lab"
)

// Idle is one measurement of the idle-tunnels benchmark (-idle N): an
// ipsecgw initiator in gw1 with one active conn (lab.LAN1 ⇄ lab.LAN2) and
// Idle idle ones (a /32 of initiatorNet each ⇄ lab.LAN2) against an ipsecgw
// responder in gw2; once all are up, one iperf3 TCP stream host1 → host2
// through the active tunnel. Idle is 0 for the reference and N otherwise,
// alternating in each repetition.
type Idle struct {
	Idle int `json:"idle"`
	Rep  int `json:"rep"`
	// Established counts the initiator's conns with a CHILD SA (Idle+1
	// when all came up); SetupSeconds is how long they took.
	Established  int     `json:"established"`
	SetupSeconds float64 `json:"setup_seconds"`
	BitsPerSec   float64 `json:"bits_per_sec"`
	Retransmits  int     `json:"retransmits"`
	// RSS of the two daemons 3 s after everything is up, and again after
	// IdleSettle more without traffic; both before the iperf3 run.
	InitiatorRSSKiB     int64 `json:"initiator_rss_kib"`
	ResponderRSSKiB     int64 `json:"responder_rss_kib"`
	InitiatorIdleRSSKiB int64 `json:"initiator_idle_rss_kib"`
	ResponderIdleRSSKiB int64 `json:"responder_idle_rss_kib"`
	// Perf is the path of the perf report of the initiator during the
	// iperf3 run (-perf).
	Perf  string `json:"perf_report,omitempty"`
	Error string `json:"error,omitempty"`
}

// activeID is the identity of the initiator's active conn.
const activeID = "active.bench"

// iperfPort is the iperf3 server's port on host2.
const iperfPort = 5201

func idleRun(ctx context.Context, bin, dir string, opts options, idle, rep int) (s Idle) {
	s = Idle{Idle: idle, Rep: rep}
	l, err := lab.Build(lab.Options{})
	if err != nil {
		s.Error = err.Error()
		return s
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(ctx, opts.Timeout+opts.IdleSettle+2*time.Minute)
	defer cancel()
	if err := measureIdle(ctx, l, bin, dir, opts, &s); err != nil {
		s.Error = err.Error()
	}
	return s
}

func measureIdle(ctx context.Context, l *lab.Lab, bin, dir string, opts options, s *Idle) error {
	const group = "x25519"
	// One responder conn for both kinds: any identity, any /32 of
	// initiatorNet or all of LAN1.
	respConf := fmt.Sprintf(`conn resp
  keyexchange=ikev2
  authby=secret
  left=%s
  leftid=%s
  leftsubnet=%s
  right=%%any
  rightid=%%any
  rightsubnet=%s,%s
  ike=%s!
  esp=%s!
  auto=add
`, l.GW2.Addr, responderID, lab.LAN2, initiatorNet, lab.LAN1, ikeProposal(group), espProposal)
	resp, err := startGateway(ctx, bin, l.GW2, respConf, fmt.Sprintf(": PSK %q\n", benchPSK), ipsecgwSettings(false))
	if err != nil {
		return err
	}
	var active strings.Builder
	writeInitiatorConn(&active, l, group, "active", activeID, lab.LAN1.String())
	initConf := active.String() + initiatorConf(l, group, s.Idle)
	start := time.Now()
	init, err := startGateway(ctx, bin, l.GW1, initConf, fmt.Sprintf(": PSK %q\n", benchPSK), ipsecgwSettings(false))
	if err != nil {
		return err
	}
	s.Established, err = init.waitEstablished(ctx, s.Idle+1, start.Add(opts.Timeout))
	s.SetupSeconds = time.Since(start).Seconds()
	if err != nil {
		return err
	}
	if s.Established < s.Idle+1 {
		return fmt.Errorf("only %d of %d conns came up within %v", s.Established, s.Idle+1, opts.Timeout)
	}
	// Let the setup's garbage go and the daemons settle.
	time.Sleep(3 * time.Second)
	if s.InitiatorRSSKiB, err = rssKiB(init.proc.PID); err != nil {
		return err
	}
	if s.ResponderRSSKiB, err = rssKiB(resp.proc.PID); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(opts.IdleSettle):
	}
	if s.InitiatorIdleRSSKiB, err = rssKiB(init.proc.PID); err != nil {
		return err
	}
	if s.ResponderIdleRSSKiB, err = rssKiB(resp.proc.PID); err != nil {
		return err
	}
	srv, err := l.Host2.StartIperfServer(ctx, iperfPort)
	if err != nil {
		return err
	}
	defer srv.Stop()
	// The initiator encrypts the stream's data and so bears the per-packet
	// cost that the idle SAs could raise; -perf records it.
	var stopPerf func() (string, error)
	if opts.Perf {
		stopPerf, err = startPerf(ctx, init.proc.PID, filepath.Join(dir, fmt.Sprintf("perf-idle-initiator-%d-rep%d", s.Idle, s.Rep)))
		if err != nil {
			return err
		}
	}
	res, err := l.Host1.Iperf(ctx, l.Host2.Addr, srv.Port, opts.IdleDuration, 1)
	if stopPerf != nil {
		rep, perr := stopPerf()
		s.Perf = rep
		if perr != nil && err == nil {
			err = perr
		}
	}
	if err != nil {
		return err
	}
	s.BitsPerSec, s.Retransmits = res.ReceivedBitsPerSecond, res.Retransmits
	return nil
}

// idleMarkdown is the idle-tunnels table: medians per idle count and the
// ratio of each to the single tunnel's.
func (r *Report) idleMarkdown() string {
	if len(r.Idle) == 0 {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "\nOne active tunnel's iperf3 TCP throughput (1 stream, %v) with idle IKE+CHILD SAs beside it, ipsecgw ↔ ipsecgw, x25519, %s; medians (goal: ≥ 0.95 of the single tunnel's):\n\n",
		r.Options.IdleDuration, espProposal)
	fmt.Fprintf(&b, "| idle SAs | runs ok | established | setup (s) | Gbit/s | ratio to 0 idle | RSS after the setup, initiator / responder (MiB) | after %v idle (MiB) |\n|---|---|---|---|---|---|---|---|\n",
		r.Options.IdleSettle)
	med := func(idle int, f func(Idle) float64) (float64, bool) {
		var xs []float64
		for _, x := range r.Idle {
			if x.Idle == idle && x.Error == "" {
				xs = append(xs, f(x))
			}
		}
		return medianOf(xs)
	}
	base, baseOK := med(0, func(x Idle) float64 { return x.BitsPerSec })
	for _, idle := range []int{0, r.Options.IdleN} {
		runs, ok := 0, 0
		for _, x := range r.Idle {
			if x.Idle == idle {
				runs++
				if x.Error == "" {
					ok++
				}
			}
		}
		cell := func(f func(Idle) float64, scale float64, prec int) string {
			if v, good := med(idle, f); good {
				return fmt.Sprintf("%.*f", prec, v/scale)
			}
			return "–"
		}
		ratio := "–"
		if v, good := med(idle, func(x Idle) float64 { return x.BitsPerSec }); good && baseOK && base > 0 {
			ratio = fmt.Sprintf("%.3f", v/base)
		}
		fmt.Fprintf(&b, "| %d | %d/%d | %s | %s | %s | %s | %s / %s | %s / %s |\n", idle, ok, runs,
			cell(func(x Idle) float64 { return float64(x.Established) }, 1, 0),
			cell(func(x Idle) float64 { return x.SetupSeconds }, 1, 1),
			cell(func(x Idle) float64 { return x.BitsPerSec }, 1e9, 2),
			ratio,
			cell(func(x Idle) float64 { return float64(x.InitiatorRSSKiB) }, 1024, 1),
			cell(func(x Idle) float64 { return float64(x.ResponderRSSKiB) }, 1024, 1),
			cell(func(x Idle) float64 { return float64(x.InitiatorIdleRSSKiB) }, 1024, 1),
			cell(func(x Idle) float64 { return float64(x.ResponderIdleRSSKiB) }, 1024, 1))
	}
	// What each idle pair adds: the N-idle run's RSS less the single
	// tunnel's (the binary, the runtime and the buffers every daemon has),
	// divided by the N added pairs.
	perPair := func(f func(Idle) float64) string {
		one, ok1 := med(0, f)
		many, ok2 := med(r.Options.IdleN, f)
		if !ok1 || !ok2 {
			return "–"
		}
		return fmt.Sprintf("%.1f", (many-one)/float64(r.Options.IdleN))
	}
	fmt.Fprintf(&b, "\nRSS per idle IKE+CHILD pair (the %d-idle run's RSS less the single tunnel's, ÷ %d), KiB (goal: ≤ 8): "+
		"after the setup initiator %s, responder %s; after %v idle initiator %s, responder %s\n",
		r.Options.IdleN, r.Options.IdleN,
		perPair(func(x Idle) float64 { return float64(x.InitiatorRSSKiB) }), perPair(func(x Idle) float64 { return float64(x.ResponderRSSKiB) }),
		r.Options.IdleSettle,
		perPair(func(x Idle) float64 { return float64(x.InitiatorIdleRSSKiB) }), perPair(func(x Idle) float64 { return float64(x.ResponderIdleRSSKiB) }))
	for _, x := range r.Idle {
		if x.Perf != "" {
			fmt.Fprintf(&b, "\nperf report of the initiator during iperf3, %d idle, rep %d: %s\n", x.Idle, x.Rep, x.Perf)
		}
	}
	return b.String()
}
