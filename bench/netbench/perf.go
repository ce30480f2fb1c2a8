package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// profiler is a perf record of the whole machine, started before a
// measurement and stopped after it; the report picks the gateways' share.
// perf samples the kernel side too, so system-call, wake-up and softirq
// costs show up beside the Go code (a Go pprof profile would need an
// endpoint in the daemon and misses the kernel). Recording every CPU
// rather than the daemons' PIDs (-p) also shows where the rest of the
// machine's time went (iperf3, the kernel's forwarding), and -p recorded
// no samples of the daemons' threads on this machine's kernel.
type profiler struct {
	cmd  *exec.Cmd
	out  string // path without extension
	pids string // the gateways, comma-separated
	done chan error
}

// startPerf records call graphs of every CPU into out.data at 999 Hz.
func startPerf(out string, pids []int) (*profiler, error) {
	ids := make([]string, len(pids))
	for i, p := range pids {
		ids[i] = strconv.Itoa(p)
	}
	cmd := exec.Command("perf", "record", "-q", "-F", "999", "-g", "-a", "-o", out+".data")
	log, err := os.Create(out + ".log")
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, err
	}
	p := &profiler{cmd: cmd, out: out, pids: strings.Join(ids, ","), done: make(chan error, 1)}
	go func() {
		p.done <- cmd.Wait()
		log.Close()
	}()
	// perf attaches within a few milliseconds; the flood starts after.
	time.Sleep(200 * time.Millisecond)
	return p, nil
}

// stop ends the recording and writes out.txt: the whole machine's time by
// command and DSO, then the gateways' flat profile (self time by symbol).
func (p *profiler) stop() error {
	p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("perf record did not stop; killed")
	}
	var b strings.Builder
	for _, args := range [][]string{
		{"report", "--stdio", "--no-children", "-g", "none", "--percent-limit", "1", "--sort", "comm,dso"},
		{"report", "--stdio", "--no-children", "-g", "none", "--percent-limit", "0.4", "--sort", "sym", "--percentage", "relative", "--pid", p.pids},
	} {
		out, err := exec.Command("perf", append(args, "-i", p.out+".data")...).Output()
		if err != nil {
			return fmt.Errorf("perf %s: %w", strings.Join(args, " "), err)
		}
		b.Write(out)
	}
	return os.WriteFile(p.out+".txt", []byte(b.String()), 0o644)
}
