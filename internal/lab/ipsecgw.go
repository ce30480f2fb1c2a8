package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// ipsecgwPkg is the main package BuildIPsecGW compiles. A package path
// rather than ./cmd/ipsecgw works from any directory inside the module.
const ipsecgwPkg = "github.com/ipsecgw/ipsecgw/cmd/ipsecgw"

// BuildIPsecGW compiles the ipsecgw command into dir and returns the
// binary's path. flags are extra `go build` flags (for instance -race).
// Callers build once and pass the path to every StartIPsecGW.
func BuildIPsecGW(dir string, flags ...string) (string, error) {
	bin := filepath.Join(dir, "ipsecgw")
	args := append([]string{"build", "-o", bin}, flags...)
	out, err := exec.Command("go", append(args, ipsecgwPkg)...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("building ipsecgw: %w\n%s", err, out)
	}
	return bin, nil
}

// DefaultIPsecGWSettings is the ipsecgw.yaml used when IPsecGWConfig leaves
// Settings empty: a TUN named isgw0 (each lab node is its own namespace, so
// the name need not differ between gateways) and info logging.
const DefaultIPsecGWSettings = "tun:\n  name: isgw0\nlog:\n  level: info\n"

// IPsecGWConfig is what an ipsecgw daemon in a lab node runs with.
type IPsecGWConfig struct {
	Bin       string // ipsecgw binary (BuildIPsecGW)
	IPsecConf string // ipsec.conf text, strongSwan syntax
	Secrets   string // ipsec.secrets text
	Settings  string // whole ipsecgw.yaml; empty means DefaultIPsecGWSettings
	// Files are more files by path relative to the daemon's directory
	// (mode 0600), e.g. "ipsec.d/certs/gw.pem": ipsec.d lies beside
	// ipsec.conf, where ipsecgw looks for certificates and keys.
	Files map[string][]byte
}

// IPsecGW is one `ipsecgw run` inside a lab node. The lab records its PID
// like any other process, so Close and the signal handler stop it.
type IPsecGW struct {
	Node *Node
	Bin  string
	// Dir holds ipsec.conf, ipsec.secrets, ipsecgw.yaml and the control
	// socket; it lies inside the lab directory and goes with it.
	Dir      string
	ConfPath string
	Socket   string
	Proc     *Process
	psks     [][]byte // of ipsec.secrets, for Lab.SecretLeaks
}

// StartIPsecGW writes the configuration into a fresh directory and starts
// `ipsecgw run` in the node's namespace, returning once the control socket
// answers. The socket is a file, so control commands (CLI, Status) run
// from the host namespace.
func (n *Node) StartIPsecGW(ctx context.Context, cfg IPsecGWConfig) (*IPsecGW, error) {
	if cfg.Bin == "" {
		return nil, errors.New("StartIPsecGW: no ipsecgw binary (see BuildIPsecGW)")
	}
	// Unix socket paths are limited to 108 bytes; StateRoot/<id>/ipsecgw-<role>/ctl.sock
	// stays well below that.
	dir, err := os.MkdirTemp(n.Lab.Dir, "ipsecgw-"+n.Role+"-")
	if err != nil {
		return nil, err
	}
	g := &IPsecGW{Node: n, Bin: cfg.Bin, Dir: dir, Socket: filepath.Join(dir, "ctl.sock")}
	settings := cfg.Settings
	if settings == "" {
		settings = DefaultIPsecGWSettings
	}
	files := []struct {
		name, text string
		mode       os.FileMode
	}{
		{"ipsec.conf", cfg.IPsecConf, 0o644},
		// The PSKs: readable by root only, as ipsecgw expects of a secrets file.
		{"ipsec.secrets", cfg.Secrets, 0o600},
		{"ipsecgw.yaml", settings, 0o644},
	}
	paths := make([]string, len(files))
	for i, f := range files {
		paths[i] = filepath.Join(dir, f.name)
		if err := os.WriteFile(paths[i], []byte(f.text), f.mode); err != nil {
			return nil, err
		}
	}
	if err := writeFiles(dir, cfg.Files); err != nil {
		return nil, err
	}
	g.ConfPath = paths[0]
	if err := g.launch(ctx); err != nil {
		return nil, err
	}
	return g, nil
}

// Restart starts `ipsecgw run` again in the same node with the same files
// and control socket, once the previous process has exited (a test killed
// it, say), and returns the new daemon once its socket answers. A killed
// daemon leaves its socket file behind; the new one has to cope with that,
// as after a crash in production.
func (g *IPsecGW) Restart(ctx context.Context) (*IPsecGW, error) {
	select {
	case <-g.Proc.Done():
	default:
		return nil, fmt.Errorf("ipsecgw in %s (pid %d) is still running; stop it before Restart", g.Node.Role, g.Proc.PID)
	}
	ng := &IPsecGW{Node: g.Node, Bin: g.Bin, Dir: g.Dir, ConfPath: g.ConfPath, Socket: g.Socket}
	if err := ng.launch(ctx); err != nil {
		return nil, err
	}
	return ng, nil
}

