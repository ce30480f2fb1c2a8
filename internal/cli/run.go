package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/daemon"
	"github.com/ipsecgw/ipsecgw/internal/gctune"
	"github.com/ipsecgw/ipsecgw/sdnotify"
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
			"SIGUSR2 writes the dataplane, IKE and per-connection counters to the log.\n\n" +
			"Under systemd (Type=notify, deploy/systemd/ipsecgw.service) it reports READY=1 once\n" +
			"every auto=start connection had its first try, STATUS= with the tunnels established,\n" +
			"RELOADING=1/READY=1 around reloads, STOPPING=1, and WATCHDOG=1 while its IKE and\n" +
			"dataplane loops answer. --metrics-listen serves Prometheus metrics on /metrics.\n\n" +
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
			usr2 := make(chan os.Signal, 1)
			signal.Notify(usr2, syscall.SIGUSR2)
			defer signal.Stop(usr2)
			reload, stats := make(chan struct{}, 1), make(chan struct{}, 1)
			go func() {
				for {
					select {
					case <-hup:
						pend(reload)
					case <-usr2:
						pend(stats)
					case <-ctx.Done():
						return
					}
				}
			}()
			return runDaemon(ctx, cmd, reload, stats)
		},
	}
	f := run.Flags()
	addFileFlags(f)
	addDaemonFlags(f)
	f.String("socket", "", "control socket path (short for --control-socket)")
	f.String("pid-file", "", "write the daemon's PID to this file once it is running (removed at exit)")
	root.AddCommand(run)
}

// pend queues one request on ch unless one is already pending.
func pend(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// runDaemon loads everything and runs the daemon until ctx ends; each
// value on reload reloads the configuration files, each on stats logs the
// counters.
func runDaemon(ctx context.Context, cmd *cobra.Command, reload, stats <-chan struct{}) error {
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
		return config.Load(configOptions(cmd.Flags(), s, hostAddrs()))
	}
	cfg, diags, err := config.Load(configOptions(cmd.Flags(), s, addrs))
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
	pidFile, _ := cmd.Flags().GetString("pid-file")
	ready := func() {
		if pidFile == "" {
			return
		}
		if err := os.WriteFile(pidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
			log.Error("cannot write the PID file", "pid_file", pidFile, "err", err)
		}
	}
	if pidFile != "" {
		defer removePIDFile(pidFile)
	}
	stopTuning := tuneGC(log)
	defer stopTuning()
	return daemon.Run(ctx, daemon.Options{Config: cfg, Settings: s, Logger: log, LocalAddrs: addrs, Reload: reload, Load: load,
		Stats: stats, Ready: ready, Notifier: sdnotify.FromEnvironment(log), Build: daemon.BuildInfo{Version: version, Commit: buildCommit()}})
}

// removePIDFile removes the PID file if it still names this process (a
// second daemon started meanwhile keeps its own).
func removePIDFile(path string) {
	if b, err := os.ReadFile(path); err == nil && strings.TrimSpace(string(b)) == strconv.Itoa(os.Getpid()) {
		os.Remove(path)
	}
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

// tuneGC sizes the Go heap's headroom to the allocation rate (package
// gctune) unless the environment sets GOGC or GOMEMLIMIT: an operator who
// chose the runtime's settings keeps them. It returns the function that
// stops the tuning.
func tuneGC(log *slog.Logger) (stop func()) {
	for _, env := range []string{"GOGC", "GOMEMLIMIT"} {
		if v, ok := os.LookupEnv(env); ok {
			log.Info("heap headroom left to the Go runtime's settings", env, v)
			return func() {}
		}
	}
	done := make(chan struct{})
	go gctune.Run(gctune.DefaultPolicy, done, func(d gctune.Decision) {
		log.Debug("heap headroom", "gc_percent", d.Percent, "memory_released", d.Release)
	})
	return func() { close(done) }
}
