package lab

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// StarterPath is strongSwan's legacy starter, which reads ipsec.conf and
// runs charon as its child.
const StarterPath = "/usr/lib/ipsec/starter"

// StarterConfig describes a strongSwan instance configured the legacy way
// (ipsec.conf and ipsec.secrets through the stroke plugin).
type StarterConfig struct {
	Name    string // instance name; default the node's role
	IPsec   string // ipsec.conf text; see Conn.IPsecConf
	Secrets string // ipsec.secrets text; see Conn.IPsecSecrets
	Extra   string // inserted inside charon { } of strongswan.conf
}

// StartStarter runs `starter --nofork` with its own ipsec.conf in the same
// private-/run arrangement as StartCharon. The returned Charon is driven
// with swanctl as usual: charon loads both stroke (for ipsec.conf) and vici,
// and connections from ipsec.conf can be initiated and listed through VICI.
// Stroke names the CHILD SA after the conn, so a conn "s2s" has IKE and
// CHILD SA both named "s2s".
func (n *Node) StartStarter(ctx context.Context, cfg StarterConfig) (*Charon, error) {
	name := def(cfg.Name, n.Role)
	dir := filepath.Join(n.Lab.Dir, "charon-"+name)
	c := &Charon{Name: name, Node: n, Dir: dir, URI: "unix://" + filepath.Join(dir, "charon.vici")}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("starter instance %q: %w", name, err)
	}
	plugins := append(append([]string(nil), DefaultPlugins...), "stroke")
	extra := "  plugins {\n    stroke {\n      secrets_file = /run/ipsec.secrets\n    }\n  }\n" + cfg.Extra
	files := map[string]string{
		"strongswan.conf": strongswanConf(CharonConfig{Plugins: plugins, Extra: extra}),
		"ipsec.conf":      cfg.IPsec,
		"ipsec.secrets":   cfg.Secrets,
	}
	for f, text := range files {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(text), 0o600); err != nil {
			return nil, err
		}
	}
	p, err := n.Lab.start(n.NS, "starter-"+name, []string{"STRONGSWAN_CONF=/run/strongswan.conf"},
		"unshare", "--mount", "--propagation", "private",
		"sh", "-c", `mount --bind "$0" /run && exec "$1" --nofork --conf /run/ipsec.conf`, dir, StarterPath)
	if err != nil {
		return nil, err
	}
	c.Proc = p
	n.Lab.mu.Lock()
	n.Lab.charons = append(n.Lab.charons, c)
	n.Lab.mu.Unlock()
	if err := c.waitReady(ctx); err != nil {
		return c, err
	}
	// starter forks charon, so charon is not our child: record its PID so
	// that Close and a later stale cleanup can end it if starter cannot.
	b, err := os.ReadFile(filepath.Join(dir, "charon.pid"))
	if err != nil {
		return c, c.errorf("start", err, "charon PID file")
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return c, c.errorf("start", err, "charon PID file")
	}
	if err := n.Lab.recordPID(pid, "charon-"+name); err != nil {
		return c, err
	}
	// starter loads ipsec.conf into charon over stroke once charon is up;
	// wait until the connections are visible over VICI.
	for {
		out, err := c.Swanctl(ctx, "--list-conns")
		if err == nil && strings.TrimSpace(out) != "" {
			return c, nil
		}
		select {
		case <-ctx.Done():
			return c, c.errorf("start", ctx.Err(), "ipsec.conf connections not loaded")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// recordPID adds a process the lab did not start itself (a grandchild) to
// the lab's record.
func (l *Lab) recordPID(pid int, name string) error {
	st, err := procStart(pid)
	if err != nil {
		return fmt.Errorf("%s pid %d: %w", name, pid, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.state.Procs = append(l.state.Procs, procRecord{PID: pid, Start: st, Name: name})
	return writeState(l.Dir, &l.state)
}

// IPsecConf renders the connection as an ipsec.conf for starter, with the
// proposals made strict ("!") as swanctl's are.
func (c Conn) IPsecConf() string {
	kex := "ike"
	switch c.Version {
	case 1:
		kex = "ikev1"
	case 2:
		kex = "ikev2"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "config setup\n\nconn %s\n", def(c.Name, "s2s"))
	fmt.Fprintf(&b, "  keyexchange=%s\n  authby=secret\n", kex)
	if c.Aggressive {
		b.WriteString("  aggressive=yes\n")
	}
	fmt.Fprintf(&b, "  left=%s\n  leftid=%s\n  leftsubnet=%s\n", c.LocalAddr, c.LocalID, c.LocalTS)
	fmt.Fprintf(&b, "  right=%s\n  rightid=%s\n  rightsubnet=%s\n", c.RemoteAddr, c.RemoteID, c.RemoteTS)
	if c.IKEProposals != "" {
		fmt.Fprintf(&b, "  ike=%s!\n", c.IKEProposals)
	}
	if c.ESPProposals != "" {
		fmt.Fprintf(&b, "  esp=%s!\n", c.ESPProposals)
	}
	auto := "add"
	switch c.StartAction {
	case "trap":
		auto = "route"
	case "start":
		auto = "start"
	}
	fmt.Fprintf(&b, "  auto=%s\n", auto)
	return b.String()
}

// IPsecSecrets renders the PSK line for ipsec.secrets (hex, so any byte
// of the key survives).
func (c Conn) IPsecSecrets() string {
	return fmt.Sprintf("%s %s : PSK 0x%s\n", c.LocalID, c.RemoteID, hex.EncodeToString([]byte(c.PSK)))
}
