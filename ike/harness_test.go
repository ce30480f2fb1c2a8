package ike

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
	"github.com/ipsecgw/ipsecgw/ike/shared"
)

// fakeClock is a manual clock: timers fire only when Advance passes them.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c       *fakeClock
	at      time.Time
	f       func()
	stopped bool
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	was := !t.stopped
	t.stopped = true
	t.c.timers = slices.DeleteFunc(t.c.timers, func(x *fakeTimer) bool { return x == t })
	return was
}

// advance moves time forward by d, firing due timers in order; settle is
// called after each so that the work a timer triggers completes first.
func (c *fakeClock) advance(d time.Duration, settle func()) {
	c.mu.Lock()
	end := c.now.Add(d)
	c.mu.Unlock()
	for {
		c.mu.Lock()
		sort.SliceStable(c.timers, func(i, j int) bool { return c.timers[i].at.Before(c.timers[j].at) })
		if len(c.timers) == 0 || c.timers[0].at.After(end) {
			c.now = end
			c.mu.Unlock()
			return
		}
		t := c.timers[0]
		c.timers = c.timers[1:]
		t.stopped = true
		c.now = t.at
		c.mu.Unlock()
		t.f()
		settle()
	}
}

// fakeInstaller records what a Manager installs.
type fakeInstaller struct {
	mu      sync.Mutex
	next    uint32
	sas     map[uint32]ChildSA // by InSPI
	removed []uint32
	traps   map[string]bool
	events  chan struct{} // if set, signalled after each Install and Remove
	// With clock set, how long each removed SA was installed (by InSPI):
	// tells a rekeyed SA from one that ran into its hard lifetime.
	clock *fakeClock
	since map[uint32]time.Time
	lived map[uint32]time.Duration
}

func newFakeInstaller(base uint32) *fakeInstaller {
	return &fakeInstaller{next: base, sas: map[uint32]ChildSA{}, traps: map[string]bool{}}
}

func (f *fakeInstaller) AllocateSPI() (uint32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	return f.next, nil
}

func (f *fakeInstaller) Install(sa ChildSA) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, dup := f.sas[sa.InSPI]; dup {
		return fmt.Errorf("SPI %08x installed twice", sa.InSPI)
	}
	f.sas[sa.InSPI] = sa
	if f.clock != nil {
		f.since[sa.InSPI] = f.clock.Now()
	}
	if f.events != nil {
		f.events <- struct{}{}
	}
	return nil
}

func (f *fakeInstaller) Remove(conn string, in, out uint32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	sa, ok := f.sas[in]
	if !ok || sa.OutSPI != out || sa.Conn != conn {
		return fmt.Errorf("no SA %s %08x/%08x", conn, in, out)
	}
	delete(f.sas, in)
	f.removed = append(f.removed, in)
	if f.clock != nil {
		f.lived[in] = f.clock.Now().Sub(f.since[in])
	}
	if f.events != nil {
		f.events <- struct{}{}
	}
	return nil
}

// UpdateRemote records the peer's new endpoint in the SA's ChildSA, as
// the daemon moves the SAD entries.
func (f *fakeInstaller) UpdateRemote(conn string, in, out uint32, remote netip.AddrPort) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	sa, ok := f.sas[in]
	if !ok || sa.OutSPI != out || sa.Conn != conn {
		return fmt.Errorf("no SA %s %08x/%08x", conn, in, out)
	}
	sa.Remote = remote
	f.sas[in] = sa
	return nil
}

func (f *fakeInstaller) InstallTrap(c config.Conn) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.traps[c.Name] = true
	return nil
}

func (f *fakeInstaller) RemoveTrap(name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.traps, name)
	return nil
}

// SwitchOutbound accepts the switch of any installed CHILD SA (the
// fake keeps no outbound state; rekeycollision_test's dataplane does).
func (f *fakeInstaller) SwitchOutbound(conn string, in uint32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if sa, ok := f.sas[in]; !ok || sa.Conn != conn {
		return fmt.Errorf("no SA %s %08x to switch to", conn, in)
	}
	return nil
}

func (f *fakeInstaller) all() []ChildSA {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ChildSA
	for _, sa := range f.sas {
		out = append(out, sa)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].InSPI < out[j].InSPI })
	return out
}

// packet is one datagram seen on the fake network.
type packet struct {
	from, to netip.AddrPort
	data     []byte
}

