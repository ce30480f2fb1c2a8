package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/netip"

	"github.com/spf13/cobra"

	"github.com/ipsecgw/ipsecgw/config"
)

func init() {
	commandAdders = append(commandAdders, addConfigCommands)
}

func addConfigCommands(root *cobra.Command) {
	group := &cobra.Command{
		Use:   "config",
		Short: "Check, show and convert the ipsec.conf / ipsec.secrets (or swanctl.conf) configuration",
	}

	check := &cobra.Command{
		Use:   "check",
		Short: "Check ipsec.conf and ipsec.secrets; print every problem as FILE:LINE: message",
		Long: "Parse ipsec.conf and ipsec.secrets as the daemon would and print every error and\n" +
			"warning. Exits 1 when there are errors, 0 when there are only warnings.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, diags, err := loadForCLI(cmd)
			if err != nil && diags == nil {
				return err
			}
			out := cmd.OutOrStdout()
			printDiagnostics(out, diags)
			errs, warns := diags.Count()
			if cfg == nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "config check: %d error(s), %d warning(s)\n", errs, warns)
				return exitError{code: 1}
			}
			fmt.Fprintf(out, "config check: %d connection(s) OK, %d warning(s)\n", len(cfg.Names()), warns)
			return nil
		},
	}
	addFileFlags(check.Flags())

	var asJSON bool
	show := &cobra.Command{
		Use:   "show NAME",
		Short: "Print the effective connection NAME (defaults applied, also= resolved, secrets masked)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, diags, err := loadForCLI(cmd)
			if err != nil && diags == nil {
				return err
			}
			if cfg == nil {
				printDiagnostics(cmd.ErrOrStderr(), diags)
				return exitError{code: 1}
			}
			v, ok := cfg.View(args[0])
			if !ok {
				return fmt.Errorf("no conn named %q (conns: %v)", args[0], cfg.Names())
			}
			out := cmd.OutOrStdout()
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(v)
			}
			_, err = io.WriteString(out, v.Text())
			return err
		},
	}
	addFileFlags(show.Flags())
	show.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	group.AddCommand(check, show, newConvertCommand())
	root.AddCommand(group)
}

// loadForCLI reads the settings (flags, IPSECGW_* environment,
// ipsecgw.yaml) and loads the files they name. A nil diags with an error
// means the settings themselves are wrong.
func loadForCLI(cmd *cobra.Command) (*config.Config, config.Diagnostics, error) {
	s, err := loadSettings(cmd.Flags())
	if err != nil {
		return nil, nil, err
	}
	return config.Load(configOptions(cmd.Flags(), s, hostAddrs()))
}

func printDiagnostics(w io.Writer, diags config.Diagnostics) {
	for _, d := range diags {
		fmt.Fprintln(w, d.String())
	}
}

// hostAddrs lists this host's addresses so that config can tell local
// from remote ends; nil (unknown) when they cannot be read.
func hostAddrs() []netip.Addr {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return nil
	}
	out := []netip.Addr{}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			out = append(out, p.Addr().Unmap())
		}
	}
	return out
}
