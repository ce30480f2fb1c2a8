package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"strings"
	"testing"
	"time"
)

// TestResetReloadStats: the new commands reach the backend and come back
// with their results; a refused reload is an error with the reason.
func TestResetReloadStats(t *testing.T) {
	fb := &fakeBackend{conns: sampleStatus(), reload: ReloadResult{Conns: 3, Changes: []ConnChange{{Conn: "net-net", Kind: "changed", Impact: "new CHILD SA", Fields: []string{"rightsubnet"}}}}}
	_, path := startServer(t, fb)
	ctx := context.Background()
	cl, err := Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.Reset(ctx, "net-net"); err != nil {
		t.Fatal(err)
	}
	if err := cl.Reset(ctx, ""); err == nil || !strings.Contains(err.Error(), "missing connection name") {
		t.Errorf("reset without a name: %v", err)
	}
	r, err := cl.Reload(ctx)
	if err != nil || r.Conns != 3 || len(r.Changes) != 1 || r.Warnings == nil {
		t.Errorf("reload: %+v %v", r, err)
	}
	fb.reloadErr = errors.New("ipsec.conf:3: unknown keyword")
	if _, err := cl.Reload(ctx); err == nil || !strings.Contains(err.Error(), "ipsec.conf:3") {
		t.Errorf("refused reload: %v", err)
	}
	st, err := cl.Stats(ctx)
	if err != nil || st.Conns == nil {
		t.Errorf("stats: %+v %v", st, err)
	}
	sas, err := cl.ListSAs(ctx)
	if err != nil || sas == nil || len(sas) != 0 {
		t.Errorf("list-sas: %+v %v", sas, err)
	}
	if got := strings.Join(fb.calls, ";"); got != "reset net-net" {
		t.Errorf("backend calls %q", got)
	}
}

// TestEventsStream: an events client gets the OK line, then one line per
// event; closing the connection ends the backend's stream.
func TestEventsStream(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	fb := &fakeBackend{events: []Event{
		{Time: t0, Type: "state", Conns: []string{"a"}, From: "down", State: "connecting"},
		{Time: t0, Type: "child-up", Conns: []string{"a"}, SPIIn: "c0000001"},
	}}
	_, path := startServer(t, fb)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cl, err := Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	var got []Event
	err = cl.Events(ctx, func(e Event) bool {
		got = append(got, e)
		return len(got) < 2
	})
	cl.Close()
	if err != nil || len(got) != 2 || got[1].SPIIn != "c0000001" || got[0].From != "down" {
		t.Fatalf("events %+v, %v", got, err)
	}
	// Raw protocol: first line ok, then events; the server ends the
	// stream when we close.
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Write([]byte(`{"cmd":"events"}` + "\n")); err != nil {
		t.Fatal(err)
	}
	rd := bufio.NewReader(c)
	for i := range 3 {
		line, err := rd.ReadBytes('\n')
		if err != nil {
			t.Fatal(err)
		}
		var resp Response
		if err := json.Unmarshal(line, &resp); err != nil || !resp.OK || (i == 0) != (resp.Event == nil) {
			t.Fatalf("line %d: %s", i, line)
		}
	}
	c.Close()
}

// TestExportKeysRootOnly: keys go to a root client only, and the refusal
// says why.
func TestExportKeysRootOnly(t *testing.T) {
	fb := &fakeBackend{keys: KeyExport{ESPSA: "line\n", ChildSAs: 1}}
	_, path := startServer(t, fb)
	ctx := context.Background()
	defer func() { peerCredOf = peerCred }()
	for _, tc := range []struct {
		uid  uint32
		ok   bool
		want string
	}{{0, true, ""}, {1000, false, "only root may export keys (you are uid 1000)"}} {
		peerCredOf = func(net.Conn) (uint32, int32, error) { return tc.uid, 42, nil }
		cl, err := Dial(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		k, err := cl.ExportKeys(ctx)
		cl.Close()
		if tc.ok && (err != nil || k.ESPSA != "line\n" || k.Unsupported == nil) {
			t.Errorf("uid %d: %+v %v", tc.uid, k, err)
		}
		if !tc.ok && (err == nil || !strings.Contains(err.Error(), tc.want) || k.ESPSA != "") {
			t.Errorf("uid %d: %+v %v", tc.uid, k, err)
		}
	}
	// The real SO_PEERCRED of this process.
	peerCredOf = peerCred
	cl, err := Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	// Seen from the client the peer is the server: this very process.
	uid, pid, err := peerCred(cl.c)
	if err != nil || uid != uint32(os.Getuid()) || int(pid) != os.Getpid() {
		t.Errorf("SO_PEERCRED: uid %d pid %d (%v), want %d %d", uid, pid, err, os.Getuid(), os.Getpid())
	}
}
