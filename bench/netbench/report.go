package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Sample is everything measured for one system in one repetition.
type Sample struct {
	System string `json:"system"`
	Rep    int    `json:"rep"`
	Load   string `json:"loadavg"` // /proc/loadavg 1/5/15 min before the sample
	// Negotiated is the data-plane SA the gateways reported.
	Negotiated string      `json:"negotiated"`
	TCP        []TCPResult `json:"tcp"`
	UDP        UDPResult   `json:"udp_64b"`
	IMIX       IMIXResult  `json:"imix"`
	PingIdle   PingResult  `json:"ping_idle"`
	PingLoad   PingResult  `json:"ping_load"`
	Error      string      `json:"error,omitempty"`
}

// Stat is a median with its range over repetitions.
type Stat struct {
	N      int     `json:"n"`
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
}

func stat(xs []float64) Stat {
	if len(xs) == 0 {
		// N = 0 marks "no data"; NaN would not survive encoding/json.
		return Stat{}
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Stat{N: len(s), Median: m, Min: s[0], Max: s[len(s)-1]}
}

// Summary aggregates one system's successful samples.
type Summary struct {
	System string `json:"system"`
	Label  string `json:"label"`
	Failed int    `json:"failed_reps"`
	// Negotiated is the data-plane SA of the first successful sample.
	Negotiated string `json:"negotiated"`
	// Keyed by stream count.
	TCPGbps        map[int]Stat `json:"tcp_gbit_per_s"`
	TCPRetransmits map[int]Stat `json:"tcp_retransmits"`
	CPUPerGB       map[int]Stat `json:"cpu_seconds_per_gb"` // empty for plain
	UDPKpps        Stat         `json:"udp_64b_kpps_received"`
	UDPLossPct     Stat         `json:"udp_64b_loss_pct"`
	IMIXKpps       Stat         `json:"imix_kpps_received"`
	IMIXGbps       Stat         `json:"imix_gbit_per_s_received"`
	IMIXLossPct    Stat         `json:"imix_loss_pct"`
	// Latency percentiles over all RTTs of all repetitions pooled.
	PingIdleP50  float64 `json:"ping_idle_p50_ms"`
	PingIdleP99  float64 `json:"ping_idle_p99_ms"`
	PingIdleLoss float64 `json:"ping_idle_loss_pct"`
	PingLoadP50  float64 `json:"ping_load_p50_ms"`
	PingLoadP99  float64 `json:"ping_load_p99_ms"`
	PingLoadLoss float64 `json:"ping_load_loss_pct"`
}

// Report is the whole run, written as results.json.
type Report struct {
	Started    time.Time         `json:"started"`
	Finished   time.Time         `json:"finished"`
	Options    options           `json:"options"`
	Versions   map[string]string `json:"versions"`
	Host       map[string]string `json:"host"`
	LoadBefore string            `json:"loadavg_before"`
	LoadAfter  string            `json:"loadavg_after"`
	Samples    []Sample          `json:"samples"`
	Summary    []Summary         `json:"summary"`
}

func (r *Report) summarize() {
	labels := map[string]string{}
	for _, s := range allSystems() {
		labels[s.Name] = s.Label
	}
	r.Summary = nil
	for _, name := range r.Options.Systems {
		sum := Summary{System: name, Label: labels[name], TCPGbps: map[int]Stat{}, TCPRetransmits: map[int]Stat{}, CPUPerGB: map[int]Stat{}}
		gbps, retr, cpu := map[int][]float64{}, map[int][]float64{}, map[int][]float64{}
		var kpps, udpLoss, imixKpps, imixGbps, imixLoss []float64
		var idle, load []float64
		var idleSent, loadSent int
		for _, s := range r.Samples {
			if s.System != name {
				continue
			}
			if s.Error != "" {
				sum.Failed++
				continue
			}
			if sum.Negotiated == "" {
				sum.Negotiated = s.Negotiated
			}
			for _, t := range s.TCP {
				gbps[t.Streams] = append(gbps[t.Streams], t.BitsPerSec/1e9)
				retr[t.Streams] = append(retr[t.Streams], float64(t.Retransmits))
				if t.CPUPerGB >= 0 {
					cpu[t.Streams] = append(cpu[t.Streams], t.CPUPerGB)
				}
			}
			if r.Options.has(testUDP64) {
				kpps = append(kpps, s.UDP.RecvPPS/1e3)
				udpLoss = append(udpLoss, lossPct(s.UDP.LostPackets, s.UDP.SentPackets))
			}
			if r.Options.has(testIMIX) {
				imixKpps = append(imixKpps, s.IMIX.RecvPPS/1e3)
				imixGbps = append(imixGbps, s.IMIX.RecvBitsPerSec/1e9)
				imixLoss = append(imixLoss, lossPct(s.IMIX.LostPackets, s.IMIX.SentPackets))
			}
			idle = append(idle, s.PingIdle.RTTs...)
			load = append(load, s.PingLoad.RTTs...)
			idleSent += s.PingIdle.Sent
			loadSent += s.PingLoad.Sent
		}
		for n, xs := range gbps {
			sum.TCPGbps[n] = stat(xs)
			sum.TCPRetransmits[n] = stat(retr[n])
		}
		for n, xs := range cpu {
			sum.CPUPerGB[n] = stat(xs)
		}
		sum.UDPKpps, sum.UDPLossPct = stat(kpps), stat(udpLoss)
		sum.IMIXKpps, sum.IMIXGbps, sum.IMIXLossPct = stat(imixKpps), stat(imixGbps), stat(imixLoss)
		sum.PingIdleP50, sum.PingIdleP99 = percentile(idle, 50), percentile(idle, 99)
		sum.PingLoadP50, sum.PingLoadP99 = percentile(load, 50), percentile(load, 99)
		if idleSent > 0 {
			sum.PingIdleLoss = 100 * float64(idleSent-len(idle)) / float64(idleSent)
		}
		if loadSent > 0 {
			sum.PingLoadLoss = 100 * float64(loadSent-len(load)) / float64(loadSent)
		}
		r.Summary = append(r.Summary, sum)
	}
}

func (r *Report) write(dir string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "results.json"), append(b, '\n'), 0o644); err != nil {
		return err
	}
	if r.Summary == nil {
		return nil
	}
	return os.WriteFile(filepath.Join(dir, "results.md"), []byte(r.Markdown()), 0o644)
}

