package lab

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Options choose the lab's shape.
type Options struct {
	// NAT puts a router namespace doing MASQUERADE between GW1 and the
	// underlay: gw1 (203.0.113.2) — nat (203.0.113.1 | 198.51.100.1) — gw2.
	NAT bool
	// SecondPeer adds a third gateway, GW3 (198.51.100.3), with a LAN
	// host, Host3, that has Host2's LAN and address: the two endpoints of
	// a cloud VPN connection in front of one network. The three
	// gateways' underlay interfaces meet on a bridge in a switch
	// namespace. Not with NAT.
	SecondPeer bool
	// Tools lists extra programs the caller needs (for New's skip check),
	// for example "iperf3" or "tshark".
	Tools []string
}

// Fixed addressing. The "public" ranges are documentation ranges and only
// ever exist inside the lab's namespaces.
var (
	GW1Public = netip.MustParseAddr("198.51.100.1") // GW1 as GW2 sees it (NAT's address in the NAT variant)
	GW2Public = netip.MustParseAddr("198.51.100.2")
	GW3Public = netip.MustParseAddr("198.51.100.3") // Options.SecondPeer
	GW1Behind = netip.MustParseAddr("203.0.113.2")  // GW1's own underlay address in the NAT variant
	NATInside = netip.MustParseAddr("203.0.113.1")
	LAN1      = netip.MustParsePrefix("10.1.0.0/24")
	LAN2      = netip.MustParsePrefix("10.2.0.0/24")
)

// Interface names inside the namespaces. Each namespace has its own set,
// so these need not be unique between labs; the host namespace gets none.
const (
	IfUnderlay = "ul"   // a gateway's underlay interface
	IfLAN      = "lan"  // a gateway's LAN-side interface
	IfHost     = "eth0" // a LAN host's only interface
	IfNATIn    = "priv" // NAT router towards GW1
	IfNATOut   = "pub"  // NAT router towards the underlay
)

// Node is one network namespace of a lab.
type Node struct {
	Lab  *Lab
	Role string // gw1, gw2, host1, host2, nat
	NS   string // namespace name for ip netns

	// Addr is the node's own address: the underlay address of a gateway
	// (what it binds to), the LAN address of a host.
	Addr netip.Addr
	// PublicAddr is the address peers see for a gateway: Addr, except GW1
	// behind NAT, which is seen as the NAT's public address.
	PublicAddr netip.Addr
	// LAN is the gateway's protected subnet, or the host's subnet.
	LAN netip.Prefix
	// LANAddr is a gateway's address inside its LAN (kernel-libipsec
	// needs a local address inside the local traffic selector).
	LANAddr netip.Addr
}

func (n *Node) String() string { return n.NS }

// Lab is a set of namespaces with the processes running in them.
type Lab struct {
	ID  string
	Dir string // state and working directory, StateRoot/ID
	NAT bool

	GW1, GW2     *Node
	Host1, Host2 *Node
	NATRouter    *Node // nil unless Options.NAT
	// GW3, Host3 and Switch exist with Options.SecondPeer.
	GW3, Host3, Switch *Node
	secondPeer         bool

	mu      sync.Mutex
	closed  bool
	seq     int
	state   labState
	procs   []*Process
	charons []*Charon
	nodes   []*Node
	daemons []*IPsecGW // every ipsecgw launched, for SecretLeaks
}

// nsPrefix is Prefix except in this package's own tests that create
// deliberate leftovers: they use testPrefix, so that AssertClean of
// another test binary running at the same time never sees them.
var nsPrefix = Prefix

const testPrefix = "isgwt-"

var (
	registryMu sync.Mutex
	liveLabs   = map[*Lab]struct{}{}
	allLabs    []labState // every lab this process built, for AssertClean
	sigCh      chan os.Signal
)

