package cli

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set at build time with -ldflags "-X github.com/ipsecgw/ipsecgw/internal/cli.version=... -X ...commit=...".
var (
	version = "dev"
	commit  = ""
)

func init() {
	commandAdders = append(commandAdders, func(root *cobra.Command) {
		root.AddCommand(&cobra.Command{
			Use:   "version",
			Short: "Print the version, Go version and commit",
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				fmt.Fprintf(cmd.OutOrStdout(), "ipsecgw %s\ngo %s\ncommit %s\n", version, runtime.Version(), buildCommit())
				return nil
			},
		})
	})
}

// buildCommit prefers the commit given at link time and falls back to the
// VCS stamp the Go toolchain embeds when building from a git checkout.
func buildCommit() string {
	if commit != "" {
		return commit
	}
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
	}
	return "unknown"
}
