package cli

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/ike/shared"
)

var update = flag.Bool("update", false, "rewrite the golden files of the command outputs")

// opsBackend is a daemon with SAs, counters, a reload result and events
// to show.
func opsBackend() *fakeBackend {
	t0 := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	allDrops := func(kv ...any) map[string]uint64 {
		m := map[string]uint64{"no_sa": 0, "replay": 0, "auth_failed": 0, "selector_mismatch": 0, "malformed": 0, "queue_full": 0, "policy": 0, "expired": 0}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = uint64(kv[i+1].(int))
		}
		return m
	}
	allIKEDrops := func(kv ...any) map[string]uint64 {
		m := map[string]uint64{}
		for _, r := range shared.DropReasons() {
			m[r.Label()] = 0
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = uint64(kv[i+1].(int))
		}
		return m
	}
	return &fakeBackend{
		conns: twoConns(),
		reload: control.ReloadResult{Conns: 2, Warnings: []string{"/etc/ipsec.conf:9: keyword \"compress\" is ignored"},
			Changes: []control.ConnChange{
				{Conn: "b", Kind: "changed", Impact: "new CHILD SA", Fields: []string{"esp", "rightsubnet"}},
				{Conn: "c", Kind: "added", Impact: "none", Fields: []string{}},
			}},
		sas: []control.SAEntry{{
			Conn: "b",
			IKE: &control.IKESA{Version: 2, Initiator: true, InitiatorSPI: "1f2e3d4c5b6a7988", ResponderSPI: "8877665544332211",
				Local: "198.51.100.1:4500", Remote: "198.51.100.3:4500", LocalID: "198.51.100.1", RemoteID: "198.51.100.3",
				Proposal: "aes128-sha256-prfsha256-modp2048", NATDetected: true, EstablishedSeconds: 3725, RekeySeconds: 6875},
			Children: []control.ChildSA{{Protocol: "esp", Proposal: "aes128gcm16", SPIIn: "c0000001", SPIOut: "c0000002", UDPEncap: true,
				LocalTS: []string{"10.1.0.0/24"}, RemoteTS: []string{"10.3.0.0/24"}, EstablishedSeconds: 125, RekeySeconds: 2875,
				ExpiresSeconds: 3475, LifeBytes: 1 << 30, BytesIn: 840000, PacketsIn: 10000, BytesOut: 420000, PacketsOut: 5000}},
		}},
		stats: control.Stats{
			Dataplane: control.DataplaneStats{TxPackets: 5000, TxBytes: 600000, RxPackets: 10000, RxBytes: 840000, Held: 3,
				Drops: allDrops("no_sa", 2, "replay", 1)},
			IKE: control.GlobalStatus{IKESAs: 1, HalfOpenLimit: 10000, CookieThreshold: 30, CookieThresholdIP: 3,
				Drops: allIKEDrops("unknown_spi", 12, "auth_failed", 2)},
			Conns: []control.ConnStats{
				{Name: "a", State: "down", Usage: control.Usage{LastInboundSeconds: -1}, Drops: allDrops()},
				{Name: "b", State: "established", Usage: control.Usage{BytesIn: 1840000, PacketsIn: 21000, BytesOut: 920000, PacketsOut: 11000, LastInboundSeconds: 2},
					Drops: allDrops("replay", 1)},
			},
		},
		events: []control.Event{
			{Time: t0, Type: "state", Conns: []string{"b"}, From: "down", State: "connecting"},
			{Time: t0.Add(12 * time.Millisecond), Type: "exchange", Conns: []string{"b"}, InitiatorSPI: "1f2e3d4c5b6a7988", ResponderSPI: "8877665544332211",
				Exchange: "IKE_SA_INIT", RTTMillis: 11.5},
			{Time: t0.Add(30 * time.Millisecond), Type: "child-up", Conns: []string{"b"}, InitiatorSPI: "1f2e3d4c5b6a7988", ResponderSPI: "8877665544332211",
				SPIIn: "c0000001", SPIOut: "c0000002", Proposal: "aes128gcm16"},
			{Time: t0.Add(31 * time.Second), Type: "failure", Conns: []string{"a"}, State: "phase1-failed", Cause: "auth-failed",
				Text: "peer answered AUTHENTICATION_FAILED:\ncheck the PSK"},
		},
		keys: control.KeyExport{ESPSA: `"IPv4","198.51.100.3","198.51.100.1","0xc0000001","AES-GCM with 16 octet ICV [RFC4106]","0x0102","NULL","0x"` + "\n",
			IKEv2DecryptionTable: "1f2e3d4c5b6a7988,8877665544332211,aa,bb,\"AES-CBC-128 [RFC3602]\",cc,dd,\"HMAC_SHA2_256_128 [RFC4868]\"\n",
			ChildSAs:             1, IKESAs: 1, Unsupported: []string{"CHILD SA d0000001 of c: chacha20poly1305"}},
	}
}

