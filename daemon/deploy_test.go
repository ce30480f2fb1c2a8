package daemon

import (
	"log/slog"
	"net"
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
	"github.com/ipsecgw/ipsecgw/sdnotify"
	"github.com/ipsecgw/ipsecgw/spd"
	"github.com/ipsecgw/ipsecgw/transform"
)

// notifyListener plays systemd for a Notifier.
func notifyListener(t *testing.T) (*sdnotify.Notifier, <-chan string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "isgw-notify")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "n.sock")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	out := make(chan string, 100)
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := c.Read(b)
			if err != nil {
				return
			}
			out <- string(b[:n])
		}
	}()
	return sdnotify.FromEnvironment(nil), out
}

func nextMsg(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no sd_notify message")
		return ""
	}
}

// TestNotifySequence: the STATUS lines while the auto=start conn is being
// tried, READY=1 with the tunnel count once it was, RELOADING=1/READY=1
// around a reload (refused ones too), and the reload's result.
func TestNotifySequence(t *testing.T) {
	n, msgs := notifyListener(t)
	fi := &fakeIKE{}
	g := &Gateway{ike: fi, now: time.Now, log: slog.New(slog.DiscardHandler), notify: n}
	cfg := loadTestConfig(t)
	g.cfg.Store(cfg)
	events := make(chan ike.Event, 10)
	done := make(chan struct{})
	go func() { g.runNotify(events, sdnotify.NewFirstTries(firstTryConns(cfg))); close(done) }()

	events <- shared.StateChanged{Conn: "up", From: ike.StateDown, To: ike.StateConnecting}
	if m := nextMsg(t, msgs); m != "STATUS=0 of 2 tunnels established; waiting for the first try of up" {
		t.Errorf("got %q", m)
	}
	fi.status = []ike.ConnStatus{{Name: "up", State: ike.StateEstablished}}
	events <- shared.StateChanged{Conn: "up", From: ike.StateConnecting, To: ike.StateEstablished}
	if m := nextMsg(t, msgs); m != "READY=1\nSTATUS=1 of 2 tunnels established" {
		t.Errorf("got %q", m)
	}
	fi.status = nil
	events <- shared.StateChanged{Conn: "up", From: ike.StateEstablished, To: ike.StateDown}
	if m := nextMsg(t, msgs); m != "STATUS=0 of 2 tunnels established" {
		t.Errorf("got %q", m)
	}
	close(events)
	<-done

	dir := t.TempDir()
	conf, secrets := filepath.Join(dir, "ipsec.conf"), filepath.Join(dir, "ipsec.secrets")
	os.WriteFile(secrets, []byte(`: PSK "test-secret-123456"`+"\n"), 0o600)
	os.WriteFile(conf, []byte(strings.Replace(testConf, "rightsubnet=10.3.0.0/24", "rightsubnet=10.4.0.0/24", 1)), 0o644)
	g.opts.Load = func() (*config.Config, config.Diagnostics, error) {
		return config.Load(config.Options{ConfPath: conf, SecretsPath: secrets, LocalAddrs: []netip.Addr{netip.MustParseAddr("198.51.100.1")}})
	}
	res, err := g.Reload()
	if err != nil || res.Conns != 2 || len(res.Changes) != 1 || res.Changes[0].Conn != "idle" || res.Changes[0].Impact != "new CHILD SA" {
		t.Errorf("reload: %+v %v", res, err)
	}
	if m := nextMsg(t, msgs); !strings.HasPrefix(m, "RELOADING=1\nMONOTONIC_USEC=") {
		t.Errorf("got %q", m)
	}
	if m := nextMsg(t, msgs); m != "READY=1\nSTATUS=0 of 2 tunnels established" {
		t.Errorf("got %q", m)
	}
	os.WriteFile(conf, []byte(testConf+"conn broken\n\tike=nonsense\n"), 0o644)
	if _, err := g.Reload(); err == nil {
		t.Error("a broken configuration was not refused")
	}
	for _, want := range []string{"RELOADING=1", "READY=1"} {
		if m := nextMsg(t, msgs); !strings.HasPrefix(m, want) {
			t.Errorf("refused reload: got %q, want %s", m, want)
		}
	}
}

// TestNotifyReadyWithoutAutoStart: with no auto=start conn the gateway is
// ready at once.
func TestNotifyReadyWithoutAutoStart(t *testing.T) {
	n, msgs := notifyListener(t)
	g := &Gateway{ike: &fakeIKE{}, now: time.Now, log: slog.New(slog.DiscardHandler), notify: n}
	g.cfg.Store(loadTestConfig(t))
	events := make(chan ike.Event)
	done := make(chan struct{})
	go func() { g.runNotify(events, sdnotify.NewFirstTries(nil)); close(done) }()
	if m := nextMsg(t, msgs); m != "READY=1\nSTATUS=0 of 2 tunnels established" {
		t.Errorf("got %q", m)
	}
	close(events)
	<-done
}

