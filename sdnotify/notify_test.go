package sdnotify

import (
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/ike"
	"github.com/ipsecgw/ipsecgw/ike/shared"
)

// listen plays systemd: a datagram socket in $NOTIFY_SOCKET whose
// messages arrive on the returned channel.
func listen(t *testing.T) <-chan string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sdnotify")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "notify.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	out := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			out <- string(buf[:n])
		}
	}()
	return out
}

func next(t *testing.T, msgs <-chan string) string {
	t.Helper()
	select {
	case m := <-msgs:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no notification")
		return ""
	}
}

// TestNotifications: what each call sends, in order, as systemd reads it.
func TestNotifications(t *testing.T) {
	msgs := listen(t)
	n := FromEnvironment(nil)
	if !n.Enabled() || n.WatchdogInterval() != 0 {
		t.Fatalf("enabled %v, watchdog %v", n.Enabled(), n.WatchdogInterval())
	}
	n.Status("0 of 2 tunnels established")
	n.Ready("2 of 2\ntunnels established")
	n.Reloading()
	n.Ready("1 of 1 tunnels established")
	n.Stopping()
	n.Status("0 of 1 tunnels established") // conns going down at shutdown: not sent
	n.send("X=1")                          // a marker: nothing came between
	want := []string{"STATUS=0 of 2 tunnels established", "READY=1\nSTATUS=2 of 2 tunnels established", "RELOADING=1\nMONOTONIC_USEC=",
		"READY=1\nSTATUS=1 of 1 tunnels established", "STOPPING=1", "X=1"}
	for _, w := range want {
		if got := next(t, msgs); !strings.HasPrefix(got, w) {
			t.Errorf("got %q, want %q", got, w)
		}
	}
}

// TestWithoutSystemd: outside systemd nothing is sent and nothing fails.
func TestWithoutSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	n := FromEnvironment(nil)
	if n.Enabled() {
		t.Fatal("enabled without NOTIFY_SOCKET")
	}
	n.Ready("x")
	n.Stopping()
	done := make(chan struct{})
	go func() { n.RunWatchdog(make(chan struct{}), func(context.Context) error { return nil }); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("RunWatchdog without a watchdog did not return")
	}
}

// TestWatchdogStopsWhenALoopIsStuck: WATCHDOG=1 comes every half interval
// while the probe passes; a probe that fails or hangs stops the pings,
// and they resume once it passes again.
func TestWatchdogStopsWhenALoopIsStuck(t *testing.T) {
	msgs := listen(t)
	t.Setenv("WATCHDOG_USEC", "200000")
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	n := FromEnvironment(nil)
	if n.WatchdogInterval() != 200*time.Millisecond {
		t.Fatalf("watchdog %v", n.WatchdogInterval())
	}
	var mode atomic.Int32 // 0 healthy, 1 stuck, 2 failing
	release := make(chan struct{})
	probe := func(ctx context.Context) error {
		switch mode.Load() {
		case 1:
			select {
			case <-release:
			case <-ctx.Done():
			}
			return ctx.Err()
		case 2:
			return errors.New("IKE SA loop stuck")
		}
		return nil
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { n.RunWatchdog(stop, probe); close(done) }()
	count := func(d time.Duration) int {
		k := 0
		deadline := time.After(d)
		for {
			select {
			case m := <-msgs:
				if m != "WATCHDOG=1" {
					t.Errorf("unexpected %q", m)
				}
				k++
			case <-deadline:
				return k
			}
		}
	}
	if k := count(550 * time.Millisecond); k < 3 {
		t.Fatalf("%d pings in 550 ms with a 100 ms period", k)
	}
	mode.Store(1)
	count(150 * time.Millisecond) // a ping already on its way
	if k := count(600 * time.Millisecond); k != 0 {
		t.Fatalf("%d pings while a loop was stuck", k)
	}
	mode.Store(2)
	if k := count(400 * time.Millisecond); k != 0 {
		t.Fatalf("%d pings while the probe failed", k)
	}
	mode.Store(0)
	if k := count(450 * time.Millisecond); k < 2 {
		t.Fatalf("%d pings after the loops recovered", k)
	}
	close(stop)
	<-done
}

// TestFirstTries: ready once every auto=start conn was established or
// failed once; other conns and other events do not count.
func TestFirstTries(t *testing.T) {
	f := NewFirstTries([]string{"a", "b"})
	steps := []struct {
		ev    ike.Event
		ready bool
	}{
		{shared.Initiating{Conn: "a"}, false},
		{shared.StateChanged{Conn: "a", From: ike.StateDown, To: ike.StateConnecting}, false},
		{shared.StateChanged{Conn: "c", From: ike.StateConnecting, To: ike.StateEstablished}, false},
		{shared.StateChanged{Conn: "a", From: ike.StateConnecting, To: ike.StateEstablished}, false},
		{shared.Failure{Conn: "b", State: ike.StateConnecting, Cause: shared.CauseTimeout}, true},
		{shared.Failure{Conn: "b", State: ike.StatePhase1Failed}, false},
	}
	for i, s := range steps {
		if got := f.Observe(s.ev); got != s.ready {
			t.Errorf("step %d (%T): ready %v, want %v (pending %v)", i, s.ev, got, s.ready, f.Pending())
		}
	}
	if !f.Done() || len(f.Pending()) != 0 {
		t.Errorf("done %v pending %v", f.Done(), f.Pending())
	}
	if !NewFirstTries(nil).Done() {
		t.Error("no auto=start conn: not ready at once")
	}
}
