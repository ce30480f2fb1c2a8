package daemon

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike"
	"github.com/ipsecgw/ipsecgw/ike/shared"
)

// TestNotifySubscriptionFilter: the sd_notify reader is given the events
// it acts on (state changes; failures end a first try) and no others.
func TestNotifySubscriptionFilter(t *testing.T) {
	for _, c := range []struct {
		ev   ike.Event
		want bool
	}{
		{ike.StateChanged{Conn: "a", To: ike.StateEstablished}, true},
		{shared.Failure{Conn: "a", State: ike.StatePhase1Failed}, true},
		{shared.IKEUp{Names: []string{"a"}}, false},
		{shared.ChildUp{Conn: "a"}, false},
		{shared.ExchangeDone{Names: []string{"a"}, DPD: true}, false},
	} {
		if got := isNotifyEvent(c.ev); got != c.want {
			t.Errorf("isNotifyEvent(%T) = %v, want %v", c.ev, got, c.want)
		}
	}
}

// TestUpdownSubscriptionFilter: the script runner is given every end and
// rekey (it finds out itself whether a script ran for the SA), and a
// CHILD SA coming up only when its conn has a script.
func TestUpdownSubscriptionFilter(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "ipsec.conf")
	secrets := filepath.Join(dir, "ipsec.secrets")
	os.WriteFile(conf, []byte(`conn scripted
	left=198.51.100.1
	leftsubnet=10.1.0.0/24
	leftupdown=/bin/true
	right=198.51.100.2
	rightsubnet=10.2.0.0/24
	authby=secret
	auto=add

conn plain
	left=198.51.100.1
	leftsubnet=10.1.0.0/24
	right=198.51.100.3
	rightsubnet=10.3.0.0/24
	authby=secret
	auto=add
`), 0o644)
	os.WriteFile(secrets, []byte(`: PSK "test-secret-123456"`+"\n"), 0o600)
	cfg, diags, err := config.Load(config.Options{ConfPath: conf, SecretsPath: secrets})
	if cfg == nil {
		t.Fatalf("config: %v %v", err, diags)
	}
	g := &Gateway{}
	g.cfg.Store(cfg)
	for _, c := range []struct {
		ev   ike.Event
		want bool
	}{
		{shared.ChildUp{Conn: "scripted"}, true},
		{shared.ChildUp{Conn: "plain"}, false},
		{shared.ChildUp{Conn: "gone"}, false},
		{shared.ChildRekeyed{Conn: "plain"}, true},
		{shared.ChildDown{Conn: "plain"}, true},
		{shared.IKEDown{Names: []string{"plain"}}, true},
		{shared.IKERekeyed{Names: []string{"plain"}}, true},
		{shared.IKEUp{Names: []string{"scripted"}}, false},
		{ike.StateChanged{Conn: "scripted"}, false},
		{shared.Failure{Conn: "scripted"}, false},
	} {
		if got := g.updownEvent(c.ev); got != c.want {
			t.Errorf("updownEvent(%T %v) = %v, want %v", c.ev, c.ev.Conns(), got, c.want)
		}
	}
}