// fakeNet delivers datagrams between Managers by address.
type fakeNet struct {
	mu    sync.Mutex
	nodes map[netip.Addr]*Manager
	nat   []natRule
	log   []packet
	drop  func(p packet) bool
	// mangle, if set, may change a datagram in flight (its private copy).
	mangle func(p *packet)
	hold   bool     // queue datagrams instead of delivering them
	held   []packet // queued while hold is set
	// inline: datagrams are handed over with ProcessPacket, so that the
	// receiver's SA processes them in the sender's goroutine when idle
	// (as the daemon's receive loops do), instead of HandlePacket.
	inline bool
}

// deliver hands p to dst the way the network is set to.
func (n *fakeNet) deliver(dst *Manager, p packet) {
	if n.inline {
		dst.ProcessPacket(p.to, p.from, p.data)
		return
	}
	dst.HandlePacket(p.to, p.from, p.data)
}

// release delivers the held datagrams in order and stops holding.
func (n *fakeNet) release() {
	n.mu.Lock()
	held := n.held
	n.held, n.hold = nil, false
	n.mu.Unlock()
	for _, p := range held {
		if dst := n.nodes[p.to.Addr()]; dst != nil {
			n.deliver(dst, p)
		}
	}
}

// natRule makes the fake network translate a private address to a public
// one, with ports shifted by 10000 (a NAPT that changes ports).
// shift, when set, replaces 10000 (a NAT that changed its mapping).
type natRule struct {
	private, public netip.Addr
	shift           uint16
}

func (n *fakeNet) send(from, to netip.AddrPort, pkt []byte) error {
	n.mu.Lock()
	for _, r := range n.nat {
		shift := r.shift
		if shift == 0 {
			shift = 10000
		}
		if from.Addr() == r.private {
			from = netip.AddrPortFrom(r.public, from.Port()+shift)
		}
		if to.Addr() == r.public {
			to = netip.AddrPortFrom(r.private, to.Port()-shift)
		}
	}
	n.mu.Unlock()
	p := packet{from, to, bytes.Clone(pkt)}
	n.mu.Lock()
	if n.mangle != nil {
		n.mangle(&p)
	}
	n.log = append(n.log, p)
	drop := n.drop != nil && n.drop(p)
	dst := n.nodes[to.Addr()]
	if n.hold && !drop {
		n.held = append(n.held, p)
		drop = true
	}
	n.mu.Unlock()
	if drop || dst == nil {
		return nil
	}
	n.deliver(dst, p)
	return nil
}

func (n *fakeNet) setDrop(f func(p packet) bool) {
	n.mu.Lock()
	n.drop = f
	n.mu.Unlock()
}

func (n *fakeNet) packets() []packet {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.log)
}

// node is one gateway under test.
type node struct {
	m    *Manager
	inst *fakeInstaller
	ref  *installerRef // what the Manager installs through (forwards to inst)
	addr netip.Addr
}

// loadConfig writes ipsec.conf and ipsec.secrets to a temporary directory
// and loads them.
func loadConfig(t testing.TB, conf, secrets string, local netip.Addr) *config.Config {
	t.Helper()
	return loadConfigIn(t, t.TempDir(), conf, secrets, local)
}

func loadConfigIn(t testing.TB, dir, conf, secrets string, local netip.Addr) *config.Config {
	t.Helper()
	cp, sp := filepath.Join(dir, "ipsec.conf"), filepath.Join(dir, "ipsec.secrets")
	if err := os.WriteFile(cp, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sp, []byte(secrets), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, diags, err := config.Load(config.Options{ConfPath: cp, SecretsPath: sp, LocalAddrs: []netip.Addr{local}})
	if err != nil {
		t.Fatalf("config: %v\n%v", err, diags)
	}
	return cfg
}

var (
	addrA = netip.MustParseAddr("198.51.100.1")
	addrB = netip.MustParseAddr("203.0.113.1")
)

type testOpts struct {
	cookieThreshold int
	tries           int
	encapA, encapB  Encapsulation
	fragmentSize    int
	logs            io.Writer // also receives every debug log line of both nodes
	// dirA, dirB: where A's and B's ipsec.conf go (beside an ipsec.d the
	// test filled); empty = a fresh temporary directory.
	dirA, dirB string
	// inline: the nodes receive with ProcessPacket (fakeNet.inline).
	inline bool
}

// wireOffer renders configured IKE proposals as an IKE_SA_INIT initiator
// offers them.
func wireOffer(ps []config.Proposal) []message.Proposal {
	var out []message.Proposal
	for _, p := range shared.Offer(ps, shared.ProtoIKE, nil, false) {
		wp := message.Proposal{Number: p.Number, Protocol: message.ProtoIKE}
		for _, t := range p.Transforms {
			wp.Transforms = append(wp.Transforms, message.Transform{Transform: t})
		}
		out = append(out, wp)
	}
	return out
}

// testNonce is a fresh 32-byte nonce.
func testNonce() []byte {
	n := make([]byte, 32)
	rand.Read(n)
	return n
}

// natHashOf is the NAT_DETECTION_*_IP data of an endpoint before the
// responder's SPI is known.
func natHashOf(spiI uint64, ap netip.AddrPort) []byte {
	h := message.NATDetectionHash(spiI, 0, ap)
	return h[:]
}

// installerRef is the installer a test Manager gets: it forwards to a
// node's fakeInstaller, or to whatever a test puts in front of it later
// (withDataplanes).
type installerRef struct {
	mu  sync.Mutex
	cur ChildInstaller
}

func (r *installerRef) get() ChildInstaller {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cur
}

func (r *installerRef) set(i ChildInstaller) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cur = i
}

