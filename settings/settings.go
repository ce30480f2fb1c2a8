package settings

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/esp/tcpencap"
)

// Settings are the daemon settings: ipsecgw.yaml, overridden by IPSECGW_*
// environment variables, overridden by command-line flags.
type Settings struct {
	IPsecConf     string
	IPsecSecrets  string
	ControlSocket string
	MetricsListen string // empty = no metrics endpoint
	LogLevel      slog.Level
	LogFormat     string // "text" or "json"
	TUNName       string
	TUNMTU        int
	Workers       int // 0 = one per CPU
	ReplayWindow  int // default anti-replay window of CHILD SAs without replay_window=
	Retransmit    Retransmit
	// NATKeepalive is the interval of the NAT keepalives (RFC 3948 §2.3)
	// sent for IKE SAs whose own side is behind a NAT; 0 turns them off.
	NATKeepalive time.Duration
	// KeyingRetryInterval: auto=start conns whose keyingtries are used up
	// try again once every interval; 0 gives up (strongSwan's behaviour).
	KeyingRetryInterval time.Duration
	// FragmentSize is the largest IP datagram of an IKE message sent to a
	// peer that supports IKE fragmentation (RFC 7383; charon.fragment_size).
	FragmentSize int
	// ESPEncapsulation is "auto" (ESP in UDP with ipsecgw peers, which is
	// faster in our dataplane; raw ESP with others unless a NAT is
	// detected), "nat" (ESP in UDP only through a NAT or with
	// forceencaps=yes, RFC 7296's behaviour) or "udp" (always, as if every
	// conn set forceencaps=yes).
	ESPEncapsulation string
	// IKE holds the IKE responder's denial-of-service limits.
	IKE IKESettings
	// TCPPort is the TCP port on which IKE and ESP over TCP (RFC 9329)
	// are accepted while a loaded conn sets enable-tcp; 0: never listen.
	TCPPort int
	// TCPProxy, when set, is the HTTP CONNECT or SOCKS5 proxy every TCP
	// stream to a peer is dialled through (tcp.proxy: http://[user:
	// password@]host:port or socks5://...). A pointer, so that printing
	// the Settings never prints the password.
	TCPProxy *tcpencap.Proxy
	// TCPTLS wraps the TCP streams this gateway dials in TLS (RFC 9329
	// §8), for middleboxes that pass only TLS. The listener accepts
	// streams with and without TLS either way.
	TCPTLS bool
	// SettingsFile is the ipsecgw.yaml that was read, if any.
	SettingsFile string
}

// Retransmit is the IKE retransmission timing (retransmit.*): the n-th
// retransmission (n from 0) waits Timeout * Base^n (at most Limit when
// Limit > 0), with up to Jitter percent subtracted at random, and the
// exchange is abandoned after Tries retransmissions. The defaults are
// strongSwan's.
type Retransmit struct {
	Timeout time.Duration
	Base    float64
	Tries   int
	Jitter  int // percent
	Limit   time.Duration
}

// IKESettings bound the state a flood of IKE_SA_INIT requests can make the
// responder keep (RFC 7296 §2.6). The defaults are strongSwan 5.9's.
type IKESettings struct {
	// CookieThreshold is the number of half-open responder IKE SAs from
	// which every IKE_SA_INIT request must carry a COOKIE (charon.
	// cookie_threshold, 30); 0 turns cookies off.
	CookieThreshold int
	// CookieThresholdIP is the same per peer address (charon.
	// cookie_threshold_ip, 3); 0 turns the per-address check off.
	CookieThresholdIP int
	// HalfOpenLimit is the most half-open responder IKE SAs kept at once;
	// requests beyond it are dropped unanswered (10000).
	HalfOpenLimit int
}

// Default paths and values of the daemon settings.
const (
	DefaultSettingsFile  = "/etc/ipsecgw/ipsecgw.yaml"
	DefaultIPsecConf     = "/etc/ipsec.conf"
	DefaultIPsecSecrets  = "/etc/ipsec.secrets"
	DefaultControlSocket = "/run/ipsecgw/ipsecgw.sock"
	// MaxHalfOpenLimit bounds ike.half_open_limit and the cookie
	// thresholds: each half-open SA holds a key exchange and a few KiB.
	MaxHalfOpenLimit = 1000000
)

