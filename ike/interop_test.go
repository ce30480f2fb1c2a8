package ike_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	. "github.com/ipsecgw/ipsecgw/ike"
	"github.com/ipsecgw/ipsecgw/internal/lab"
)

// nsUDP is a pair of IKE sockets (500 and 4500) opened inside a lab
// namespace: a socket keeps the namespace it was created in.
type nsUDP struct {
	addr    netip.Addr
	s500    *net.UDPConn
	s4500   *net.UDPConn
	wg      sync.WaitGroup
	handler func(local, remote netip.AddrPort, pkt []byte)
	mu      sync.Mutex
}

func listenInNS(t *testing.T, node *lab.Node, addr netip.Addr) *nsUDP {
	t.Helper()
	a, err := node.ListenUDP(netip.AddrPortFrom(addr, 500))
	if err != nil {
		t.Fatalf("IKE socket in %s: %v", node, err)
	}
	b, err := node.ListenUDP(netip.AddrPortFrom(addr, 4500))
	if err != nil {
		a.Close()
		t.Fatalf("NAT-T socket in %s: %v", node, err)
	}
	u := &nsUDP{addr: addr, s500: a, s4500: b}
	for _, c := range []*net.UDPConn{a, b} {
		u.wg.Add(1)
		go u.receive(c)
	}
	t.Cleanup(func() { a.Close(); b.Close(); u.wg.Wait() })
	return u
}

func (u *nsUDP) receive(c *net.UDPConn) {
	defer u.wg.Done()
	local := c.LocalAddr().(*net.UDPAddr).AddrPort()
	local = netip.AddrPortFrom(u.addr, local.Port())
	buf := make([]byte, 65536)
	for {
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		pkt := buf[:n]
		if local.Port() == 4500 {
			// RFC 3948: IKE carries a four-zero-byte non-ESP marker; ESP
			// (non-zero SPI) is the dataplane's, not ours.
			if n < 4 || pkt[0]|pkt[1]|pkt[2]|pkt[3] != 0 {
				continue
			}
			pkt = pkt[4:]
		}
		u.mu.Lock()
		h := u.handler
		u.mu.Unlock()
		if h != nil {
			h(local, netip.AddrPortFrom(from.Addr().Unmap(), from.Port()), pkt)
		}
	}
}

func (u *nsUDP) send(local, remote netip.AddrPort, pkt []byte) error {
	c := u.s500
	if local.Port() == 4500 {
		c = u.s4500
		pkt = append([]byte{0, 0, 0, 0}, pkt...)
	}
	_, err := c.WriteToUDPAddrPort(pkt, remote)
	return err
}

// charonAlive fails the test at once when charon has exited, with how it
// ended (it was seen to die at startup when other labs ran alongside).
var charonAlive func(t *testing.T)

func watchCharon(ch *lab.Charon) {
	charonAlive = func(t *testing.T) {
		t.Helper()
		select {
		case <-ch.Proc.Done():
			t.Fatalf("charon exited: %v", ch.Proc.ExitErr())
		default:
		}
	}
}

