package cli

import (
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/ipsecgw/ipsecgw/settings"
)

func TestSettingsPrecedence(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "ipsecgw.yaml")
	yaml := `ipsec_conf: /srv/ipsec.conf
metrics_listen: 127.0.0.1:9100
log:
  level: debug
  format: json
tun:
  name: vpn0
  mtu: 1380
workers: 4
replay_window: 4096
retransmit:
  timeout: 2s
  base: 1.5
  tries: 3
nat_keepalive: 5s
keyingtries_retry_interval: 12s
fragment_size: 1000
esp:
  encapsulation: nat
`
	if err := os.WriteFile(file, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	addFileFlags(fs)
	addDaemonFlags(fs)
	t.Setenv("IPSECGW_TUN_MTU", "1300")
	t.Setenv("IPSECGW_WORKERS", "2")
	if err := fs.Parse([]string{"--settings", file, "--workers", "8", "--secrets", "/srv/ipsec.secrets"}); err != nil {
		t.Fatal(err)
	}
	s, err := loadSettings(fs)
	if err != nil {
		t.Fatal(err)
	}
	want := settings.Settings{IPsecConf: "/srv/ipsec.conf", IPsecSecrets: "/srv/ipsec.secrets", ControlSocket: settings.DefaultControlSocket,
		MetricsListen: "127.0.0.1:9100", LogLevel: slog.LevelDebug, LogFormat: "json", TUNName: "vpn0", TUNMTU: 1300, Workers: 8,
		ReplayWindow: 4096, Retransmit: settings.Retransmit{Timeout: 2 * time.Second, Base: 1.5, Tries: 3}, NATKeepalive: 5 * time.Second, KeyingRetryInterval: 12 * time.Second, FragmentSize: 1000, ESPEncapsulation: "nat", TCPPort: 4500, SettingsFile: file}
	want.IKE = settings.IKESettings{CookieThreshold: 30, CookieThresholdIP: 3, HalfOpenLimit: 10000} // defaults
	if s != want {
		t.Errorf("settings\n got %+v\nwant %+v", s, want)
	}
}

func TestSettingsDefaultsAndErrors(t *testing.T) {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	addFileFlags(fs)
	if err := fs.Parse([]string{"--settings", filepath.Join(t.TempDir(), "absent.yaml")}); err != nil {
		t.Fatal(err)
	}
	if _, err := loadSettings(fs); err == nil {
		t.Error("an explicitly named missing settings file must be an error")
	}
	// The default file may be absent.
	s, err := loadSettings(nil)
	if err != nil && !strings.Contains(err.Error(), settings.DefaultSettingsFile) {
		t.Fatal(err)
	}
	if err == nil && (s.IPsecConf != settings.DefaultIPsecConf || s.TUNMTU != 1400 || s.Retransmit.Timeout != 4*time.Second || s.Retransmit.Tries != 5 || s.NATKeepalive != 20*time.Second || s.ESPEncapsulation != "auto") {
		t.Errorf("defaults: %+v", s)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(file, []byte("tun:\n  mtu: 10\nlog:\n  level: loud\nworkerz: 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("IPSECGW_SETTINGS", file)
	if _, err := loadSettings(nil); err == nil || !strings.Contains(err.Error(), "workerz") {
		t.Errorf("unknown key not reported: %v", err)
	}
	if err := os.WriteFile(file, []byte("tun:\n  mtu: 10\nlog:\n  level: loud\nesp:\n  encapsulation: gre\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = loadSettings(nil)
	if err == nil || !strings.Contains(err.Error(), "tun.mtu") || !strings.Contains(err.Error(), "log.level") || !strings.Contains(err.Error(), `esp.encapsulation: "gre" is not auto, nat or udp`) {
		t.Errorf("bad values not all reported: %v", err)
	}
}

// TestViperOnlyInTheCommandLine: viper, pflag and cobra reach no package
// but the command line (this one and cmd/ipsecgw). The engine packages
// (config, daemon, settings, ike, esp …) must build without them; the
// settings loader lives here for that reason.
func TestViperOnlyInTheCommandLine(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command to list the dependencies with")
	}
	const module = "github.com/ipsecgw/ipsecgw"
	out, err := exec.Command(gobin, "list", "-f", "{{.ImportPath}} {{join .Deps \" \"}}", module+"/...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	allowed := map[string]bool{module + "/internal/cli": true, module + "/cmd/ipsecgw": true}
	checked := 0
	for line := range strings.Lines(string(out)) {
		pkg, deps, _ := strings.Cut(strings.TrimSpace(line), " ")
		checked++
		if allowed[pkg] {
			continue
		}
		for dep := range strings.FieldsSeq(deps) {
			if strings.HasPrefix(dep, "github.com/spf13/") {
				t.Errorf("%s depends on %s", pkg, dep)
			}
		}
	}
	if checked < 10 || !strings.Contains(string(out), module+"/daemon ") {
		t.Fatalf("go list listed %d packages, not the module's:\n%s", checked, out)
	}
}