// watchSignals makes SIGINT/SIGTERM tear down all live labs before the
// program exits, so an interrupted `go test` or demo leaves nothing behind.
// It is active only while a lab exists.
func watchSignals(l *Lab) {
	registryMu.Lock()
	defer registryMu.Unlock()
	liveLabs[l] = struct{}{}
	allLabs = append(allLabs, labState{ID: l.ID, Netns: append([]string(nil), l.state.Netns...)})
	if sigCh != nil {
		return
	}
	sigCh = make(chan os.Signal, 1)
	signal.Notify(sigCh, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func(ch chan os.Signal) {
		sig, ok := <-ch
		if !ok {
			return
		}
		registryMu.Lock()
		labs := make([]*Lab, 0, len(liveLabs))
		for x := range liveLabs {
			labs = append(labs, x)
		}
		registryMu.Unlock()
		fmt.Fprintf(os.Stderr, "lab: %v: tearing down %d lab(s)\n", sig, len(labs))
		for _, x := range labs {
			if err := x.Close(); err != nil {
				fmt.Fprintf(os.Stderr, "lab: %v\n", err)
			}
		}
		os.Exit(130)
	}(sigCh)
}

func unwatch(l *Lab) {
	registryMu.Lock()
	defer registryMu.Unlock()
	delete(liveLabs, l)
	// Namespaces may have been added after registration; refresh the record.
	for i := range allLabs {
		if allLabs[i].ID == l.ID {
			allLabs[i].Netns = append([]string(nil), l.state.Netns...)
			allLabs[i].Procs = append([]procRecord(nil), l.state.Procs...)
		}
	}
	if len(liveLabs) == 0 && sigCh != nil {
		signal.Stop(sigCh)
		close(sigCh)
		sigCh = nil
	}
}

func newID() string {
	var b [3]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// New builds a lab for a test and registers its teardown with t.Cleanup.
// It skips the test (or fails it when IPSECGW_REQUIRE_INTEROP=1) if the
// machine cannot run the lab. When the test has failed, the cleanup first
// prints the tail of every charon log of the lab.
func New(t testing.TB, opts Options) *Lab {
	t.Helper()
	Require(t, opts.Tools...)
	l, err := Build(opts)
	if err != nil {
		t.Fatalf("lab: %v", err)
	}
	t.Cleanup(func() {
		for _, leak := range l.SecretLeaks() {
			t.Errorf("secret in a log: %s", leak)
		}
		if t.Failed() {
			l.dumpLogs(t)
		}
		if err := l.Close(); err != nil {
			t.Errorf("lab teardown: %v", err)
		}
	})
	return l
}

// Build creates a lab without a testing.TB (for the demo program); the
// caller must Close it. Stale labs of dead owners are removed first.
func Build(opts Options) (*Lab, error) {
	if err := CleanStale(); err != nil {
		return nil, fmt.Errorf("cleaning stale labs: %w", err)
	}
	if err := os.MkdirAll(StateRoot, 0o755); err != nil {
		return nil, err
	}
	var l *Lab
	for range 10 {
		id := newID()
		dir := filepath.Join(StateRoot, id)
		if err := os.Mkdir(dir, 0o755); errors.Is(err, os.ErrExist) {
			continue
		} else if err != nil {
			return nil, err
		}
		l = &Lab{ID: id, Dir: dir, NAT: opts.NAT, secondPeer: opts.SecondPeer && !opts.NAT}
		break
	}
	if l == nil {
		return nil, errors.New("no free lab id")
	}
	l.state = labState{ID: l.ID, Owner: selfRecord(), Created: time.Now()}
	if err := writeState(l.Dir, &l.state); err != nil {
		_ = os.RemoveAll(l.Dir)
		return nil, err
	}
	watchSignals(l)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := l.build(ctx); err != nil {
		if cerr := l.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return nil, fmt.Errorf("building lab %s: %w", l.ID, err)
	}
	return l, nil
}

func (l *Lab) addNode(ctx context.Context, role string, forward bool) (*Node, error) {
	n := &Node{Lab: l, Role: role, NS: nsPrefix + l.ID + "-" + role}
	// Record the namespace before creating it: if we die in between, the
	// stale cleanup still knows to look for it.
	l.mu.Lock()
	l.state.Netns = append(l.state.Netns, n.NS)
	err := writeState(l.Dir, &l.state)
	l.nodes = append(l.nodes, n)
	l.mu.Unlock()
	if err != nil {
		return nil, err
	}
	if _, err := run(ctx, "", "ip", "netns", "add", n.NS); err != nil {
		return nil, err
	}
	// IPv6 is off so router solicitations and DAD do not clutter
	// captures and charon's interface log.
	sysctls := []string{"net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"}
	if forward {
		sysctls = append(sysctls, "net.ipv4.ip_forward=1")
	}
	if _, err := run(ctx, n.NS, append([]string{"sysctl", "-q", "-e", "-w"}, sysctls...)...); err != nil {
		return nil, err
	}
	if _, err := run(ctx, "", "ip", "-n", n.NS, "link", "set", "lo", "up"); err != nil {
		return nil, err
	}
	return n, nil
}

// veth creates a veth pair between two namespaces and brings both ends up
// with the given addresses (prefix form).
func veth(ctx context.Context, a *Node, aName, aAddr string, b *Node, bName, bAddr string) error {
	steps := [][]string{
		{"ip", "-n", a.NS, "link", "add", aName, "type", "veth", "peer", "name", bName, "netns", b.NS},
		{"ip", "-n", a.NS, "addr", "add", aAddr, "dev", aName},
		{"ip", "-n", b.NS, "addr", "add", bAddr, "dev", bName},
		{"ip", "-n", a.NS, "link", "set", aName, "up"},
		{"ip", "-n", b.NS, "link", "set", bName, "up"},
	}
	for _, s := range steps {
		if _, err := run(ctx, "", s...); err != nil {
			return err
		}
	}
	return nil
}

func (l *Lab) build(ctx context.Context) error {
	var err error
	if l.GW1, err = l.addNode(ctx, "gw1", true); err != nil {
		return err
	}
	if l.GW2, err = l.addNode(ctx, "gw2", true); err != nil {
		return err
	}
	if l.Host1, err = l.addNode(ctx, "host1", false); err != nil {
		return err
	}
	if l.Host2, err = l.addNode(ctx, "host2", false); err != nil {
		return err
	}
	l.GW2.Addr, l.GW2.PublicAddr = GW2Public, GW2Public
	l.GW1.PublicAddr = GW1Public
	if l.NAT {
		if l.NATRouter, err = l.addNode(ctx, "nat", true); err != nil {
			return err
		}
		l.GW1.Addr = GW1Behind
		l.NATRouter.Addr, l.NATRouter.PublicAddr = NATInside, GW1Public
		if err := veth(ctx, l.GW1, IfUnderlay, GW1Behind.String()+"/24", l.NATRouter, IfNATIn, NATInside.String()+"/24"); err != nil {
			return err
		}
		if err := veth(ctx, l.NATRouter, IfNATOut, GW1Public.String()+"/24", l.GW2, IfUnderlay, GW2Public.String()+"/24"); err != nil {
			return err
		}
		if _, err := run(ctx, "", "ip", "-n", l.GW1.NS, "route", "add", "default", "via", NATInside.String()); err != nil {
			return err
		}
		// Source NAT of everything leaving towards the underlay, as a
		// home router or cloud NAT gateway would do.
		rules := fmt.Sprintf("table ip labnat {\n chain post {\n  type nat hook postrouting priority srcnat; policy accept;\n  oifname %q masquerade\n }\n}\n", IfNATOut)
		if err := runStdin(ctx, l.NATRouter.NS, rules, "nft", "-f", "-"); err != nil {
			return err
		}
	} else if l.secondPeer {
		l.GW1.Addr = GW1Public
		if err := l.buildSwitch(ctx); err != nil {
			return err
		}
	} else {
		l.GW1.Addr = GW1Public
		if err := veth(ctx, l.GW1, IfUnderlay, GW1Public.String()+"/24", l.GW2, IfUnderlay, GW2Public.String()+"/24"); err != nil {
			return err
		}
	}
	lans := []struct {
		gw, host *Node
		lan      netip.Prefix
	}{{l.GW1, l.Host1, LAN1}, {l.GW2, l.Host2, LAN2}}
	if l.secondPeer {
		lans = append(lans, struct {
			gw, host *Node
			lan      netip.Prefix
		}{l.GW3, l.Host3, LAN2})
	}
	for _, p := range lans {
		base := p.lan.Addr().As4()
		gwAddr := netip.AddrFrom4([4]byte{base[0], base[1], base[2], 1})
		hostAddr := netip.AddrFrom4([4]byte{base[0], base[1], base[2], 2})
		p.gw.LAN, p.gw.LANAddr = p.lan, gwAddr
		p.host.LAN, p.host.Addr, p.host.PublicAddr = p.lan, hostAddr, hostAddr
		bits := fmt.Sprintf("/%d", p.lan.Bits())
		if err := veth(ctx, p.gw, IfLAN, gwAddr.String()+bits, p.host, IfHost, hostAddr.String()+bits); err != nil {
			return err
		}
		if _, err := run(ctx, "", "ip", "-n", p.host.NS, "route", "add", "default", "via", gwAddr.String()); err != nil {
			return err
		}
	}
	return nil
}

// Nodes returns every namespace of the lab.
func (l *Lab) Nodes() []*Node {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*Node(nil), l.nodes...)
}

// Close stops every process the lab started (newest first), deletes its
// namespaces (taking the veths with them) and its state directory. It is
// safe to call more than once.
func (l *Lab) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	procs := append([]*Process(nil), l.procs...)
	l.mu.Unlock()
	var errs []error
	for i := len(procs) - 1; i >= 0; i-- {
		if err := procs[i].Stop(syscall.SIGTERM, 3*time.Second); err != nil {
			errs = append(errs, err)
		}
	}
	// Anything recorded but not tracked as a Process (none today) and any
	// namespace still present goes the same way a stale lab would.
	l.mu.Lock()
	st := l.state
	l.mu.Unlock()
	if err := teardownState(l.Dir, &st); err != nil {
		errs = append(errs, err)
	}
	unwatch(l)
	if err := l.check(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// check reports anything of this lab that still exists.
func (l *Lab) check() error {
	return checkGone(labState{ID: l.ID, Netns: l.state.Netns, Procs: l.state.Procs})
}

func checkGone(st labState) error {
	var left []string
	for _, ns := range st.Netns {
		if netnsExists(ns) {
			left = append(left, "namespace "+ns)
		}
	}
	for _, p := range st.Procs {
		if p.alive() {
			left = append(left, fmt.Sprintf("process %s pid %d", p.Name, p.PID))
		}
	}
	if _, err := os.Stat(filepath.Join(StateRoot, st.ID)); err == nil {
		left = append(left, "state dir "+filepath.Join(StateRoot, st.ID))
	}
	if len(left) > 0 {
		return fmt.Errorf("lab %s left behind: %s", st.ID, strings.Join(left, ", "))
	}
	return nil
}

// AssertClean checks that nothing of any lab this process built remains
// (namespaces, recorded processes, state directories), and that no lab
// namespace or host interface with the lab prefix exists without a live
// owner. Labs of other live processes (a concurrently running test
// package) are not counted as leftovers.
func AssertClean() error {
	registryMu.Lock()
	labs := append([]labState(nil), allLabs...)
	live := len(liveLabs)
	registryMu.Unlock()
	var errs []error
	if live > 0 {
		errs = append(errs, fmt.Errorf("%d lab(s) still open", live))
	}
	for _, st := range labs {
		if err := checkGone(st); err != nil {
			errs = append(errs, err)
		}
	}
	for _, ns := range orphans(Prefix) {
		errs = append(errs, fmt.Errorf("orphan namespace %s", ns))
	}
	out, err := run(context.Background(), "", "ip", "-o", "link", "show")
	if err == nil {
		for _, line := range strings.Split(out, "\n") {
			if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(strings.TrimSuffix(f[1], ":"), Prefix) {
				errs = append(errs, fmt.Errorf("host interface %s", f[1]))
			}
		}
	}
	return errors.Join(errs...)
}

// orphans lists namespaces starting with prefix whose lab has no live
// owner.
func orphans(prefix string) []string {
	var out []string
	ents, _ := os.ReadDir("/run/netns")
	for _, e := range ents {
		name := e.Name()
		if !strings.HasPrefix(name, prefix) {
			continue
		}
		id, _, _ := strings.Cut(strings.TrimPrefix(name, prefix), "-")
		st, err := readState(filepath.Join(StateRoot, id))
		if err != nil || !st.Owner.alive() {
			out = append(out, name)
		}
	}
	return out
}

// Run executes a command inside the node's namespace and returns its
// combined output; the error includes that output.
func (n *Node) Run(ctx context.Context, argv ...string) (string, error) {
	return run(ctx, n.NS, argv...)
}

// Start launches a long-running command in the node's namespace; the lab
// stops it on Close.
func (n *Node) Start(name string, argv ...string) (*Process, error) {
	return n.Lab.start(n.NS, n.Role+"-"+name, nil, argv...)
}

func (l *Lab) dumpLogs(t testing.TB) {
	l.mu.Lock()
	cs := append([]*Charon(nil), l.charons...)
	l.mu.Unlock()
	for _, c := range cs {
		t.Logf("charon %s log (relevant lines and tail):\n%s", c.Name, strings.Join(c.LogExcerpt(), "\n"))
	}
	if dst, err := l.keep(); err != nil {
		t.Logf("keeping lab files: %v", err)
	} else {
		t.Logf("lab files (logs, configs, captures, process output) kept in %s", dst)
	}
}

// keep copies the lab directory (charon logs, configurations, captures,
// process output) out of StateRoot before Close removes it, so a failed
// run can be inspected or archived by CI. Sockets are skipped.
func (l *Lab) keep() (string, error) {
	dst := filepath.Join(os.TempDir(), "ipsecgw-lab-failed-"+l.ID)
	err := filepath.WalkDir(l.Dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(l.Dir, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o700)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o600)
	})
	return dst, err
}

