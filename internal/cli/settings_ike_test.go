package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipsecgw/ipsecgw/settings"
)

// loadSettingsText loads ipsecgw.yaml text through IPSECGW_SETTINGS.
func loadSettingsText(t *testing.T, text string) (settings.Settings, error) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "ipsecgw.yaml")
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("IPSECGW_SETTINGS", file)
	return loadSettings(nil)
}

func TestIKESettings(t *testing.T) {
	s, err := loadSettingsText(t, "log:\n  level: info\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := (settings.IKESettings{CookieThreshold: 30, CookieThresholdIP: 3, HalfOpenLimit: 10000}); s.IKE != want {
		t.Errorf("defaults %+v, want %+v", s.IKE, want)
	}
	s, err = loadSettingsText(t, "ike:\n  cookie_threshold: 0\n  cookie_threshold_ip: 5\n  half_open_limit: 200\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := (settings.IKESettings{CookieThreshold: 0, CookieThresholdIP: 5, HalfOpenLimit: 200}); s.IKE != want {
		t.Errorf("got %+v, want %+v", s.IKE, want)
	}
	t.Setenv("IPSECGW_IKE_HALF_OPEN_LIMIT", "300")
	if s, err = loadSettings(nil); err != nil || s.IKE.HalfOpenLimit != 300 {
		t.Errorf("environment: %+v %v", s.IKE, err)
	}
}

func TestIKESettingsErrors(t *testing.T) {
	for _, c := range []struct{ yaml, want string }{
		{"ike:\n  half_open_limit: 0\n", "setting ike.half_open_limit: 0 is not a number from 1 to 1000000"},
		{"ike:\n  half_open_limit: many\n", "setting ike.half_open_limit: many is not a number"},
		{"ike:\n  cookie_threshold: -1\n", "setting ike.cookie_threshold: -1 is not a number from 0 to 1000000"},
		{"ike:\n  cookie_threshold_ip: 2.5\n", "setting ike.cookie_threshold_ip: 2.5 is not a number"},
		{"ike:\n  cookie_threshold: 100\n  half_open_limit: 100\n", "setting ike.cookie_threshold: 100 is not below ike.half_open_limit (100)"},
		{"ike:\n  cookie_threshhold: 10\n", "unknown settings ike.cookie_threshhold"},
	} {
		_, err := loadSettingsText(t, c.yaml)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want %q", c.yaml, err, c.want)
		}
	}
	// Cookies off: any limit is fine.
	if _, err := loadSettingsText(t, "ike:\n  cookie_threshold: 0\n  half_open_limit: 1\n"); err != nil {
		t.Error(err)
	}
}
