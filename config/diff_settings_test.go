package config

import (
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"
)

func TestValues(t *testing.T) {
	durs := map[string]time.Duration{"30": 30 * time.Second, "30s": 30 * time.Second, "8m": 8 * time.Minute, "1h": time.Hour,
		"1d": 24 * time.Hour, "1.5h": 90 * time.Minute, "86400s": 24 * time.Hour, "0": 0}
	for in, want := range durs {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "x", "1x", "-5", "1e3", "NaN", "inf", "0x10", "400d", "s"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("duration %q accepted", bad)
		}
	}
	sizes := map[string]uint64{"100": 100, "4k": 4096, "4K": 4096, "2m": 2 << 20, "1g": 1 << 30, "1G": 1 << 30, "1t": 1 << 40, "10kB": 10240}
	for in, want := range sizes {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "-1", "4q", "99999999999999999999", "20000000t"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("size %q accepted", bad)
		}
	}
}

const diffBase = `conn a
	left=198.51.100.1
	right=203.0.113.1
	leftsubnet=10.1.0.0/16
	rightsubnet=10.2.0.0/16
	authby=secret
	auto=start

conn b
	left=198.51.100.1
	right=203.0.113.2
	authby=secret
	auto=add
`

func TestDiff(t *testing.T) {
	secrets := "198.51.100.1 203.0.113.1 : PSK \"a\"\n198.51.100.1 203.0.113.2 : PSK \"b\"\n"
	load := func(conf, sec string) *Config {
		cfg, diags, err := loadMem(t, conf, sec)
		if err != nil {
			t.Fatalf("%v\n%s", err, diagText(diags))
		}
		return cfg
	}
	old := load(diffBase, secrets)
	if d := Diff(old, load(diffBase, secrets)); len(d) != 0 {
		t.Errorf("identical configs differ: %v", d)
	}
	tests := []struct {
		name          string
		conf, secrets string
		want          []ConnChange
	}{
		{"lifetime", strings.Replace(diffBase, "auto=start", "auto=start\n\tlifetime=30m\n\tdpddelay=10s", 1), secrets,
			[]ConnChange{{Name: "a", Kind: ConnChanged, Impact: ImpactRekey, Fields: []string{"lifetime", "dpd"}}}},
		{"subnet", strings.Replace(diffBase, "10.2.0.0/16", "10.2.0.0/16,10.3.0.0/16", 1), secrets,
			[]ConnChange{{Name: "a", Kind: ConnChanged, Impact: ImpactNewChild, Fields: []string{"remote subnets"}}}},
		{"esp", strings.Replace(diffBase, "auto=start", "auto=start\n\tesp=aes256gcm16", 1), secrets,
			[]ConnChange{{Name: "a", Kind: ConnChanged, Impact: ImpactNewChild, Fields: []string{"esp"}}}},
		{"ike and peer", strings.Replace(diffBase, "right=203.0.113.2", "right=203.0.113.3\n\tike=aes256-sha256-modp2048", 1),
			strings.Replace(secrets, "203.0.113.2", "203.0.113.3", 1),
			[]ConnChange{{Name: "b", Kind: ConnChanged, Impact: ImpactNewIKE, Fields: []string{"remote", "ike", "remote subnets"}}}},
		{"psk", diffBase, strings.Replace(secrets, `"b"`, `"s3cr3t-changed"`, 1),
			[]ConnChange{{Name: "b", Kind: ConnChanged, Impact: ImpactNewIKE, Fields: []string{"psk"}}}},
		{"auto only", strings.Replace(diffBase, "auto=add", "auto=start", 1), secrets,
			[]ConnChange{{Name: "b", Kind: ConnChanged, Impact: ImpactNone, Fields: []string{"auto"}}}},
		{"added and removed", strings.Replace(diffBase, "conn b", "conn c", 1), secrets,
			[]ConnChange{{Name: "b", Kind: ConnRemoved}, {Name: "c", Kind: ConnAdded}}},
	}
	for _, tt := range tests {
		got := Diff(old, load(tt.conf, tt.secrets))
		if !slices.EqualFunc(got, tt.want, func(a, b ConnChange) bool {
			return a.Name == b.Name && a.Kind == b.Kind && a.Impact == b.Impact && slices.Equal(a.Fields, b.Fields)
		}) {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
		for _, c := range got {
			if strings.Contains(c.String(), "s3cr3t") {
				t.Errorf("diff output shows the PSK: %s", c)
			}
		}
	}
}

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
	AddFileFlags(fs)
	AddDaemonFlags(fs)
	t.Setenv("IPSECGW_TUN_MTU", "1300")
	t.Setenv("IPSECGW_WORKERS", "2")
	if err := fs.Parse([]string{"--settings", file, "--workers", "8", "--secrets", "/srv/ipsec.secrets"}); err != nil {
		t.Fatal(err)
	}
	s, err := LoadSettings(fs)
	if err != nil {
		t.Fatal(err)
	}
	want := Settings{IPsecConf: "/srv/ipsec.conf", IPsecSecrets: "/srv/ipsec.secrets", ControlSocket: DefaultControlSocket,
		MetricsListen: "127.0.0.1:9100", LogLevel: slog.LevelDebug, LogFormat: "json", TUNName: "vpn0", TUNMTU: 1300, Workers: 8,
		ReplayWindow: 4096, Retransmit: RetransmitSettings{Timeout: 2 * time.Second, Base: 1.5, Tries: 3}, NATKeepalive: 5 * time.Second, KeyingRetryInterval: 12 * time.Second, FragmentSize: 1000, ESPEncapsulation: "nat", SettingsFile: file}
	want.IKE = IKESettings{CookieThreshold: 30, CookieThresholdIP: 3, HalfOpenLimit: 10000} // defaults
	if s != want {
		t.Errorf("settings\n got %+v\nwant %+v", s, want)
	}
}

func TestSettingsDefaultsAndErrors(t *testing.T) {
	fs := pflag.NewFlagSet("t", pflag.ContinueOnError)
	AddFileFlags(fs)
	if err := fs.Parse([]string{"--settings", filepath.Join(t.TempDir(), "absent.yaml")}); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadSettings(fs); err == nil {
		t.Error("an explicitly named missing settings file must be an error")
	}
	// The default file may be absent.
	s, err := LoadSettings(nil)
	if err != nil && !strings.Contains(err.Error(), DefaultSettingsFile) {
		t.Fatal(err)
	}
	if err == nil && (s.IPsecConf != DefaultIPsecConf || s.TUNMTU != 1400 || s.Retransmit.Timeout != 4*time.Second || s.Retransmit.Tries != 5 || s.NATKeepalive != 20*time.Second || s.ESPEncapsulation != "auto") {
		t.Errorf("defaults: %+v", s)
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(file, []byte("tun:\n  mtu: 10\nlog:\n  level: loud\nworkerz: 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("IPSECGW_SETTINGS", file)
	if _, err := LoadSettings(nil); err == nil || !strings.Contains(err.Error(), "workerz") {
		t.Errorf("unknown key not reported: %v", err)
	}
	if err := os.WriteFile(file, []byte("tun:\n  mtu: 10\nlog:\n  level: loud\nesp:\n  encapsulation: gre\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = LoadSettings(nil)
	if err == nil || !strings.Contains(err.Error(), "tun.mtu") || !strings.Contains(err.Error(), "log.level") || !strings.Contains(err.Error(), `esp.encapsulation: "gre" is not auto, nat or udp`) {
		t.Errorf("bad values not all reported: %v", err)
	}
}
