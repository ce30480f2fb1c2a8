package lab

import (
	"bytes"
	"os/exec"
	"runtime"
	"sync"
)

// The lab starts its processes with Pdeathsig so that the kernel kills them
// if the test binary dies without cleaning up. Linux sends that signal when
// the *thread* that forked the child exits, not the process, and the Go
// runtime ends a thread whenever a goroutine exits while locked to it (as
// namespace helpers that call runtime.LockOSThread and never unlock do).
// Forked from an arbitrary thread, a charon, ipsecgw or iperf3 could so be
// SIGKILLed in the middle of a test. Every child is therefore forked from one
// goroutine locked to its thread for the life of the program: that thread
// never exits, so Pdeathsig fires only when the program itself dies.

type spawnRequest struct {
	cmd  *exec.Cmd
	done chan error
}

var (
	spawnOnce     sync.Once
	spawnRequests chan spawnRequest
)

// startCmd starts cmd on the lab's spawner thread.
func startCmd(cmd *exec.Cmd) error {
	spawnOnce.Do(func() {
		spawnRequests = make(chan spawnRequest)
		go func() {
			runtime.LockOSThread() // never unlocked: this thread must outlive every child
			for r := range spawnRequests {
				r.done <- r.cmd.Start()
			}
		}()
	})
	done := make(chan error, 1)
	spawnRequests <- spawnRequest{cmd, done}
	return <-done
}

// combinedOutput is exec.Cmd.CombinedOutput with the start on the spawner
// thread.
func combinedOutput(cmd *exec.Cmd) ([]byte, error) {
	var b bytes.Buffer
	cmd.Stdout = &b
	cmd.Stderr = &b
	if err := startCmd(cmd); err != nil {
		return nil, err
	}
	err := cmd.Wait()
	return b.Bytes(), err
}

// output is exec.Cmd.Output with the start on the spawner thread; stderr
// goes wherever cmd.Stderr points.
func output(cmd *exec.Cmd) ([]byte, error) {
	var b bytes.Buffer
	cmd.Stdout = &b
	if err := startCmd(cmd); err != nil {
		return nil, err
	}
	err := cmd.Wait()
	return b.Bytes(), err
}
