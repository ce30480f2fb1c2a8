package control

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// permClientEnv makes the test binary act as a control client (see
// TestControlRefusesUnprivileged): it dials the socket named by the
// variable, asks for the status and prints the outcome.
const permClientEnv = "IPSECGW_CONTROL_PERM_CLIENT"

func TestMain(m *testing.M) {
	if path := os.Getenv(permClientEnv); path != "" {
		os.Exit(permClient(path))
	}
	os.Exit(m.Run())
}

func permClient(path string) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cl, err := Dial(ctx, path)
	if err != nil {
		fmt.Println("refused:", err)
		return 0
	}
	defer cl.Close()
	conns, err := cl.Status(ctx)
	if err != nil {
		fmt.Println("refused:", err)
		return 0
	}
	fmt.Println("allowed:", len(conns), "conns")
	return 0
}

// TestControlRefusesUnprivileged: the control socket (mode 0660, owned by
// the daemon's user and group) answers root and members of its group, and
// refuses an unprivileged user (nobody) at connect, with "permission
// denied". The client runs as another user through setpriv, from a copy
// of this test binary the user can execute.
func TestControlRefusesUnprivileged(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client as another user")
	}
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("setpriv (util-linux) not installed")
	}
	fb := &fakeBackend{conns: []ConnStatus{{Name: "net", State: StateEstablished}}}
	_, path := startServer(t, fb)
	// Let other users reach the socket file itself: only its own mode
	// decides, as in /run/ipsecgw.
	// startServer puts the socket at <temporary dir>/run/ipsecgw.sock.
	run := filepath.Dir(path)
	for _, d := range []string{run, filepath.Dir(run)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket mode %v (%v), want 0660", fi.Mode().Perm(), err)
	}
	bin := filepath.Join(filepath.Dir(path), "control.test")
	copyExecutable(t, bin)

	client := func(ids ...string) string {
		args := append(ids, "--clear-groups", bin, "-test.run=^$")
		cmd := exec.Command(setpriv, args...)
		cmd.Env = append(os.Environ(), permClientEnv+"="+path)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("setpriv %v: %v\n%s", ids, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if out := client("--reuid=65534", "--regid=65534"); !strings.HasPrefix(out, "refused:") || !strings.Contains(out, "permission denied") {
		t.Errorf("nobody: %q, want refused with permission denied", out)
	}
	if out := client("--reuid=65534", "--regid=0"); !strings.HasPrefix(out, "allowed:") {
		t.Errorf("a user in the socket's group: %q, want allowed", out)
	}
	if out := client("--reuid=0", "--regid=0"); !strings.HasPrefix(out, "allowed: 1 conns") {
		t.Errorf("root: %q, want allowed", out)
	}
}

func copyExecutable(t *testing.T, dst string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(self)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
