package control

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

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
