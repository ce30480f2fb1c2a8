package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func corpus(parts ...string) string {
	return filepath.Join(append([]string{"..", "..", "testdata", "config"}, parts...)...)
}

// run calls the CLI with an absent default settings file so that the host's
// /etc/ipsecgw/ipsecgw.yaml cannot influence the test.
func run(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	t.Setenv("IPSECGW_SETTINGS", filepath.Join(t.TempDir(), "none.yaml"))
	var out, errOut bytes.Buffer
	args = append(args, "--settings", "")
	code := Main(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestConfigCheckGoodCorpus(t *testing.T) {
	dirs, _ := filepath.Glob(corpus("good", "*"))
	if len(dirs) == 0 {
		t.Fatal("no corpus")
	}
	for _, dir := range dirs {
		code, out, errOut := run(t, "config", "check", "--config", filepath.Join(dir, "ipsec.conf"), "--secrets", filepath.Join(dir, "ipsec.secrets"))
		if code != 0 {
			t.Errorf("%s: exit %d\n%s%s", dir, code, out, errOut)
		}
		if !strings.Contains(out, "connection(s) OK") || strings.Contains(out, ": error: ") {
			t.Errorf("%s: output %q", dir, out)
		}
	}
}

func TestConfigCheckBadCorpus(t *testing.T) {
	dirs, _ := filepath.Glob(corpus("bad", "*"))
	for _, dir := range dirs {
		conf := filepath.Join(dir, "ipsec.conf")
		code, out, errOut := run(t, "config", "check", "--config", conf, "--secrets", filepath.Join(dir, "ipsec.secrets"))
		if code != 1 {
			t.Errorf("%s: exit %d, want 1", dir, code)
		}
		expect, err := os.ReadFile(filepath.Join(dir, "expect"))
		if err != nil {
			t.Fatal(err)
		}
		// Every expected diagnostic is printed as FILE:LINE: message.
		for _, line := range strings.Split(strings.TrimSpace(string(expect)), "\n") {
			if !strings.Contains(out, filepath.Join(dir, line)) {
				t.Errorf("%s: output lacks %q:\n%s", dir, filepath.Join(dir, line), out)
			}
		}
		if !strings.Contains(errOut, "error(s)") {
			t.Errorf("%s: no summary on stderr: %q", dir, errOut)
		}
	}
}

func TestConfigShow(t *testing.T) {
	dir := corpus("good", "private-cloud")
	args := []string{"config", "show", "x", "--config", filepath.Join(dir, "ipsec.conf"), "--secrets", filepath.Join(dir, "ipsec.secrets")}
	code, out, errOut := run(t, args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	for _, want := range []string{"conn x", "ikev2", "198.51.100.20", "10.20.0.0/24", "192.168.100.0/24",
		"aes128-sha1-prfsha1-modp1024 (strict)", "aes128-sha1-modp1024-noesn (strict)", "action=hold delay=8s timeout=13s",
		"ikelifetime:     10800s", "lifetime:        3600s", "psk:             <redacted>", "auto:            start"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "cloud-console-generated-test-key") {
		t.Error("show prints the PSK")
	}
	code, out, _ = run(t, append(args, "--json")...)
	if code != 0 {
		t.Fatal(code)
	}
	var v struct {
		IKEVersion string     `json:"ike_version"`
		IKE        [][]string `json:"ike_proposals"`
		Lifetime   int        `json:"lifetime_seconds"`
		PSK        string     `json:"psk"`
		DPD        struct {
			Action   string `json:"action"`
			DelaySec int    `json:"delay_seconds"`
		} `json:"dpd"`
		Local struct {
			Subnets []string `json:"subnets"`
		} `json:"local"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if v.IKEVersion != "ikev2" || len(v.IKE) != 1 || strings.Join(v.IKE[0], "-") != "aes128-sha1-prfsha1-modp1024" ||
		v.Lifetime != 3600 || v.PSK != "<redacted>" || v.DPD.Action != "hold" || v.DPD.DelaySec != 8 || v.Local.Subnets[0] != "10.20.0.0/24" {
		t.Errorf("json: %+v", v)
	}
	if strings.Contains(out, "cloud-console-generated-test-key") {
		t.Error("JSON prints the PSK")
	}
	code, _, errOut = run(t, "config", "show", "nope", "--config", filepath.Join(dir, "ipsec.conf"), "--secrets", filepath.Join(dir, "ipsec.secrets"))
	if code == 0 || !strings.Contains(errOut, `no conn named "nope"`) {
		t.Errorf("unknown conn: %d %q", code, errOut)
	}
}

func TestConfigCheckMissingFile(t *testing.T) {
	code, out, _ := run(t, "config", "check", "--config", filepath.Join(t.TempDir(), "ipsec.conf"))
	if code != 1 || !strings.Contains(out, "ipsec.conf: error: cannot read") {
		t.Errorf("exit %d: %q", code, out)
	}
}