func (r *installerRef) AllocateSPI() (uint32, error) { return r.get().AllocateSPI() }
func (r *installerRef) Install(sa ChildSA) error     { return r.get().Install(sa) }
func (r *installerRef) Remove(conn string, in, out uint32) error {
	return r.get().Remove(conn, in, out)
}
func (r *installerRef) UpdateRemote(conn string, in, out uint32, remote netip.AddrPort) error {
	return r.get().UpdateRemote(conn, in, out, remote)
}
func (r *installerRef) InstallTrap(c config.Conn) error { return r.get().InstallTrap(c) }
func (r *installerRef) RemoveTrap(conn string) error    { return r.get().RemoveTrap(conn) }
func (r *installerRef) SwitchOutbound(conn string, in uint32) error {
	return r.get().SwitchOutbound(conn, in)
}

// pair builds two gateways A (198.51.100.1) and B (203.0.113.1) with the
// given configurations on one fake network and clock.
func pair(t testing.TB, confA, secA, confB, secB string, o testOpts) (a, b *node, net *fakeNet, clk *fakeClock) {
	t.Helper()
	net = &fakeNet{nodes: map[netip.Addr]*Manager{}, inline: o.inline}
	clk = newFakeClock()
	var w io.Writer = testWriter{t}
	if o.logs != nil {
		w = io.MultiWriter(w, o.logs)
	}
	logger := slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	encap := map[string]Encapsulation{"A": o.encapA, "B": o.encapB}
	dirs := map[string]string{"A": o.dirA, "B": o.dirB}
	mk := func(addr netip.Addr, conf, sec string, base uint32, name string) *node {
		dir := dirs[name]
		if dir == "" {
			dir = t.TempDir()
		}
		cfg := loadConfigIn(t, dir, conf, sec, addr)
		inst := newFakeInstaller(base)
		inst.clock, inst.since, inst.lived = clk, map[uint32]time.Time{}, map[uint32]time.Duration{}
		tries := o.tries
		if tries == 0 {
			tries = 5
		}
		ref := &installerRef{cur: inst}
		m, err := NewManager(Options{
			Config: cfg, Send: net.send, Installer: ref, Clock: clk,
			FragmentSize:    o.fragmentSize,
			Logger:          logger.With("node", name),
			Retransmit:      Retransmit{Timeout: 4 * time.Second, Base: 1.8, Tries: tries},
			LocalAddrs:      []netip.Addr{addr},
			CookieThreshold: o.cookieThreshold,
			Encapsulation:   encap[name],
		})
		if err != nil {
			t.Fatal(err)
		}
		net.nodes[addr] = m
		return &node{m: m, inst: inst, ref: ref, addr: addr}
	}
	a = mk(addrA, confA, secA, 0xa0000000, "A")
	b = mk(addrB, confB, secB, 0xb0000000, "B")
	// On a failed test, stop every loop so that synctest does not report
	// a deadlock on top of the failure (Close is idempotent).
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		for _, m := range net.nodes {
			m.Close(ctx)
		}
	})
	lastMk = mk
	return a, b, net, clk
}

// lastMk adds another node to the network of the last pair (tests with a
// third gateway).
var lastMk func(addr netip.Addr, conf, sec string, base uint32, name string) *node

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	if testing.Verbose() {
		w.t.Log(string(bytes.TrimRight(p, "\n")))
	}
	return len(p), nil
}

