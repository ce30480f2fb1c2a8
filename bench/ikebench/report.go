package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// Report is everything one run measured.
type Report struct {
	Started    time.Time         `json:"started"`
	Options    options           `json:"options"`
	Versions   map[string]string `json:"versions"`
	Host       map[string]string `json:"host"`
	LoadBefore string            `json:"load_before"`
	LoadAfter  string            `json:"load_after,omitempty"`
	Bursts     []Burst           `json:"bursts"`
	Restart    *Restart          `json:"restart,omitempty"`
	Idle       []Idle            `json:"idle,omitempty"`
}

func (r *Report) write(dir string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "results.md"), []byte(r.Markdown()), 0o644)
}

// median of the successful bursts' values; ok is false when none
// succeeded.
func median(bs []Burst, f func(Burst) float64) (float64, bool) {
	var xs []float64
	for _, b := range bs {
		if b.Error == "" {
			xs = append(xs, f(b))
		}
	}
	return medianOf(xs)
}

// medianOf returns the median of xs (sorting them); ok is false for none.
func medianOf(xs []float64) (float64, bool) {
	if len(xs) == 0 {
		return 0, false
	}
	slices.Sort(xs)
	if len(xs)%2 == 1 {
		return xs[len(xs)/2], true
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2, true
}

func (r *Report) matching(n int, group, resp string) []Burst {
	var out []Burst
	for _, b := range r.Bursts {
		if b.N == n && b.Group == group && b.Responder == resp {
			out = append(out, b)
		}
	}
	return out
}

// Markdown renders the tables: medians per responder, N and group; the
// ipsecgw/strongSwan ratios of the same run; the restart storm.
func (r *Report) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# IKE setup benchmark, %s\n\n", r.Started.Format(time.RFC3339))
	var keys []string
	for k := range r.Versions {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "- %s: %s\n", k, r.Versions[k])
	}
	fmt.Fprintf(&b, "- host: %s, %s CPUs; load before %s, after %s\n", r.Host["cpu"], r.Host["cpus"], r.LoadBefore, r.LoadAfter)
	fmt.Fprintf(&b, "- %d repetition(s), interleaved; IKE aes128-sha256-GROUP, ESP %s; strongSwan initiators, %d connections per charon\n\n",
		r.Options.Reps, espProposal, r.Options.PerCharon)
	b.WriteString("Medians over repetitions. CPU and RSS are the responder's: utime+stime over the burst and the VmRSS growth once idle, per SA.\n\n")
	b.WriteString("| N | group | responder | runs ok | established | seconds | setups/s | CPU ms/SA | RSS KiB/SA | RSS after (MiB) |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, n := range r.Options.Ns {
		for _, g := range r.Options.Groups {
			for _, resp := range r.Options.Responders {
				bs := r.matching(n, g, resp)
				if len(bs) == 0 {
					continue
				}
				ok := 0
				for _, x := range bs {
					if x.Error == "" {
						ok++
					}
				}
				cell := func(f func(Burst) float64, prec int) string {
					if v, good := median(bs, f); good {
						return fmt.Sprintf("%.*f", prec, v)
					}
					return "–"
				}
				fmt.Fprintf(&b, "| %d | %s | %s | %d/%d | %s | %s | %s | %s | %s | %s |\n", n, g, resp, ok, len(bs),
					cell(func(x Burst) float64 { return float64(x.Established) }, 0),
					cell(func(x Burst) float64 { return x.Seconds }, 2),
					cell(func(x Burst) float64 { return x.SetupsPerSec }, 0),
					cell(func(x Burst) float64 { return x.CPUmsPerSA }, 2),
					cell(func(x Burst) float64 { return x.RSSKiBPerSA }, 1),
					cell(func(x Burst) float64 { return float64(x.RSSAfterKiB) / 1024 }, 1))
			}
		}
	}
	if slices.Contains(r.Options.Responders, "strongswan") {
		b.WriteString("\nipsecgw responder against strongSwan responder, same initiators, same run (goal: setups ≥ 2×, CPU/SA ≤ 0.5×):\n\n")
		b.WriteString("| N | group | responder | setups/s ratio | CPU/SA ratio | RSS/SA ratio |\n|---|---|---|---|---|---|\n")
		for _, n := range r.Options.Ns {
			for _, g := range r.Options.Groups {
				ss := r.matching(n, g, "strongswan")
				for _, resp := range r.Options.Responders {
					if resp == "strongswan" {
						continue
					}
					bs := r.matching(n, g, resp)
					ratio := func(f func(Burst) float64) string {
						a, ok1 := median(bs, f)
						s, ok2 := median(ss, f)
						if !ok1 || !ok2 || s == 0 {
							return "–"
						}
						return fmt.Sprintf("%.2f", a/s)
					}
					fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s |\n", n, g, resp,
						ratio(func(x Burst) float64 { return x.SetupsPerSec }),
						ratio(func(x Burst) float64 { return x.CPUmsPerSA }),
						ratio(func(x Burst) float64 { return x.RSSKiBPerSA }))
				}
			}
		}
	}
	if slices.Contains(r.Options.Responders, baselineResponder) && slices.Contains(r.Options.Responders, "ipsecgw") {
		fmt.Fprintf(&b, "\nipsecgw against ipsecgw-baseline (%s), same run:\n\n", r.Versions["ipsecgw-baseline"])
		b.WriteString("| N | group | setups/s ratio | CPU/SA ratio | RSS/SA ratio |\n|---|---|---|---|---|\n")
		for _, n := range r.Options.Ns {
			for _, g := range r.Options.Groups {
				cur, base := r.matching(n, g, "ipsecgw"), r.matching(n, g, baselineResponder)
				ratio := func(f func(Burst) float64) string {
					a, ok1 := median(cur, f)
					s, ok2 := median(base, f)
					if !ok1 || !ok2 || s == 0 {
						return "–"
					}
					return fmt.Sprintf("%.2f", a/s)
				}
				fmt.Fprintf(&b, "| %d | %s | %s | %s | %s |\n", n, g,
					ratio(func(x Burst) float64 { return x.SetupsPerSec }),
					ratio(func(x Burst) float64 { return x.CPUmsPerSA }),
					ratio(func(x Burst) float64 { return x.RSSKiBPerSA }))
			}
		}
	}
	var failed []string
	for _, x := range r.Bursts {
		if x.Error != "" {
			failed = append(failed, fmt.Sprintf("- rep %d n=%d %s %s: %s", x.Rep, x.N, x.Group, x.Responder, firstLine(x.Error)))
		}
	}
	if len(failed) > 0 {
		b.WriteString("\nFailed bursts:\n\n" + strings.Join(failed, "\n") + "\n")
	}
	for _, x := range r.Bursts {
		if x.Perf != "" {
			fmt.Fprintf(&b, "\nperf report of the %s responder, n=%d %s rep %d: %s\n", x.Responder, x.N, x.Group, x.Rep, x.Perf)
		}
	}
	b.WriteString(r.idleMarkdown())
	if s := r.Restart; s != nil {
		b.WriteString("\nRestart storm: ipsecgw initiator with N auto=start conns → ipsecgw responder, default cookie/half-open protections on both:\n\n")
		b.WriteString("| N | group | first start (s) | after restart (s) | established | responder IKE SAs | error |\n|---|---|---|---|---|---|---|\n")
		fmt.Fprintf(&b, "| %d | %s | %.2f | %.2f | %d | %d | %s |\n", s.N, s.Group, s.FirstSeconds, s.RestartSeconds, s.Established, s.ResponderSAs, firstLine(s.Error))
	}
	return b.String()
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(s, "\n")
	return first
}
