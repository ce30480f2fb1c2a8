package daemon

import (
	"bytes"
	"context"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/ike"
	"github.com/ipsecgw/ipsecgw/install"
	"github.com/ipsecgw/ipsecgw/sad"
	"github.com/ipsecgw/ipsecgw/spd"
	"github.com/ipsecgw/ipsecgw/transform"
)

// fakeIKE answers Status with fixed entries and records Up/Down.
type fakeIKE struct {
	status []ike.ConnStatus
	ups    []string
}

func (f *fakeIKE) Start()                                                {}
func (f *fakeIKE) HandlePacket(local, remote netip.AddrPort, pkt []byte) {}
func (f *fakeIKE) Up(name string) error                                  { f.ups = append(f.ups, "up "+name); return nil }
func (f *fakeIKE) Down(name string) error                                { f.ups = append(f.ups, "down "+name); return nil }
func (f *fakeIKE) Acquire(name string)                                   {}
func (f *fakeIKE) Status() []ike.ConnStatus                              { return f.status }
func (f *fakeIKE) Close(ctx context.Context) error                       { return nil }
func (f *fakeIKE) ReloadConfig(cfg *config.Config)                       { f.ups = append(f.ups, "reload") }
func (f *fakeIKE) Subscribe() *ike.Subscription                          { return nil }

const testConf = `config setup

conn %default
	keyexchange=ikev2
	authby=secret
	left=198.51.100.1
	leftsubnet=10.1.0.0/24

conn up
	right=198.51.100.2
	rightsubnet=10.2.0.0/24
	ike=aes128-sha256-modp2048!
	esp=aes128gcm16!
	auto=start

conn idle
	right=%any
	rightsubnet=10.3.0.0/24
	auto=add
`

func loadTestConfig(t *testing.T) *config.Config {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "ipsec.conf")
	secrets := filepath.Join(dir, "ipsec.secrets")
	os.WriteFile(conf, []byte(testConf), 0o644)
	os.WriteFile(secrets, []byte(`: PSK "test-secret-123456"`+"\n"), 0o600)
	cfg, diags, err := config.Load(config.Options{ConfPath: conf, SecretsPath: secrets,
		LocalAddrs: []netip.Addr{netip.MustParseAddr("198.51.100.1")}})
	if cfg == nil {
		t.Fatalf("config: %v %v", err, diags)
	}
	return cfg
}

