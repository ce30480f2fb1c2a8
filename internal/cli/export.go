package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ipsecgw/ipsecgw/config/export"
)

func init() {
	commandAdders = append(commandAdders, addExportCommand)
}

func addExportCommand(root *cobra.Command) {
	var (
		format, dir string
		opts        export.Options
	)
	formats := make([]string, len(export.Formats))
	for i, f := range export.Formats {
		formats[i] = string(f)
	}
	cmd := &cobra.Command{
		Use:   "export NAME --format " + strings.Join(formats, "|"),
		Short: "Print the peer's configuration for conn NAME (sides swapped), for strongSwan, Libreswan, Cisco IOS, Juniper SRX or ipsecgw",
		Long: "Write the configuration the other end of conn NAME needs: left and right swapped, the\n" +
			"conn's own proposals (strict, without ipsecgw's appended defaults) in the product's syntax,\n" +
			"lifetimes, DPD, IDs and subnets; the peer initiates when this conn only responds.\n" +
			"The pre-shared key is written only with --with-secrets; it is never logged.\n" +
			"strongswan, libreswan and ipsecgw write ipsec.conf and ipsec.secrets, swanctl one\n" +
			"swanctl.conf, cisco-ios IOS configuration commands, juniper-srx Junos set commands.\n" +
			"With --dir the files are written there (secrets files mode 0600) instead of stdout.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format == "" {
				return fmt.Errorf("--format is required: one of %s", strings.Join(formats, ", "))
			}
			opts.Format = export.Format(format)
			cfg, diags, err := loadForCLI(cmd)
			if err != nil && diags == nil {
				return err
			}
			if cfg == nil {
				printDiagnostics(cmd.ErrOrStderr(), diags)
				return exitError{code: 1}
			}
			files, err := export.Export(cfg, args[0], opts)
			if err != nil {
				return err
			}
			if dir != "" {
				return writeExport(dir, files, opts.WithSecrets)
			}
			out := cmd.OutOrStdout()
			for i, f := range files {
				if i > 0 {
					if _, err := io.WriteString(out, "\n"); err != nil {
						return err
					}
				}
				if _, err := io.WriteString(out, f.Text); err != nil {
					return err
				}
			}
			return nil
		},
	}
	addFileFlags(cmd.Flags())
	f := cmd.Flags()
	f.StringVar(&format, "format", "", "the peer's product: "+strings.Join(formats, ", "))
	f.BoolVar(&opts.WithSecrets, "with-secrets", false, "include the pre-shared key")
	f.StringVar(&opts.Address, "address", "", "this gateway's address as the peer reaches it (when left/right is %any or %defaultroute, or behind a NAT)")
	f.StringVar(&opts.Interface, "interface", "", "cisco-ios, juniper-srx: the device's interface that faces this gateway")
	f.StringVar(&opts.TunnelInterface, "tunnel-interface", "st0.0", "juniper-srx: the secure tunnel interface of the route-based VPN")
	f.StringVar(&dir, "dir", "", "write the files into this directory instead of printing them")
	root.AddCommand(cmd)
}

// writeExport writes the files; anything that may hold a key is created
// with mode 0600.
func writeExport(dir string, files []export.File, secrets bool) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, f := range files {
		mode := os.FileMode(0o644)
		if secrets {
			mode = 0o600
		}
		path := filepath.Join(dir, f.Name)
		if err := os.WriteFile(path, []byte(f.Text), mode); err != nil {
			return err
		}
		// WriteFile keeps the mode of an existing file; a key must not
		// stay readable by others through an old file's mode.
		if err := os.Chmod(path, mode); err != nil {
			return err
		}
	}
	return nil
}
