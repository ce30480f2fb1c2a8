package lab

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// DefaultPlugins is the explicit plugin list each charon loads. The
// kernel has no ESP, so kernel-libipsec (userspace ESP over a TUN device)
// must come before kernel-netlink, which then handles only addresses and
// routes. No resolve/updown plugins: they would touch host files.
var DefaultPlugins = []string{
	"random", "nonce", "openssl", "aes", "sha1", "sha2", "hmac", "gcm", "pem", "pkcs1",
	"x509", "pubkey", "curve25519", "gmp", "kdf", "kernel-libipsec", "kernel-netlink",
	"socket-default", "vici",
}

// CharonConfig describes one strongSwan instance.
type CharonConfig struct {
	// Name distinguishes instances (directory and messages); default is
	// the node's role. Two instances in one namespace would also need
	// distinct IKE ports via Extra.
	Name string
	// Swanctl is the swanctl.conf text (connections and secrets); see
	// SwanctlConf for a renderer.
	Swanctl string
	// Extra is inserted verbatim inside the charon { } section of
	// strongswan.conf, e.g. "cookie_threshold = 1000".
	Extra string
	// Plugins overrides DefaultPlugins.
	Plugins []string
	// LogLevels sets filelog levels per subsystem (default: ike=2, cfg=2,
	// others 1); level 4 would log keys and must not be used.
	LogLevels map[string]int
	// Files are credentials by path relative to the swanctl directory
	// (mode 0600), e.g. "x509/gw.pem", "x509ca/ca.pem", "private/gw.key",
	// "x509crl/ca.crl"; swanctl --load-all loads them.
	Files map[string][]byte
}

// Charon is a running charon instance with its own runtime directory.
type Charon struct {
	Name string
	Node *Node
	Dir  string // on the host: strongswan.conf, swanctl/, charon.log, charon.vici, charon.pid
	URI  string // unix:// URI of the VICI socket, usable from any namespace
	Proc *Process
}

// StartCharon writes the instance's configuration and starts charon in
// the node's namespace, then waits until its VICI socket answers and loads
// the swanctl configuration.
//
// charon has its PID file (/var/run/charon.pid) compiled in and places
// its VICI socket under /run by default, so each instance runs in a
// private mount namespace whose /run is the instance directory: inside it
// every path is /run/<file>, outside it is Dir/<file>.
func (n *Node) StartCharon(ctx context.Context, cfg CharonConfig) (*Charon, error) {
	name := cfg.Name
	if name == "" {
		name = n.Role
	}
	dir := filepath.Join(n.Lab.Dir, "charon-"+name)
	c := &Charon{Name: name, Node: n, Dir: dir, URI: "unix://" + filepath.Join(dir, "charon.vici")}
	// The directory becomes the instance's /run: two instances sharing it
	// would share PID file and VICI socket, so a taken name is an error.
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("charon instance %q: %w", name, err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "swanctl"), 0o700); err != nil {
		return nil, err
	}
	// swanctl --load-all reads credentials from these directories next to
	// swanctl.conf and complains when they are missing.
	for _, sub := range []string{"x509", "x509ca", "x509ocsp", "x509aa", "x509ac", "x509crl", "pubkey", "private", "rsa", "ecdsa", "bliss", "pkcs8", "pkcs12"} {
		if err := os.MkdirAll(filepath.Join(dir, "swanctl", sub), 0o700); err != nil {
			return nil, err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "strongswan.conf"), []byte(strongswanConf(cfg)), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "swanctl", "swanctl.conf"), []byte(cfg.Swanctl), 0o600); err != nil {
		return nil, err
	}
	if err := writeFiles(filepath.Join(dir, "swanctl"), cfg.Files); err != nil {
		return nil, err
	}
	p, err := n.Lab.start(n.NS, "charon-"+name, []string{"STRONGSWAN_CONF=/run/strongswan.conf"},
		"unshare", "--mount", "--propagation", "private",
		"sh", "-c", `mount --bind "$0" /run && exec "$1"`, dir, CharonPath)
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
	if err := c.LoadAll(ctx); err != nil {
		return c, err
	}
	return c, nil
}

func strongswanConf(cfg CharonConfig) string {
	plugins := cfg.Plugins
	if len(plugins) == 0 {
		plugins = DefaultPlugins
	}
	levels := map[string]int{"default": 1, "ike": 2, "cfg": 2}
	for k, v := range cfg.LogLevels {
		levels[k] = v
	}
	var lv strings.Builder
	for _, k := range []string{"default", "asn", "cfg", "chd", "dmn", "enc", "esp", "ike", "imc", "imv", "job", "knl", "lib", "mgr", "net", "pts", "tls", "tnc"} {
		if v, ok := levels[k]; ok {
			fmt.Fprintf(&lv, "      %s = %d\n", k, v)
		}
	}
	return fmt.Sprintf(`# written by ipsecgw internal/lab; paths are as seen inside the
# instance's mount namespace, where /run is this directory.
charon {
  load_modular = no
  load = %s
  plugins {
    vici {
      socket = unix:///run/charon.vici
    }
  }
  filelog {
    lab {
      path = /run/charon.log
      time_format = %%H:%%M:%%S
      ike_name = yes
      flush_line = yes
      append = yes
%s    }
  }
%s
}
`, strings.Join(plugins, " "), lv.String(), cfg.Extra)
}