// launch starts the daemon with the files in g.Dir and waits until its
// control socket answers.
func (g *IPsecGW) launch(ctx context.Context) error {
	n := g.Node
	secrets, err := os.ReadFile(filepath.Join(g.Dir, "ipsec.secrets"))
	if err != nil {
		return err
	}
	g.psks = secretsOf(string(secrets))
	if settings, err := os.ReadFile(filepath.Join(g.Dir, "ipsecgw.yaml")); err == nil {
		g.psks = append(g.psks, proxySecretsOf(string(settings))...)
	}
	g.Proc, err = n.Start("ipsecgw", g.Bin, "run", "--config", g.ConfPath, "--secrets", filepath.Join(g.Dir, "ipsec.secrets"),
		"--settings", filepath.Join(g.Dir, "ipsecgw.yaml"), "--socket", g.Socket)
	if err != nil {
		return err
	}
	n.Lab.mu.Lock()
	n.Lab.daemons = append(n.Lab.daemons, g)
	n.Lab.mu.Unlock()
	for {
		// The daemon listens once it is ready for control commands. A
		// plain connect (rather than package daemon's client) keeps the
		// lab free of ipsecgw's own packages, whose in-package tests
		// (esp, ike) import the lab.
		c, err := net.Dial("unix", g.Socket)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-g.Proc.Done():
			return fmt.Errorf("ipsecgw in %s exited at startup (%v):\n%s", n.Role, g.Proc.ExitErr(), g.Proc.Output())
		case <-ctx.Done():
			_ = g.Proc.Stop(syscall.SIGKILL, time.Second)
			return fmt.Errorf("ipsecgw in %s: control socket did not answer: %v\n%s", n.Role, err, g.Proc.Output())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// CLI runs an ipsecgw control command (status, up, down, reload, ...)
// against this daemon and returns its combined output.
func (g *IPsecGW) CLI(ctx context.Context, args ...string) (string, error) {
	args = append(args, "--socket", g.Socket)
	out, err := exec.CommandContext(ctx, g.Bin, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("ipsecgw %v: %w: %s", args, err, out)
	}
	return string(out), nil
}

// Connection states of `ipsecgw status --json` (control.State*).
const (
	GWDown         = "down"
	GWConnecting   = "connecting"
	GWEstablished  = "established"
	GWPhase1Failed = "phase1-failed"
	GWPhase2Failed = "phase2-failed"
)

// GWConn is the part of one connection in `ipsecgw status --json` (the
// schema documented by package daemon, ConnStatus) that lab users need.
type GWConn struct {
	Name      string `json:"name"`
	State     string `json:"state"`
	Auto      string `json:"auto"`
	Remote    string `json:"remote"`
	LastError string `json:"last_error"`
	IKE       *struct {
		Proposal string `json:"proposal"`
	} `json:"ike"`
	Children []struct {
		Proposal   string `json:"proposal"`
		SPIIn      string `json:"spi_in"`
		SPIOut     string `json:"spi_out"`
		PacketsIn  uint64 `json:"packets_in"`
		PacketsOut uint64 `json:"packets_out"`
	} `json:"children"`
}

// StatusInto runs `ipsecgw status --json` and decodes its output (a JSON
// array of connections) into v, for callers that want the full schema
// (a *[]control.ConnStatus).
func (g *IPsecGW) StatusInto(ctx context.Context, v any) error {
	out, err := exec.CommandContext(ctx, g.Bin, "status", "--json", "--socket", g.Socket).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return fmt.Errorf("ipsecgw status --json in %s: %w: %s", g.Node.Role, err, ee.Stderr)
		}
		return fmt.Errorf("ipsecgw status --json in %s: %w", g.Node.Role, err)
	}
	if err := json.Unmarshal(out, v); err != nil {
		return fmt.Errorf("ipsecgw status --json in %s: %w", g.Node.Role, err)
	}
	return nil
}

// Status returns every configured connection.
func (g *IPsecGW) Status(ctx context.Context) ([]GWConn, error) {
	var conns []GWConn
	err := g.StatusInto(ctx, &conns)
	return conns, err
}

// Conn returns the status of one connection.
func (g *IPsecGW) Conn(ctx context.Context, name string) (GWConn, error) {
	conns, err := g.Status(ctx)
	if err != nil {
		return GWConn{}, err
	}
	for _, c := range conns {
		if c.Name == name {
			return c, nil
		}
	}
	return GWConn{}, fmt.Errorf("ipsecgw in %s: no conn %q in status", g.Node.Role, name)
}

// Up asks the daemon to bring connection name up (`ipsecgw up`).
func (g *IPsecGW) Up(ctx context.Context, name string) error {
	_, err := g.CLI(ctx, "up", name)
	return err
}

// WaitState polls the status until connection name is in one of states.
func (g *IPsecGW) WaitState(ctx context.Context, name string, states ...string) (GWConn, error) {
	var last GWConn
	for {
		c, err := g.Conn(ctx, name)
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
			return last, fmt.Errorf("ipsecgw in %s: conn %s still %q (%s), not %v: %w", g.Node.Role, name, last.State, last.LastError, states, ctx.Err())
		case <-g.Proc.Done():
			return last, fmt.Errorf("ipsecgw in %s exited (%v) while waiting for conn %s", g.Node.Role, g.Proc.ExitErr(), name)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// WaitEstablished waits until connection name is established.
func (g *IPsecGW) WaitEstablished(ctx context.Context, name string) (GWConn, error) {
	return g.WaitState(ctx, name, GWEstablished)
}

// Log returns what the daemon has logged so far (stdout and stderr).
func (g *IPsecGW) Log() string { return g.Proc.Output() }

// Stop sends SIGTERM and waits for the daemon to exit; anything but a clean
// exit status 0 (an error at shutdown, or a race report from a -race build)
// is returned as an error. It is safe to call more than once.
func (g *IPsecGW) Stop() error {
	if err := g.Proc.Stop(syscall.SIGTERM, 20*time.Second); err != nil {
		return err
	}
	if err := g.Proc.ExitErr(); err != nil {
		return fmt.Errorf("ipsecgw in %s exited with %v after SIGTERM", g.Node.Role, err)
	}
	return nil
}