// buildSwitch makes the SecondPeer underlay: GW3 and Host3, and a switch
// namespace whose bridge joins the underlay interfaces of GW1, GW2 and
// GW3 (addresses .1, .2, .3 of 198.51.100.0/24).
func (l *Lab) buildSwitch(ctx context.Context) error {
	var err error
	if l.GW3, err = l.addNode(ctx, "gw3", true); err != nil {
		return err
	}
	if l.Host3, err = l.addNode(ctx, "host3", false); err != nil {
		return err
	}
	if l.Switch, err = l.addNode(ctx, "sw", false); err != nil {
		return err
	}
	l.GW3.Addr, l.GW3.PublicAddr = GW3Public, GW3Public
	if _, err := run(ctx, "", "ip", "-n", l.Switch.NS, "link", "add", "br0", "type", "bridge"); err != nil {
		return err
	}
	if _, err := run(ctx, "", "ip", "-n", l.Switch.NS, "link", "set", "br0", "up"); err != nil {
		return err
	}
	for i, gw := range []*Node{l.GW1, l.GW2, l.GW3} {
		port := fmt.Sprintf("p%d", i+1)
		steps := [][]string{
			{"ip", "-n", gw.NS, "link", "add", IfUnderlay, "type", "veth", "peer", "name", port, "netns", l.Switch.NS},
			{"ip", "-n", gw.NS, "addr", "add", gw.Addr.String() + "/24", "dev", IfUnderlay},
			{"ip", "-n", gw.NS, "link", "set", IfUnderlay, "up"},
			{"ip", "-n", l.Switch.NS, "link", "set", port, "master", "br0"},
			{"ip", "-n", l.Switch.NS, "link", "set", port, "up"},
		}
		for _, s := range steps {
			if _, err := run(ctx, "", s...); err != nil {
				return err
			}
		}
	}
	return nil
}
