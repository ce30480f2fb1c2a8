package interop

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/internal/lab"
)

// updownRecorder is an updown script that writes the PLUTO_* variables
// and PATH it was given, sorted, to DIR/<tag>-<verb> (tag is its first
// argument, as leftupdown= may carry arguments). With a second argument
// "route" it also adds (up) and removes (down) a route through
// PLUTO_INTERFACE, as provider scripts do.
const updownRecorder = `#!/bin/sh
env | grep -E '^(PLUTO_|PATH=)' | sort > "%DIR%/$1-$PLUTO_VERB"
if [ "$2" = route ]; then
	case "$PLUTO_VERB" in
	up-client) ip route add 10.99.0.0/24 dev "$PLUTO_INTERFACE" ;;
	down-client) ip route del 10.99.0.0/24 dev "$PLUTO_INTERFACE" ;;
	esac
fi
`

func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("the updown script did not run: %v", err)
	}
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(l, "=")
		m[k] = v
	}
	return m
}

func waitFile(ctx context.Context, t *testing.T, path string) {
	t.Helper()
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never appeared: %v", path, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestRoutedUpdownEnv: ipsecgw runs leftupdown= with strongSwan's
// environment. The same recording script runs as strongSwan's updown on
// the peer for the same tunnel: ipsecgw sets exactly the variables
// strongSwan sets, with the values the tunnel has; the script's route
// through PLUTO_INTERFACE lands on ipsecgw's TUN and goes with the down
// run; the status counts the runs.
func TestRoutedUpdownEnv(t *testing.T) {
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	script := filepath.Join(dir, "record.sh")
	if err := os.WriteFile(script, []byte(strings.ReplaceAll(updownRecorder, "%DIR%", dir)), 0o755); err != nil {
		t.Fatal(err)
	}
	c1, c2 := siteConns(l, "aes128-sha256-modp2048", "aes128gcm16")
	c2.ChildExtra = "updown = " + script + " strongswan"
	charon, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf(c2), Plugins: append(slices.Clone(lab.DefaultPlugins), "updown")})
	if err != nil {
		t.Fatal(err)
	}
	conf := strings.Replace(c1.IPsecConf(), "  auto=", "  leftupdown=\""+script+" ipsecgw route\"\n  auto=", 1)
	gw := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: conf, Secrets: c1.IPsecSecrets()})
	if out, err := gw.cli(ctx, "up", "s2s"); err != nil {
		t.Fatalf("ipsecgw up: %v\n%s", err, out)
	}
	if _, err := gw.waitState(ctx, "s2s", control.StateEstablished); err != nil {
		t.Fatal(err)
	}
	if _, err := charon.WaitEstablished(ctx, "s2s", "net"); err != nil {
		t.Fatal(err)
	}
	waitFile(ctx, t, filepath.Join(dir, "ipsecgw-up-client"))
	waitFile(ctx, t, filepath.Join(dir, "strongswan-up-client"))
	ours := readEnvFile(t, filepath.Join(dir, "ipsecgw-up-client"))
	theirs := readEnvFile(t, filepath.Join(dir, "strongswan-up-client"))
	t.Logf("ipsecgw's updown environment: %v", ours)

	var names, theirNames []string
	for k := range ours {
		names = append(names, k)
	}
	for k := range theirs {
		theirNames = append(theirNames, k)
	}
	slices.Sort(names)
	slices.Sort(theirNames)
	if !slices.Equal(names, theirNames) {
		t.Errorf("variables differ from strongSwan's:\nipsecgw    %v\nstrongSwan %v", names, theirNames)
	}
	gw1, gw2 := l.GW1.Addr.String(), l.GW2.PublicAddr.String()
	want := map[string]string{
		"PLUTO_VERSION": "1.1", "PLUTO_VERB": "up-client", "PLUTO_CONNECTION": "s2s", "PLUTO_INTERFACE": tunName,
		"PLUTO_PROTO": "esp", "PLUTO_ME": gw1, "PLUTO_PEER": gw2, "PLUTO_MY_ID": c1.LocalID, "PLUTO_PEER_ID": c1.RemoteID,
		"PLUTO_MY_CLIENT": lab.LAN1.String(), "PLUTO_PEER_CLIENT": lab.LAN2.String(),
		"PLUTO_MY_PORT": "0", "PLUTO_PEER_PORT": "0", "PLUTO_MY_PROTOCOL": "0", "PLUTO_PEER_PROTOCOL": "0",
		"PLUTO_UNIQUEID": "1",
	}
	for k, v := range want {
		if ours[k] != v {
			t.Errorf("%s = %q, want %q", k, ours[k], v)
		}
	}
	// The mirror image of the peer's view.
	for _, p := range [][2]string{{"PLUTO_ME", "PLUTO_PEER"}, {"PLUTO_MY_CLIENT", "PLUTO_PEER_CLIENT"}, {"PLUTO_MY_ID", "PLUTO_PEER_ID"}} {
		if ours[p[0]] != theirs[p[1]] || ours[p[1]] != theirs[p[0]] {
			t.Errorf("%s/%s: ipsecgw %s/%s, strongSwan %s/%s", p[0], p[1], ours[p[0]], ours[p[1]], theirs[p[0]], theirs[p[1]])
		}
	}
	if ours["PLUTO_REQID"] == "" || ours["PLUTO_REQID"] == "0" || ours["PATH"] == "" {
		t.Errorf("PLUTO_REQID %q, PATH %q", ours["PLUTO_REQID"], ours["PATH"])
	}
	if out, err := l.GW1.Run(ctx, "ip", "route", "show", "10.99.0.0/24"); err != nil || !strings.Contains(out, "dev "+tunName) {
		t.Errorf("the script's route via PLUTO_INTERFACE: %v %q", err, out)
	}

	if out, err := gw.cli(ctx, "down", "s2s"); err != nil {
		t.Fatalf("ipsecgw down: %v\n%s", err, out)
	}
	waitFile(ctx, t, filepath.Join(dir, "ipsecgw-down-client"))
	waitFile(ctx, t, filepath.Join(dir, "strongswan-down-client"))
	down := readEnvFile(t, filepath.Join(dir, "ipsecgw-down-client"))
	if down["PLUTO_REQID"] != ours["PLUTO_REQID"] || down["PLUTO_MY_CLIENT"] != ours["PLUTO_MY_CLIENT"] {
		t.Errorf("down-client env %v does not describe the SA that came up", down)
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		st, err := gw.status(ctx, "s2s")
		if err != nil {
			t.Fatal(err)
		}
		if st.Updown != nil && st.Updown.Runs == 2 {
			if st.Updown.Failures != 0 || st.Updown.LastVerb != "down-client" || st.Updown.LastError != "" {
				t.Errorf("updown status %+v", *st.Updown)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("updown status: %+v", st.Updown)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if out, _ := l.GW1.Run(ctx, "ip", "route", "show", "10.99.0.0/24"); strings.TrimSpace(out) != "" {
		t.Errorf("the down script did not remove its route: %q", out)
	}
}
