package config

import (
	"fmt"
	"strings"
	"testing"
)

// consoleConn is conn i of a console-style gateway: its own peer, 20
// local and 20 remote subnets of its own.
func consoleConn(i int, auto string) string {
	var local, remote []string
	for j := range 20 {
		local = append(local, fmt.Sprintf("10.%d.%d.0/24", 100+i, j))
		remote = append(remote, fmt.Sprintf("172.%d.%d.0/24", 16+i, j))
	}
	return fmt.Sprintf("conn t%d\n\tleft=198.51.100.1\n\tleftsubnet=%s\n\tright=203.0.113.%d\n\trightsubnet=%s\n\tauthby=secret\n\tauto=%s\n",
		i, strings.Join(local, ","), 10+i, strings.Join(remote, ","), auto)
}

// TestConsoleLimits: the console's limit model, 20 tunnels of 20 local
// and 20 remote subnets each, loads without a diagnostic.
func TestConsoleLimits(t *testing.T) {
	var b strings.Builder
	for i := range 20 {
		b.WriteString(consoleConn(i, "start"))
	}
	cfg, diags, err := loadMem(t, b.String(), anyPSK)
	if err != nil || len(diags) != 0 {
		t.Fatalf("%v\n%s", err, diagText(diags))
	}
	c, _ := cfg.Conn("t19")
	if len(cfg.Names()) != 20 || len(c.Local.Subnets) != 20 || len(c.Remote.Subnets) != 20 {
		t.Errorf("%d conns, %d+%d subnets", len(cfg.Names()), len(c.Local.Subnets), len(c.Remote.Subnets))
	}
}

func TestOverlapBetweenTunnels(t *testing.T) {
	base := consoleConn(0, "start") + consoleConn(1, "start")
	cases := []struct {
		name, extra string
		wantErr     bool
		want        string // diagnostic text, "" for none
	}{
		{"same peer, both start", "conn dup\n\tleft=198.51.100.1\n\tleftsubnet=10.100.3.0/24\n\tright=203.0.113.10\n\trightsubnet=172.16.0.0/16\n\tauthby=secret\n\tauto=route\n",
			true, `/etc/ipsec.conf:19: error: conn "dup": rightsubnet: its subnets 10.100.3.0/24 === 172.16.0.0/16 overlap 10.100.3.0/24 === 172.16.0.0/24 of conn t0 (line 1): both tunnels would claim that traffic; they go to the same peer`},
		{"same peer, backup answers only", "conn dup\n\tleft=198.51.100.1\n\tleftsubnet=10.100.3.0/24\n\tright=203.0.113.10\n\trightsubnet=172.16.0.0/16\n\tauthby=secret\n\tauto=add\n",
			false, `/etc/ipsec.conf:19: warning: conn "dup": rightsubnet: its subnets`},
		{"other peer: redundant tunnel", "conn backup\n\tleft=198.51.100.1\n\tleftsubnet=10.101.0.0/16\n\tright=203.0.113.99\n\trightsubnet=172.17.5.0/24\n\tauthby=secret\n\tauto=start\n",
			false, `/etc/ipsec.conf:19: warning: conn "backup": rightsubnet: its subnets 10.101.0.0/16 === 172.17.5.0/24 overlap 10.101.0.0/24 === 172.17.5.0/24 of conn t1 (line 8): both tunnels would claim that traffic; the tunnel that is up first carries it`},
		{"remote overlaps, local does not", "conn other\n\tleft=198.51.100.1\n\tleftsubnet=10.200.0.0/24\n\tright=203.0.113.10\n\trightsubnet=172.16.0.0/16\n\tauthby=secret\n\tauto=start\n",
			false, ""},
		{"same peer, different protocols", "conn web\n\tleft=198.51.100.1\n\tleftsubnet=10.150.0.0/24[tcp/443]\n\tright=203.0.113.50\n\trightsubnet=172.50.0.0/24[tcp]\n\tauthby=secret\n\tauto=start\n" +
			"conn dns\n\tleft=198.51.100.1\n\tleftsubnet=10.150.0.0/24[udp/53]\n\tright=203.0.113.50\n\trightsubnet=172.50.0.0/24[udp]\n\tauthby=secret\n\tauto=start\n",
			false, ""},
		{"ignored conns are not compared", "conn off\n\tleft=198.51.100.1\n\tleftsubnet=10.100.0.0/16\n\tright=203.0.113.10\n\trightsubnet=172.16.0.0/16\n\tauthby=secret\n",
			false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, diags, err := loadMem(t, base+c.extra, anyPSK)
			text := diagText(diags)
			if (err != nil) != c.wantErr {
				t.Errorf("error %v, want error=%v\n%s", err, c.wantErr, text)
			}
			if c.want == "" && strings.Contains(text, "overlap") {
				t.Errorf("unexpected overlap diagnostic:\n%s", text)
			}
			if c.want != "" && !strings.Contains(text, c.want) {
				t.Errorf("diagnostics lack %q:\n%s", c.want, text)
			}
		})
	}
}
