package cli

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/ipsecgw/ipsecgw/config/export"
)

// newConvertCommand is `ipsecgw config convert --to swanctl|ipsec.conf`.
func newConvertCommand() *cobra.Command {
	var (
		to, dir     string
		withSecrets bool
	)
	cmd := &cobra.Command{
		Use:   "convert --to swanctl|ipsec.conf",
		Short: "Write the loaded configuration (ipsec.conf or swanctl.conf) as swanctl.conf or ipsec.conf",
		Long: "Load the configuration as the daemon would (ipsec.conf + ipsec.secrets, or a swanctl.conf\n" +
			"with --swanctl or by its name or content) and write every conn in the other syntax, with\n" +
			"the same meaning for ipsecgw. The pre-shared keys only with --with-secrets. Conns that\n" +
			"cannot be written are listed on stderr. With --dir the files are written there (mode 0600\n" +
			"with secrets) instead of stdout.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			format := map[string]export.Format{"swanctl": export.Swanctl, "swanctl.conf": export.Swanctl,
				"ipsec.conf": export.StrongSwan, "strongswan": export.StrongSwan}[to]
			if format == "" {
				return fmt.Errorf("--to must be swanctl or ipsec.conf, not %q", to)
			}
			cfg, diags, err := loadForCLI(cmd)
			if err != nil && diags == nil {
				return err
			}
			if cfg == nil {
				printDiagnostics(cmd.ErrOrStderr(), diags)
				return exitError{code: 1}
			}
			files, notes, err := export.Convert(cfg, format, withSecrets)
			if err != nil {
				return err
			}
			for _, n := range notes {
				fmt.Fprintln(cmd.ErrOrStderr(), "config convert:", n)
			}
			if dir != "" {
				return writeExport(dir, files, withSecrets)
			}
			for i, f := range files {
				if i > 0 {
					if _, err := io.WriteString(cmd.OutOrStdout(), "\n"); err != nil {
						return err
					}
				}
				if _, err := io.WriteString(cmd.OutOrStdout(), f.Text); err != nil {
					return err
				}
			}
			return nil
		},
	}
	addFileFlags(cmd.Flags())
	cmd.Flags().StringVar(&to, "to", "", "swanctl or ipsec.conf")
	cmd.Flags().BoolVar(&withSecrets, "with-secrets", false, "include the pre-shared keys")
	cmd.Flags().StringVar(&dir, "dir", "", "write the files into this directory instead of printing them")
	return cmd
}
