// Package cli holds the ipsecgw command line: one file per command group,
// each adding its commands to the root built by newRoot.
package cli

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"
)

// exitError carries a specific exit status out of a command (for example
// `config check` exits 1 on errors after printing them itself).
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// commandAdders lists the functions that attach command groups to the root.
// Each command file registers itself in an init function so that the files
// stay independent of each other.
var commandAdders []func(root *cobra.Command)

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:           "ipsecgw",
		Short:         "Userspace IPsec gateway (IKEv2/IKEv1, ESP) that interoperates with strongSwan",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	for _, add := range commandAdders {
		add(root)
	}
	return root
}

// Main runs the CLI with args and returns the process exit status.
func Main(args []string, stdout, stderr io.Writer) int {
	root := newRoot(stdout, stderr)
	root.SetArgs(args)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var ee exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	fmt.Fprintln(stderr, "ipsecgw:", err)
	return 1
}
