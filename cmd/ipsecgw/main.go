// Command ipsecgw is a userspace IPsec gateway daemon. All behaviour lives
// in internal/cli and the packages it wires together.
package main

import (
	"os"

	"github.com/ipsecgw/ipsecgw/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdout, os.Stderr))
}
