package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeExportFixture(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	conf, secrets := filepath.Join(dir, "ipsec.conf"), filepath.Join(dir, "ipsec.secrets")
	if err := os.WriteFile(conf, []byte(`conn s2s
  keyexchange=ikev2
  authby=secret
  left=198.51.100.1
  leftid=@gw1
  leftsubnet=10.1.0.0/24
  right=198.51.100.2
  rightid=@gw2
  rightsubnet=10.2.0.0/24
  ike=aes128-sha256-modp2048!
  esp=aes128gcm16!
  auto=add
`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secrets, []byte("@gw1 @gw2 : PSK \"cli-export-key\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return conf, secrets
}

func TestExportCommand(t *testing.T) {
	conf, secrets := writeExportFixture(t)
	code, out, errOut := run(t, "export", "s2s", "--format", "swanctl", "--config", conf, "--secrets", secrets)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"local_addrs = 198.51.100.2", "remote_addrs = 198.51.100.1", "esp_proposals = aes128gcm16", "start_action = start"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "cli-export-key") || strings.Contains(out, "636c692d6578706f72742d6b6579") {
		t.Error("the PSK is printed without --with-secrets")
	}

	dir := filepath.Join(t.TempDir(), "peer")
	code, _, errOut = run(t, "export", "s2s", "--format", "strongswan", "--with-secrets", "--dir", dir, "--config", conf, "--secrets", secrets)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	st, err := os.Stat(filepath.Join(dir, "ipsec.secrets"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("ipsec.secrets mode %v, want 0600", st.Mode().Perm())
	}
	// The written pair is a configuration ipsecgw itself accepts.
	code, out, errOut = run(t, "config", "check", "--config", filepath.Join(dir, "ipsec.conf"), "--secrets", filepath.Join(dir, "ipsec.secrets"))
	if code != 0 {
		t.Errorf("config check of the export: exit %d\n%s%s", code, out, errOut)
	}

	code, _, errOut = run(t, "export", "s2s", "--config", conf, "--secrets", secrets)
	if code != 1 || !strings.Contains(errOut, "--format is required") {
		t.Errorf("missing --format: exit %d, %q", code, errOut)
	}
}

// TestConfigConvert: ipsec.conf → swanctl.conf with --dir, then the
// swanctl.conf read back with --swanctl by config show.
func TestConfigConvert(t *testing.T) {
	conf, secrets := writeExportFixture(t)
	dir := filepath.Join(t.TempDir(), "sw")
	code, _, errOut := run(t, "config", "convert", "--to", "swanctl", "--with-secrets", "--dir", dir, "--config", conf, "--secrets", secrets)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	sw := filepath.Join(dir, "swanctl.conf")
	code, out, errOut := run(t, "config", "show", "s2s", "--swanctl", sw, "--secrets", "")
	if code != 0 {
		t.Fatalf("config show --swanctl: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"198.51.100.1 (left)", "aes128-sha256-prfsha256-modp2048 (strict)", "psk:             <redacted>"} {
		if !strings.Contains(out, want) {
			t.Errorf("config show lacks %q:\n%s", want, out)
		}
	}
	code, _, errOut = run(t, "config", "convert", "--to", "yaml", "--config", conf, "--secrets", secrets)
	if code != 1 || !strings.Contains(errOut, "--to must be") {
		t.Errorf("bad --to: exit %d %q", code, errOut)
	}
}