// TestNotifyStatusCoalesced: a burst of state changes (thousands of SAs
// coming up at once) makes one STATUS= line at once and one at the end of
// statusInterval, not one per change.
func TestNotifyStatusCoalesced(t *testing.T) {
	n, msgs := notifyListener(t)
	fi := &fakeIKE{status: []ike.ConnStatus{{Name: "up", State: ike.StateEstablished}}}
	g := &Gateway{ike: fi, now: time.Now, log: slog.New(slog.DiscardHandler), notify: n}
	g.cfg.Store(loadTestConfig(t))
	events := make(chan ike.Event)
	done := make(chan struct{})
	go func() { g.runNotify(events, sdnotify.NewFirstTries(nil)); close(done) }()
	if m := nextMsg(t, msgs); m != "READY=1\nSTATUS=1 of 2 tunnels established" {
		t.Errorf("got %q", m)
	}
	for range 1000 {
		events <- shared.StateChanged{Conn: "up", From: ike.StateConnecting, To: ike.StateEstablished}
	}
	for range 2 {
		if m := nextMsg(t, msgs); m != "STATUS=1 of 2 tunnels established" {
			t.Errorf("got %q", m)
		}
	}
	select {
	case m := <-msgs:
		t.Errorf("a third message for one burst: %q", m)
	case <-time.After(statusInterval + 200*time.Millisecond):
	}
	close(events)
	<-done
}

// TestResetListSAsStats: reset is down then up; list-sas shows the SAs
// with their times left and volume limits; stats the usage and drops.
func TestResetListSAsStats(t *testing.T) {
	table := sad.NewTable(sad.Options{})
	defer table.Close()
	inst := install.New(table, &spd.Live{}, install.Options{ReplayWindow: 1024})
	c := testChild("up", 1, 0x1000, 0x2000)
	c.LifeBytes = 1 << 30
	if err := inst.Install(c); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 23, 20, 0, 0, 0, time.UTC)
	fi := &fakeIKE{status: []ike.ConnStatus{{
		Name: "up", State: ike.StateEstablished, IKEInfo: ike.IKEInfo{Version: 2, Initiator: true, SPIi: 1, SPIr: 2,
			Established: now.Add(-time.Minute), RekeyAt: now.Add(time.Hour)},
		Children: []ike.ChildInfo{{InSPI: 0x1000, OutSPI: 0x2000, Algorithms: "aes128gcm16", Established: now.Add(-time.Minute),
			RekeyAt: now.Add(50 * time.Minute), ExpireAt: now.Add(59 * time.Minute)}},
	}}}
	g := &Gateway{ike: fi, inst: inst, now: func() time.Time { return now }, log: slog.New(slog.DiscardHandler)}
	g.cfg.Store(loadTestConfig(t))
	if err := g.Reset("up"); err != nil {
		t.Fatal(err)
	}
	if strings.Join(fi.ups, ",") != "down up,up up" {
		t.Errorf("reset: IKE calls %v", fi.ups)
	}
	if err := g.Reset("nope"); err == nil {
		t.Error("reset of an unknown conn")
	}
	sas := g.ListSAs()
	if len(sas) != 1 || sas[0].IKE == nil || sas[0].IKE.RekeySeconds != 3600 || len(sas[0].Children) != 1 {
		t.Fatalf("list-sas: %+v", sas)
	}
	ch := sas[0].Children[0]
	if ch.RekeySeconds != 3000 || ch.ExpiresSeconds != 3540 || ch.LifeBytes != 1<<30 || ch.EstablishedSeconds != 60 {
		t.Errorf("child: %+v", ch)
	}
	sa := table.Inbound(0x1000)
	if seq, r := sa.Check(1); r != sad.NotDropped || sa.Accept(seq, 84) != sad.NotDropped {
		t.Fatal("accounting")
	}
	sa.Drop(sad.DropReplay)
	st := g.Stats()
	if len(st.Conns) != 2 || st.Conns[0].Usage.BytesIn != 84 || st.Conns[0].Drops["replay"] != 1 || st.Conns[1].Usage.LastInboundSeconds != -1 {
		t.Errorf("stats: %+v", st.Conns)
	}
	if _, ok := st.Dataplane.Drops["no_sa"]; !ok || len(st.Dataplane.Drops) != sad.NumDropReasons-1 {
		t.Errorf("dataplane drops %v: every reason must be present", st.Dataplane.Drops)
	}
	if st.Conns[0].Usage.LastInboundSeconds != 0 {
		t.Errorf("last inbound %d", st.Conns[0].Usage.LastInboundSeconds)
	}
}

