package metrics

import (
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/ike"
	"github.com/ipsecgw/ipsecgw/ike/shared"
)

type fakeSource struct {
	conns []control.ConnStatus
	stats control.Stats
}

func (f *fakeSource) Status() []control.ConnStatus { return f.conns }
func (f *fakeSource) Stats() control.Stats         { return f.stats }

func sample() *fakeSource {
	return &fakeSource{
		conns: []control.ConnStatus{
			{Name: "up", State: control.StateEstablished, IKE: &control.IKEStatus{}, Children: []control.ChildStatus{{}},
				Usage: control.Usage{BytesIn: 1000, PacketsIn: 10, BytesOut: 2000, PacketsOut: 20, LastInboundSeconds: 3}},
			{Name: "down", State: control.StatePhase1Failed, Children: []control.ChildStatus{}, Usage: control.Usage{LastInboundSeconds: -1}},
		},
		stats: control.Stats{
			Dataplane: control.DataplaneStats{TxPackets: 20, TxBytes: 3000, RxPackets: 10, RxBytes: 1000,
				Drops: map[string]uint64{"no_sa": 2, "replay": 0}},
			IKE: control.GlobalStatus{IKESAs: 1, HalfOpenLimit: 10000, CookiesSent: 4,
				Drops: map[string]uint64{"unknown_spi": 7, "auth_failed": 0}},
			Conns: []control.ConnStats{{Name: "up", Drops: map[string]uint64{"replay": 1}}},
		},
	}
}

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestScrape: every configured conn has its series (a down one with up
// 0), the usage, drops and daemon-wide counters are there, and the
// events counted rekeys, DPD timeouts, failures and round trips.
func TestScrape(t *testing.T) {
	m := New(sample(), BuildInfo{Version: "v1.2.3", Commit: "abc"})
	evs := make(chan ike.Event, 10)
	evs <- shared.ExchangeDone{Names: []string{"up"}, Exchange: "IKE_SA_INIT", RTT: 3 * time.Millisecond}
	evs <- shared.ExchangeDone{Names: []string{"up"}, Exchange: "INFORMATIONAL", DPD: true, TimedOut: true, Retransmits: 5}
	evs <- shared.ChildRekeyed{Conn: "up"}
	evs <- shared.ChildRekeyed{Conn: "up"}
	evs <- shared.IKERekeyed{Names: []string{"up"}}
	evs <- shared.Failure{Conn: "down", State: ike.StatePhase1Failed, Cause: shared.CauseAuthFailed}
	evs <- shared.Failure{Conn: "up", State: ike.StateDown, Cause: shared.CauseAdmin}
	close(evs)
	m.Observe(evs)
	out := scrape(t, m)
	for _, want := range []string{
		`ipsecgw_conn_up{conn="up"} 1`,
		`ipsecgw_conn_up{conn="down"} 0`,
		`ipsecgw_conn_state{conn="down",state="phase1-failed"} 1`,
		`ipsecgw_conn_state{conn="down",state="established"} 0`,
		`ipsecgw_conn_ike_sas{conn="up"} 1`,
		`ipsecgw_conn_child_sas{conn="down"} 0`,
		`ipsecgw_conn_bytes_total{conn="up",direction="in"} 1000`,
		`ipsecgw_conn_packets_total{conn="up",direction="out"} 20`,
		`ipsecgw_conn_drops_total{conn="up",reason="replay"} 1`,
		`ipsecgw_conn_last_inbound_seconds{conn="up"} 3`,
		`ipsecgw_conn_child_rekeys_total{conn="up"} 2`,
		`ipsecgw_conn_ike_rekeys_total{conn="up"} 1`,
		`ipsecgw_conn_dpd_timeouts_total{conn="up"} 1`,
		`ipsecgw_conn_failures_total{cause="auth-failed",conn="down"} 1`,
		`ipsecgw_ike_exchange_rtt_seconds_bucket{conn="up",exchange="IKE_SA_INIT",le="0.005"} 1`,
		`ipsecgw_ike_exchange_rtt_seconds_count{conn="up",exchange="IKE_SA_INIT"} 1`,
		`ipsecgw_ike_cookies_sent_total 4`,
		`ipsecgw_ike_half_open_limit 10000`,
		`ipsecgw_ike_queue_drops_total{queue="ike_sa"} 0`,
		`ipsecgw_ike_drops_total{reason="unknown_spi"} 7`,
		`ipsecgw_ike_drops_total{reason="auth_failed"} 0`,
		`ipsecgw_dataplane_drops_total{reason="no_sa"} 2`,
		`ipsecgw_dataplane_bytes_total{direction="out"} 3000`,
		`ipsecgw_build_info{commit="abc",goversion="`,
		`go_goroutines `,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
	for _, bad := range []string{`ipsecgw_conn_last_inbound_seconds{conn="down"}`, `cause="admin"`, `exchange="INFORMATIONAL"`} {
		if strings.Contains(out, bad) {
			t.Errorf("scrape has %q", bad)
		}
	}
	if t.Failed() {
		t.Log(out)
	}
}

// TestRemovedConnLosesSeries: a conn gone after a reload has no series
// left, event-fed ones included.
func TestRemovedConnLosesSeries(t *testing.T) {
	src := sample()
	m := New(src, BuildInfo{})
	m.observe(shared.ExchangeDone{Names: []string{"down"}, Exchange: "IKE_AUTH", RTT: time.Millisecond})
	m.observe(shared.ChildRekeyed{Conn: "down"})
	if out := scrape(t, m); !strings.Contains(out, `conn="down",exchange="IKE_AUTH"`) {
		t.Fatal("no round trip series before the reload")
	}
	src.conns = src.conns[:1]
	if out := scrape(t, m); strings.Contains(out, `conn="down"`) {
		t.Errorf("series of a removed conn remain:\n%s", out)
	}
}

// TestPromtoolCheckMetrics: Prometheus' own linter finds nothing wrong
// with the exposition (names, units, _total counters, help texts).
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("IPSECGW_REQUIRE_INTEROP") == "1" {
			t.Fatal("promtool not installed (Debian package prometheus; scripts/install-deps.sh installs it)")
		}
		t.Skip("promtool not installed (Debian package prometheus)")
	}
	m := New(sample(), BuildInfo{Version: "v1", Commit: "c"})
	m.observe(shared.ExchangeDone{Names: []string{"up"}, Exchange: "IKE_AUTH", RTT: time.Millisecond})
	m.observe(shared.Failure{Conn: "up", Cause: shared.CausePeerDead})
	out := scrape(t, m)
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(out)
	res, err := cmd.CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(res))) != 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, res)
	}
}
