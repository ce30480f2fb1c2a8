package daemon

import (
	"fmt"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/ike"
	"github.com/ipsecgw/ipsecgw/ike/shared"
	"github.com/ipsecgw/ipsecgw/install"
)

func TestHealthDPD(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	now := t0
	h := newHealth()
	evs := make(chan ike.Event, 4)
	evs <- shared.ExchangeDone{Names: []string{"a"}, Exchange: "INFORMATIONAL", DPD: true, RTT: 1500 * time.Microsecond}
	evs <- shared.ExchangeDone{Names: []string{"b"}, Exchange: "INFORMATIONAL", DPD: true, TimedOut: true, Retransmits: 5}
	// Not a DPD check: ignored.
	evs <- shared.ExchangeDone{Names: []string{"c"}, Exchange: "CREATE_CHILD_SA", RTT: time.Millisecond}
	close(evs)
	h.run(evs, func() time.Time { return now })
	now = t0.Add(7 * time.Second)

	dpd := config.Conn{DPDAction: config.ActionRestart, DPDDelay: 30 * time.Second}
	cases := []struct {
		conn config.Conn
		want control.Health
	}{
		{withName(dpd, "a"), control.Health{LastInboundSeconds: 2, DPD: control.DPDOK, DPDDelaySeconds: 30, LastDPDSeconds: 7, LastDPDRTTMillis: 1.5}},
		{withName(dpd, "b"), control.Health{LastInboundSeconds: 2, DPD: control.DPDTimeout, DPDDelaySeconds: 30, LastDPDSeconds: 7, LastDPDRTTMillis: -1}},
		{withName(dpd, "c"), control.Health{LastInboundSeconds: 2, DPD: control.DPDIdle, DPDDelaySeconds: 30, LastDPDSeconds: -1, LastDPDRTTMillis: -1}},
		{withName(config.Conn{}, "a"), control.Health{LastInboundSeconds: 2, DPD: control.DPDOff, LastDPDSeconds: -1, LastDPDRTTMillis: -1}},
	}
	for _, c := range cases {
		got, _ := h.view(c.conn, install.Usage{LastInbound: now.Add(-2 * time.Second)}, now)
		if got != c.want {
			t.Errorf("%s (dpdaction %s): %+v, want %+v", c.conn.Name, c.conn.DPDAction, got, c.want)
		}
	}
	// A Gateway of a unit test has no health: the configured DPD, no results.
	var none *health
	if got, bw := none.view(withName(dpd, "a"), install.Usage{}, now); got.DPD != control.DPDIdle || got.LastInboundSeconds != -1 || bw != (control.Bandwidth{}) {
		t.Errorf("nil health: %+v %+v", got, bw)
	}
}

func withName(c config.Conn, name string) config.Conn {
	c.Name = name
	return c
}

func TestHealthBandwidth(t *testing.T) {
	t0 := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	h := newHealth()
	c := config.Conn{Name: "a"}
	usage := func(in, out uint64) func(map[string]install.Usage) {
		return func(into map[string]install.Usage) {
			clear(into)
			into["a"] = install.Usage{BytesIn: in, BytesOut: out}
		}
	}
	h.sample(t0, usage(1000, 500))
	h.sample(t0.Add(2*time.Second), usage(9000, 900))
	if _, bw := h.view(c, install.Usage{}, t0); bw != (control.Bandwidth{}) {
		t.Errorf("rate before the first interval: %+v", bw)
	}
	h.sample(t0.Add(5*time.Second), usage(51000, 10500))
	_, bw := h.view(c, install.Usage{}, t0)
	if want := (control.Bandwidth{InBytesPerSecond: 10000, OutBytesPerSecond: 2000, IntervalSeconds: 5}); bw != want {
		t.Errorf("rate %+v, want %+v", bw, want)
	}
	// The next interval starts where the last ended.
	h.sample(t0.Add(11*time.Second), usage(51000, 16500))
	_, bw = h.view(c, install.Usage{}, t0)
	if want := (control.Bandwidth{InBytesPerSecond: 0, OutBytesPerSecond: 1000, IntervalSeconds: 6}); bw != want {
		t.Errorf("second interval %+v, want %+v", bw, want)
	}
}

// TestHealthSampleAllocs: once its maps have grown, sampling a thousand
// conns every second and computing their rates every interval allocates
// nothing: an idle hub's sampler must not keep the collector busy.
func TestHealthSampleAllocs(t *testing.T) {
	h := newHealth()
	src := map[string]install.Usage{}
	for i := range 1000 {
		src[fmt.Sprintf("conn%d", i)] = install.Usage{BytesIn: uint64(i)}
	}
	read := func(into map[string]install.Usage) {
		clear(into)
		for k, v := range src {
			into[k] = v
		}
	}
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	step := func() {
		now = now.Add(time.Second)
		h.sample(now, read)
	}
	for range 20 {
		step()
	}
	if allocs := testing.AllocsPerRun(30, step); allocs != 0 {
		t.Errorf("a sample of 1,000 conns allocates %.1f times", allocs)
	}
	if _, bw := h.view(config.Conn{Name: "conn7"}, install.Usage{}, now); bw.IntervalSeconds != 5 {
		t.Errorf("conn7's rate %+v, want one over a 5 s interval", bw)
	}
}