// TestFormatKeys: the Wireshark tables have one line per direction of
// each CHILD SA and one per IKE SA, in the dissectors' formats, and
// algorithms Wireshark lacks are reported instead of written.
func TestFormatKeys(t *testing.T) {
	gcm := transform.Transform{Type: transform.TypeENCR, ID: transform.EncrAESGCM16, KeyLen: 128}
	none := transform.Transform{Type: transform.TypeINTEG, ID: transform.IntegNone}
	cha := transform.Transform{Type: transform.TypeENCR, ID: transform.EncrChaCha20Poly1305}
	cbc := transform.Transform{Type: transform.TypeENCR, ID: transform.EncrAESCBC, KeyLen: 256}
	sha := transform.Transform{Type: transform.TypeINTEG, ID: transform.IntegHMACSHA2_256_128}
	ap := netip.MustParseAddrPort
	k := formatKeys([]install.ChildKeys{
		{Conn: "a", InSPI: 0xc1, OutSPI: 0xc2, Local: ap("198.51.100.1:4500"), Remote: ap("198.51.100.2:4500"), Encr: gcm, Integ: none,
			InEncr: []byte{1, 2}, OutEncr: []byte{3, 4}},
		{Conn: "b", InSPI: 0xd1, OutSPI: 0xd2, Local: ap("198.51.100.1:0"), Remote: ap("198.51.100.3:0"), Encr: cha, Integ: none},
	}, []ike.IKEKeys{
		{Version: 2, SPIi: 0x0102030405060708, SPIr: 0x1112131415161718, Encr: cbc, Integ: sha, SKei: []byte{0xaa}, SKer: []byte{0xbb}, SKai: []byte{0xcc}, SKar: []byte{0xdd}},
	})
	wantESP := `"IPv4","198.51.100.2","198.51.100.1","0x000000c1","AES-GCM with 16 octet ICV [RFC4106]","0x0102","NULL","0x"` + "\n" +
		`"IPv4","198.51.100.1","198.51.100.2","0x000000c2","AES-GCM with 16 octet ICV [RFC4106]","0x0304","NULL","0x"` + "\n"
	if k.ESPSA != wantESP {
		t.Errorf("esp_sa:\n%s\nwant\n%s", k.ESPSA, wantESP)
	}
	wantIKE := `0102030405060708,1112131415161718,aa,bb,"AES-CBC-256 [RFC3602]",cc,dd,"HMAC_SHA2_256_128 [RFC4868]"` + "\n"
	if k.IKEv2DecryptionTable != wantIKE {
		t.Errorf("ikev2_decryption_table:\n%s\nwant\n%s", k.IKEv2DecryptionTable, wantIKE)
	}
	if k.ChildSAs != 1 || k.IKESAs != 1 || len(k.Unsupported) != 1 || !strings.Contains(k.Unsupported[0], "000000d1") {
		t.Errorf("counts %d %d, unsupported %v", k.ChildSAs, k.IKESAs, k.Unsupported)
	}
}

// TestControlEvent: IKE events become control events with their SPIs,
// causes and round trips.
func TestControlEvent(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	info := ike.IKEInfo{SPIi: 0x1f, SPIr: 0x2e}
	for _, tc := range []struct {
		ev   ike.Event
		want control.Event
	}{
		{shared.ChildRekeyed{Conn: "a", IKE: info, Old: ike.ChildInfo{InSPI: 1}, New: ike.ChildInfo{InSPI: 2, OutSPI: 3, Algorithms: "aes128gcm16"}},
			control.Event{Time: now, Type: "child-rekeyed", Conns: []string{"a"}, InitiatorSPI: "000000000000001f", ResponderSPI: "000000000000002e",
				SPIIn: "00000002", SPIOut: "00000003", OldSPIIn: "00000001", Proposal: "aes128gcm16"}},
		{shared.StateChanged{Conn: "a", From: ike.StateConnecting, To: ike.StatePhase1Failed, Reason: "no answer"},
			control.Event{Time: now, Type: "state", Conns: []string{"a"}, From: "connecting", State: "phase1-failed", Text: "no answer"}},
		{shared.ExchangeDone{Names: []string{"a"}, IKE: info, Exchange: "INFORMATIONAL", DPD: true, RTT: 1500 * time.Microsecond},
			control.Event{Time: now, Type: "exchange", Conns: []string{"a"}, InitiatorSPI: "000000000000001f", ResponderSPI: "000000000000002e",
				Exchange: "INFORMATIONAL", DPD: true, RTTMillis: 1.5}},
		{shared.IKEDown{Names: []string{"a"}, IKE: info, Cause: shared.CausePeerDead, Text: "DPD"},
			control.Event{Time: now, Type: "ike-down", Conns: []string{"a"}, InitiatorSPI: "000000000000001f", ResponderSPI: "000000000000002e",
				Cause: "peer-dead", Text: "DPD"}},
	} {
		got := controlEvent(tc.ev, now)
		if !equalEvent(got, tc.want) {
			t.Errorf("%T:\n got %+v\nwant %+v", tc.ev, got, tc.want)
		}
	}
}

func equalEvent(a, b control.Event) bool { return reflect.DeepEqual(a, b) }