func waitState(t *testing.T, m *Manager, conn string, want State) ConnStatus {
	t.Helper()
	var s ConnStatus
	for i := 0; i < 300; i++ {
		if charonAlive != nil {
			charonAlive(t)
		}
		for _, x := range m.Status() {
			if x.Name == conn {
				s = x
			}
		}
		if s.State == want {
			return s
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: state %s (%s), want %s", conn, s.State, s.Reason, want)
	return s
}

// TestInteropStrongSwan negotiates against strongSwan 5.9 (charon with
// kernel-libipsec, which fakes NAT detection) in a namespace lab: both
// directions, several proposal sets, DELETE both ways, and a wrong PSK.
// It checks the SPIs and algorithms charon reports against ours.
func TestInteropStrongSwan(t *testing.T) {
	if testing.Short() {
		t.Skip("interop lab skipped in -short mode")
	}
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const psk = "interop secret 1234"
	cases := []struct{ ike, esp, ours, oursESP string }{
		{"aes128-sha256-modp2048", "aes128gcm16", "aes128-sha256-modp2048!", "aes128gcm16!"},
		{"aes256-sha512-ecp384", "aes256gcm16-ecp384", "aes256-sha512-ecp384!", "aes256gcm16-ecp384!"},
		{"chacha20poly1305-prfsha256-x25519", "chacha20poly1305", "chacha20poly1305-prfsha256-x25519!", "chacha20poly1305!"},
		{"aes128-sha1-modp1024", "aes128-sha1", "aes128-sha1-modp1024!", "aes128-sha1!"},
	}
	ch, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf(lab.SiteToSite(l.GW2, l.GW1, 2, psk, cases[0].ike, cases[0].esp))})
	if err != nil {
		t.Fatal(err)
	}
	watchCharon(ch)
	u := listenInNS(t, l.GW1, l.GW1.Addr)
	dir := t.TempDir()
	newManager := func(ike, esp, secret string) (*Manager, *recInstaller) {
		conf := fmt.Sprintf("conn s2s\n\tkeyexchange=ikev2\n\tauthby=secret\n\tleft=%s\n\tleftid=gw1\n\tleftsubnet=%s\n\tright=%s\n\trightid=gw2\n\trightsubnet=%s\n\tike=%s\n\tesp=%s\n\tauto=add\n",
			l.GW1.Addr, l.GW1.LAN, l.GW2.PublicAddr, l.GW2.LAN, ike, esp)
		os.WriteFile(filepath.Join(dir, "ipsec.conf"), []byte(conf), 0o600)
		os.WriteFile(filepath.Join(dir, "ipsec.secrets"), []byte(fmt.Sprintf("gw1 gw2 : PSK %q\n", secret)), 0o600)
		cfg, diags, err := config.Load(config.Options{ConfPath: filepath.Join(dir, "ipsec.conf"), SecretsPath: filepath.Join(dir, "ipsec.secrets"), LocalAddrs: []netip.Addr{l.GW1.Addr}})
		if err != nil {
			t.Fatalf("%v %v", err, diags)
		}
		inst := newRecInstaller(0xc0000000)
		m, err := NewManager(Options{Config: cfg, Send: u.send, Installer: inst, LocalAddrs: []netip.Addr{l.GW1.Addr},
			Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		u.mu.Lock()
		u.handler = m.HandlePacket
		u.mu.Unlock()
		return m, inst
	}
	closeM := func(m *Manager) {
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		m.Close(c)
	}
	checkSPIs := func(t *testing.T, inst *recInstaller, sa lab.IKESA) {
		t.Helper()
		got := inst.all()
		if len(got) != 1 || len(sa.Children) != 1 {
			t.Fatalf("CHILD SAs: ours %d, charon %d", len(got), len(sa.Children))
		}
		c := sa.Children[0]
		if fmt.Sprintf("%08x", got[0].InSPI) != c.SPIOut || fmt.Sprintf("%08x", got[0].OutSPI) != c.SPIIn {
			t.Errorf("SPIs: ours in/out %08x/%08x, charon in/out %s/%s", got[0].InSPI, got[0].OutSPI, c.SPIIn, c.SPIOut)
		}
		if !got[0].Encap || !c.Encap {
			t.Errorf("kernel-libipsec fakes NAT: both sides must encapsulate (ours %v, charon %v)", got[0].Encap, c.Encap)
		}
		t.Logf("charon: %s/%s/%s/%s, child %s/%s %v ↔ %v", sa.EncrAlg, sa.IntegAlg, sa.PRFAlg, sa.DHGroup, c.EncrAlg, c.IntegAlg, c.LocalTS, c.RemoteTS)
	}
	for i, tc := range cases {
		t.Run(tc.ike, func(t *testing.T) {
			if i > 0 {
				if err := ch.Reconfigure(ctx, lab.SwanctlConf(lab.SiteToSite(l.GW2, l.GW1, 2, psk, tc.ike, tc.esp))); err != nil {
					t.Fatal(err)
				}
			}
			m, inst := newManager(tc.ours, tc.oursESP, psk)
			defer closeM(m)
			// We initiate.
			if err := m.Up("s2s"); err != nil {
				t.Fatal(err)
			}
			waitState(t, m, "s2s", StateEstablished)
			sa, err := ch.WaitEstablished(ctx, "s2s", "net")
			if err != nil {
				t.Fatal(err)
			}
			checkSPIs(t, inst, sa)
			if err := m.Down("s2s"); err != nil {
				t.Fatal(err)
			}
			if err := ch.WaitDown(ctx, "s2s"); err != nil {
				t.Fatal(err)
			}
			waitState(t, m, "s2s", StateDown)
			// strongSwan initiates, then deletes.
			if err := ch.Initiate(ctx, "s2s", "net"); err != nil {
				t.Fatal(err)
			}
			waitState(t, m, "s2s", StateEstablished)
			sa, err = ch.WaitEstablished(ctx, "s2s", "net")
			if err != nil {
				t.Fatal(err)
			}
			checkSPIs(t, inst, sa)
			if err := ch.Terminate(ctx, "s2s"); err != nil {
				t.Fatal(err)
			}
			waitState(t, m, "s2s", StateDown)
			if n := len(inst.all()); n != 0 {
				t.Errorf("%d CHILD SAs left after charon's delete", n)
			}
		})
	}
	t.Run("wrong PSK", func(t *testing.T) {
		if err := ch.Reconfigure(ctx, lab.SwanctlConf(lab.SiteToSite(l.GW2, l.GW1, 2, psk, cases[0].ike, cases[0].esp))); err != nil {
			t.Fatal(err)
		}
		m, inst := newManager(cases[0].ours, cases[0].oursESP, "not the same secret")
		defer closeM(m)
		m.Up("s2s")
		s := waitState(t, m, "s2s", StatePhase1Failed)
		if !strings.Contains(s.Reason, "AUTHENTICATION_FAILED") {
			t.Errorf("reason: %s", s.Reason)
		}
		if ch.Initiate(ctx, "s2s", "net") == nil {
			t.Errorf("charon established with a wrong PSK")
		}
		s = waitState(t, m, "s2s", StatePhase1Failed)
		if !strings.Contains(s.Reason, "PSK differs") {
			t.Errorf("reason when charon initiates: %s", s.Reason)
		}
		if len(inst.all()) != 0 {
			t.Errorf("CHILD SA installed with a wrong PSK")
		}
	})
}

// TestInteropStrongSwanRekey lets strongSwan rekey its CHILD SA (with PFS)
// and the IKE SA while running DPD against us: we answer as responder, the
// CHILD SA moves to the new IKE SA, and charon's view of the SPIs matches
// ours afterwards.
func TestInteropStrongSwanRekey(t *testing.T) {
	if testing.Short() {
		t.Skip("interop lab skipped in -short mode")
	}
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const psk = "interop secret 1234"
	c := lab.SiteToSite(l.GW2, l.GW1, 2, psk, "aes128gcm16-prfsha256-ecp256", "aes128gcm16-ecp256")
	c.ConnExtra = "rekey_time = 9s\n    over_time = 60s\n    rand_time = 0s\n    dpd_delay = 2s"
	c.ChildExtra = "rekey_time = 5s\n        life_time = 60s\n        rand_time = 0s"
	ch, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf(c)})
	if err != nil {
		t.Fatal(err)
	}
	watchCharon(ch)
	u := listenInNS(t, l.GW1, l.GW1.Addr)
	dir := t.TempDir()
	conf := fmt.Sprintf("conn s2s\n\tkeyexchange=ikev2\n\tauthby=secret\n\tleft=%s\n\tleftid=gw1\n\tleftsubnet=%s\n\tright=%s\n\trightid=gw2\n\trightsubnet=%s\n\tike=aes128gcm16-prfsha256-ecp256!\n\tesp=aes128gcm16-ecp256!\n\tauto=add\n",
		l.GW1.Addr, l.GW1.LAN, l.GW2.PublicAddr, l.GW2.LAN)
	os.WriteFile(filepath.Join(dir, "ipsec.conf"), []byte(conf), 0o600)
	os.WriteFile(filepath.Join(dir, "ipsec.secrets"), []byte(fmt.Sprintf("gw1 gw2 : PSK %q\n", psk)), 0o600)
	cfg, diags, err := config.Load(config.Options{ConfPath: filepath.Join(dir, "ipsec.conf"), SecretsPath: filepath.Join(dir, "ipsec.secrets"), LocalAddrs: []netip.Addr{l.GW1.Addr}})
	if err != nil {
		t.Fatalf("%v %v", err, diags)
	}
	inst := newRecInstaller(0xc0000000)
	m, err := NewManager(Options{Config: cfg, Send: u.send, Installer: inst, LocalAddrs: []netip.Addr{l.GW1.Addr}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	u.mu.Lock()
	u.handler = m.HandlePacket
	u.mu.Unlock()
	defer func() {
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		m.Close(c)
	}()
	if err := ch.Initiate(ctx, "s2s", "net"); err != nil {
		t.Fatal(err)
	}
	first := waitState(t, m, "s2s", StateEstablished)
	firstChild := inst.all()[0]
	// CHILD rekeys at 5 s and 10 s, the IKE rekey at 9 s; look at 12.5 s,
	// between events.
	time.Sleep(12500 * time.Millisecond)
	s := waitState(t, m, "s2s", StateEstablished)
	var sa lab.IKESA
	sas, err := ch.ListSAs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range sas {
		if x.Name == "s2s" && x.State == "ESTABLISHED" {
			sa = x
		}
	}
	if sa.State == "" || len(sa.Children) == 0 {
		t.Fatalf("charon has no established IKE SA with a CHILD SA: %+v", sas)
	}
	if s.SPIi == first.SPIi {
		t.Errorf("IKE SA not rekeyed (SPIs %x/%x)", s.SPIi, s.SPIr)
	}
	if fmt.Sprintf("%016x", s.SPIi) != sa.InitiatorSPI || fmt.Sprintf("%016x", s.SPIr) != sa.ResponderSPI {
		t.Errorf("IKE SPIs: ours %016x/%016x, charon %s/%s", s.SPIi, s.SPIr, sa.InitiatorSPI, sa.ResponderSPI)
	}
	got := inst.all()
	if len(got) == 0 || got[0].InSPI == firstChild.InSPI {
		t.Fatalf("CHILD SA not rekeyed: %d installed", len(got))
	}
	installed := 0
	for _, c := range sa.Children {
		if c.State == "INSTALLED" {
			installed++
			found := false
			for _, g := range got {
				if fmt.Sprintf("%08x", g.InSPI) == c.SPIOut && fmt.Sprintf("%08x", g.OutSPI) == c.SPIIn {
					found = true
				}
			}
			if !found {
				t.Errorf("charon's CHILD SA %s/%s is not installed here", c.SPIIn, c.SPIOut)
			}
		}
	}
	if installed != len(got) {
		t.Errorf("charon has %d CHILD SAs installed, we have %d", installed, len(got))
	}
	t.Logf("after rekeys: IKE %x/%x, %d CHILD SA(s), charon child DH %s", s.SPIi, s.SPIr, len(got), sa.Children[0].DHGroup)
	if os.Getenv("IKE_INTEROP_LOG") != "" {
		for _, line := range ch.LogLines() {
			if strings.Contains(line, "[IKE]") || strings.Contains(line, "[CHD]") || strings.Contains(line, "[ENC]") {
				t.Log(line)
			}
		}
	}
}

// recInstaller records CHILD SAs (the interop tests live in package
// ike_test: internal/lab imports the daemon, which imports ike).
type recInstaller struct {
	mu   sync.Mutex
	next uint32
	sas  map[uint32]ChildSA
}

func newRecInstaller(base uint32) *recInstaller {
	return &recInstaller{next: base, sas: map[uint32]ChildSA{}}
}

func (f *recInstaller) AllocateSPI() (uint32, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.next++
	return f.next, nil
}

func (f *recInstaller) Install(sa ChildSA) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sas[sa.InSPI] = sa
	return nil
}

func (f *recInstaller) Remove(conn string, in, out uint32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.sas[in]; !ok {
		return fmt.Errorf("no SA %08x", in)
	}
	delete(f.sas, in)
	return nil
}

func (f *recInstaller) UpdateRemote(conn string, in, out uint32, remote netip.AddrPort) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	sa, ok := f.sas[in]
	if !ok {
		return fmt.Errorf("no SA %08x", in)
	}
	sa.Remote = remote
	f.sas[in] = sa
	return nil
}

