package cli

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipsecgw/ipsecgw/settings"
)

// TestRunRefusesBadConfig: a config with errors never gets as far as
// opening sockets or the TUN; every problem is printed as FILE:LINE.
func TestRunRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "ipsec.conf")
	secrets := filepath.Join(dir, "ipsec.secrets")
	if err := os.WriteFile(conf, []byte("config setup\n\nconn bad\n\tleft=198.51.100.1\n\tright=198.51.100.2\n\tike=aes128-nosuchhash-modp2048\n\tauto=start\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secrets, []byte(": PSK \"not-shown\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := Main([]string{"run", "--config", conf, "--secrets", secrets, "--settings", "",
		"--socket", filepath.Join(dir, "ctl.sock"), "--tun-name", "isgwtest0"}, &out, &errOut)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr:\n%s", code, errOut.String())
	}
	msg := errOut.String()
	if !strings.Contains(msg, conf+":6:") {
		t.Errorf("stderr does not point at %s:6:\n%s", conf, msg)
	}
	if !strings.Contains(msg, "nosuchhash") || !strings.Contains(msg, "refusing to start") {
		t.Errorf("stderr does not explain the refusal:\n%s", msg)
	}
	if strings.Contains(msg, "not-shown") {
		t.Errorf("stderr leaks the PSK:\n%s", msg)
	}
	if _, err := os.Stat(filepath.Join(dir, "ctl.sock")); err == nil {
		t.Error("control socket created although the config was refused")
	}
}

func TestRunRefusesMissingConfig(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "absent.conf")
	var out, errOut bytes.Buffer
	code := Main([]string{"run", "--config", conf, "--secrets", filepath.Join(dir, "absent.secrets"), "--settings", ""}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), conf) {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut.String())
	}
}

func TestRunRejectsBadSettings(t *testing.T) {
	dir := t.TempDir()
	settings := filepath.Join(dir, "ipsecgw.yaml")
	if err := os.WriteFile(settings, []byte("log:\n  format: xml\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := Main([]string{"run", "--settings", settings}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), "log.format") {
		t.Fatalf("exit %d, stderr:\n%s", code, errOut.String())
	}
}

func TestNewLoggerFormats(t *testing.T) {
	for _, tc := range []struct {
		format, want string
	}{{"json", `"msg":"connection state"`}, {"text", `msg="connection state"`}} {
		var buf bytes.Buffer
		s := settings.Settings{LogFormat: tc.format, LogLevel: slog.LevelInfo}
		log := newLogger(&buf, s)
		log.Debug("hidden below the level")
		log.Info("connection state", "conn", "s2s", "state", "established")
		out := buf.String()
		if !strings.Contains(out, tc.want) || strings.Contains(out, "hidden") || strings.Count(out, "\n") != 1 {
			t.Errorf("%s log: %q", tc.format, out)
		}
	}
}
