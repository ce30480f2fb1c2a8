package cli

import (
	"net/netip"
	"os"

	"github.com/spf13/pflag"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/settings"
)

// addSwanctlFlag registers --swanctl with the file flags. It is a flag of
// the commands that load the configuration, not a daemon setting: a
// swanctl.conf given as --config (or ipsec_conf) is recognised by its name
// or content anyway.
func addSwanctlFlag(f *pflag.FlagSet) {
	f.String("swanctl", "", "read this strongSwan swanctl.conf (connections and secrets) instead of ipsec.conf; --secrets is read too when it exists")
}

// configOptions is what the commands load: ipsec.conf and ipsec.secrets
// of the settings, or with --swanctl that file.
func configOptions(f *pflag.FlagSet, s settings.Settings, addrs []netip.Addr) config.Options {
	opts := config.Options{ConfPath: s.IPsecConf, SecretsPath: s.IPsecSecrets, LocalAddrs: addrs}
	if fl := f.Lookup("swanctl"); fl != nil && fl.Value.String() != "" {
		opts.SwanctlPath = fl.Value.String()
		// The default ipsec.secrets need not exist next to a swanctl.conf.
		if fs := f.Lookup("secrets"); fs != nil && !fs.Changed && s.IPsecSecrets == settings.DefaultIPsecSecrets && !exists(s.IPsecSecrets) {
			opts.SecretsPath = ""
		}
	}
	return opts
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}