func (f *recInstaller) InstallTrap(config.Conn) error       { return nil }
func (f *recInstaller) RemoveTrap(string) error             { return nil }
func (f *recInstaller) SwitchOutbound(string, uint32) error { return nil }

func (f *recInstaller) all() []ChildSA {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ChildSA
	for _, sa := range f.sas {
		out = append(out, sa)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].InSPI < out[j].InSPI })
	return out
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	if testing.Verbose() {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// TestInteropWeDrive has ipsecgw initiate two conns that share one IKE SA
// with strongSwan, then rekey both CHILD SAs (PFS) and the IKE SA itself
// (reauth=no) on its own timers while sending DPD.
func TestInteropWeDrive(t *testing.T) {
	if testing.Short() {
		t.Skip("interop lab skipped in -short mode")
	}
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const psk = "interop secret 5678"
	swan := fmt.Sprintf(`connections {
  s2s {
    version = 2
    local_addrs = %s
    remote_addrs = %s
    proposals = aes128gcm16-prfsha256-ecp256
    local {
      auth = psk
      id = gw2
    }
    remote {
      auth = psk
      id = gw1
    }
    children {
      net {
        local_ts = 10.2.0.0/24
        remote_ts = 10.1.0.0/24
        esp_proposals = aes128gcm16-ecp256
      }
      net2 {
        local_ts = 10.2.0.0/24
        remote_ts = 10.1.1.0/24
        esp_proposals = aes128gcm16-ecp256
      }
    }
  }
}
secrets {
  ike-0 {
    id-1 = gw2
    id-2 = gw1
    secret = %q
  }
}
`, l.GW2.Addr, l.GW1.PublicAddr, psk)
	ch, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: swan})
	if err != nil {
		t.Fatal(err)
	}
	watchCharon(ch)
	u := listenInNS(t, l.GW1, l.GW1.Addr)
	dir := t.TempDir()
	conf := fmt.Sprintf(`conn %%default
	keyexchange=ikev2
	authby=secret
	left=%s
	leftid=gw1
	right=%s
	rightid=gw2
	ike=aes128gcm16-prfsha256-ecp256!
	esp=aes128gcm16-ecp256!
	reauth=no
	ikelifetime=26s
	lifetime=20s
	margintime=8s
	rekeyfuzz=0%%
	dpdaction=restart
	dpddelay=3s
	auto=add

conn net1
	leftsubnet=10.1.0.0/24
	rightsubnet=10.2.0.0/24

conn net2
	leftsubnet=10.1.1.0/24
	rightsubnet=10.2.0.0/24
`, l.GW1.Addr, l.GW2.PublicAddr)
	os.WriteFile(filepath.Join(dir, "ipsec.conf"), []byte(conf), 0o600)
	os.WriteFile(filepath.Join(dir, "ipsec.secrets"), []byte(fmt.Sprintf("gw1 gw2 : PSK %q\n", psk)), 0o600)
	cfg, diags, err := config.Load(config.Options{ConfPath: filepath.Join(dir, "ipsec.conf"), SecretsPath: filepath.Join(dir, "ipsec.secrets"), LocalAddrs: []netip.Addr{l.GW1.Addr}})
	if err != nil {
		t.Fatalf("%v %v", err, diags)
	}
	inst := newRecInstaller(0xc0000000)
	m, err := NewManager(Options{Config: cfg, Send: u.send, Installer: inst, LocalAddrs: []netip.Addr{l.GW1.Addr}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	u.mu.Lock()
	u.handler = m.HandlePacket
	u.mu.Unlock()
	defer func() {
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		m.Close(c)
	}()
	m.Up("net1")
	m.Up("net2")
	s1 := waitState(t, m, "net1", StateEstablished)
	s2 := waitState(t, m, "net2", StateEstablished)
	if s1.SPIi != s2.SPIi {
		t.Fatalf("net1 and net2 do not share the IKE SA")
	}
	first := inst.all()
	// CHILD rekeys at 12 s, IKE rekey at 18 s; look at 21 s.
	time.Sleep(21 * time.Second)
	s1 = waitState(t, m, "net1", StateEstablished)
	waitState(t, m, "net2", StateEstablished)
	sas, err := ch.ListSAs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var sa lab.IKESA
	n := 0
	for _, x := range sas {
		if x.Name == "s2s" && x.State == "ESTABLISHED" {
			sa = x
			n++
		}
	}
	if n != 1 {
		t.Fatalf("charon has %d established IKE SAs: %+v", n, sas)
	}
	if fmt.Sprintf("%016x", s1.SPIi) != sa.InitiatorSPI || fmt.Sprintf("%016x", s1.SPIr) != sa.ResponderSPI || s1.SPIi == s2.SPIi {
		t.Errorf("IKE SA: ours %016x/%016x (before %016x), charon %s/%s", s1.SPIi, s1.SPIr, s2.SPIi, sa.InitiatorSPI, sa.ResponderSPI)
	}
	got := inst.all()
	installed := 0
	for _, c := range sa.Children {
		if c.State != "INSTALLED" {
			continue
		}
		installed++
		ok := false
		for _, g := range got {
			if fmt.Sprintf("%08x", g.InSPI) == c.SPIOut && fmt.Sprintf("%08x", g.OutSPI) == c.SPIIn {
				ok = true
			}
		}
		if !ok {
			t.Errorf("charon's CHILD SA %s %s/%s not installed here", c.Name, c.SPIIn, c.SPIOut)
		}
	}
	if installed != 2 || len(got) != 2 {
		t.Errorf("CHILD SAs: charon %d installed, ours %d; want 2", installed, len(got))
	}
	for _, f := range first {
		for _, g := range got {
			if f.InSPI == g.InSPI {
				t.Errorf("CHILD SA %08x was not rekeyed", f.InSPI)
			}
		}
	}
}

// TestInteropFailures checks INVALID_KE_PAYLOAD and the failure reasons
// against strongSwan: no common IKE proposal and mismatched subnets, with
// charon initiating.
func TestInteropFailures(t *testing.T) {
	if testing.Short() {
		t.Skip("interop lab skipped in -short mode")
	}
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const psk = "interop secret 9"
	swan := func(ike, remoteTS string) string {
		c := lab.SiteToSite(l.GW2, l.GW1, 2, psk, ike, "aes128gcm16")
		if remoteTS != "" {
			c.RemoteTS = remoteTS
		}
		return lab.SwanctlConf(c)
	}
	ch, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: swan("aes128-sha256-ecp256", "")})
	if err != nil {
		t.Fatal(err)
	}
	watchCharon(ch)
	u := listenInNS(t, l.GW1, l.GW1.Addr)
	dir := t.TempDir()
	start := func(ike string) *Manager {
		conf := fmt.Sprintf("conn s2s\n\tkeyexchange=ikev2\n\tauthby=secret\n\tleft=%s\n\tleftid=gw1\n\tleftsubnet=%s\n\tright=%s\n\trightid=gw2\n\trightsubnet=%s\n\tike=%s\n\tesp=aes128gcm16!\n\tkeyingtries=1\n\tauto=add\n",
			l.GW1.Addr, l.GW1.LAN, l.GW2.PublicAddr, l.GW2.LAN, ike)
		os.WriteFile(filepath.Join(dir, "ipsec.conf"), []byte(conf), 0o600)
		os.WriteFile(filepath.Join(dir, "ipsec.secrets"), []byte(fmt.Sprintf("gw1 gw2 : PSK %q\n", psk)), 0o600)
		cfg, diags, err := config.Load(config.Options{ConfPath: filepath.Join(dir, "ipsec.conf"), SecretsPath: filepath.Join(dir, "ipsec.secrets"), LocalAddrs: []netip.Addr{l.GW1.Addr}})
		if err != nil {
			t.Fatalf("%v %v", err, diags)
		}
		m, err := NewManager(Options{Config: cfg, Send: u.send, Installer: newRecInstaller(0xc0000000), LocalAddrs: []netip.Addr{l.GW1.Addr}, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		u.mu.Lock()
		u.handler = m.HandlePacket
		u.mu.Unlock()
		t.Cleanup(func() {
			c, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			m.Close(c)
		})
		return m
	}
	t.Run("INVALID_KE_PAYLOAD", func(t *testing.T) {
		m := start("aes128-sha256-modp2048-ecp256!")
		m.Up("s2s")
		s := waitState(t, m, "s2s", StateEstablished)
		if !strings.HasSuffix(s.Algorithms, "ecp256") {
			t.Errorf("IKE algorithms %s", s.Algorithms)
		}
		m.Down("s2s")
		ch.WaitDown(ctx, "s2s")
	})
	t.Run("no common proposal", func(t *testing.T) {
		if err := ch.Reconfigure(ctx, swan("aes256-sha1-modp1024", "")); err != nil {
			t.Fatal(err)
		}
		m := start("aes128-sha256-modp3072!")
		if ch.Initiate(ctx, "s2s", "net") == nil {
			t.Fatal("charon established without a common proposal")
		}
		s := waitState(t, m, "s2s", StatePhase1Failed)
		if want := "peer proposed aes256-sha1-modp1024; we accept aes128-sha256-modp3072"; s.Reason != want {
			t.Errorf("reason %q, want %q", s.Reason, want)
		}
	})
	t.Run("subnets differ", func(t *testing.T) {
		if err := ch.Reconfigure(ctx, swan("aes128-sha256-ecp256", "10.9.0.0/24")); err != nil {
			t.Fatal(err)
		}
		m := start("aes128-sha256-ecp256!")
		if ch.Initiate(ctx, "s2s", "net") == nil {
			t.Fatal("charon established a CHILD SA with mismatched subnets")
		}
		s := waitState(t, m, "s2s", StatePhase2Failed)
		if !strings.Contains(s.Reason, "traffic selectors did not match: we want 10.1.0.0/24 ↔ 10.2.0.0/24, peer proposed 10.9.0.0/24 ↔ 10.2.0.0/24") {
			t.Errorf("reason %q", s.Reason)
		}
	})
}

// TestInteropBehindNAT puts ipsecgw behind a real NAT (nftables
// MASQUERADE) and initiates to strongSwan: NAT detection on both sides,
// the move to 4500, and charon answering on the mapped port.
func TestInteropBehindNAT(t *testing.T) {
	if testing.Short() {
		t.Skip("interop lab skipped in -short mode")
	}
	l := lab.New(t, lab.Options{NAT: true})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const psk = "behind the nat"
	ch, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf(lab.SiteToSite(l.GW2, l.GW1, 2, psk, "aes128-sha256-ecp256", "aes128gcm16"))})
	if err != nil {
		t.Fatal(err)
	}
	watchCharon(ch)
	u := listenInNS(t, l.GW1, l.GW1.Addr)
	dir := t.TempDir()
	conf := fmt.Sprintf("conn s2s\n\tkeyexchange=ikev2\n\tauthby=secret\n\tleft=%s\n\tleftid=gw1\n\tleftsubnet=%s\n\tright=%s\n\trightid=gw2\n\trightsubnet=%s\n\tike=aes128-sha256-ecp256!\n\tesp=aes128gcm16!\n\tauto=add\n",
		l.GW1.Addr, l.GW1.LAN, l.GW2.PublicAddr, l.GW2.LAN)
	os.WriteFile(filepath.Join(dir, "ipsec.conf"), []byte(conf), 0o600)
	os.WriteFile(filepath.Join(dir, "ipsec.secrets"), []byte(fmt.Sprintf("gw1 gw2 : PSK %q\n", psk)), 0o600)
	cfg, diags, err := config.Load(config.Options{ConfPath: filepath.Join(dir, "ipsec.conf"), SecretsPath: filepath.Join(dir, "ipsec.secrets"), LocalAddrs: []netip.Addr{l.GW1.Addr}})
	if err != nil {
		t.Fatalf("%v %v", err, diags)
	}
	inst := newRecInstaller(0xc0000000)
	m, err := NewManager(Options{Config: cfg, Send: u.send, Installer: inst, LocalAddrs: []netip.Addr{l.GW1.Addr}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	u.mu.Lock()
	u.handler = m.HandlePacket
	u.mu.Unlock()
	defer func() {
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		m.Close(c)
	}()
	m.Up("s2s")
	s := waitState(t, m, "s2s", StateEstablished)
	sa, err := ch.WaitEstablished(ctx, "s2s", "net")
	if err != nil {
		t.Fatal(err)
	}
	if !s.NATDetected() || !sa.NATRemote {
		t.Errorf("NAT: ours %v, charon nat-remote %v", s.NATDetected(), sa.NATRemote)
	}
	got := inst.all()
	if len(got) != 1 || !got[0].Encap || got[0].Local.Port() != 4500 || got[0].Remote.Port() != 4500 {
		t.Fatalf("CHILD SA: %+v", got)
	}
	if c := sa.Children[0]; fmt.Sprintf("%08x", got[0].InSPI) != c.SPIOut || !c.Encap {
		t.Errorf("SPIs/encap: ours %08x, charon out %s encap %v", got[0].InSPI, c.SPIOut, c.Encap)
	}
	t.Logf("charon sees us at %s:%d (nat-remote %v)", sa.RemoteHost, sa.RemotePort, sa.NATRemote)
}

// TestInteropReauth: with reauth=yes (ipsec.conf's default) ipsecgw renews
// the IKE SA by reauthenticating: a new IKE SA with the CHILD SA, then the
// old one deleted. strongSwan must end with exactly the new pair.
func TestInteropReauth(t *testing.T) {
	if testing.Short() {
		t.Skip("interop lab skipped in -short mode")
	}
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const psk = "reauth secret"
	ch, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf(lab.SiteToSite(l.GW2, l.GW1, 2, psk, "aes128gcm16-prfsha256-x25519", "aes128gcm16"))})
	if err != nil {
		t.Fatal(err)
	}
	watchCharon(ch)
	u := listenInNS(t, l.GW1, l.GW1.Addr)
	dir := t.TempDir()
	conf := fmt.Sprintf("conn s2s\n\tkeyexchange=ikev2\n\tauthby=secret\n\tleft=%s\n\tleftid=gw1\n\tleftsubnet=%s\n\tright=%s\n\trightid=gw2\n\trightsubnet=%s\n\tike=aes128gcm16-prfsha256-x25519!\n\tesp=aes128gcm16!\n\treauth=yes\n\tikelifetime=15s\n\tmargintime=5s\n\trekeyfuzz=0%%\n\tauto=add\n",
		l.GW1.Addr, l.GW1.LAN, l.GW2.PublicAddr, l.GW2.LAN)
	os.WriteFile(filepath.Join(dir, "ipsec.conf"), []byte(conf), 0o600)
	os.WriteFile(filepath.Join(dir, "ipsec.secrets"), []byte(fmt.Sprintf("gw1 gw2 : PSK %q\n", psk)), 0o600)
	cfg, diags, err := config.Load(config.Options{ConfPath: filepath.Join(dir, "ipsec.conf"), SecretsPath: filepath.Join(dir, "ipsec.secrets"), LocalAddrs: []netip.Addr{l.GW1.Addr}})
	if err != nil {
		t.Fatalf("%v %v", err, diags)
	}
	inst := newRecInstaller(0xc0000000)
	m, err := NewManager(Options{Config: cfg, Send: u.send, Installer: inst, LocalAddrs: []netip.Addr{l.GW1.Addr}, Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	u.mu.Lock()
	u.handler = m.HandlePacket
	u.mu.Unlock()
	defer func() {
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		m.Close(c)
	}()
	m.Up("s2s")
	first := waitState(t, m, "s2s", StateEstablished)
	time.Sleep(13 * time.Second)
	s := waitState(t, m, "s2s", StateEstablished)
	sas, err := ch.ListSAs(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sas) != 1 || sas[0].State != "ESTABLISHED" || len(sas[0].Children) != 1 {
		t.Fatalf("charon after reauthentication: %+v", sas)
	}
	sa := sas[0]
	if s.SPIi == first.SPIi || fmt.Sprintf("%016x", s.SPIi) != sa.InitiatorSPI {
		t.Errorf("IKE SA: ours %016x (first %016x), charon %s", s.SPIi, first.SPIi, sa.InitiatorSPI)
	}
	got := inst.all()
	if len(got) != 1 || fmt.Sprintf("%08x", got[0].InSPI) != sa.Children[0].SPIOut {
		t.Errorf("CHILD SAs: ours %d (%v), charon's out SPI %s", len(got), got, sa.Children[0].SPIOut)
	}
}