func fmtStat(s Stat, prec int) string {
	if s.N == 0 {
		return "—"
	}
	if s.N == 1 {
		return fmt.Sprintf("%.*f", prec, s.Median)
	}
	return fmt.Sprintf("%.*f (%.*f–%.*f)", prec, s.Median, prec, s.Min, prec, s.Max)
}

// Markdown renders the summary tables.
func (r *Report) Markdown() string {
	var b strings.Builder
	o := r.Options
	fmt.Fprintf(&b, "## Network benchmark %s\n\n", r.Started.Format("2006-01-02 15:04 UTC"))
	if o.has(testTCP) {
		fmt.Fprintf(&b, "iperf3 TCP host1 → host2, %v per run. ", o.Duration)
	}
	fmt.Fprintf(&b, "%d repetitions interleaved across systems; median (min–max). "+
		"%s CPUs (%s), shared with other work: load average %s before, %s after. Versions: ipsecgw %s, strongSwan %s, wireguard-go %s, %s, kernel %s.\n\n",
		o.Reps, r.Host["cpus"], r.Host["cpu"], r.LoadBefore, r.LoadAfter,
		r.Versions["ipsecgw"], r.Versions["strongswan"], r.Versions["wireguard-go"], r.Versions["go"], r.Versions["kernel"])
	if v := r.Versions["ipsecgw-baseline"]; v != "" {
		fmt.Fprintf(&b, "Baseline (%s): ipsecgw at %s, measured interleaved with the current build.\n\n", baselineSystem, v)
	}

	if o.has(testTCP) {
		r.throughputTables(&b)
	}
	r.packetRateTable(&b)
	return b.String()
}

// throughputTables renders the TCP throughput, CPU and ratio tables.
func (r *Report) throughputTables(b *strings.Builder) {
	o := r.Options
	b.WriteString("### Throughput (Gbit/s) and gateway CPU\n\n| system |")
	for _, n := range o.Streams {
		fmt.Fprintf(b, " %d stream(s) Gbit/s | retr. | CPU s/GB |", n)
	}
	b.WriteString(" failed reps |\n|---|")
	for range o.Streams {
		b.WriteString("---|---|---|")
	}
	b.WriteString("---|\n")
	for _, s := range r.Summary {
		fmt.Fprintf(b, "| %s |", s.Label)
		for _, n := range o.Streams {
			cpu := "—"
			if c, ok := s.CPUPerGB[n]; ok {
				cpu = fmtStat(c, 2)
			}
			retr := "—"
			if t, ok := s.TCPRetransmits[n]; ok {
				retr = fmt.Sprintf("%.0f", t.Median)
			}
			fmt.Fprintf(b, " %s | %s | %s |", fmtStat(s.TCPGbps[n], 2), retr, cpu)
		}
		fmt.Fprintf(b, " %d |\n", s.Failed)
	}
	b.WriteString("\nData-plane SA as the gateways reported it:")
	for i, s := range r.Summary {
		sep := ";"
		if i == len(r.Summary)-1 {
			sep = "."
		}
		fmt.Fprintf(b, " %s: %s%s", s.System, s.Negotiated, sep)
	}
	b.WriteString("\nCPU s/GB: user+system seconds of both gateway daemons (/proc/<pid>/stat) per 10⁹ bytes received; " +
		"— for plain forwarding, which runs in the kernel's softirq and has no process to charge.\n\n")

	// Ratios of medians, for each ipsecgw variant against the yardsticks.
	find := func(name string) *Summary {
		for i := range r.Summary {
			if r.Summary[i].System == name {
				return &r.Summary[i]
			}
		}
		return nil
	}
	refs := []struct{ name, label string }{
		{"wireguard-go", "/ wireguard-go"},
		{"strongswan-aes128gcm", "/ strongSwan"},
		{"plain", "/ plain"},
		{"ipsecgw-aes128gcm", "/ ipsecgw AES-128-GCM"},
	}
	var rows []string
	for _, s := range r.Summary {
		if !strings.HasPrefix(s.System, "ipsecgw-") {
			continue
		}
		row := "| " + s.Label + " |"
		for _, ref := range refs {
			rs := find(ref.name)
			for _, n := range o.Streams {
				row += " " + ratio(s.TCPGbps[n], rs, n) + " |"
			}
		}
		rows = append(rows, row)
	}
	if len(rows) > 0 {
		b.WriteString("\n### Throughput ratios (median ÷ median)\n\n| ipsecgw |")
		for _, ref := range refs {
			for _, n := range o.Streams {
				fmt.Fprintf(b, " %s, %d str. |", ref.label, n)
			}
		}
		b.WriteString("\n|---|")
		for range refs {
			for range o.Streams {
				b.WriteString("---|")
			}
		}
		b.WriteString("\n" + strings.Join(rows, "\n") + "\n")
	}
	b.WriteString("\n")
}

