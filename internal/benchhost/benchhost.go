// Package benchhost describes the machine a benchmark ran on (load, CPU,
// tool versions), for the reports of bench/netbench and bench/ikebench:
// a figure means little without the load it was measured under.
package benchhost

import (
	"context"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
)

// LoadAvg is the 1, 5 and 15 minute load average, or "?".
func LoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// Info is the number of CPUs and the CPU model.
func Info() map[string]string {
	h := map[string]string{"cpus": strconv.Itoa(runtime.NumCPU())}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				h["cpu"] = strings.TrimSpace(v)
				break
			}
		}
	}
	return h
}

// Versions collects the Go version and, for each key, the trimmed output
// of its command (commands that fail are left out).
type Versions map[string]string

// NewVersions starts with the Go version.
func NewVersions() Versions { return Versions{"go": runtime.Version()} }

// Query records key as argv's output if argv succeeds.
func (v Versions) Query(ctx context.Context, key string, argv ...string) {
	if out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).Output(); err == nil {
		v[key] = strings.TrimSpace(string(out))
	}
}

// Workspace makes a temporary directory for a benchmark's binaries and a
// context that SIGINT, SIGTERM or SIGHUP cancels. The signal also removes
// the directory at once: the lab's own handler may exit the program before
// deferred calls run (running daemons keep their unlinked executables).
// done removes it on a normal return.
func Workspace(prefix string) (ctx context.Context, dir string, done func(), err error) {
	dir, err = os.MkdirTemp("", prefix)
	if err != nil {
		return nil, "", nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		if _, ok := <-sig; ok {
			cancel()
			os.RemoveAll(dir)
		}
	}()
	done = func() {
		signal.Stop(sig)
		cancel()
		os.RemoveAll(dir)
	}
	return ctx, dir, done, nil
}
