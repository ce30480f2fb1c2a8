package cli

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ipsecgw/ipsecgw/guard"
)

func init() {
	commandAdders = append(commandAdders, addGuardCommands)
}

// addGuardCommands adds `ipsecgw guard list|sync|flush`. They act on the
// main routing table of the network namespace they run in, without the
// daemon, so they work while it is stopped or dead.
func addGuardCommands(root *cobra.Command) {
	group := &cobra.Command{
		Use:   "guard",
		Short: "List, install or remove the leak guards (blackhole routes for the remote subnets)",
		Long: fmt.Sprintf("The leak guards are blackhole routes, one per remote subnet of every conn with\n"+
			"auto=start|route|add, with metric %d and route protocol %d (%s). The TUN's own routes\n"+
			"win over them while a tunnel is up; whenever it is not (no CHILD SA, `ipsecgw down`,\n"+
			"the daemon stopped or killed) they keep the traffic from leaving in clear by the\n"+
			"default route. The daemon installs them at start and on every reload and leaves them\n"+
			"in place when it stops. The devices of route-based conns (ipsec<N>) are persistent, so\n"+
			"that a killed daemon leaves them, and the routes on them, in place; `list` shows them.\n"+
			"These commands act on the network namespace they run in.",
			guard.Metric, guard.Protocol, guard.ProtocolName),
	}

	list := &cobra.Command{
		Use:   "list",
		Short: "List the leak guard routes in this network namespace",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			g := guard.New(guard.Options{})
			defer g.Close()
			routes, err := g.Routes()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			devs, err := g.Devices()
			if err != nil {
				return err
			}
			if len(routes) == 0 && len(devs) == 0 {
				fmt.Fprintln(out, "no leak guards")
			}
			for _, d := range devs {
				state := "read by the daemon"
				if !d.Attached {
					state = "left by a stopped daemon: drops what is routed into it"
				}
				fmt.Fprintf(out, "device %s (route-based conn, %s)\n", d.Name, state)
			}
			// As `ip route` shows them.
			for _, r := range routes {
				if r.Blackhole {
					fmt.Fprintf(out, "blackhole %s metric %d\n", r.Prefix, r.Metric)
				} else {
					fmt.Fprintf(out, "%s metric %d (not a blackhole: the next sync removes it)\n", r.Prefix, r.Metric)
				}
			}
			return nil
		},
	}

	sync := &cobra.Command{
		Use:   "sync",
		Short: "Install the leak guards ipsec.conf asks for, remove those it no longer needs",
		Long: "Do what the daemon does at start and on reload: read ipsec.conf (and ipsec.secrets,\n" +
			"which the configuration check needs), add the missing guard routes, keep those in\n" +
			"place and remove guard routes no conn needs any more. Useful early at boot, before\n" +
			"the daemon starts, and to close the gateway again after `ipsecgw guard flush`.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, diags, err := loadForCLI(cmd)
			if err != nil && diags == nil {
				return err
			}
			if cfg == nil {
				printDiagnostics(cmd.ErrOrStderr(), diags)
				return exitError{code: 1}
			}
			g := guard.New(guard.Options{})
			defer g.Close()
			res, err := g.Sync(cfg)
			printSync(cmd, res)
			return err
		},
	}
	addFileFlags(sync.Flags())

	flush := &cobra.Command{
		Use:   "flush",
		Short: "Remove every leak guard route: open the gateway deliberately",
		Long: "Remove every guard route (route protocol " + fmt.Sprint(guard.Protocol) + ") from this network namespace. From then\n" +
			"on, traffic for a remote subnet whose tunnel is not up leaves by the next best route,\n" +
			"in clear. Devices of route-based conns that a killed daemon left (they drop what is\n" +
			"routed into them) are removed too, with the routes on them; those a running daemon\n" +
			"reads are left alone. A running daemon installs the guards again at its next reload or start;\n" +
			"to open the gateway for good, remove the conn from ipsec.conf or set auto=ignore.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			g := guard.New(guard.Options{})
			defer g.Close()
			removed, err := g.Flush()
			for _, p := range removed {
				fmt.Fprintf(cmd.OutOrStdout(), "removed %s\n", p)
			}
			devs, derr := g.FlushDevices()
			for _, d := range devs {
				fmt.Fprintf(cmd.OutOrStdout(), "removed device %s\n", d)
			}
			err = errors.Join(err, derr)
			if err == nil && len(removed) == 0 && len(devs) == 0 {
				fmt.Fprintln(cmd.OutOrStdout(), "no leak guards")
			}
			return err
		},
	}

	group.AddCommand(list, sync, flush)
	root.AddCommand(group)
}

// printSync prints what a sync did, one line per route and exception.
func printSync(cmd *cobra.Command, res guard.Result) {
	out := cmd.OutOrStdout()
	conns := map[netip.Prefix]string{}
	for _, w := range res.Plan.Routes {
		conns[w.Prefix] = " (conns " + strings.Join(w.Conns, ",") + ")"
	}
	for _, group := range []struct {
		verb     string
		prefixes []netip.Prefix
	}{{"added", res.Added}, {"kept", res.Kept}, {"removed", res.Removed}} {
		for _, p := range group.prefixes {
			fmt.Fprintf(out, "%s %s%s\n", group.verb, p, conns[p])
		}
	}
	for _, d := range res.RemovedDevices {
		fmt.Fprintf(out, "removed device %s (left by an earlier run, no conn uses it)\n", d)
	}
	for _, e := range res.Plan.Exceptions {
		fmt.Fprintf(out, "not guarded %s (conn %s): %s\n", e.Prefix, e.Conn, e.Reason)
	}
	for _, u := range res.Plan.Unresolved {
		fmt.Fprintf(cmd.ErrOrStderr(), "warning: %s; its subnets are guarded without checking that the peer lies outside them\n", u)
	}
}