// golden compares out with testdata/NAME.golden (rewritten with -update).
func golden(t *testing.T, name, out string) {
	t.Helper()
	path := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if out != string(want) {
		t.Errorf("%s changed (run with -update only if intended and documented):\n--- got\n%s--- want\n%s", name, out, want)
	}
}

// TestOpsGolden pins the text and --json output of reset, reload,
// list-sas, stats and events: scripts and runbooks read them.
func TestOpsGolden(t *testing.T) {
	fb := opsBackend()
	path := serveFake(t, fb)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"reset", []string{"reset", "a"}},
		{"reset.json", []string{"reset", "a", "--json"}},
		{"reload", []string{"reload"}},
		{"reload.json", []string{"reload", "--json"}},
		{"list-sas", []string{"list-sas"}},
		{"list-sas.json", []string{"list-sas", "--json"}},
		{"stats", []string{"stats"}},
		{"stats.json", []string{"stats", "--json"}},
		{"events", []string{"events", "--count", "4"}},
		{"events.json", []string{"events", "--count", "4", "--json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			if code := Main(append(tc.args, "--socket", path), &out, &errOut); code != 0 {
				t.Fatalf("exit %d: %s", code, errOut.String())
			}
			golden(t, tc.name, out.String())
		})
	}
	if strings.Join(fb.resets, ",") != "a,a" {
		t.Errorf("resets reaching the backend: %v", fb.resets)
	}
}

// TestOpsEmptyAndErrors: no SAs, a refused reload (exit 1 with the
// reason), reset of an unknown conn.
func TestOpsEmptyAndErrors(t *testing.T) {
	fb := opsBackend()
	fb.sas = nil
	fb.reloadErr = os.ErrInvalid
	path := serveFake(t, fb)
	var out, errOut bytes.Buffer
	if code := Main([]string{"list-sas", "--socket", path}, &out, &errOut); code != 0 || out.String() != "no SAs\n" {
		t.Errorf("list-sas without SAs: exit %d %q %q", code, out.String(), errOut.String())
	}
	out.Reset()
	if code := Main([]string{"list-sas", "--json", "--socket", path}, &out, &errOut); code != 0 || out.String() != "[]\n" {
		t.Errorf("list-sas --json without SAs: exit %d %q", code, out.String())
	}
	errOut.Reset()
	if code := Main([]string{"reload", "--socket", path}, &out, &errOut); code != 1 || !strings.Contains(errOut.String(), "invalid argument") {
		t.Errorf("refused reload: exit %d %q", code, errOut.String())
	}
	if code := Main([]string{"reset", "nope", "--socket", path}, &out, &errOut); code == 0 {
		t.Error("reset of an unknown conn exited 0")
	}
}

// TestExportKeysFiles: the tables land in DIR/wireshark with mode 0600,
// also over older files with a wider mode, and --json names them without
// the keys.
func TestExportKeysFiles(t *testing.T) {
	fb := opsBackend()
	path := serveFake(t, fb)
	dir := t.TempDir()
	ws := filepath.Join(dir, "wireshark")
	if err := os.MkdirAll(ws, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ws, "esp_sa"), []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := Main([]string{"export-keys", "--dir", dir, "--socket", path}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	golden(t, "export-keys", strings.ReplaceAll(out.String(), dir, "DIR"))
	for name, want := range map[string]string{"esp_sa": fb.keys.ESPSA, "ikev2_decryption_table": fb.keys.IKEv2DecryptionTable} {
		p := filepath.Join(ws, name)
		b, err := os.ReadFile(p)
		if err != nil || string(b) != want {
			t.Errorf("%s: %q %v", name, b, err)
		}
		if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v %v, want 0600", name, fi.Mode().Perm(), err)
		}
	}
	out.Reset()
	if code := Main([]string{"export-keys", "--json", "--dir", dir, "--socket", path}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	golden(t, "export-keys.json", strings.ReplaceAll(out.String(), dir, "DIR"))
	if strings.Contains(out.String(), "0102") {
		t.Error("--json printed key material")
	}
}

// TestExportKeysAH: AH SAs' keys go to DIR/ah_sa (mode 0600), which the
// output names; without AH SAs no such file is written (as above).
func TestExportKeysAH(t *testing.T) {
	fb := opsBackend()
	fb.keys.AHSA = `"IPv4","198.51.100.2","198.51.100.1","0x000000a1","HMAC-SHA-256-128 [RFC4868]","0x0102"` + "\n"
	path := serveFake(t, fb)
	dir := t.TempDir()
	var out, errOut bytes.Buffer
	if code := Main([]string{"export-keys", "--dir", dir, "--socket", path}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	p := filepath.Join(dir, "ah_sa")
	if b, err := os.ReadFile(p); err != nil || string(b) != fb.keys.AHSA {
		t.Errorf("ah_sa: %q %v", b, err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("ah_sa: mode %v %v, want 0600", fi.Mode().Perm(), err)
	}
	if !strings.Contains(out.String(), "AH SAs' integrity keys written to "+p) {
		t.Errorf("output does not name ah_sa:\n%s", out.String())
	}
}
