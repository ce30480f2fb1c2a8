package guard

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ipsecgw/ipsecgw/config"
)

// loadConf loads ipsec.conf text (with a catch-all PSK) the way the daemon
// does and fails the test on any error.
func loadConf(t testing.TB, conf string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	confPath, secPath := filepath.Join(dir, "ipsec.conf"), filepath.Join(dir, "ipsec.secrets")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(secPath, []byte(": PSK \"guard-test-psk-0123456789\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, diags, err := config.Load(config.Options{ConfPath: confPath, SecretsPath: secPath})
	if err != nil {
		t.Fatalf("config: %v\n%v", err, diags)
	}
	return cfg
}

// conn renders one conn section from left=198.51.100.1 with PSK
// authentication; extra holds further "key=value" lines.
func conn(name, right, rightsubnet, auto string, extra ...string) string {
	var b strings.Builder
	b.WriteString("conn " + name + "\n  left=198.51.100.1\n  leftsubnet=10.1.0.0/24,fd00:1::/64\n  authby=secret\n")
	b.WriteString("  right=" + right + "\n")
	if rightsubnet != "" {
		b.WriteString("  rightsubnet=" + rightsubnet + "\n")
	}
	b.WriteString("  auto=" + auto + "\n")
	for _, e := range extra {
		b.WriteString("  " + e + "\n")
	}
	return b.String()
}

func prefixes(ws []Want) []string {
	var out []string
	for _, w := range ws {
		out = append(out, w.Prefix.String()+"="+strings.Join(w.Conns, "+"))
	}
	return out
}

func TestPlanGuardsRemoteSubnetsOfLoadedConns(t *testing.T) {
	cfg := loadConf(t, conn("start", "198.51.100.2", "10.2.0.0/24,fd00:2::/64", "start")+
		conn("route", "198.51.100.3", "10.3.0.0/16", "route")+
		conn("add", "%any", "10.4.0.0/24", "add")+
		// Shares a subnet with "start": one route, both conns named.
		conn("add2", "198.51.100.4", "10.2.0.0/24,10.2.0.0/25", "add")+
		conn("ignored", "198.51.100.5", "10.6.0.0/24", "ignore"))
	p := NewPlan(context.Background(), cfg.Conns(), nil)
	want := []string{"10.2.0.0/24=start+add2", "10.2.0.0/25=add2", "10.3.0.0/16=route", "10.4.0.0/24=add", "fd00:2::/64=start"}
	if got := prefixes(p.Routes); !slices.Equal(got, want) {
		t.Errorf("routes %v, want %v", got, want)
	}
	if len(p.Exceptions) != 0 || len(p.Unresolved) != 0 {
		t.Errorf("exceptions %v, unresolved %v", p.Exceptions, p.Unresolved)
	}
}

func TestPlanExceptions(t *testing.T) {
	cfg := loadConf(t,
		// Host to host: the remote "subnet" is the peer itself.
		conn("h2h", "198.51.100.9", "", "start")+
			// A subnet around the peer of another conn.
			conn("around", "198.51.100.2", "198.51.100.0/24,10.2.0.0/24", "start")+
			conn("full4", "198.51.100.2", "0.0.0.0/0", "add")+
			conn("full6", "198.51.100.2", "::/0", "add")+
			conn("pass", "198.51.100.7", "10.7.0.0/24", "route", "type=passthrough")+
			// The peer of an auto=ignore conn counts too: `ipsecgw up`
			// may bring it up.
			conn("guarded", "198.51.100.2", "10.8.0.0/16", "start")+
			conn("ignored", "10.8.1.1", "10.9.0.0/24", "ignore"))
	p := NewPlan(context.Background(), cfg.Conns(), nil)
	if got, want := prefixes(p.Routes), []string{"10.2.0.0/24=around"}; !slices.Equal(got, want) {
		t.Errorf("routes %v, want %v", got, want)
	}
	wantReasons := map[string]string{
		"h2h 198.51.100.9/32":    "contains the peer 198.51.100.9 of conn h2h",
		"around 198.51.100.0/24": "contains the peer 198.51.100.2 of conn around",
		"full4 0.0.0.0/0":        "a policy-based full tunnel is not guarded",
		"full6 ::/0":             "a policy-based full tunnel is not guarded",
		"pass 10.7.0.0/24":       "type=passthrough",
		"guarded 10.8.0.0/16":    "contains the peer 10.8.1.1 of conn ignored",
	}
	for _, e := range p.Exceptions {
		key := e.Conn + " " + e.Prefix.String()
		frag, ok := wantReasons[key]
		if !ok {
			t.Errorf("unexpected exception %s", e)
			continue
		}
		if !strings.Contains(e.Reason, frag) {
			t.Errorf("exception %s: reason lacks %q", e, frag)
		}
		delete(wantReasons, key)
	}
	for k := range wantReasons {
		t.Errorf("no exception for %s", k)
	}
}

func TestPlanLooksUpNamedPeers(t *testing.T) {
	cfg := loadConf(t, conn("inside", "inside.example", "10.5.0.0/24", "start")+
		conn("inside2", "inside.example", "10.5.0.0/16", "add")+
		conn("outside", "outside.example", "10.2.0.0/24", "start")+
		conn("broken", "broken.example", "10.3.0.0/24", "start"))
	var asked []string
	resolve := func(_ context.Context, host string) ([]netip.Addr, error) {
		asked = append(asked, host)
		switch host {
		case "inside.example":
			return []netip.Addr{netip.MustParseAddr("::ffff:10.5.0.9")}, nil
		case "outside.example":
			return []netip.Addr{netip.MustParseAddr("203.0.113.7")}, nil
		}
		return nil, errors.New("no such host")
	}
	p := NewPlan(context.Background(), cfg.Conns(), resolve)
	// A peer that cannot be looked up leaves its subnet guarded.
	if got, want := prefixes(p.Routes), []string{"10.2.0.0/24=outside", "10.3.0.0/24=broken"}; !slices.Equal(got, want) {
		t.Errorf("routes %v, want %v", got, want)
	}
	if len(p.Exceptions) != 2 || !strings.Contains(p.Exceptions[0].Reason, "10.5.0.9") {
		t.Errorf("exceptions %v, want 10.5.0.0/24 and /16 for the peer 10.5.0.9", p.Exceptions)
	}
	if len(p.Unresolved) != 1 || p.Unresolved[0].Host != "broken.example" {
		t.Errorf("unresolved %v", p.Unresolved)
	}
	if want := []string{"inside.example", "outside.example", "broken.example"}; !slices.Equal(asked, want) {
		t.Errorf("looked up %v, want each name once: %v", asked, want)
	}

	// Nothing to guard: no look-ups at all (a DNS server behind the
	// tunnel must not delay a daemon that has nothing to check).
	asked = nil
	cfg = loadConf(t, conn("h2h", "inside.example", "", "start"))
	if p := NewPlan(context.Background(), cfg.Conns(), resolve); len(p.Routes) != 0 || len(asked) != 0 {
		t.Errorf("host-to-host conn by name: routes %v, look-ups %v", p.Routes, asked)
	}
}
