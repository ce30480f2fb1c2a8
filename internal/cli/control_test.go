package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/ipsecgw/ipsecgw/control"
)

// fakeBackend plays a daemon whose conns reach a fixed state when brought up.
type fakeBackend struct {
	mu    sync.Mutex
	conns []control.ConnStatus
	// onUp is the state and reason a conn takes when brought up.
	onUp, reason string
	global       control.GlobalStatus
	// What the other commands answer (ops_test.go).
	reload    control.ReloadResult
	reloadErr error
	sas       []control.SAEntry
	stats     control.Stats
	events    []control.Event
	keys      control.KeyExport
	resets    []string
}

func (f *fakeBackend) Reset(name string) error {
	f.mu.Lock()
	f.resets = append(f.resets, name)
	f.mu.Unlock()
	if !f.set(name, control.StateConnecting, "") {
		return os.ErrNotExist
	}
	return nil
}

func (f *fakeBackend) Reload() (control.ReloadResult, error)  { return f.reload, f.reloadErr }
func (f *fakeBackend) ListSAs() []control.SAEntry             { return f.sas }
func (f *fakeBackend) Stats() control.Stats                   { return f.stats }
func (f *fakeBackend) ExportKeys() (control.KeyExport, error) { return f.keys, nil }

func (f *fakeBackend) Events(ctx context.Context) <-chan control.Event {
	ch := make(chan control.Event)
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

func (f *fakeBackend) Global() control.GlobalStatus { return f.global }

func (f *fakeBackend) Status() []control.ConnStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]control.ConnStatus(nil), f.conns...)
}

func (f *fakeBackend) set(name, state, reason string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.conns {
		if f.conns[i].Name == name {
			f.conns[i].State, f.conns[i].LastError = state, reason
			return true
		}
	}
	return false
}

func (f *fakeBackend) Up(name string) error {
	if !f.set(name, f.onUp, f.reason) {
		return os.ErrNotExist
	}
	return nil
}

func (f *fakeBackend) Down(name string) error {
	if !f.set(name, control.StateDown, "") {
		return os.ErrNotExist
	}
	return nil
}

func serveFake(t *testing.T, fb *fakeBackend) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "isgw-cli")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "ctl.sock")
	s, err := control.Listen(path, fb, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return path
}

func twoConns() []control.ConnStatus {
	return []control.ConnStatus{
		{Name: "a", State: control.StateDown, Auto: "add", Version: "ikev2", Remote: "198.51.100.2", Children: []control.ChildStatus{}},
		{Name: "b", State: control.StateEstablished, Auto: "start", Version: "ikev2", Remote: "198.51.100.3",
			IKE:      &control.IKEStatus{Proposal: "aes128-sha256-modp2048"},
			Children: []control.ChildStatus{{Protocol: "esp", Proposal: "aes128gcm16", SPIIn: "c0000001", SPIOut: "c0000002"}}},
	}
}

func TestStatusCommand(t *testing.T) {
	path := serveFake(t, &fakeBackend{conns: twoConns()})
	var out, errOut bytes.Buffer
	if code := Main([]string{"status", "--socket", path}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	for _, want := range []string{"NAME", "a ", "down", "b ", "established", "aes128gcm16  spi in c0000001 out c0000002"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if code := Main([]string{"status", "--json", "--socket", path}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var got []control.ConnStatus
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("status --json is not a JSON array of conns: %v\n%s", err, out.String())
	}
	if len(got) != 2 || got[0].Name != "a" || got[1].State != "established" {
		t.Errorf("status --json: %+v", got)
	}
}

// TestStatusGlobal: the table ends with the IKE counters line, and
// --json --global wraps the conns with the global section.
func TestStatusGlobal(t *testing.T) {
	g := control.GlobalStatus{IKESAs: 3, HalfOpen: 2, HalfOpenLimit: 10000, CookieThreshold: 30, CookieThresholdIP: 3, CookiesSent: 4321, HalfOpenRefused: 7}
	path := serveFake(t, &fakeBackend{conns: twoConns(), global: g})
	var out, errOut bytes.Buffer
	if code := Main([]string{"status", "--socket", path}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "IKE: 3 SAs, 2/10000 half-open; cookies from 30 half-open or 3 per address: 4321 sent; 7 refused") {
		t.Errorf("status lacks the IKE counters line:\n%s", out.String())
	}
	out.Reset()
	if code := Main([]string{"status", "--json", "--global", "--socket", path}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	var got struct {
		Global control.GlobalStatus `json:"global"`
		Conns  []control.ConnStatus `json:"conns"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("status --json --global: %v\n%s", err, out.String())
	}
	if !reflect.DeepEqual(got.Global, g) || len(got.Conns) != 2 {
		t.Errorf("status --json --global: %+v", got)
	}
}

func TestUpWaitsForEstablished(t *testing.T) {
	fb := &fakeBackend{conns: twoConns(), onUp: control.StateEstablished}
	path := serveFake(t, fb)
	var out, errOut bytes.Buffer
	if code := Main([]string{"up", "a", "--socket", path}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "connection a established") {
		t.Errorf("up output %q", out.String())
	}
	out.Reset()
	if code := Main([]string{"down", "a", "--socket", path}, &out, &errOut); code != 0 {
		t.Fatalf("down exit %d: %s", code, errOut.String())
	}
	if fb.Status()[0].State != control.StateDown {
		t.Error("down did not reach the backend")
	}
}

func TestUpReportsFailure(t *testing.T) {
	fb := &fakeBackend{conns: twoConns(), onUp: control.StatePhase1Failed, reason: "AUTHENTICATION_FAILED: check the PSK"}
	path := serveFake(t, fb)
	var out, errOut bytes.Buffer
	if code := Main([]string{"up", "a", "--socket", path}, &out, &errOut); code != 1 {
		t.Fatalf("exit %d, want 1: %s", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), "phase1-failed: AUTHENTICATION_FAILED: check the PSK") {
		t.Errorf("up stderr %q", errOut.String())
	}
}

func TestControlCommandsNeedADaemon(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nobody.sock")
	for _, args := range [][]string{{"status"}, {"up", "x"}, {"down", "x"}} {
		var out, errOut bytes.Buffer
		code := Main(append(args, "--socket", path), &out, &errOut)
		if code == 0 || !strings.Contains(errOut.String(), path) {
			t.Errorf("%v: exit %d, stderr %q", args, code, errOut.String())
		}
	}
	var out, errOut bytes.Buffer
	fb := &fakeBackend{conns: twoConns()}
	p := serveFake(t, fb)
	if code := Main([]string{"up", "nope", "--socket", p}, &out, &errOut); code == 0 {
		t.Error("up of an unknown conn exited 0")
	}
}

// TestSocketFromSettings: without --socket the control commands use the
// control_socket of the settings file, as the daemon does.
func TestSocketFromSettings(t *testing.T) {
	path := serveFake(t, &fakeBackend{conns: twoConns()})
	settings := filepath.Join(t.TempDir(), "ipsecgw.yaml")
	if err := os.WriteFile(settings, []byte("control_socket: "+path+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := Main([]string{"status", "--settings", settings}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "established") {
		t.Errorf("status via the settings' socket: %q", out.String())
	}
	t.Setenv("IPSECGW_CONTROL_SOCKET", path)
	out.Reset()
	if code := Main([]string{"status", "--settings", ""}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "established") {
		t.Fatalf("status via IPSECGW_CONTROL_SOCKET: exit %d: %s %s", code, out.String(), errOut.String())
	}
}
