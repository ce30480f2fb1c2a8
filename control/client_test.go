package control

import (
	"context"
	"reflect"
	"testing"
	"time"
)

// TestControlStatusGlobal: the status response carries the global section
// next to the conns, and StatusAll returns it.
func TestControlStatusGlobal(t *testing.T) {
	g := GlobalStatus{HalfOpen: 2, HalfOpenLimit: 10, CookiesSent: 5, HalfOpenRefused: 1,
		Drops: map[string]uint64{"half_open_limit": 1, "unknown_spi": 3}}
	_, path := startServer(t, &fakeBackend{conns: sampleStatus(), global: g})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	conns, got, err := cl.StatusAll(ctx)
	if err != nil || len(conns) != 3 || !reflect.DeepEqual(got, g) {
		t.Fatalf("StatusAll: %d conns, %+v, %v; want 3 conns, %+v", len(conns), got, err, g)
	}
}
