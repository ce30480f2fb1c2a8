package interop

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/control"
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
	var flags []string
	if os.Getenv("IPSECGW_INTEROP_RACE") == "1" {
		// A daemon built with the race detector; a detected race makes it
		// exit 66 and print the report into its log.
		flags = append(flags, "-race")
	}
	if binary, err = lab.BuildIPsecGW(dir, flags...); err != nil {
		fmt.Fprintln(os.Stderr, "interop:", err)
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

// gateway is one `ipsecgw run` inside a lab node (lab.IPsecGW), with the
// short method names these tests use.
type gateway struct {
	*lab.IPsecGW
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

// startGateway starts `ipsecgw run` in node's namespace, returning once its
// control socket answers. At the end of the test the daemon must exit
// cleanly on SIGTERM; when the test fails, its log is printed.
func startGateway(ctx context.Context, t testing.TB, node *lab.Node, f gatewayFiles) *gateway {
	t.Helper()
	level := f.LogLevel
	if level == "" {
		level = "debug"
	}
	g, err := node.StartIPsecGW(ctx, lab.IPsecGWConfig{
		Bin:       binary,
		IPsecConf: f.Conf,
		Secrets:   f.Secrets,
		Settings:  "tun:\n  name: " + tunName + "\nlog:\n  level: " + level + "\n" + f.Settings,
	})
	if err != nil {
		t.Fatal(err)
	}
	// Registered after the lab's own cleanup, so it runs before the lab is
	// torn down and the log file still exists.
	t.Cleanup(func() {
		if err := g.Stop(); err != nil {
			t.Errorf("%v:\n%s", err, tail(g.Log(), 60))
		}
		if t.Failed() {
			t.Logf("ipsecgw log (%s):\n%s", node.Role, tail(g.Log(), 120))
		}
	})
	return &gateway{g}
}

// cli runs the ipsecgw binary's control commands against this gateway.
func (g *gateway) cli(ctx context.Context, args ...string) (string, error) {
	return g.CLI(ctx, args...)
}

// status returns conn name with the full `ipsecgw status --json` schema.
func (g *gateway) status(ctx context.Context, name string) (control.ConnStatus, error) {
	var conns []control.ConnStatus
	if err := g.StatusInto(ctx, &conns); err != nil {
		return control.ConnStatus{}, err
	}
	for _, c := range conns {
		if c.Name == name {
			return c, nil
		}
	}
	return control.ConnStatus{}, fmt.Errorf("no conn %q in status %+v", name, conns)
}

// waitState polls the status until conn name is in one of states. It is
// lab.IPsecGW.WaitState with the full schema, which these tests inspect.
func (g *gateway) waitState(ctx context.Context, name string, states ...string) (control.ConnStatus, error) {
	var last control.ConnStatus
	for {
		c, err := g.status(ctx, name)
		if err == nil {
			last = c
			if slices.Contains(states, c.State) {
				return c, nil
			}
		}
		select {
		case <-ctx.Done():
			return last, fmt.Errorf("conn %s: still %q (%s), not %v: %w", name, last.State, last.LastError, states, ctx.Err())
		case <-g.Proc.Done():
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