func (c *Charon) waitReady(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	sock := filepath.Join(c.Dir, "charon.vici")
	for {
		if _, err := os.Stat(sock); err == nil {
			if _, err := c.Swanctl(ctx, "--stats"); err == nil {
				return nil
			}
		}
		select {
		case <-c.Proc.Done():
			return c.errorf("start", c.Proc.ExitErr(), "charon exited during start-up: %s", strings.TrimSpace(c.Proc.Output()))
		case <-ctx.Done():
			return c.errorf("start", ctx.Err(), "VICI socket %s not answering", sock)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Swanctl runs swanctl against this instance (command first, as swanctl
// wants it) and returns its combined output.
func (c *Charon) Swanctl(ctx context.Context, args ...string) (string, error) {
	if len(args) == 0 {
		return "", errors.New("swanctl: no command given")
	}
	argv := append([]string{args[0], "--uri", c.URI}, args[1:]...)
	cmd := exec.CommandContext(ctx, "swanctl", argv...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	out, err := combinedOutput(cmd)
	if err != nil {
		return string(out), fmt.Errorf("swanctl %s: %w: %s", strings.Join(argv, " "), err, strings.TrimSpace(string(out)))
	}
	return string(out), nil
}

// LoadAll (re)loads swanctl.conf: connections and secrets. A configuration
// strongSwan rejects is an error carrying swanctl's explanation.
func (c *Charon) LoadAll(ctx context.Context) error {
	out, err := c.Swanctl(ctx, "--load-all", "--noprompt", "--file", filepath.Join(c.Dir, "swanctl", "swanctl.conf"))
	if err == nil && (strings.Contains(out, "failed to load") || strings.Contains(out, "discarded")) {
		err = errors.New(strings.TrimSpace(out))
	}
	if err != nil {
		return c.errorf("load-all", err, "swanctl.conf rejected")
	}
	return nil
}

// Reconfigure replaces swanctl.conf and reloads it.
func (c *Charon) Reconfigure(ctx context.Context, swanctl string) error {
	if err := os.WriteFile(filepath.Join(c.Dir, "swanctl", "swanctl.conf"), []byte(swanctl), 0o600); err != nil {
		return err
	}
	return c.LoadAll(ctx)
}

// Initiate starts a CHILD SA (and its IKE SA) and waits for the result.
// swanctl's streamed log and charon's own relevant log lines are in the
// error on failure.
func (c *Charon) Initiate(ctx context.Context, ike, child string) error {
	args := []string{"--initiate", "--timeout", "20"}
	if child != "" {
		args = append(args, "--child", child)
	}
	if ike != "" {
		args = append(args, "--ike", ike)
	}
	if _, err := c.Swanctl(ctx, args...); err != nil {
		return c.errorf("initiate", err, "initiating %s/%s", ike, child)
	}
	return nil
}

// Terminate closes an IKE SA (with its CHILD SAs).
func (c *Charon) Terminate(ctx context.Context, ike string) error {
	if _, err := c.Swanctl(ctx, "--terminate", "--ike", ike, "--timeout", "10"); err != nil {
		return c.errorf("terminate", err, "terminating %s", ike)
	}
	return nil
}

// ListSAs returns the instance's IKE SAs with their CHILD SAs.
func (c *Charon) ListSAs(ctx context.Context) ([]IKESA, error) {
	out, err := c.Swanctl(ctx, "--list-sas", "--noblock", "--pretty")
	if err != nil {
		return nil, c.errorf("list-sas", err, "listing SAs")
	}
	return ParseListSAs(out)
}

// SA returns the IKE SA with the given configuration name, if any.
func (c *Charon) SA(ctx context.Context, ike string) (IKESA, bool, error) {
	sas, err := c.ListSAs(ctx)
	if err != nil {
		return IKESA{}, false, err
	}
	for _, s := range sas {
		if s.Name == ike {
			return s, true, nil
		}
	}
	return IKESA{}, false, nil
}

// WaitEstablished polls until the IKE SA named ike is ESTABLISHED and, if
// child is not empty, has that CHILD SA INSTALLED ("*": any CHILD SA). When ctx ends first,
// the error holds charon's relevant log lines.
func (c *Charon) WaitEstablished(ctx context.Context, ike, child string) (IKESA, error) {
	for {
		sa, ok, err := c.SA(ctx, ike)
		if err == nil && ok && sa.State == "ESTABLISHED" {
			if child == "" {
				return sa, nil
			}
			if ch, ok := sa.Child(child); ok && ch.State == "INSTALLED" {
				return sa, nil
			}
			for _, ch := range sa.Children {
				if child == "*" && ch.State == "INSTALLED" {
					return sa, nil
				}
			}
		}
		select {
		case <-c.Proc.Done():
			return IKESA{}, c.errorf("wait", c.Proc.ExitErr(), "charon exited")
		case <-ctx.Done():
			return IKESA{}, c.errorf("wait", ctx.Err(), "IKE SA %s / CHILD SA %s not established", ike, child)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// WaitDown polls until no IKE SA named ike exists (after a terminate, a
// delete from the peer, a DPD timeout).
func (c *Charon) WaitDown(ctx context.Context, ike string) error {
	for {
		_, ok, err := c.SA(ctx, ike)
		if err == nil && !ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return c.errorf("wait-down", ctx.Err(), "IKE SA %s still present", ike)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Establish initiates ike/child on the initiator and waits until both ends
// show it established. On failure the error carries the relevant log lines
// of both instances, so a broken configuration explains itself.
func Establish(ctx context.Context, initiator, responder *Charon, ike, child string) (IKESA, error) {
	fail := func(err error) (IKESA, error) {
		ce := &CharonError{Op: "establish " + ike + "/" + child, Err: err}
		var inner *CharonError
		if errors.As(err, &inner) {
			ce.Err = inner.Err
		}
		for _, c := range []*Charon{initiator, responder} {
			ce.Logs = append(ce.Logs, InstanceLog{Instance: c.Name, Lines: c.LogExcerpt()})
		}
		return IKESA{}, ce
	}
	if err := initiator.Initiate(ctx, ike, child); err != nil {
		return fail(err)
	}
	sa, err := initiator.WaitEstablished(ctx, ike, child)
	if err != nil {
		return fail(err)
	}
	// The responder names SAs after its own configuration: the IKE
	// configuration names match in this lab, but CHILD SA names may not
	// (stroke names the CHILD SA after the conn), so any installed one
	// counts.
	if _, err := responder.WaitEstablished(ctx, ike, "*"); err != nil {
		return fail(err)
	}
	return sa, nil
}

// LogPath is charon's filelog on the host.
func (c *Charon) LogPath() string { return filepath.Join(c.Dir, "charon.log") }

// LogLines returns charon's log so far.
func (c *Charon) LogLines() []string {
	b, err := os.ReadFile(c.LogPath())
	if err != nil {
		return []string{fmt.Sprintf("(no log: %v)", err)}
	}
	s := strings.TrimRight(string(b), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// failureLine matches the log lines that explain why an SA did not come
// up (proposal, authentication, selector, routing and retransmit trouble).
var failureLine = regexp.MustCompile(`(?i)fail|error|no acceptable|mismatch|NO_PROPOSAL_CHOSEN|AUTHENTICATION_FAILED|TS_UNACCEPTABLE|INVALID_|unable|not found|no matching|no config|giving up|retransmit|received proposals|configured proposals|selected proposal|peer not responding|deleting IKE_SA|establishing|established`)

// LogExcerpt returns the lines of charon's log that explain what happened
// to negotiations, followed by the last lines of the log.
func (c *Charon) LogExcerpt() []string {
	lines := c.LogLines()
	const tail = 12
	var out []string
	cut := max(len(lines)-tail, 0)
	for _, l := range lines[:cut] {
		if failureLine.MatchString(l) {
			out = append(out, l)
		}
	}
	if len(out) > 60 {
		out = out[len(out)-60:]
	}
	return append(out, lines[cut:]...)
}

// InstanceLog is a set of log lines of one charon instance.
type InstanceLog struct {
	Instance string
	Lines    []string
}

// CharonError is a failed operation on strongSwan with the log lines that
// explain it; its text includes them, so a failing test shows strongSwan's
// own words rather than a bare timeout.
type CharonError struct {
	Op   string
	Err  error
	Logs []InstanceLog
}

func (e *CharonError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %v", e.Op, e.Err)
	for _, l := range e.Logs {
		fmt.Fprintf(&b, "\n--- charon %s log ---\n%s", l.Instance, strings.Join(l.Lines, "\n"))
	}
	return b.String()
}

func (e *CharonError) Unwrap() error { return e.Err }

func (c *Charon) errorf(op string, err error, format string, args ...any) error {
	if err == nil {
		err = errors.New("failed")
	}
	return &CharonError{
		Op:   fmt.Sprintf("charon %s %s: %s", c.Name, op, fmt.Sprintf(format, args...)),
		Err:  err,
		Logs: []InstanceLog{{Instance: c.Name, Lines: c.LogExcerpt()}},
	}
}

// Conn is one site-to-site connection rendered into swanctl.conf.
type Conn struct {
	Name         string // connection name; default "s2s"
	Child        string // CHILD SA name; default "net"
	Version      int    // 1 (IKEv1), 2 (IKEv2) or 0 (either)
	Aggressive   bool   // IKEv1 aggressive mode instead of main mode
	LocalAddr    string
	RemoteAddr   string
	LocalID      string
	RemoteID     string
	PSK          string
	IKEProposals string // e.g. "aes128-sha256-modp2048"
	ESPProposals string // e.g. "aes128gcm16"
	LocalTS      string
	RemoteTS     string
	StartAction  string // CHILD start_action (none, trap, start); default none
	ConnExtra    string // extra lines inside the connection section
	ChildExtra   string // extra lines inside the CHILD section
	// Auth is "psk" (the default, with PSK) or "pubkey": then LocalCert
	// names our certificate in swanctl/x509 (its key goes in
	// swanctl/private) and no PSK secret is written.
	Auth      string
	LocalCert string
}

// SiteToSite returns the connection of local towards remote protecting
// their LANs, authenticated with psk and identified by role names.
func SiteToSite(local, remote *Node, version int, psk, ike, esp string) Conn {
	return Conn{
		Version:      version,
		LocalAddr:    local.Addr.String(),
		RemoteAddr:   remote.PublicAddr.String(),
		LocalID:      local.Role,
		RemoteID:     remote.Role,
		PSK:          psk,
		IKEProposals: ike,
		ESPProposals: esp,
		LocalTS:      local.LAN.String(),
		RemoteTS:     remote.LAN.String(),
	}
}

// SwanctlConf renders connections and their PSK secrets.
func SwanctlConf(conns ...Conn) string {
	var b strings.Builder
	b.WriteString("connections {\n")
	for _, c := range conns {
		name := def(c.Name, "s2s")
		fmt.Fprintf(&b, "  %s {\n    version = %d\n", name, c.Version)
		if c.Aggressive {
			b.WriteString("    aggressive = yes\n")
		}
		fmt.Fprintf(&b, "    local_addrs = %s\n    remote_addrs = %s\n", c.LocalAddr, c.RemoteAddr)
		if c.IKEProposals != "" {
			fmt.Fprintf(&b, "    proposals = %s\n", c.IKEProposals)
		}
		if c.ConnExtra != "" {
			fmt.Fprintf(&b, "    %s\n", c.ConnExtra)
		}
		auth := def(c.Auth, "psk")
		certs := ""
		if c.LocalCert != "" {
			certs = "      certs = " + c.LocalCert + "\n"
		}
		fmt.Fprintf(&b, "    local {\n      auth = %s\n%s      id = %s\n    }\n", auth, certs, c.LocalID)
		fmt.Fprintf(&b, "    remote {\n      auth = %s\n      id = %s\n    }\n", auth, c.RemoteID)
		fmt.Fprintf(&b, "    children {\n      %s {\n", def(c.Child, "net"))
		fmt.Fprintf(&b, "        local_ts = %s\n        remote_ts = %s\n", c.LocalTS, c.RemoteTS)
		if c.ESPProposals != "" {
			fmt.Fprintf(&b, "        esp_proposals = %s\n", c.ESPProposals)
		}
		fmt.Fprintf(&b, "        start_action = %s\n", def(c.StartAction, "none"))
		if c.ChildExtra != "" {
			fmt.Fprintf(&b, "        %s\n", c.ChildExtra)
		}
		b.WriteString("      }\n    }\n  }\n")
	}
	b.WriteString("}\nsecrets {\n")
	for i, c := range conns {
		if def(c.Auth, "psk") != "psk" {
			continue
		}
		// Hex form ("0x...") carries any byte of the PSK without quoting rules.
		fmt.Fprintf(&b, "  ike-%d {\n    id-1 = %s\n    id-2 = %s\n    secret = 0x%s\n  }\n", i, c.LocalID, c.RemoteID, hex.EncodeToString([]byte(c.PSK)))
	}
	b.WriteString("}\n")
	return b.String()
}

// writeFiles writes files (relative paths) under dir, creating their
// directories.
func writeFiles(dir string, files map[string][]byte) error {
	for rel, data := range files {
		if filepath.IsAbs(rel) || strings.HasPrefix(filepath.Clean(rel), "..") {
			return fmt.Errorf("file %q must be relative to %s", rel, dir)
		}
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return err
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

func def(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
