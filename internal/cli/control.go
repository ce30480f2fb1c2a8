package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/settings"
)

func init() {
	commandAdders = append(commandAdders, addControlCommands)
}

// requestTimeout bounds one request/response on the control socket.
const requestTimeout = 30 * time.Second

// pollInterval is how often `up` asks for the status while it waits.
const pollInterval = 20 * time.Millisecond

// addSocketFlags registers --socket and --settings on a control command.
func addSocketFlags(f *pflag.FlagSet, p *string) {
	f.StringVar(p, "socket", "", "control socket of the daemon (default: control_socket of the settings, "+settings.DefaultControlSocket+")")
	f.String("settings", settings.DefaultSettingsFile, "ipsecgw.yaml to take the control socket path from when --socket is not given")
}

// socketPath is --socket, or else the control socket the daemon's settings
// name (ipsecgw.yaml, IPSECGW_CONTROL_SOCKET), as `ipsecgw run` reads them.
func socketPath(cmd *cobra.Command, flagValue string) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	fs := pflag.NewFlagSet("settings", pflag.ContinueOnError)
	fs.String("settings", settings.DefaultSettingsFile, "")
	if fl := cmd.Flags().Lookup("settings"); fl != nil && fl.Changed {
		if err := fs.Set("settings", fl.Value.String()); err != nil {
			return "", err
		}
	}
	s, err := loadSettings(fs)
	if err != nil {
		return "", err
	}
	return s.ControlSocket, nil
}

// dialDaemon connects to the daemon named by the command's flags.
func dialDaemon(ctx context.Context, cmd *cobra.Command, flagValue string) (*control.Client, error) {
	path, err := socketPath(cmd, flagValue)
	if err != nil {
		return nil, err
	}
	return control.Dial(ctx, path)
}

func addControlCommands(root *cobra.Command) {
	var socket string
	var asJSON, withGlobal bool
	status := &cobra.Command{
		Use:   "status",
		Short: "List every configured connection with its state, SAs and counters",
		Long: "Ask the running daemon for the state of every configured connection (down ones\n" +
			"included): state, last failure, negotiated algorithms, SPIs, uptime, bytes and\n" +
			"packets each way, then one line of daemon-wide IKE counters (half-open SAs, COOKIE\n" +
			"answers, requests refused at the half-open limit, queue drops). --json prints the\n" +
			"array of connections documented in the README; --json --global wraps it as\n" +
			"{\"global\": {...}, \"conns\": [...]} with the counters.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), requestTimeout)
			defer cancel()
			cl, err := dialDaemon(ctx, cmd, socket)
			if err != nil {
				return err
			}
			defer cl.Close()
			conns, global, err := cl.StatusAll(ctx)
			if err != nil {
				return err
			}
			if conns == nil {
				conns = []control.ConnStatus{}
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				if withGlobal {
					return enc.Encode(statusWithGlobal{Global: global, Conns: conns})
				}
				// The bare array stays the default: scripts parse it.
				return enc.Encode(conns)
			}
			if err := control.WriteTable(out, conns); err != nil {
				return err
			}
			return control.WriteGlobal(out, global)
		},
	}
	addSocketFlags(status.Flags(), &socket)
	status.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	status.Flags().BoolVar(&withGlobal, "global", false, `with --json: print {"global": {...}, "conns": [...]} (the daemon-wide IKE counters and the connections) instead of the bare array`)

	var upSocket string
	var wait time.Duration
	up := &cobra.Command{
		Use:   "up NAME",
		Short: "Initiate connection NAME and wait until it is established or fails",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runUp(cmd, upSocket, args[0], wait)
		},
	}
	addSocketFlags(up.Flags(), &upSocket)
	up.Flags().DurationVar(&wait, "wait", 60*time.Second, "how long to wait for the result (0: return once started)")

	var downSocket string
	down := &cobra.Command{
		Use:   "down NAME",
		Short: "Delete the SAs of connection NAME at the peer and locally",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), requestTimeout)
			defer cancel()
			cl, err := dialDaemon(ctx, cmd, downSocket)
			if err != nil {
				return err
			}
			defer cl.Close()
			if err := cl.Down(ctx, args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "connection %s closed\n", args[0])
			return nil
		},
	}
	addSocketFlags(down.Flags(), &downSocket)

	root.AddCommand(status, up, down)
}

// statusWithGlobal is the output of `status --json --global`.
type statusWithGlobal struct {
	Global control.GlobalStatus `json:"global"`
	Conns  []control.ConnStatus `json:"conns"`
}

// runUp starts a connection and, unless wait is 0, polls its status until it
// is established (exit 0) or failed (exit 1, printing the reason).
func runUp(cmd *cobra.Command, socket, name string, wait time.Duration) error {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	dialCtx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	cl, err := dialDaemon(dialCtx, cmd, socket)
	if err != nil {
		return err
	}
	defer cl.Close()
	before, _, err := connStatus(dialCtx, cl, name)
	if err != nil {
		return err
	}
	if err := cl.Up(dialCtx, name); err != nil {
		return err
	}
	out := cmd.OutOrStdout()
	if wait <= 0 {
		fmt.Fprintf(out, "connection %s initiating\n", name)
		return nil
	}
	deadline := time.Now().Add(wait)
	// A failure state left over from an earlier attempt may still show
	// right after the request: a failure counts once the conn has been seen
	// in another state, or when its reason differs from the earlier one.
	sawOther := false
	for {
		reqCtx, cancel := context.WithTimeout(ctx, requestTimeout)
		c, _, err := connStatus(reqCtx, cl, name)
		cancel()
		if err != nil {
			return err
		}
		switch c.State {
		case control.StateEstablished:
			desc := ""
			if c.IKE != nil {
				desc = " (IKE " + c.IKE.Proposal
				for _, ch := range c.Children {
					desc += ", ESP " + ch.Proposal
				}
				desc += ")"
			}
			fmt.Fprintf(out, "connection %s established%s\n", name, desc)
			return nil
		case control.StatePhase1Failed, control.StatePhase2Failed:
			if sawOther || c.LastError != before.LastError || c.State != before.State {
				fmt.Fprintf(cmd.ErrOrStderr(), "connection %s: %s: %s\n", name, c.State, dashIfEmpty(c.LastError))
				return exitError{code: 1}
			}
		case control.StateDown:
			// Down before the attempt showed up is the old state; down
			// after it means the attempt ended without a failure state.
			if sawOther {
				fmt.Fprintf(cmd.ErrOrStderr(), "connection %s went down: %s\n", name, dashIfEmpty(c.LastError))
				return exitError{code: 1}
			}
		default:
			sawOther = true
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(cmd.ErrOrStderr(), "connection %s: still %s after %v\n", name, c.State, wait)
			return exitError{code: 1}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollInterval):
		}
	}
}

func connStatus(ctx context.Context, cl *control.Client, name string) (control.ConnStatus, bool, error) {
	conns, err := cl.Status(ctx)
	if err != nil {
		return control.ConnStatus{}, false, err
	}
	for _, c := range conns {
		if c.Name == name {
			return c, true, nil
		}
	}
	names := make([]string, 0, len(conns))
	for _, c := range conns {
		names = append(names, c.Name)
	}
	return control.ConnStatus{}, false, fmt.Errorf("no connection named %q (conns: %v)", name, names)
}

func dashIfEmpty(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
