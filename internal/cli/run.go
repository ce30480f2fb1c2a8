package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/daemon"
	"github.com/ipsecgw/ipsecgw/settings"
)

func init() {
	commandAdders = append(commandAdders, addRunCommand)
}

func addRunCommand(root *cobra.Command) {
	run := &cobra.Command{
		Use:   "run",
		Short: "Run the IPsec gateway daemon in the foreground",
		Long: "Load ipsec.conf, ipsec.secrets and the daemon settings, open the IKE/ESP sockets and\n" +
			"the TUN device, and run the gateway until SIGTERM or SIGINT, which delete the SAs at\n" +
			"the peers and remove the routes and the TUN device. A configuration with errors is\n" +
			"refused with every problem printed as FILE:LINE: message. SIGHUP reloads ipsec.conf\n" +
			"and ipsec.secrets: unchanged connections are left alone, changed ones re-negotiated,\n" +
			"and a configuration with errors is refused while the running one stays.\n\n" +
			"Several daemons can run side by side in different network namespaces when each has\n" +
			"its own --config, --secrets, --settings, --socket and --tun-name.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if ctx == nil {
				ctx = context.Background()
			}
			ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			hup := make(chan os.Signal, 1)
			signal.Notify(hup, syscall.SIGHUP)
			defer signal.Stop(hup)
			reload := make(chan struct{}, 1)
			go func() {
				for {
					select {
					case <-hup:
						select {
						case reload <- struct{}{}:
						default: // a reload is already pending
						}
					case <-ctx.Done():
						return
					}
				}
			}()
			return runDaemon(ctx, cmd, reload)
		},
	}
	f := run.Flags()
	addFileFlags(f)
	addDaemonFlags(f)
	f.String("socket", "", "control socket path (short for --control-socket)")
	root.AddCommand(run)
}

// runDaemon loads everything and runs the daemon until ctx ends; each
// value on reload reloads the configuration files.
func runDaemon(ctx context.Context, cmd *cobra.Command, reload <-chan struct{}) error {
	stderr := cmd.ErrOrStderr()
	s, err := loadSettings(cmd.Flags())
	if err != nil {
		return err
	}
	if fl := cmd.Flags().Lookup("socket"); fl != nil && fl.Changed {
		s.ControlSocket = fl.Value.String()
	}
	addrs := hostAddrs()
	load := func() (*config.Config, config.Diagnostics, error) {
		return config.Load(config.Options{ConfPath: s.IPsecConf, SecretsPath: s.IPsecSecrets, LocalAddrs: hostAddrs()})
	}
	cfg, diags, err := config.Load(config.Options{ConfPath: s.IPsecConf, SecretsPath: s.IPsecSecrets, LocalAddrs: addrs})
	if err != nil && diags == nil {
		return err
	}
	printDiagnostics(stderr, diags)
	if cfg == nil {
		errs, warns := diags.Count()
		fmt.Fprintf(stderr, "ipsecgw: refusing to start: %d error(s), %d warning(s) in the configuration\n", errs, warns)
		return exitError{code: 1}
	}
	log := newLogger(stderr, s)
	return daemon.Run(ctx, daemon.Options{Config: cfg, Settings: s, Logger: log, LocalAddrs: addrs, Reload: reload, Load: load})
}

// newLogger builds the daemon's slog logger in the format and at the level
// the settings ask for.
func newLogger(w io.Writer, s settings.Settings) *slog.Logger {
	opts := &slog.HandlerOptions{Level: s.LogLevel}
	if s.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
