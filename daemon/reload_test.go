package daemon

import (
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
)

// TestReload: a changed ESP proposal re-negotiates that conn (down, then up
// for auto=start), an unchanged conn is left alone, and a file with errors
// is refused with the running configuration kept.
func TestReload(t *testing.T) {
	cfg := loadTestConfig(t)
	fi := &fakeIKE{}
	d := &Gateway{ike: fi, now: time.Now, log: slog.New(slog.DiscardHandler)}
	d.cfg.Store(cfg)

	dir := t.TempDir()
	conf := filepath.Join(dir, "ipsec.conf")
	secrets := filepath.Join(dir, "ipsec.secrets")
	os.WriteFile(secrets, []byte(`: PSK "test-secret-123456"`+"\n"), 0o600)
	load := func() (*config.Config, config.Diagnostics, error) {
		return config.Load(config.Options{ConfPath: conf, SecretsPath: secrets,
			LocalAddrs: []netip.Addr{netip.MustParseAddr("198.51.100.1")}})
	}

	os.WriteFile(conf, []byte(strings.Replace(testConf, "esp=aes128gcm16!", "esp=aes256gcm16!", 1)), 0o644)
	d.reload(load)
	if got := strings.Join(fi.ups, ","); got != "down up,reload,up up" {
		t.Errorf("IKE calls on a changed ESP proposal: %s", got)
	}
	if c, _ := d.cfg.Load().Conn("up"); !strings.HasPrefix(c.ESP[0].String(), "aes256gcm16") {
		t.Errorf("new config not in use: %v", c.ESP)
	}

	fi.ups = nil
	os.WriteFile(conf, []byte(strings.Replace(testConf, "esp=aes128gcm16!", "esp=aes256gcm16!", 1)+"# only a comment\n"), 0o644)
	d.reload(load)
	if got := strings.Join(fi.ups, ","); got != "reload" {
		t.Errorf("IKE calls on an unchanged config: %s", got)
	}

	fi.ups = nil
	running := d.cfg.Load()
	os.WriteFile(conf, []byte(testConf+"conn broken\n\tike=nonsense\n\tauto=start\n"), 0o644)
	d.reload(load)
	if len(fi.ups) != 0 || d.cfg.Load() != running {
		t.Errorf("a broken file was applied: calls %v", fi.ups)
	}
}