// defaultValues maps each setting to its default; the yaml keys are these
// names, the environment variables IPSECGW_ + upper case with "." -> "_".
var defaultValues = map[string]any{
	"ipsec_conf":                 DefaultIPsecConf,
	"ipsec_secrets":              DefaultIPsecSecrets,
	"control_socket":             DefaultControlSocket,
	"metrics_listen":             "",
	"log.level":                  "info",
	"log.format":                 "text",
	"tun.name":                   "ipsecgw0",
	"tun.mtu":                    1400,
	"workers":                    0,
	"replay_window":              1024,
	"retransmit.timeout":         "4s",
	"retransmit.base":            1.8,
	"retransmit.tries":           5,
	"retransmit.jitter":          0,
	"retransmit.limit":           "0s",
	"nat_keepalive":              "20s", // strongSwan charon.keep_alive
	"keyingtries_retry_interval": "0s",
	"fragment_size":              1280,
	"ike.cookie_threshold":       30,
	"ike.cookie_threshold_ip":    3,
	"ike.half_open_limit":        10000,
	"esp.encapsulation":          "auto",
	"tcp.port":                   4500, // RFC 9329 §4, Libreswan's tcp-remoteport default
	"tcp.proxy":                  "",
	"tcp.tls":                    false,
}

// DefaultValues returns every setting's key with its default value, the
// way ipsecgw.yaml would spell it (durations as text such as "4s").
func DefaultValues() map[string]any { return maps.Clone(defaultValues) }

// Values are the raw settings Parse reads, one value per key of
// DefaultValues (every key set, defaults included): a *viper.Viper that has
// merged the file, the environment and the flags satisfies it, without
// this package having to know viper.
type Values interface {
	// Get returns a key's value as its source holds it: a string, an int
	// or a float64 from yaml, a string from the environment, a string or
	// an int from a flag.
	Get(key string) any
	// GetString returns the value as a string.
	GetString(key string) string
}

