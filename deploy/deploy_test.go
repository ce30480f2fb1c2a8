package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/ike"
	"github.com/ipsecgw/ipsecgw/ike/shared"
	"github.com/ipsecgw/ipsecgw/internal/lab"
	"github.com/ipsecgw/ipsecgw/metrics"
)

// need finds a tool: a skip when missing, a failure in CI
// (IPSECGW_REQUIRE_INTEROP=1), where scripts/install-deps.sh installs it.
func need(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("IPSECGW_REQUIRE_INTEROP") == "1" {
			t.Fatalf("%s not installed", tool)
		}
		t.Skipf("%s not installed", tool)
	}
	return p
}

// unitWithBinary writes the unit with ExecStart pointing at a freshly
// built ipsecgw (verify checks that the command exists).
func unitWithBinary(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin, err := lab.BuildIPsecGW(dir)
	if err != nil {
		t.Fatal(err)
	}
	unit, err := os.ReadFile(filepath.Join("systemd", "ipsecgw.service"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ipsecgw.service")
	text := strings.ReplaceAll(string(unit), "/usr/local/sbin/ipsecgw", bin)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSystemdUnit: systemd-analyze verify finds nothing to complain
// about, and the offline security analysis rates the exposure at most
// 2.0 (Debian's strongSwan unit: 9.6).
func TestSystemdUnit(t *testing.T) {
	sa := need(t, "systemd-analyze")
	unit := unitWithBinary(t)
	out, err := exec.Command(sa, "verify", unit).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command(sa, "security", "--offline=true", unit).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for ipsecgw.service: ([0-9.]+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	score, _ := strconv.ParseFloat(string(m[1]), 64)
	t.Logf("systemd-analyze security --offline=true: exposure %.1f", score)
	if score > 2.0 {
		t.Errorf("exposure %.1f > 2.0:\n%s", score, out)
	}
	text, _ := os.ReadFile(unit)
	for _, want := range []string{"Type=notify", "WatchdogSec=", "ExecReload=/bin/kill -HUP $MAINPID", "User=ipsecgw",
		"AmbientCapabilities=CAP_NET_ADMIN CAP_NET_BIND_SERVICE CAP_NET_RAW", "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_BIND_SERVICE CAP_NET_RAW",
		"RuntimeDirectory=ipsecgw", "ConfigurationDirectory=ipsecgw", "DeviceAllow=/dev/net/tun", "RestrictAddressFamilies=", "ProtectSystem=strict"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("the unit lacks %q", want)
		}
	}
}

// TestDashboardMetrics: every ipsecgw_ metric the Grafana dashboard
// queries is one the metrics endpoint exports.
func TestDashboardMetrics(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("grafana", "ipsecgw-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard JSON: %v", err)
	}
	exported := exportedNames(t)
	name := regexp.MustCompile(`ipsecgw_[a-z_]+`)
	used := 0
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			for _, n := range name.FindAllString(tg.Expr, -1) {
				used++
				if !slices.Contains(exported, strings.TrimSuffix(n, "_bucket")) {
					t.Errorf("panel %q queries %s, which ipsecgw does not export", p.Title, n)
				}
			}
		}
	}
	if used < 10 {
		t.Errorf("the dashboard queries only %d metrics", used)
	}
}

// exportedNames scrapes a metrics endpoint with one conn and lists the
// metric families.
func exportedNames(t *testing.T) []string {
	m := metrics.New(fakeSource{}, metrics.BuildInfo{})
	// Series that exist once something happened: a failure, a round trip.
	evs := make(chan ike.Event, 2)
	evs <- shared.Failure{Conn: "a", Cause: shared.CauseTimeout}
	evs <- shared.ExchangeDone{Names: []string{"a"}, Exchange: "IKE_AUTH", RTT: time.Millisecond}
	close(evs)
	m.Observe(evs)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var names []string
	for line := range strings.Lines(string(body)) {
		if f := strings.Fields(line); len(f) >= 3 && f[0] == "#" && f[1] == "TYPE" {
			names = append(names, f[2])
		}
	}
	return names
}

type fakeSource struct{}

func (fakeSource) Status() []control.ConnStatus {
	return []control.ConnStatus{{Name: "a", State: control.StateDown, Usage: control.Usage{LastInboundSeconds: 1}}}
}
func (fakeSource) Stats() control.Stats {
	return control.Stats{Dataplane: control.DataplaneStats{Drops: map[string]uint64{"no_sa": 1}},
		Conns: []control.ConnStats{{Name: "a", Drops: map[string]uint64{"no_sa": 1}}}}
}

// TestKubernetesExample: the DaemonSet runs non-root without privileged
// mode, adds NET_ADMIN, mounts /dev/net/tun and the config read-only, and
// probes the daemon over its control socket with the image's binary.
func TestKubernetesExample(t *testing.T) {
	f, err := os.Open(filepath.Join("kubernetes", "ipsecgw.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var kinds []string
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("YAML: %v", err)
		}
		kinds = append(kinds, doc["kind"].(string))
		if doc["kind"] != "DaemonSet" {
			continue
		}
		b, _ := json.Marshal(doc)
		text := string(b)
		for _, want := range []string{`"runAsNonRoot":true`, `"allowPrivilegeEscalation":false`, `"NET_ADMIN"`, `"drop":["ALL"]`,
			`"path":"/dev/net/tun"`, `"readOnly":true`, `"secretName":"ipsecgw-config"`, `"readOnlyRootFilesystem":true`,
			`"livenessProbe":{"exec":{"command":["/ipsecgw","status","--socket","/run/ipsecgw/ipsecgw.sock"]}`} {
			if !strings.Contains(text, want) {
				t.Errorf("DaemonSet lacks %s", want)
			}
		}
		if strings.Contains(text, `"privileged":true`) {
			t.Error("DaemonSet runs privileged")
		}
	}
	if !slices.Equal(kinds, []string{"ConfigMap", "DaemonSet"}) {
		t.Errorf("kinds %v", kinds)
	}
}

// TestContainerfile: a static binary in an empty image, run as non-root,
// with the socket directory it needs.
func TestContainerfile(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("container", "Containerfile"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	for _, want := range []string{"\nFROM scratch\n", "\nUSER 65532:65532\n", "ENTRYPOINT [\"/ipsecgw\"]",
		"--cap-add NET_ADMIN --device /dev/net/tun", "/run/ipsecgw"} {
		if !strings.Contains(text, want) {
			t.Errorf("Containerfile lacks %q", want)
		}
	}
	// Built offline: a base image from a registry cannot be pulled here, nor
	// should a gateway image depend on one.
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "FROM ") && line != "FROM scratch" {
			t.Errorf("Containerfile pulls a base image: %q", line)
		}
	}
}
