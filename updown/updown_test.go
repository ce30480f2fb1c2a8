package updown

import (
	"bufio"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/ike"
	"github.com/ipsecgw/ipsecgw/ike/shared"
	"github.com/ipsecgw/ipsecgw/spd"
)

var (
	testIKE = ike.IKEInfo{Version: 2, Initiator: true, SPIi: 0x1111, SPIr: 0x2222,
		Local: netip.MustParseAddrPort("198.51.100.1:500"), Remote: netip.MustParseAddrPort("198.51.100.2:500"),
		LocalID: "198.51.100.1", RemoteID: "@peer.example"}
	testChild = ike.ChildInfo{InSPI: 0xc0000001, OutSPI: 0xc1000001, ReqID: 7, Protocol: "esp",
		LocalTS:  []spd.TS{spd.PrefixTS(netip.MustParsePrefix("10.1.0.0/24"))},
		RemoteTS: []spd.TS{spd.PrefixTS(netip.MustParsePrefix("10.2.0.0/16"))}}
)

func envMap(env []string) map[string]string {
	m := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// TestEnvironment checks every variable against the values strongSwan's
// updown plugin would give a script for the same CHILD SA.
func TestEnvironment(t *testing.T) {
	c := Conn{Name: "tun1", Script: "/x", Interface: "ipsec0", MarkIn: Mark{100, 0xffffffff}, MarkOut: Mark{100, 0xffffffff}, IfIDIn: 5, IfIDOut: 6}
	p := policies(testChild)
	if len(p) != 1 {
		t.Fatalf("policies = %v", p)
	}
	got := envMap(environment(true, c, testIKE, testChild, p[0], 7, 3, "/bin"))
	want := map[string]string{
		"PATH": "/bin", "PLUTO_VERSION": "1.1", "PLUTO_VERB": "up-client", "PLUTO_CONNECTION": "tun1",
		"PLUTO_INTERFACE": "ipsec0", "PLUTO_REQID": "7", "PLUTO_PROTO": "esp", "PLUTO_UNIQUEID": "3",
		"PLUTO_ME": "198.51.100.1", "PLUTO_MY_ID": "198.51.100.1", "PLUTO_MY_CLIENT": "10.1.0.0/24",
		"PLUTO_MY_PORT": "0", "PLUTO_MY_PROTOCOL": "0", "PLUTO_PEER": "198.51.100.2", "PLUTO_PEER_ID": "peer.example",
		"PLUTO_PEER_CLIENT": "10.2.0.0/16", "PLUTO_PEER_PORT": "0", "PLUTO_PEER_PROTOCOL": "0",
		"PLUTO_MARK_IN": "100/0xffffffff", "PLUTO_MARK_OUT": "100/0xffffffff", "PLUTO_IF_ID_IN": "5", "PLUTO_IF_ID_OUT": "6",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("unexpected variable %s=%s", k, got[k])
		}
	}

	// Behind a NAT: PLUTO_UDP_ENC is the peer's port; no marks: none set.
	nat := testIKE
	nat.NATLocal, nat.Remote = true, netip.MustParseAddrPort("198.51.100.2:4500")
	got = envMap(environment(false, Conn{Name: "tun1", Script: "/x"}, nat, testChild, p[0], 7, 3, "/bin"))
	if got["PLUTO_UDP_ENC"] != "4500" || got["PLUTO_VERB"] != "down-client" || got["PLUTO_INTERFACE"] != "unknown" {
		t.Errorf("NAT env: %v", got)
	}
	for _, k := range []string{"PLUTO_MARK_IN", "PLUTO_MARK_OUT", "PLUTO_IF_ID_IN", "PLUTO_IF_ID_OUT"} {
		if _, ok := got[k]; ok {
			t.Errorf("%s set without a mark", k)
		}
	}
}

