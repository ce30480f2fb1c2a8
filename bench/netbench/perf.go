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

// profiler is a perf record of some processes, started before a
// measurement and stopped after it. perf samples the whole process,
// kernel side included, so system-call and wake-up costs show up beside
// the Go code (a Go pprof profile would need an endpoint in the daemon and
// misses the kernel).
type profiler struct {
	cmd  *exec.Cmd
	out  string // path without extension
	done chan error
}

// startPerf records call graphs of pids into out.data at 999 Hz.
func startPerf(out string, pids []int) (*profiler, error) {
	ids := make([]string, len(pids))
	for i, p := range pids {
		ids[i] = strconv.Itoa(p)
	}
	cmd := exec.Command("perf", "record", "-q", "-F", "999", "-g", "-p", strings.Join(ids, ","), "-o", out+".data")
	log, err := os.Create(out + ".log")
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return nil, err
	}
	p := &profiler{cmd: cmd, out: out, done: make(chan error, 1)}
	go func() {
		p.done <- cmd.Wait()
		log.Close()
	}()
	// perf attaches within a few milliseconds; the flood starts after.
	time.Sleep(200 * time.Millisecond)
	return p, nil
}

// stop ends the recording and writes out.txt: the flat profile (self
// time by symbol) and the same by command (thread name) and DSO.
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
		{"report", "--stdio", "--no-children", "-g", "none", "--percent-limit", "0.5", "--sort", "sym"},
		{"report", "--stdio", "--no-children", "-g", "none", "--percent-limit", "1", "--sort", "comm,dso"},
	} {
		out, err := exec.Command("perf", append(args, "-i", p.out+".data")...).Output()
		if err != nil {
			return fmt.Errorf("perf %s: %w", strings.Join(args, " "), err)
		}
		b.Write(out)
	}
	return os.WriteFile(p.out+".txt", []byte(b.String()), 0o644)
}
