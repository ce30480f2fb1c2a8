package interop

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/daemon"
	"github.com/ipsecgw/ipsecgw/internal/lab"
)

// binary is the ipsecgw executable TestMain builds once for every test.
var binary string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "ipsecgw-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	binary = filepath.Join(dir, "ipsecgw")
	args := []string{"build", "-o", binary}
	if os.Getenv("IPSECGW_INTEROP_RACE") == "1" {
		// A daemon built with the race detector; a detected race makes it
		// exit 66 and print the report into its log.
		args = append(args, "-race")
	}
	out, err := exec.Command("go", append(args, "github.com/ipsecgw/ipsecgw/cmd/ipsecgw")...).CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "interop: building ipsecgw: %v\n%s", err, out)
		return 1
	}
	code := m.Run()
	if os.Geteuid() == 0 {
		if err := lab.AssertClean(); err != nil {
			fmt.Fprintf(os.Stderr, "FAIL: lab leftovers after tests: %v\n", err)
			code = 1
		}
	}
	return code
}

// tunName is the TUN device of ipsecgw inside gw1's namespace; each lab has
// its own namespace, so the name need not differ between tests.
const tunName = "isgw0"

// gateway is one `ipsecgw run` inside a lab node.
type gateway struct {
	t      testing.TB
	node   *lab.Node
	dir    string
	socket string
	proc   *lab.Process
}

// gatewayFiles are the files a gateway runs with.
type gatewayFiles struct {
	Conf, Secrets string
	// Settings is extra ipsecgw.yaml text (the tun name and log level are
	// set by startGateway; the socket is a flag).
	Settings string
	// LogLevel is the daemon's log level; empty means debug.
	LogLevel string
}

// startGateway writes the files into a fresh directory and starts `ipsecgw
// run` in node's namespace, returning once its control socket answers.
// When the test fails, the daemon's log is printed.
func startGateway(ctx context.Context, t testing.TB, node *lab.Node, f gatewayFiles) *gateway {
	t.Helper()
	// Unix socket paths are limited to 108 bytes: keep the directory short.
	dir, err := os.MkdirTemp("", "isgw-")
	if err != nil {
		t.Fatal(err)
	}
	g := &gateway{t: t, node: node, dir: dir, socket: filepath.Join(dir, "run", "ipsecgw.sock")}
	write := func(name, text string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	conf := write("ipsec.conf", f.Conf, 0o644)
	secrets := write("ipsec.secrets", f.Secrets, 0o600)
	level := f.LogLevel
	if level == "" {
		level = "debug"
	}
	settings := write("ipsecgw.yaml", "tun:\n  name: "+tunName+"\nlog:\n  level: "+level+"\n"+f.Settings, 0o644)
	t.Cleanup(func() {
		if err := g.stop(); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("ipsecgw log (%s):\n%s", node.Role, tail(g.proc.Output(), 120))
		}
		os.RemoveAll(dir)
	})
	g.proc, err = node.Start("ipsecgw", binary, "run", "--config", conf, "--secrets", secrets,
		"--settings", settings, "--socket", g.socket)
	if err != nil {
		t.Fatal(err)
	}
	for {
		cl, err := daemon.Dial(ctx, g.socket)
		if err == nil {
			cl.Close()
			return g
		}
		select {
		case <-g.proc.Done():
			t.Fatalf("ipsecgw exited at startup (%v):\n%s", g.proc.ExitErr(), g.proc.Output())
		case <-ctx.Done():
			t.Fatalf("ipsecgw control socket did not answer: %v\n%s", err, g.proc.Output())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and waits for a clean exit: status 0 (a race report
// from a -race build, or an error, would make it non-zero).
func (g *gateway) stop() error {
	if g.proc == nil {
		return nil
	}
	if err := g.proc.Stop(syscall.SIGTERM, 20*time.Second); err != nil {
		return err
	}
	if err := g.proc.ExitErr(); err != nil {
		return fmt.Errorf("ipsecgw exited with %v after SIGTERM:\n%s", err, tail(g.proc.Output(), 60))
	}
	return nil
}

// cli runs the ipsecgw binary's control commands against this gateway.
func (g *gateway) cli(ctx context.Context, args ...string) (string, error) {
	args = append(args, "--socket", g.socket)
	out, err := exec.CommandContext(ctx, binary, args...).CombinedOutput()
	return string(out), err
}

func (g *gateway) status(ctx context.Context, name string) (daemon.ConnStatus, error) {
	cl, err := daemon.Dial(ctx, g.socket)
	if err != nil {
		return daemon.ConnStatus{}, err
	}
	defer cl.Close()
	conns, err := cl.Status(ctx)
	if err != nil {
		return daemon.ConnStatus{}, err
	}
	for _, c := range conns {
		if c.Name == name {
			return c, nil
		}
	}
	return daemon.ConnStatus{}, fmt.Errorf("no conn %q in status %+v", name, conns)
}

// waitState polls the status until conn name is in one of states.
func (g *gateway) waitState(ctx context.Context, name string, states ...string) (daemon.ConnStatus, error) {
	var last daemon.ConnStatus
	for {
		c, err := g.status(ctx, name)
		if err == nil {
			last = c
			for _, s := range states {
				if c.State == s {
					return c, nil
				}
			}
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("conn %s: still %q (%s), not %v: %w", name, last.State, last.LastError, states, ctx.Err())
		case <-g.proc.Done():
			return last, errors.New("ipsecgw exited")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