func TestVerbAndSelectors(t *testing.T) {
	me4, me6 := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("2001:db8::1")
	cases := []struct {
		up    bool
		me    netip.Addr
		local spd.TS
		want  string
	}{
		{true, me4, spd.HostTS(me4), "up-host"},
		{false, me4, spd.HostTS(me4), "down-host"},
		{true, me6, spd.HostTS(me6), "up-host-v6"},
		{true, me4, spd.PrefixTS(netip.MustParsePrefix("0.0.0.0/0")), "up-client"},
		{false, me4, spd.PrefixTS(netip.MustParsePrefix("fd00::/64")), "down-client-v6"},
		// Another single address than ours is a client (a host behind us).
		{true, me4, spd.HostTS(netip.MustParseAddr("10.1.0.5")), "up-client"},
	}
	for _, c := range cases {
		if got := verb(c.up, c.me, c.local); got != c.want {
			t.Errorf("verb(%v, %v, %v) = %s, want %s", c.up, c.me, c.local, got, c.want)
		}
	}
	// A range that is not one prefix is widened to the next larger subnet;
	// ports print as strongSwan's.
	r := spd.TS{Range: spd.AddrRange{From: netip.MustParseAddr("10.0.0.5"), To: netip.MustParseAddr("10.0.0.9")}, Protocol: 6, Ports: spd.PortRange{From: 80, To: 90}}
	if got := subnet(r).String(); got != "10.0.0.0/28" {
		t.Errorf("subnet = %s", got)
	}
	if got := ports(r); got != "80:90" {
		t.Errorf("ports = %s", got)
	}
	if got := ports(spd.TS{Ports: spd.Port(443)}); got != "443" {
		t.Errorf("ports = %s", got)
	}
}

