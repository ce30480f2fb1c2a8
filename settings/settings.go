package settings

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/ipsecgw/ipsecgw/config"
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
	Retransmit    config.RetransmitSettings
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
	// SettingsFile is the ipsecgw.yaml that was read, if any.
	SettingsFile string
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

// settingKeys maps each setting to its default; the yaml keys are these
// names, the environment variables IPSECGW_ + upper case with "." -> "_".
var settingKeys = map[string]any{
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
}

// flagKeys maps command-line flags to settings.
var flagKeys = map[string]string{
	"config":         "ipsec_conf",
	"secrets":        "ipsec_secrets",
	"control-socket": "control_socket",
	"metrics-listen": "metrics_listen",
	"log-level":      "log.level",
	"log-format":     "log.format",
	"tun-name":       "tun.name",
	"tun-mtu":        "tun.mtu",
	"workers":        "workers",
}

// AddFileFlags registers --config, --secrets and --settings, the flags
// shared by `ipsecgw run` and `ipsecgw config check`.
func AddFileFlags(f *pflag.FlagSet) {
	f.String("config", DefaultIPsecConf, "ipsec.conf to read")
	f.String("secrets", DefaultIPsecSecrets, "ipsec.secrets to read")
	f.String("settings", DefaultSettingsFile, "ipsecgw.yaml daemon settings (a missing default file is not an error)")
}

// AddDaemonFlags registers the flags of the other daemon settings.
func AddDaemonFlags(f *pflag.FlagSet) {
	f.String("control-socket", DefaultControlSocket, "control socket path")
	f.String("metrics-listen", "", "address:port of the Prometheus metrics endpoint (empty: off)")
	f.String("log-level", "info", "log level: debug, info, warn, error")
	f.String("log-format", "text", "log format: text or json")
	f.String("tun-name", "ipsecgw0", "TUN device name")
	f.Int("tun-mtu", 1400, "TUN device MTU")
	f.Int("workers", 0, "crypto worker goroutines (0: one per CPU)")
}

// LoadSettings reads the daemon settings. flags may be nil; flags that were
// registered with AddFileFlags/AddDaemonFlags and set on the command line
// win over the environment, which wins over the settings file.
func LoadSettings(flags *pflag.FlagSet) (Settings, error) {
	v := viper.New()
	for k, d := range settingKeys {
		v.SetDefault(k, d)
	}
	v.SetEnvPrefix("IPSECGW")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_", "-", "_"))
	v.AutomaticEnv()
	file, explicit := DefaultSettingsFile, false
	if env, ok := os.LookupEnv("IPSECGW_SETTINGS"); ok {
		file, explicit = env, true
	}
	if flags != nil {
		if fl := flags.Lookup("settings"); fl != nil && (fl.Changed || !explicit) {
			file, explicit = fl.Value.String(), explicit || fl.Changed
		}
		for name, key := range flagKeys {
			if fl := flags.Lookup(name); fl != nil {
				if err := v.BindPFlag(key, fl); err != nil {
					return Settings{}, err
				}
			}
		}
	}
	var s Settings
	if file != "" {
		v.SetConfigFile(file)
		v.SetConfigType("yaml")
		err := v.ReadInConfig()
		switch {
		case err == nil:
			s.SettingsFile = file
			if unknown := unknownSettings(v); len(unknown) > 0 {
				return Settings{}, fmt.Errorf("%s: unknown settings %s", file, strings.Join(unknown, ", "))
			}
		case errors.Is(err, fs.ErrNotExist) && !explicit:
		default:
			return Settings{}, fmt.Errorf("settings %s: %w", file, err)
		}
	}
	s.IPsecConf = v.GetString("ipsec_conf")
	s.IPsecSecrets = v.GetString("ipsec_secrets")
	s.ControlSocket = v.GetString("control_socket")
	s.MetricsListen = v.GetString("metrics_listen")
	s.LogFormat = v.GetString("log.format")
	s.TUNName = v.GetString("tun.name")
	s.ESPEncapsulation = v.GetString("esp.encapsulation")
	var errs []error
	bad := func(key string, format string, args ...any) {
		errs = append(errs, fmt.Errorf("setting %s: %s", key, fmt.Sprintf(format, args...)))
	}
	if err := s.LogLevel.UnmarshalText([]byte(v.GetString("log.level"))); err != nil {
		bad("log.level", "%q is not debug, info, warn or error", v.GetString("log.level"))
	}
	if !slices.Contains([]string{"auto", "nat", "udp"}, s.ESPEncapsulation) {
		bad("esp.encapsulation", "%q is not auto, nat or udp", s.ESPEncapsulation)
	}
	if s.LogFormat != "text" && s.LogFormat != "json" {
		bad("log.format", "%q is not text or json", s.LogFormat)
	}
	getInt := func(key string, lo, hi int) int {
		n, err := toInt(v.Get(key))
		if err != nil || n < lo || n > hi {
			bad(key, "%v is not a number from %d to %d", v.Get(key), lo, hi)
		}
		return n
	}
	getDur := func(key string) time.Duration {
		d, err := config.ParseDuration(fmt.Sprint(v.Get(key)))
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
	s.IKE.HalfOpenLimit = getInt("ike.half_open_limit", 1, MaxHalfOpenLimit)
	s.IKE.CookieThreshold = getInt("ike.cookie_threshold", 0, MaxHalfOpenLimit)
	s.IKE.CookieThresholdIP = getInt("ike.cookie_threshold_ip", 0, MaxHalfOpenLimit)
	if s.IKE.CookieThreshold > 0 && s.IKE.HalfOpenLimit > 0 && s.IKE.CookieThreshold >= s.IKE.HalfOpenLimit {
		// Requests would be refused before any peer is asked for a
		// cookie: the cookie mechanism would never protect the limit.
		bad("ike.cookie_threshold", "%d is not below ike.half_open_limit (%d): lower it, raise ike.half_open_limit, or set 0 to turn cookies off",
			s.IKE.CookieThreshold, s.IKE.HalfOpenLimit)
	}
	base, err := toFloat(v.Get("retransmit.base"))
	if err != nil || base < 1 || base > 10 {
		bad("retransmit.base", "%v is not a number from 1 to 10", v.Get("retransmit.base"))
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

func unknownSettings(v *viper.Viper) []string {
	var out []string
	for _, k := range v.AllKeys() {
		if _, ok := settingKeys[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
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
