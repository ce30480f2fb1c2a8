package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGuardSyncRefusesBadConfig: `ipsecgw guard sync` checks the
// configuration as the daemon would and touches no route when it has
// errors (the test needs no privileges: it fails before any netlink).
func TestGuardSyncRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "ipsec.conf")
	secrets := filepath.Join(dir, "ipsec.secrets")
	if err := os.WriteFile(conf, []byte("conn bad\n\tleft=198.51.100.1\n\tright=198.51.100.2\n\trightsubnet=10.2.0.0/33\n\tauto=start\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secrets, []byte(": PSK \"not-shown\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	code := Main([]string{"guard", "sync", "--config", conf, "--secrets", secrets, "--settings", ""}, &out, &errOut)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
	if !strings.Contains(errOut.String(), conf+":4:") || out.Len() != 0 {
		t.Errorf("want the problem as %s:4: on stderr and nothing on stdout; stdout:\n%s\nstderr:\n%s", conf, out.String(), errOut.String())
	}
}