// recorder is a script that appends its verb, reqid and SPI-independent
// variables to a file, one line per run.
func recorder(t *testing.T) (script, out string) {
	dir := t.TempDir()
	out = filepath.Join(dir, "runs")
	script = filepath.Join(dir, "updown.sh")
	body := "#!/bin/sh\necho \"$PLUTO_VERB $PLUTO_CONNECTION $PLUTO_REQID $PLUTO_UNIQUEID $PLUTO_MY_CLIENT $PLUTO_PEER_CLIENT $1\" >> " + out + "\necho ran $PLUTO_VERB\n"
	if err := os.WriteFile(script, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return script, out
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return strings.Fields(strings.ReplaceAll(strings.TrimSpace(string(b)), " ", "_"))
}

func newTestRunner(conns map[string]Conn, timeout time.Duration) *Runner {
	return New(Options{
		Conn:    func(n string) (Conn, bool) { c, ok := conns[n]; return c, ok },
		Timeout: timeout,
		Logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
}

func feed(r *Runner, evs ...ike.Event) {
	ch := make(chan ike.Event, len(evs))
	for _, e := range evs {
		ch <- e
	}
	close(ch)
	r.Run(ch)
}

// TestRunnerLifecycle: up once for the first CHILD SA, nothing for a
// rekey or a make-before-break reauthentication, down once when the last
// CHILD SA goes with its IKE SA; arguments in leftupdown= reach the
// script; a conn without a script runs nothing.
func TestRunnerLifecycle(t *testing.T) {
	script, out := recorder(t)
	r := newTestRunner(map[string]Conn{"a": {Script: script + " arg1", Interface: "ipsec0"}, "quiet": {}}, 0)
	rekeyed := testChild
	rekeyed.InSPI, rekeyed.OutSPI = 0xc0000002, 0xc1000002
	reauth := testChild
	reauth.InSPI = 0xc0000003
	newIKE := testIKE
	newIKE.SPIi, newIKE.SPIr = 0x3333, 0x4444
	feed(r,
		shared.ChildUp{Conn: "quiet", IKE: testIKE, Child: testChild},
		shared.ChildUp{Conn: "a", IKE: testIKE, Child: testChild},
		shared.ChildRekeyed{Conn: "a", IKE: testIKE, Old: testChild, New: rekeyed},
		shared.ChildDown{Conn: "a", IKE: testIKE, Child: testChild, Rekeyed: true},
		shared.ChildUp{Conn: "a", IKE: newIKE, Child: reauth},
		shared.IKEDown{Names: []string{"a"}, IKE: testIKE, Children: []ike.ChildInfo{rekeyed}},
		shared.IKEDown{Names: []string{"a"}, IKE: newIKE, Children: []ike.ChildInfo{reauth}},
	)
	want := []string{"up-client_a_7_1_10.1.0.0/24_10.2.0.0/16_arg1", "down-client_a_7_2_10.1.0.0/24_10.2.0.0/16_arg1"}
	if got := readLines(t, out); !slices.Equal(got, want) {
		t.Errorf("runs:\n%v\nwant\n%v", got, want)
	}
	st, ok := r.Status("a")
	if !ok || st.Runs != 2 || st.Failures != 0 || st.LastVerb != "down-client" || st.LastError != "" {
		t.Errorf("status = %+v, %v", st, ok)
	}
	if _, ok := r.Status("quiet"); ok {
		t.Error("a conn without a script has a script status")
	}
}

// TestRunnerFailures: a failing script's exit status and last output line
// are in the status; a hung script (and what it started in the
// background) is killed at the timeout, and the next script of the conn
// runs after it.
func TestRunnerFailures(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "after")
	fail := "echo first; echo 'cannot add route' >&2; exit 3"
	hang := "sleep 30 & sleep 30"
	r := newTestRunner(map[string]Conn{
		"fail": {Script: fail},
		"hang": {Script: "if [ $PLUTO_VERB = up-client ]; then " + hang + "; else touch " + marker + "; fi"},
	}, 2*time.Second) // long enough for a shell to start on a loaded machine
	start := time.Now()
	feed(r,
		shared.ChildUp{Conn: "fail", IKE: testIKE, Child: testChild},
		shared.ChildUp{Conn: "hang", IKE: testIKE, Child: testChild},
		shared.ChildDown{Conn: "hang", IKE: testIKE, Child: testChild},
	)
	if took := time.Since(start); took > 15*time.Second {
		t.Errorf("runs took %s with a 2s timeout: the hung script was not killed", took)
	}
	st, _ := r.Status("fail")
	if st.Failures != 1 || !strings.Contains(st.LastError, "exit status 3") || !strings.Contains(st.LastError, "cannot add route") {
		t.Errorf("fail status = %+v", st)
	}
	st, _ = r.Status("hang")
	if st.Runs != 2 || st.Failures != 1 || st.LastError != "" || st.LastVerb != "down-client" {
		t.Errorf("hang status = %+v", st)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Errorf("the down script after the hung one did not run: %v", err)
	}
}

// TestRunnerConnsIndependent: a slow script of one conn does not hold up
// another conn's scripts.
func TestRunnerConnsIndependent(t *testing.T) {
	script, out := recorder(t)
	r := newTestRunner(map[string]Conn{"slow": {Script: "sleep 2"}, "fast": {Script: script}}, 0)
	ch := make(chan ike.Event, 2)
	ch <- shared.ChildUp{Conn: "slow", IKE: testIKE, Child: testChild}
	ch <- shared.ChildUp{Conn: "fast", IKE: testIKE, Child: testChild}
	done := make(chan struct{})
	go func() { r.Run(ch); close(done) }()
	deadline := time.Now().Add(1500 * time.Millisecond)
	for len(readLines(t, out)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the fast conn's script waited for the slow one")
		}
		time.Sleep(20 * time.Millisecond)
	}
	close(ch)
	<-done
}

// TestLineLog: output lines are logged up to the limit and the last one
// is kept for the error text.
func TestLineLog(t *testing.T) {
	var buf strings.Builder
	l := &lineLog{log: slog.New(slog.NewTextHandler(&buf, nil)), conn: "c", verb: "up-client"}
	for i := 0; i < maxOutputLines+10; i++ {
		io.WriteString(l, "line\n")
	}
	io.WriteString(l, "partial")
	l.flush()
	if l.last != "partial" {
		t.Errorf("last = %q", l.last)
	}
	n := 0
	sc := bufio.NewScanner(strings.NewReader(buf.String()))
	for sc.Scan() {
		if strings.Contains(sc.Text(), "updown: line") {
			n++
		}
	}
	if n != maxOutputLines || !strings.Contains(buf.String(), "further output not logged") {
		t.Errorf("%d lines logged:\n%s", n, buf.String())
	}
}
