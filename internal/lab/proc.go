package lab

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is a long-running program the lab started inside a namespace
// (charon, iperf3 server, tcpdump). The lab records its PID and stops it on
// Close; Stop may be called earlier.
type Process struct {
	Name    string // short label used in file names and messages
	PID     int
	LogPath string // stdout and stderr of the process

	rec  procRecord
	cmd  *exec.Cmd
	done chan struct{}
	err  error // exit error, valid after done is closed

	stopOnce sync.Once
	stopErr  error
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// ExitErr returns the process's exit error once Done is closed.
func (p *Process) ExitErr() error {
	select {
	case <-p.done:
		return p.err
	default:
		return nil
	}
}

// Output returns what the process wrote to stdout and stderr so far.
func (p *Process) Output() string {
	b, _ := os.ReadFile(p.LogPath)
	return string(b)
}

// Signal sends sig to the process if it is still running.
func (p *Process) Signal(sig syscall.Signal) {
	select {
	case <-p.done:
	default:
		_ = syscall.Kill(p.PID, sig)
	}
}

// Stop ends the process with sig (SIGTERM if zero), waits up to grace, then
// uses SIGKILL. It is safe to call more than once.
func (p *Process) Stop(sig syscall.Signal, grace time.Duration) error {
	p.stopOnce.Do(func() {
		if sig == 0 {
			sig = syscall.SIGTERM
		}
		p.Signal(sig)
		select {
		case <-p.done:
			return
		case <-time.After(grace):
		}
		p.Signal(syscall.SIGKILL)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			p.stopErr = fmt.Errorf("%s (pid %d) did not exit after SIGKILL", p.Name, p.PID)
		}
	})
	return p.stopErr
}

// start runs argv inside namespace ns and registers it with the lab.
// `ip netns exec` exec()s the command, so the PID we get is the program's
// own PID, not a wrapper's.
func (l *Lab) start(ns, name string, env []string, argv ...string) (*Process, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, fmt.Errorf("lab %s is closed", l.ID)
	}
	l.seq++
	logPath := filepath.Join(l.Dir, fmt.Sprintf("%02d-%s.out", l.seq, name))
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns}, argv...)...)
	cmd.Stdout = f
	cmd.Stderr = f
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{
		// Own process group: a Ctrl-C at the terminal reaches only the
		// Go program, which then stops everything in order.
		Setpgid: true,
		// If the Go program dies without cleaning up, the kernel kills
		// the child; CleanStale covers the cases this does not.
		Pdeathsig: syscall.SIGKILL,
	}
	if err := startCmd(cmd); err != nil {
		return nil, fmt.Errorf("start %s in %s: %w", name, ns, err)
	}
	p := &Process{Name: name, PID: cmd.Process.Pid, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	st, err := procStart(p.PID)
	if err != nil {
		// The process is already gone; its start time is unknown but it
		// needs no cleanup either.
		st = 0
	}
	p.rec = procRecord{PID: p.PID, Start: st, Name: name}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	l.procs = append(l.procs, p)
	l.state.Procs = append(l.state.Procs, p.rec)
	if err := writeState(l.Dir, &l.state); err != nil {
		return p, fmt.Errorf("record %s: %w", name, err)
	}
	return p, nil
}

// run executes argv inside namespace ns and waits for it; the error carries
// the command's output so a failing step explains itself.
func run(ctx context.Context, ns string, argv ...string) (string, error) {
	args := argv
	name := argv[0]
	if ns != "" {
		name = "ip"
		args = append([]string{"netns", "exec", ns}, argv...)
	} else {
		args = argv[1:]
	}
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := combinedOutput(cmd)
	if err != nil {
		where := ""
		if ns != "" {
			where = " (in " + ns + ")"
		}
		return string(out), fmt.Errorf("%s%s: %w: %s", strings.Join(argv, " "), where, err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// runStdin is run with the given standard input.
func runStdin(ctx context.Context, ns, stdin string, argv ...string) error {
	cmd := exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns}, argv...)...)
	cmd.Stdin = strings.NewReader(stdin)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := combinedOutput(cmd)
	if err != nil {
		return fmt.Errorf("%s (in %s): %w: %s", strings.Join(argv, " "), ns, err, strings.TrimSpace(string(out)))
	}
	return nil
}