// packetRateTable renders the 64-byte and IMIX floods and the pings,
// with the packet-rate ratios against wireguard-go when it was measured.
func (r *Report) packetRateTable(b *strings.Builder) {
	o := r.Options
	b.WriteString("### Packet rate and latency\n\n")
	if o.has(testUDP64) {
		fmt.Fprintf(b, "64 B UDP: iperf3 -u -l 64 -b 0 for %v, datagrams received per second and lost %% of those sent. ", o.UDPDuration)
	}
	if o.has(testIMIX) {
		fmt.Fprintf(b, "IMIX: UDP from one socket as fast as it sends, IPv4 packets of 64, 576 and 1400 bytes in the ratio 7:4:1 "+
			"(1400, not 1500: every tunnel's MTU must carry it unfragmented) for %v; received packets/s, received IP Gbit/s and lost %%. ", o.UDPDuration)
	}
	if o.has(testPing) {
		fmt.Fprintf(b, "Ping host1 → host2, %d echo requests 10 ms apart per repetition, RTT percentiles over all repetitions pooled; "+
			"under load = during an iperf3 TCP run with %d stream(s).", o.PingCount, maxInt(o.Streams))
	}
	b.WriteString("\n\n| system |")
	sep := "|---|"
	if o.has(testUDP64) {
		b.WriteString(" 64 B UDP kpps | 64 B loss % |")
		sep += "---|---|"
	}
	if o.has(testIMIX) {
		b.WriteString(" IMIX kpps | IMIX Gbit/s | IMIX loss % |")
		sep += "---|---|---|"
	}
	if o.has(testPing) {
		b.WriteString(" idle p50 / p99 ms | loaded p50 / p99 ms | loaded loss |")
		sep += "---|---|---|"
	}
	b.WriteString("\n" + sep + "\n")
	for _, s := range r.Summary {
		fmt.Fprintf(b, "| %s |", s.Label)
		if o.has(testUDP64) {
			fmt.Fprintf(b, " %s | %s |", fmtStat(s.UDPKpps, 0), fmtStat(s.UDPLossPct, 0))
		}
		if o.has(testIMIX) {
			fmt.Fprintf(b, " %s | %s | %s |", fmtStat(s.IMIXKpps, 0), fmtStat(s.IMIXGbps, 2), fmtStat(s.IMIXLossPct, 0))
		}
		if o.has(testPing) {
			fmt.Fprintf(b, " %.3f / %.3f | %.3f / %.3f | %.1f %% |", s.PingIdleP50, s.PingIdleP99, s.PingLoadP50, s.PingLoadP99, s.PingLoadLoss)
		}
		b.WriteString("\n")
	}
	var wg *Summary
	for i := range r.Summary {
		if r.Summary[i].System == "wireguard-go" {
			wg = &r.Summary[i]
		}
	}
	if wg == nil || !(o.has(testUDP64) || o.has(testIMIX)) {
		return
	}
	b.WriteString("\n### Packet-rate ratios (median received pps ÷ wireguard-go's)\n\n| system | 64 B UDP | IMIX |\n|---|---|---|\n")
	for _, s := range r.Summary {
		if s.System == "wireguard-go" {
			continue
		}
		fmt.Fprintf(b, "| %s | %s | %s |\n", s.Label, statRatio(s.UDPKpps, wg.UDPKpps), statRatio(s.IMIXKpps, wg.IMIXKpps))
	}
}

func statRatio(a, b Stat) string {
	if a.N == 0 || b.N == 0 || b.Median == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", a.Median/b.Median)
}

func lossPct(lost, sent int) float64 {
	if sent <= 0 {
		return 0
	}
	return 100 * float64(lost) / float64(sent)
}

func ratio(a Stat, ref *Summary, streams int) string {
	if ref == nil || a.N == 0 {
		return "—"
	}
	r, ok := ref.TCPGbps[streams]
	if !ok || r.N == 0 || r.Median == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", a.Median/r.Median)
}

func maxInt(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}
