package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/ipsecgw/ipsecgw/control"
)

// The operator commands beyond status/up/down: reset, reload, list-sas,
// stats, events and export-keys. Each talks to the daemon's control socket
// and prints text, or JSON with --json.

func init() {
	commandAdders = append(commandAdders, addOpsCommands)
}

// printJSON writes v indented, as every --json output is.
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// withDaemon dials the daemon for one command and runs f with a bounded
// context.
func withDaemon(cmd *cobra.Command, socket string, f func(ctx context.Context, cl *control.Client) error) error {
	ctx, cancel := context.WithTimeout(cmd.Context(), requestTimeout)
	defer cancel()
	cl, err := dialDaemon(ctx, cmd, socket)
	if err != nil {
		return err
	}
	defer cl.Close()
	return f(ctx, cl)
}

// resetResult is the --json output of reset.
type resetResult struct {
	Conn   string `json:"conn"`
	Result string `json:"result"`
}

// exportResult is the --json output of export-keys (the keys stay in the
// files).
type exportResult struct {
	Dir         string   `json:"dir"`
	Files       []string `json:"files"`
	ChildSAs    int      `json:"child_sas"`
	IKESAs      int      `json:"ike_sas"`
	Unsupported []string `json:"unsupported"`
}

func addOpsCommands(root *cobra.Command) {
	type opts struct {
		socket string
		json   bool
	}
	flags := func(c *cobra.Command, o *opts) {
		addSocketFlags(c.Flags(), &o.socket)
		c.Flags().BoolVar(&o.json, "json", false, "print JSON")
	}

	var ro opts
	reset := &cobra.Command{
		Use:   "reset NAME",
		Short: "Tear connection NAME down and initiate it again",
		Long: "Delete the SAs of connection NAME at the peer and locally, then initiate it again\n" +
			"(CloudStack's ResetVpnConnection). Returns once the new attempt is under way; watch\n" +
			"`ipsecgw status` or `ipsecgw events` for its outcome.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return withDaemon(cmd, ro.socket, func(ctx context.Context, cl *control.Client) error {
				if err := cl.Reset(ctx, args[0]); err != nil {
					return err
				}
				if ro.json {
					return printJSON(cmd.OutOrStdout(), resetResult{Conn: args[0], Result: "initiating"})
				}
				fmt.Fprintf(cmd.OutOrStdout(), "connection %s reset: initiating\n", args[0])
				return nil
			})
		},
	}
	flags(reset, &ro)

	var lo opts
	reload := &cobra.Command{
		Use:   "reload",
		Short: "Reload ipsec.conf and ipsec.secrets, as SIGHUP does, and show what changed",
		Long: "Ask the daemon to load its configuration files again and apply the difference:\n" +
			"unchanged connections are left alone, changed ones re-negotiated as far as the change\n" +
			"needs. A configuration with errors is refused (exit 1) and the running one stays.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withDaemon(cmd, lo.socket, func(ctx context.Context, cl *control.Client) error {
				r, err := cl.Reload(ctx)
				if err != nil {
					return err
				}
				if lo.json {
					return printJSON(cmd.OutOrStdout(), r)
				}
				return control.WriteReload(cmd.OutOrStdout(), r)
			})
		},
	}
	flags(reload, &lo)

	var so opts
	listSAs := &cobra.Command{
		Use:   "list-sas",
		Short: "List the IKE and CHILD SAs: SPIs, algorithms, lifetimes left, rekey times, counters",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withDaemon(cmd, so.socket, func(ctx context.Context, cl *control.Client) error {
				sas, err := cl.ListSAs(ctx)
				if err != nil {
					return err
				}
				if so.json {
					return printJSON(cmd.OutOrStdout(), sas)
				}
				return control.WriteSAs(cmd.OutOrStdout(), sas)
			})
		},
	}
	flags(listSAs, &so)

	var to opts
	stats := &cobra.Command{
		Use:   "stats",
		Short: "Show the dataplane and IKE counters, drops by reason and each connection's usage",
		Long: "Counters since the daemon started: ESP packets and bytes each way, packets dropped\n" +
			"by reason, IKE SAs, half-open SAs, cookies and queue drops, and per connection the\n" +
			"bytes and packets across all its CHILD SAs (rekeys and reconnects do not reset them)\n" +
			"with its own drops. SIGUSR2 writes the same to the daemon's log.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withDaemon(cmd, to.socket, func(ctx context.Context, cl *control.Client) error {
				st, err := cl.Stats(ctx)
				if err != nil {
					return err
				}
				if to.json {
					return printJSON(cmd.OutOrStdout(), st)
				}
				return control.WriteStats(cmd.OutOrStdout(), st)
			})
		},
	}
	flags(stats, &to)

	var eo opts
	var count int
	events := &cobra.Command{
		Use:   "events",
		Short: "Follow the daemon's IKE events (SAs up, rekeyed, down, failures, state changes)",
		Long: "Print one line per event as it happens, until interrupted (or after --count events):\n" +
			"IKE and CHILD SAs coming up, rekeyed and going down with their cause, failures with\n" +
			"what to change, connection state changes, and each IKE exchange with its round trip.\n" +
			"--json prints one JSON object per line.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			dialCtx, cancel := context.WithTimeout(ctx, requestTimeout)
			cl, err := dialDaemon(dialCtx, cmd, eo.socket)
			cancel()
			if err != nil {
				return err
			}
			defer cl.Close()
			out := cmd.OutOrStdout()
			enc := json.NewEncoder(out)
			seen := 0
			var werr error
			err = cl.Events(ctx, func(e control.Event) bool {
				if eo.json {
					werr = enc.Encode(e)
				} else {
					werr = control.WriteEvent(out, e)
				}
				seen++
				return werr == nil && (count <= 0 || seen < count)
			})
			if werr != nil {
				return werr
			}
			if err != nil && ctx.Err() != nil {
				return nil // interrupted: the usual way to stop following
			}
			return err
		},
	}
	flags(events, &eo)
	events.Flags().IntVar(&count, "count", 0, "exit after this many events (0: follow until interrupted)")

	var ko opts
	var dir string
	export := &cobra.Command{
		Use:   "export-keys",
		Short: "Write the current SAs' keys as Wireshark decryption tables (root only; debugging)",
		Long: "Ask the daemon for the keys of its current CHILD and IKE SAs and write them, mode\n" +
			"0600, as DIR/wireshark/esp_sa and DIR/wireshark/ikev2_decryption_table, the tables of\n" +
			"Wireshark's ESP and IKEv2 dissectors, and AH SAs' integrity keys as DIR/ah_sa (the same\n" +
			"columns without the encryption ones; Wireshark checks no AH ICV). Decrypt a capture with\n\n" +
			"  XDG_CONFIG_HOME=DIR tshark -o esp.enable_encryption_decode:TRUE -r capture.pcap\n\n" +
			"Anyone with these files can decrypt the tunnels' traffic: only root may ask, the\n" +
			"daemon logs a warning each time, and the files should be deleted after use.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withDaemon(cmd, ko.socket, func(ctx context.Context, cl *control.Client) error {
				k, err := cl.ExportKeys(ctx)
				if err != nil {
					return err
				}
				ws := filepath.Join(dir, "wireshark")
				if err := os.MkdirAll(ws, 0o700); err != nil {
					return err
				}
				files := []string{filepath.Join(ws, "esp_sa"), filepath.Join(ws, "ikev2_decryption_table")}
				for i, text := range []string{k.ESPSA, k.IKEv2DecryptionTable} {
					if err := writePrivate(files[i], text); err != nil {
						return err
					}
				}
				if k.AHSA != "" {
					// Not under wireshark/: Wireshark keeps no AH table.
					f := filepath.Join(dir, "ah_sa")
					if err := writePrivate(f, k.AHSA); err != nil {
						return err
					}
					files = append(files, f)
				}
				res := exportResult{Dir: dir, Files: files, ChildSAs: k.ChildSAs, IKESAs: k.IKESAs, Unsupported: k.Unsupported}
				if ko.json {
					return printJSON(cmd.OutOrStdout(), res)
				}
				out := cmd.OutOrStdout()
				fmt.Fprintf(out, "keys of %d CHILD SAs and %d IKE SAs written to %s and %s (mode 0600)\n", k.ChildSAs, k.IKESAs, files[0], files[1])
				if len(files) > 2 {
					fmt.Fprintf(out, "AH SAs' integrity keys written to %s (mode 0600; Wireshark checks no AH ICV)\n", files[2])
				}
				for _, u := range k.Unsupported {
					fmt.Fprintf(out, "not written (Wireshark cannot decrypt it): %s\n", u)
				}
				fmt.Fprintf(out, "decrypt with: XDG_CONFIG_HOME=%s tshark -o esp.enable_encryption_decode:TRUE -r CAPTURE\n", dir)
				fmt.Fprintln(out, "anyone with these files can decrypt the traffic: delete them when done")
				return nil
			})
		},
	}
	flags(export, &ko)
	export.Flags().StringVar(&dir, "dir", "ipsecgw-keys", "directory to write wireshark/esp_sa and wireshark/ikev2_decryption_table into")

	root.AddCommand(reset, reload, listSAs, stats, events, export)
}

// writePrivate writes text to path with mode 0600, also when the file
// existed with a wider mode.
func writePrivate(path, text string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := io.WriteString(f, text); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
