package settings

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
)

// mapValues is a Values source without viper: the values set in the map,
// the defaults for the others.
type mapValues map[string]any

func (m mapValues) Get(key string) any {
	if v, ok := m[key]; ok {
		return v
	}
	return defaultValues[key]
}

func (m mapValues) GetString(key string) string { return fmt.Sprint(m.Get(key)) }

// TestParseDefaults pins the defaults the README documents.
func TestParseDefaults(t *testing.T) {
	s, err := Parse(mapValues{})
	if err != nil {
		t.Fatal(err)
	}
	want := Settings{IPsecConf: DefaultIPsecConf, IPsecSecrets: DefaultIPsecSecrets, ControlSocket: DefaultControlSocket,
		LogLevel: slog.LevelInfo, LogFormat: "text", TUNName: "ipsecgw0", TUNMTU: 1400, ReplayWindow: 1024,
		Retransmit:   Retransmit{Timeout: 4 * time.Second, Base: 1.8, Tries: 5},
		NATKeepalive: 20 * time.Second, FragmentSize: 1280, ESPEncapsulation: "auto", TCPPort: 4500,
		IKE: IKESettings{CookieThreshold: 30, CookieThresholdIP: 3, HalfOpenLimit: 10000}}
	if s != want {
		t.Errorf("defaults\n got %+v\nwant %+v", s, want)
	}
}

// TestParseValues: numbers come as yaml gives them (int, float64) or as
// the environment does (text); times use the ipsec.conf syntax.
func TestParseValues(t *testing.T) {
	s, err := Parse(mapValues{"tun.mtu": "1300", "workers": 4, "retransmit.base": "2.5", "retransmit.tries": 3.0,
		"nat_keepalive": 30, "keyingtries_retry_interval": "1.5m", "log.level": "debug", "ike.half_open_limit": "500"})
	if err != nil {
		t.Fatal(err)
	}
	if s.TUNMTU != 1300 || s.Workers != 4 || s.Retransmit.Base != 2.5 || s.Retransmit.Tries != 3 ||
		s.NATKeepalive != 30*time.Second || s.KeyingRetryInterval != 90*time.Second || s.LogLevel != slog.LevelDebug ||
		s.IKE.HalfOpenLimit != 500 {
		t.Errorf("parsed %+v", s)
	}
}

// TestParseReportsEveryProblem: each bad value has its own line naming the
// key, and nothing half-parsed comes back.
func TestParseReportsEveryProblem(t *testing.T) {
	s, err := Parse(mapValues{"tun.mtu": 10, "log.level": "loud", "log.format": "xml", "esp.encapsulation": "gre",
		"retransmit.timeout": "0s", "retransmit.base": "fast", "nat_keepalive": "-5", "tun.name": "a/b", "ipsec_conf": "",
		"workers": 2.5})
	if err == nil {
		t.Fatal("bad values accepted")
	}
	if s != (Settings{}) {
		t.Errorf("settings returned with the error: %+v", s)
	}
	for _, want := range []string{
		"setting tun.mtu: 10 is not a number from 576 to 65535",
		`setting log.level: "loud" is not debug, info, warn or error`,
		`setting log.format: "xml" is not text or json`,
		`setting esp.encapsulation: "gre" is not auto, nat or udp`,
		"setting retransmit.timeout: must be positive",
		"setting retransmit.base: fast is not a number from 1 to 10",
		`setting nat_keepalive: "-5" is not a time value`,
		`setting tun.name: "a/b" is not a valid interface name`,
		"setting ipsec_conf: must not be empty",
		"setting workers: 2.5 is not a number from 0 to 1024",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if n := strings.Count(err.Error(), "\n") + 1; n != 10 {
		t.Errorf("%d problems reported, want 10:\n%v", n, err)
	}
}

// TestParseBounds: the limits of the integer settings, at both ends.
func TestParseBounds(t *testing.T) {
	for _, c := range []struct {
		key    string
		lo, hi int
		// top is the largest value accepted: hi, except for the cookie
		// threshold, which must stay below the half-open limit.
		top int
	}{
		{"tun.mtu", 576, 65535, 65535}, {"workers", 0, 1024, 1024}, {"replay_window", 0, config.MaxReplayWindow, config.MaxReplayWindow},
		{"retransmit.tries", 0, 100, 100}, {"retransmit.jitter", 0, 100, 100}, {"fragment_size", 576, 65535, 65535},
		{"ike.half_open_limit", 1, MaxHalfOpenLimit, MaxHalfOpenLimit},
		{"ike.cookie_threshold", 0, MaxHalfOpenLimit, MaxHalfOpenLimit - 1},
		{"ike.cookie_threshold_ip", 0, MaxHalfOpenLimit, MaxHalfOpenLimit},
	} {
		in := func(n int) mapValues {
			// Cookies off and the largest limit, so that the cross-check
			// of threshold and limit stays out of the way.
			v := mapValues{"ike.half_open_limit": MaxHalfOpenLimit, "ike.cookie_threshold": 0}
			v[c.key] = n
			return v
		}
		for _, n := range []int{c.lo, c.top} {
			if _, err := Parse(in(n)); err != nil {
				t.Errorf("%s: %d refused: %v", c.key, n, err)
			}
		}
		for _, n := range []int{c.lo - 1, c.hi + 1} {
			want := fmt.Sprintf("setting %s: %d is not a number from %d to %d", c.key, n, c.lo, c.hi)
			if _, err := Parse(in(n)); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s: %d: error %v, want %q", c.key, n, err, want)
			}
		}
	}
	if _, err := Parse(mapValues{"ike.cookie_threshold": MaxHalfOpenLimit, "ike.half_open_limit": MaxHalfOpenLimit}); err == nil || !strings.Contains(err.Error(), "is not below ike.half_open_limit") {
		t.Errorf("cookie threshold at the half-open limit: %v", err)
	}
}

func TestDefaultValuesIsACopy(t *testing.T) {
	d := DefaultValues()
	d["tun.mtu"] = 9000
	if s, err := Parse(mapValues{}); err != nil || s.TUNMTU != 1400 {
		t.Errorf("changing the returned map changed the defaults: %v %v", s.TUNMTU, err)
	}
}

func TestTCPTLSSetting(t *testing.T) {
	for v, want := range map[any]bool{true: true, "true": true, "false": false, false: false} {
		s, err := Parse(mapValues{"tcp.tls": v})
		if err != nil || s.TCPTLS != want {
			t.Errorf("tcp.tls %v: %v %v", v, s.TCPTLS, err)
		}
	}
	if _, err := Parse(mapValues{"tcp.tls": "sometimes"}); err == nil {
		t.Error("tcp.tls: sometimes accepted")
	}
}

func TestTCPProxySetting(t *testing.T) {
	s, err := Parse(mapValues{"tcp.proxy": "http://alice:s3cret-pass@proxy.example:3128"})
	if err != nil {
		t.Fatal(err)
	}
	if s.TCPProxy == nil || s.TCPProxy.Addr != "proxy.example:3128" || s.TCPProxy.Password != "s3cret-pass" {
		t.Fatalf("tcp.proxy parsed as %+v", s.TCPProxy)
	}
	if strings.Contains(fmt.Sprintf("%v %+v", s, s), "s3cret") {
		t.Fatal("printing the settings shows the proxy password")
	}
	if _, err := Parse(mapValues{"tcp.proxy": "gopher://alice:s3cret-pass@proxy.example:3128"}); err == nil || !strings.Contains(err.Error(), "tcp.proxy") || strings.Contains(err.Error(), "s3cret") {
		t.Fatalf("bad proxy: %v", err)
	}
}