func closeAll(t testing.TB, settle func(), nodes ...*node) {
	t.Helper()
	for _, n := range nodes {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			n.m.Close(ctx)
			close(done)
		}()
		settle()
		cancel()
		<-done
	}
}

func status(n *node, conn string) ConnStatus {
	for _, s := range n.m.Status() {
		if s.Name == conn {
			return s
		}
	}
	return ConnStatus{}
}

// confPair returns matching ipsec.conf texts for A (left) and B, with
// extra lines added to both conns.
func confPair(name, extraA, extraB string) (string, string) {
	a := fmt.Sprintf(`conn %s
	keyexchange=ikev2
	authby=secret
	left=198.51.100.1
	leftsubnet=10.1.0.0/24
	right=203.0.113.1
	rightsubnet=10.2.0.0/24
	auto=add
%s
`, name, indent(extraA))
	b := fmt.Sprintf(`conn %s
	keyexchange=ikev2
	authby=secret
	left=203.0.113.1
	leftsubnet=10.2.0.0/24
	right=198.51.100.1
	rightsubnet=10.1.0.0/24
	auto=add
%s
`, name, indent(extraB))
	return a, b
}

const secrets = "198.51.100.1 203.0.113.1 : PSK \"correct horse battery staple\"\n"

// checkMatching asserts that the two installers hold mirror-image SAs:
// A's outbound is B's inbound with the same keys, and the other way round.
func checkMatching(t testing.TB, a, b *node) {
	t.Helper()
	as, bs := a.inst.all(), b.inst.all()
	if len(as) == 0 || len(as) != len(bs) {
		t.Fatalf("A installed %d CHILD SAs, B %d", len(as), len(bs))
	}
	for _, x := range as {
		var y *ChildSA
		for i := range bs {
			if bs[i].InSPI == x.OutSPI {
				y = &bs[i]
			}
		}
		if y == nil {
			t.Fatalf("A's outbound SPI %08x not installed inbound at B", x.OutSPI)
		}
		if y.OutSPI != x.InSPI {
			t.Errorf("SPI pairs differ: A in/out %08x/%08x, B in/out %08x/%08x", x.InSPI, x.OutSPI, y.InSPI, y.OutSPI)
		}
		if !bytes.Equal(x.OutEncrKey, y.InEncrKey) || !bytes.Equal(x.OutIntegKey, y.InIntegKey) ||
			!bytes.Equal(x.InEncrKey, y.OutEncrKey) || !bytes.Equal(x.InIntegKey, y.OutIntegKey) {
			t.Errorf("keys of %s do not mirror", x.Conn)
		}
		if bytes.Equal(x.InEncrKey, x.OutEncrKey) {
			t.Errorf("inbound and outbound keys are equal")
		}
		if x.Encr != y.Encr || x.Integ != y.Integ || x.ESN != y.ESN {
			t.Errorf("algorithms differ: %v/%v vs %v/%v", x.Encr, x.Integ, y.Encr, y.Integ)
		}
		if x.Initiator == y.Initiator {
			t.Errorf("both sides claim the same role")
		}
		if x.Local != y.Remote || x.Remote != y.Local {
			t.Errorf("outer addresses do not mirror: %v→%v vs %v→%v", x.Local, x.Remote, y.Local, y.Remote)
		}
		if fmt.Sprint(x.LocalTS) != fmt.Sprint(y.RemoteTS) || fmt.Sprint(x.RemoteTS) != fmt.Sprint(y.LocalTS) {
			t.Errorf("selectors do not mirror: %v↔%v vs %v↔%v", x.LocalTS, x.RemoteTS, y.LocalTS, y.RemoteTS)
		}
	}
}

func netip4500(a netip.Addr) netip.AddrPort { return netip.AddrPortFrom(a, 500) }

func indent(s string) string {
	if s == "" {
		return ""
	}
	var out []string
	for _, l := range strings.Split(s, "\n") {
		out = append(out, "\t"+strings.TrimSpace(l))
	}
	return strings.Join(out, "\n")
}

// discardLogger drops everything (fuzzing would drown in logs).
var discardLogger = slog.New(slog.DiscardHandler)

// notifiesOf parses the notify payloads among ps; malformed ones are
// skipped.
func notifiesOf(ps []message.RawPayload) []message.Notify {
	var out []message.Notify
	for _, p := range ps {
		if p.Type != message.PayloadN {
			continue
		}
		if n, _, err := message.ParseNotify(p.Body); err == nil {
			out = append(out, n)
		}
	}
	return out
}