// TestDaemonStatus: every configured conn is listed in file order, the ones
// IKE knows nothing about as down, and CHILD SA counters come from the SAD.
func TestDaemonStatus(t *testing.T) {
	cfg := loadTestConfig(t)
	table := sad.NewTable(sad.Options{})
	defer table.Close()
	inst := install.NewInstaller(table, &spd.Live{}, nil, 1024, nil)
	if err := inst.Install(testChild("up", 1, 0x1000, 0x2000)); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 23, 20, 0, 0, 0, time.UTC)
	fi := &fakeIKE{status: []ike.ConnStatus{{
		Name: "up", State: ike.StateEstablished, IKEInfo: ike.IKEInfo{Initiator: true, SPIi: 0x0102030405060708, SPIr: 0x1112131415161718,
			Local: netip.MustParseAddrPort("198.51.100.1:4500"), Remote: netip.MustParseAddrPort("198.51.100.2:4500"),
			LocalID: "198.51.100.1", RemoteID: "198.51.100.2", Algorithms: "aes128-sha256-prfsha256-modp2048",
			NATRemote: true, Established: now.Add(-90 * time.Second)},
		Children: []ike.ChildInfo{{InSPI: 0x1000, OutSPI: 0x2000, Algorithms: "aes128gcm16",
			LocalTS: []spd.TS{spd.PrefixTS(netip.MustParsePrefix("10.1.0.0/24"))}, RemoteTS: []spd.TS{spd.PrefixTS(netip.MustParsePrefix("10.2.0.0/24"))},
			Encap: true, Established: now.Add(-60 * time.Second)}},
	}}}
	sa := table.Inbound(0x1000)
	if seq, r := sa.Check(1); r != sad.NotDropped || sa.Accept(seq, 84) != sad.NotDropped {
		t.Fatal("accounting a packet on the inbound SA failed")
	}
	d := &Daemon{ike: fi, inst: inst, now: func() time.Time { return now }}
	d.cfg.Store(cfg)
	got := d.Status()
	if len(got) != 2 || got[0].Name != "up" || got[1].Name != "idle" {
		t.Fatalf("status: %+v", got)
	}
	up, idle := got[0], got[1]
	if up.State != control.StateEstablished || up.IKE == nil || up.IKE.InitiatorSPI != "0102030405060708" ||
		up.IKE.UptimeSeconds != 90 || up.Remote != "198.51.100.2:4500" || !up.IKE.NATDetected {
		t.Errorf("established conn: %+v %+v", up, up.IKE)
	}
	if len(up.Children) != 1 {
		t.Fatalf("children: %+v", up.Children)
	}
	ch := up.Children[0]
	if ch.SPIIn != "00001000" || ch.SPIOut != "00002000" || ch.PacketsIn != 1 || ch.BytesIn != 84 ||
		ch.PacketsOut != 0 || ch.UptimeSeconds != 60 || ch.LocalTS[0] != "10.1.0.0/24" {
		t.Errorf("child: %+v", ch)
	}
	if idle.State != control.StateDown || idle.IKE != nil || idle.Children == nil || idle.Auto != "add" || idle.Remote != "%any" {
		t.Errorf("idle conn: %+v", idle)
	}

	if err := d.Up("idle"); err != nil {
		t.Fatal(err)
	}
	if err := d.Up("nope"); err == nil || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("up of unknown conn: %v", err)
	}
	if err := d.Down("up"); err != nil {
		t.Fatal(err)
	}
	if strings.Join(fi.ups, ",") != "up idle,down up" {
		t.Errorf("IKE calls %v", fi.ups)
	}
}

func TestPickLocal(t *testing.T) {
	cfg := loadTestConfig(t)
	if a := pickLocal(cfg, nil, true); a != netip.MustParseAddr("198.51.100.1") {
		t.Errorf("pickLocal v4 = %v", a)
	}
	host := []netip.Addr{netip.MustParseAddr("::1"), netip.MustParseAddr("fe80::1"), netip.MustParseAddr("2001:db8::1")}
	if a := pickLocal(cfg, host, false); a != netip.MustParseAddr("2001:db8::1") {
		t.Errorf("pickLocal v6 = %v", a)
	}
	if needsIPv6(cfg) {
		t.Error("an IPv4-only config needs IPv6 sockets")
	}
}

// TestReload: a changed ESP proposal re-negotiates that conn (down, then up
// for auto=start), an unchanged conn is left alone, and a file with errors
// is refused with the running configuration kept.
func TestReload(t *testing.T) {
	cfg := loadTestConfig(t)
	fi := &fakeIKE{}
	d := &Daemon{ike: fi, now: time.Now}
	d.cfg.Store(cfg)
	log := slog.New(slog.DiscardHandler)

	dir := t.TempDir()
	conf := filepath.Join(dir, "ipsec.conf")
	secrets := filepath.Join(dir, "ipsec.secrets")
	os.WriteFile(secrets, []byte(`: PSK "test-secret-123456"`+"\n"), 0o600)
	load := func() (*config.Config, config.Diagnostics, error) {
		return config.Load(config.Options{ConfPath: conf, SecretsPath: secrets,
			LocalAddrs: []netip.Addr{netip.MustParseAddr("198.51.100.1")}})
	}

	os.WriteFile(conf, []byte(strings.Replace(testConf, "esp=aes128gcm16!", "esp=aes256gcm16!", 1)), 0o644)
	d.reload(log, load)
	if got := strings.Join(fi.ups, ","); got != "down up,reload,up up" {
		t.Errorf("IKE calls on a changed ESP proposal: %s", got)
	}
	if c, _ := d.cfg.Load().Conn("up"); !strings.HasPrefix(c.ESP[0].String(), "aes256gcm16") {
		t.Errorf("new config not in use: %v", c.ESP)
	}

	fi.ups = nil
	os.WriteFile(conf, []byte(strings.Replace(testConf, "esp=aes128gcm16!", "esp=aes256gcm16!", 1)+"# only a comment\n"), 0o644)
	d.reload(log, load)
	if got := strings.Join(fi.ups, ","); got != "reload" {
		t.Errorf("IKE calls on an unchanged config: %s", got)
	}

	fi.ups = nil
	running := d.cfg.Load()
	os.WriteFile(conf, []byte(testConf+"conn broken\n\tike=nonsense\n\tauto=start\n"), 0o644)
	d.reload(log, load)
	if len(fi.ups) != 0 || d.cfg.Load() != running {
		t.Errorf("a broken file was applied: calls %v", fi.ups)
	}
}

