package daemon

import (
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/ike"
	"github.com/ipsecgw/ipsecgw/ike/shared"
	"github.com/ipsecgw/ipsecgw/install"
	"github.com/ipsecgw/ipsecgw/sad"
	"github.com/ipsecgw/ipsecgw/settings"
	"github.com/ipsecgw/ipsecgw/spd"
)

// TestDaemonStatus: every configured conn is listed in file order, the ones
// IKE knows nothing about as down, and CHILD SA counters come from the SAD.
func TestDaemonStatus(t *testing.T) {
	cfg := loadTestConfig(t)
	table := sad.NewTable(sad.Options{})
	defer table.Close()
	inst := install.New(table, &spd.Live{}, install.Options{ReplayWindow: 1024})
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
	d := &Gateway{ike: fi, inst: inst, now: func() time.Time { return now }}
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

// TestIKEv1ConnNegotiated: an IKEv1 conn is listed like any other, and
// up hands it to the IKE Manager, which negotiates both versions.
func TestIKEv1ConnNegotiated(t *testing.T) {
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
	d := &Gateway{ike: fi, now: time.Now, log: slog.New(slog.DiscardHandler)}
	d.cfg.Store(cfg)
	st := d.Status()
	if len(st) != 1 || st[0].Version != "ikev1" || st[0].State != control.StateDown || st[0].LastError != "" {
		t.Errorf("IKEv1 conn status: %+v", st)
	}
	if err := d.Up("v1"); err != nil {
		t.Errorf("up of an IKEv1 conn: %v", err)
	}
	if strings.Join(fi.ups, ",") != "up v1" {
		t.Errorf("IKE calls %v, want the conn brought up", fi.ups)
	}
}

// countingIKE is a fakeIKE with the Manager's counters.
type countingIKE struct {
	fakeIKE
	c ike.Counters
}

func (f *countingIKE) Counters() ike.Counters { return f.c }

// TestGlobalStatus: the daemon's global section carries the IKE Manager's
// counters and the DoS settings. (The sockets' own queue drops are counted
// and tested in esp/conn, TestIKEFloodDoesNotStallESP.)
func TestGlobalStatus(t *testing.T) {
	c := ike.Counters{IKESAs: 7, HalfOpen: 5, HalfOpenLimit: 200, CookiesSent: 1234, HalfOpenRefused: 17, QueueDrops: 3}
	c.Drops[shared.DropHalfOpenLimit], c.Drops[shared.DropQueueFull], c.Drops[shared.DropAuthFailed] = 17, 3, 9
	fi := &countingIKE{c: c}
	d := &Gateway{ike: fi, set: settings.Settings{IKE: settings.IKESettings{CookieThreshold: 30, CookieThresholdIP: 3, HalfOpenLimit: 200}}}
	want := control.GlobalStatus{IKESAs: 7, HalfOpen: 5, HalfOpenLimit: 200, CookieThreshold: 30, CookieThresholdIP: 3,
		CookiesSent: 1234, HalfOpenRefused: 17, IKESAQueueDrops: 3, Drops: map[string]uint64{}}
	for _, r := range shared.DropReasons() {
		want.Drops[r.Label()] = 0
	}
	want.Drops["half_open_limit"], want.Drops["queue_full"], want.Drops["auth_failed"] = 17, 3, 9
	if got := d.Global(); !reflect.DeepEqual(got, want) {
		t.Errorf("Global() = %+v, want %+v", got, want)
	}
}
