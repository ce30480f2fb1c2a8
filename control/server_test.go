package control

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeBackend records calls and serves a fixed status.
type fakeBackend struct {
	mu     sync.Mutex
	conns  []ConnStatus
	global GlobalStatus
	calls  []string
	// reload is what Reload answers, reloadErr its error.
	reload    ReloadResult
	reloadErr error
	// events are sent to every Events subscriber, then the stream stays
	// open until its context ends.
	events []Event
	keys   KeyExport
}

func (f *fakeBackend) Global() GlobalStatus { return f.global }

func (f *fakeBackend) Status() []ConnStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.conns
}

func (f *fakeBackend) change(name, cmd, state string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, cmd+" "+name)
	for i := range f.conns {
		if f.conns[i].Name == name {
			f.conns[i].State = state
			return nil
		}
	}
	return fmt.Errorf("no connection named %q", name)
}

func (f *fakeBackend) Up(name string) error    { return f.change(name, "up", StateConnecting) }
func (f *fakeBackend) Down(name string) error  { return f.change(name, "down", StateDown) }
func (f *fakeBackend) Reset(name string) error { return f.change(name, "reset", StateConnecting) }

func (f *fakeBackend) Reload() (ReloadResult, error) { return f.reload, f.reloadErr }
func (f *fakeBackend) ListSAs() []SAEntry            { return nil }
func (f *fakeBackend) Stats() Stats                  { return Stats{IKE: f.global} }
func (f *fakeBackend) ExportKeys() (KeyExport, error) {
	return f.keys, nil
}

func (f *fakeBackend) Events(ctx context.Context) <-chan Event {
	ch := make(chan Event)
	go func() {
		defer close(ch)
		for _, e := range f.events {
			select {
			case ch <- e:
			case <-ctx.Done():
				return
			}
		}
		<-ctx.Done()
	}()
	return ch
}

func startServer(t *testing.T, b Backend) (*Server, string) {
	t.Helper()
	// Unix socket paths are limited to 108 bytes; t.TempDir can be long.
	dir, err := os.MkdirTemp("", "ipsecgw-ctl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "run", "ipsecgw.sock")
	s, err := Listen(path, b, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s, path
}

func TestControlRoundTrip(t *testing.T) {
	fb := &fakeBackend{conns: sampleStatus()}
	_, path := startServer(t, fb)

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode %v, want socket with 0660", fi.Mode())
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	got, err := cl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(sampleStatus())
	gotJSON, _ := json.Marshal(got)
	if !bytes.Equal(want, gotJSON) {
		t.Errorf("status round trip:\n got %s\nwant %s", gotJSON, want)
	}

	// Several requests on one connection, in order.
	if err := cl.Up(ctx, "road"); err != nil {
		t.Fatal(err)
	}
	if err := cl.Down(ctx, "net-net"); err != nil {
		t.Fatal(err)
	}
	err = cl.Up(ctx, "nope")
	if err == nil || !strings.Contains(err.Error(), `no connection named "nope"`) {
		t.Errorf("up of unknown conn: err %v", err)
	}
	got, err = cl.Status(ctx)
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, c := range got {
		states[c.Name] = c.State
	}
	if states["road"] != StateConnecting || states["net-net"] != StateDown {
		t.Errorf("states after up/down: %v", states)
	}
	fb.mu.Lock()
	calls := strings.Join(fb.calls, ",")
	fb.mu.Unlock()
	if calls != "up road,down net-net,up nope" {
		t.Errorf("backend calls %q", calls)
	}
}

func TestControlRejectsBadRequests(t *testing.T) {
	fb := &fakeBackend{conns: sampleStatus()}
	_, path := startServer(t, fb)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	cl, err := Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	for _, tc := range []struct {
		req  Request
		want string
	}{
		{Request{Cmd: "rekey"}, `unknown command "rekey"`},
		{Request{Cmd: CmdUp}, "missing connection name"},
		{Request{Cmd: CmdDown}, "missing connection name"},
	} {
		_, err := cl.Do(ctx, tc.req)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err %v, want %q", tc.req, err, tc.want)
		}
	}

	// Not JSON: an error answer, then the daemon hangs up.
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprintln(c, "status please")
	rd := bufio.NewReader(c)
	line, err := rd.ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil || resp.OK || !strings.Contains(resp.Error, "malformed request") {
		t.Errorf("answer to garbage: %q (%v)", line, err)
	}
	if _, err := rd.ReadByte(); err == nil {
		t.Error("connection still open after a malformed request")
	}

	// An over-long line: error answer and close, no unbounded buffering.
	c2, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	c2.SetDeadline(time.Now().Add(10 * time.Second))
	go c2.Write(bytes.Repeat([]byte("x"), MaxRequestLen+10))
	line, err = bufio.NewReader(c2).ReadBytes('\n')
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(line, &resp); err != nil || resp.OK {
		t.Errorf("answer to over-long line: %q (%v)", line, err)
	}
}

func TestControlSocketExclusive(t *testing.T) {
	fb := &fakeBackend{conns: sampleStatus()}
	s, path := startServer(t, fb)
	if _, err := Listen(path, fb, nil); err == nil || !strings.Contains(err.Error(), "another daemon") {
		t.Fatalf("second listener on a live socket: err %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file after Close: %v", err)
	}
	// A stale socket file (no listener) is replaced.
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	s2, err := Listen(path, fb, nil)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	s2.Close()
}
