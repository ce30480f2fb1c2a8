package cli

// The daemon settings are read here, next to the command line, and nowhere
// else: viper and pflag stay out of the packages the daemon is built from
// (package settings says why; TestViperOnlyInTheCommandLine checks it).
// The loader merges the sources and package settings converts and checks
// the values (settings.Parse).

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/ipsecgw/ipsecgw/settings"
)

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

// addFileFlags registers --config, --secrets and --settings, the flags
// shared by `ipsecgw run` and `ipsecgw config check`.
func addFileFlags(f *pflag.FlagSet) {
	f.String("config", settings.DefaultIPsecConf, "ipsec.conf to read")
	f.String("secrets", settings.DefaultIPsecSecrets, "ipsec.secrets to read")
	f.String("settings", settings.DefaultSettingsFile, "ipsecgw.yaml daemon settings (a missing default file is not an error)")
	addSwanctlFlag(f)
}

// addDaemonFlags registers the flags of the other daemon settings.
func addDaemonFlags(f *pflag.FlagSet) {
	f.String("control-socket", settings.DefaultControlSocket, "control socket path")
	f.String("metrics-listen", "", "address:port of the Prometheus metrics endpoint (empty: off)")
	f.String("log-level", "info", "log level: debug, info, warn, error")
	f.String("log-format", "text", "log format: text or json")
	f.String("tun-name", "ipsecgw0", "TUN device name")
	f.Int("tun-mtu", 1400, "TUN device MTU")
	f.Int("workers", 0, "crypto worker goroutines (0: one per CPU)")
}

// loadSettings reads the daemon settings. flags may be nil; flags that were
// registered with addFileFlags/addDaemonFlags and set on the command line
// win over the environment, which wins over the settings file.
func loadSettings(flags *pflag.FlagSet) (settings.Settings, error) {
	v := viper.New()
	defaults := settings.DefaultValues()
	for k, d := range defaults {
		v.SetDefault(k, d)
	}
	v.SetEnvPrefix("IPSECGW")
	v.SetEnvKeyReplacer(strings.NewReplacer(".", "_", "-", "_"))
	v.AutomaticEnv()
	file, explicit := settings.DefaultSettingsFile, false
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
					return settings.Settings{}, err
				}
			}
		}
	}
	settingsFile := ""
	if file != "" {
		v.SetConfigFile(file)
		v.SetConfigType("yaml")
		err := v.ReadInConfig()
		switch {
		case err == nil:
			settingsFile = file
			if unknown := unknownSettings(v, defaults); len(unknown) > 0 {
				return settings.Settings{}, fmt.Errorf("%s: unknown settings %s", file, strings.Join(unknown, ", "))
			}
		case errors.Is(err, fs.ErrNotExist) && !explicit:
		default:
			return settings.Settings{}, fmt.Errorf("settings %s: %w", file, err)
		}
	}
	s, err := settings.Parse(v)
	if err != nil {
		return settings.Settings{}, err
	}
	s.SettingsFile = settingsFile
	return s, nil
}

// unknownSettings lists the keys of the file that are no setting, so that
// a misspelt key is an error instead of a silently ignored line.
func unknownSettings(v *viper.Viper, known map[string]any) []string {
	var out []string
	for _, k := range v.AllKeys() {
		if _, ok := known[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
