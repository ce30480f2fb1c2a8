package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/ike"
	"github.com/ipsecgw/ipsecgw/settings"
)

// countingIKE is a fakeIKE with the Manager's counters.
type countingIKE struct {
	fakeIKE
	c ike.Counters
}

func (f *countingIKE) Counters() ike.Counters { return f.c }

// TestGlobalStatus: the daemon's global section carries the IKE Manager's
// counters, the sockets' queue drops and the DoS settings.
func TestGlobalStatus(t *testing.T) {
	fi := &countingIKE{c: ike.Counters{IKESAs: 7, HalfOpen: 5, HalfOpenLimit: 200, CookiesSent: 1234, HalfOpenRefused: 17, QueueDrops: 3}}
	d := &Daemon{ike: fi, ikeSettings: settings.IKESettings{CookieThreshold: 30, CookieThresholdIP: 3, HalfOpenLimit: 200},
		ikeQueueDrops: func() uint64 { return 9 }}
	want := GlobalStatus{IKESAs: 7, HalfOpen: 5, HalfOpenLimit: 200, CookieThreshold: 30, CookieThresholdIP: 3,
		CookiesSent: 1234, HalfOpenRefused: 17, IKEQueueDrops: 9, IKESAQueueDrops: 3}
	if got := d.Global(); got != want {
		t.Errorf("Global() = %+v, want %+v", got, want)
	}
	// Without counters (an IKE fake) the settings still show.
	d = &Daemon{ike: &fakeIKE{}, ikeSettings: settings.IKESettings{HalfOpenLimit: 10000}}
	if got := d.Global(); got != (GlobalStatus{HalfOpenLimit: 10000}) {
		t.Errorf("Global() without counters = %+v", got)
	}
}

// TestGlobalStatusSchema pins the keys of the global section (documented
// in the README): every key is present even when zero.
func TestGlobalStatusSchema(t *testing.T) {
	b, err := json.Marshal(GlobalStatus{})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	want := []string{"cookie_threshold", "cookie_threshold_ip", "cookies_sent", "half_open", "half_open_limit",
		"half_open_refused", "ike_queue_drops", "ike_sa_queue_drops", "ike_sas"}
	if !slices.Equal(keys, want) {
		t.Errorf("global keys %v, want %v", keys, want)
	}
}

// TestControlStatusGlobal: the status response carries the global section
// next to the conns, and StatusAll returns it.
func TestControlStatusGlobal(t *testing.T) {
	g := GlobalStatus{HalfOpen: 2, HalfOpenLimit: 10, CookiesSent: 5, HalfOpenRefused: 1}
	_, path := startServer(t, &fakeBackend{conns: sampleStatus(), global: g})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	conns, got, err := cl.StatusAll(ctx)
	if err != nil || len(conns) != 3 || got != g {
		t.Fatalf("StatusAll: %d conns, %+v, %v; want 3 conns, %+v", len(conns), got, err, g)
	}
}

func TestWriteGlobal(t *testing.T) {
	var buf bytes.Buffer
	if err := WriteGlobal(&buf, GlobalStatus{IKESAs: 4, HalfOpen: 3, HalfOpenLimit: 10000, CookieThreshold: 30, CookieThresholdIP: 3,
		CookiesSent: 12, HalfOpenRefused: 2, IKEQueueDrops: 1, IKESAQueueDrops: 5}); err != nil {
		t.Fatal(err)
	}
	want := "IKE: 4 SAs, 3/10000 half-open; cookies from 30 half-open or 3 per address: 12 sent; 2 refused at the half-open limit; queue drops 1 (sockets) 5 (IKE SAs)\n"
	if buf.String() != want {
		t.Errorf("got  %q\nwant %q", buf.String(), want)
	}
	buf.Reset()
	if err := WriteGlobal(&buf, GlobalStatus{HalfOpenLimit: 5}); err != nil || !strings.Contains(buf.String(), "cookies off") {
		t.Errorf("cookies off: %q %v", buf.String(), err)
	}
}

func TestOffIfZero(t *testing.T) {
	if offIfZero(0) != -1 || offIfZero(30) != 30 {
		t.Error("offIfZero: 0 must turn a threshold off, others pass through")
	}
}