// Parse converts and checks the raw values: every bad value is reported
// (errors joined, each as "setting KEY: problem"), not only the first.
// SettingsFile stays empty; it is the caller's to set.
func Parse(values Values) (Settings, error) {
	var s Settings
	s.IPsecConf = values.GetString("ipsec_conf")
	s.IPsecSecrets = values.GetString("ipsec_secrets")
	s.ControlSocket = values.GetString("control_socket")
	s.MetricsListen = values.GetString("metrics_listen")
	s.LogFormat = values.GetString("log.format")
	s.TUNName = values.GetString("tun.name")
	s.ESPEncapsulation = values.GetString("esp.encapsulation")
	var errs []error
	bad := func(key string, format string, args ...any) {
		errs = append(errs, fmt.Errorf("setting %s: %s", key, fmt.Sprintf(format, args...)))
	}
	if err := s.LogLevel.UnmarshalText([]byte(values.GetString("log.level"))); err != nil {
		bad("log.level", "%q is not debug, info, warn or error", values.GetString("log.level"))
	}
	if !slices.Contains([]string{"auto", "nat", "udp"}, s.ESPEncapsulation) {
		bad("esp.encapsulation", "%q is not auto, nat or udp", s.ESPEncapsulation)
	}
	if s.LogFormat != "text" && s.LogFormat != "json" {
		bad("log.format", "%q is not text or json", s.LogFormat)
	}
	getInt := func(key string, lo, hi int) int {
		n, err := toInt(values.Get(key))
		if err != nil || n < lo || n > hi {
			bad(key, "%v is not a number from %d to %d", values.Get(key), lo, hi)
		}
		return n
	}
	getDur := func(key string) time.Duration {
		d, err := config.ParseDuration(fmt.Sprint(values.Get(key)))
		if err != nil {
			bad(key, "%v", err)
		}
		return d
	}
	s.TUNMTU = getInt("tun.mtu", 576, 65535)
	s.Workers = getInt("workers", 0, 1024)
	s.ReplayWindow = getInt("replay_window", 0, config.MaxReplayWindow)
	s.Retransmit.Tries = getInt("retransmit.tries", 0, 100)
	s.Retransmit.Jitter = getInt("retransmit.jitter", 0, 100)
	s.Retransmit.Timeout = getDur("retransmit.timeout")
	s.Retransmit.Limit = getDur("retransmit.limit")
	s.NATKeepalive = getDur("nat_keepalive") // config.ParseDuration refuses negatives
	s.KeyingRetryInterval = getDur("keyingtries_retry_interval")
	s.FragmentSize = getInt("fragment_size", 576, 65535)
	s.TCPPort = getInt("tcp.port", 0, 65535)
	if v := values.GetString("tcp.proxy"); v != "" {
		p, err := tcpencap.ParseProxy(v)
		if err != nil {
			bad("tcp.proxy", "%v", err) // ParseProxy's errors never show the password
		}
		s.TCPProxy = p
	}
	if b, err := strconv.ParseBool(fmt.Sprint(values.Get("tcp.tls"))); err != nil {
		bad("tcp.tls", "%v is not true or false", values.Get("tcp.tls"))
	} else {
		s.TCPTLS = b
	}
	s.IKE.HalfOpenLimit = getInt("ike.half_open_limit", 1, MaxHalfOpenLimit)
	s.IKE.CookieThreshold = getInt("ike.cookie_threshold", 0, MaxHalfOpenLimit)
	s.IKE.CookieThresholdIP = getInt("ike.cookie_threshold_ip", 0, MaxHalfOpenLimit)
	if s.IKE.CookieThreshold > 0 && s.IKE.HalfOpenLimit > 0 && s.IKE.CookieThreshold >= s.IKE.HalfOpenLimit {
		// Requests would be refused before any peer is asked for a
		// cookie: the cookie mechanism would never protect the limit.
		bad("ike.cookie_threshold", "%d is not below ike.half_open_limit (%d): lower it, raise ike.half_open_limit, or set 0 to turn cookies off",
			s.IKE.CookieThreshold, s.IKE.HalfOpenLimit)
	}
	base, err := toFloat(values.Get("retransmit.base"))
	if err != nil || base < 1 || base > 10 {
		bad("retransmit.base", "%v is not a number from 1 to 10", values.Get("retransmit.base"))
	}
	s.Retransmit.Base = base
	if s.Retransmit.Timeout <= 0 {
		bad("retransmit.timeout", "must be positive")
	}
	if len(s.TUNName) == 0 || len(s.TUNName) > 15 || strings.ContainsAny(s.TUNName, "/ \t") {
		bad("tun.name", "%q is not a valid interface name (1-15 characters, no '/' or blanks)", s.TUNName)
	}
	if s.IPsecConf == "" {
		bad("ipsec_conf", "must not be empty")
	}
	if err := errors.Join(errs...); err != nil {
		return Settings{}, err
	}
	return s, nil
}

func toInt(x any) (int, error) {
	switch n := x.(type) {
	case int:
		return n, nil
	case int64:
		return int(n), nil
	case float64:
		if n != float64(int(n)) {
			return 0, fmt.Errorf("not an integer")
		}
		return int(n), nil
	case string:
		var i int
		_, err := fmt.Sscanf(strings.TrimSpace(n), "%d", &i)
		if err != nil || fmt.Sprint(i) != strings.TrimSpace(n) {
			return 0, fmt.Errorf("not an integer")
		}
		return i, nil
	}
	return 0, fmt.Errorf("not an integer")
}

func toFloat(x any) (float64, error) {
	switch n := x.(type) {
	case int:
		return float64(n), nil
	case float64:
		return n, nil
	case string:
		var f float64
		_, err := fmt.Sscanf(strings.TrimSpace(n), "%g", &f)
		return f, err
	}
	return 0, fmt.Errorf("not a number")
}