// TestIKEv1ConnSaysWhy: an IKEv1 conn is listed, and both its status and
// an up request say that this build does not negotiate IKEv1.
func TestIKEv1ConnSaysWhy(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "ipsec.conf")
	secrets := filepath.Join(dir, "ipsec.secrets")
	os.WriteFile(conf, []byte("conn v1\n\tkeyexchange=ikev1\n\tauthby=secret\n\tleft=198.51.100.1\n\tright=198.51.100.2\n\tleftsubnet=10.1.0.0/24\n\trightsubnet=10.2.0.0/24\n\tauto=start\n"), 0o644)
	os.WriteFile(secrets, []byte(`: PSK "test-secret-123456"`+"\n"), 0o600)
	cfg, diags, err := config.Load(config.Options{ConfPath: conf, SecretsPath: secrets})
	if cfg == nil {
		t.Fatalf("config: %v %v", err, diags)
	}
	fi := &fakeIKE{}
	d := &Daemon{ike: fi, now: time.Now}
	d.cfg.Store(cfg)
	st := d.Status()
	if len(st) != 1 || st[0].Version != "ikev1" || st[0].State != control.StateDown || !strings.Contains(st[0].LastError, "IKEv1") {
		t.Errorf("IKEv1 conn status: %+v", st)
	}
	if err := d.Up("v1"); err == nil || !strings.Contains(err.Error(), "IKEv1") {
		t.Errorf("up of an IKEv1 conn: %v", err)
	}
	if len(fi.ups) != 0 {
		t.Errorf("IKEv1 conn reached the IKEv2 manager: %v", fi.ups)
	}
}

// testChild is an AES-GCM CHILD SA between the test's subnets.
func testChild(conn string, reqID, in, out uint32) ike.ChildSA {
	key := func(b byte) []byte { return bytes.Repeat([]byte{b}, 20) } // AES-128 key + 4-byte salt
	return ike.ChildSA{
		Conn: conn, ReqID: reqID, InSPI: in, OutSPI: out, Mode: config.ModeTunnel,
		Encr:      transform.Transform{Type: transform.TypeENCR, ID: transform.EncrAESGCM16, KeyLen: 128},
		Integ:     transform.Transform{Type: transform.TypeINTEG, ID: transform.IntegNone},
		InEncrKey: key(1), OutEncrKey: key(2),
		Local: netip.MustParseAddrPort("198.51.100.1:4500"), Remote: netip.MustParseAddrPort("198.51.100.2:4500"),
		Encap:        true,
		LocalTS:      []spd.TS{spd.PrefixTS(netip.MustParsePrefix("10.1.0.0/24"))},
		RemoteTS:     []spd.TS{spd.PrefixTS(netip.MustParsePrefix("10.2.0.0/24"))},
		ReplayWindow: -1,
	}
}
