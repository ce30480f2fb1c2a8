// Command demo builds the strongSwan interop lab, brings up a strongSwan
// site-to-site tunnel between its two gateways, pings through it both
// ways, prints `swanctl --list-sas` of both ends and tears everything down
// (also on Ctrl-C). It needs root and strongSwan; see internal/lab.
//
//	go run ./internal/lab/demo [-nat] [-v1] [-hold 30s]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/ipsecgw/ipsecgw/internal/lab"
)

func main() {
	nat := flag.Bool("nat", false, "put gw1 behind a MASQUERADE NAT router")
	v1 := flag.Bool("v1", false, "IKEv1 main mode (aes128-sha1-modp1024, esp aes128-sha1) instead of IKEv2")
	hold := flag.Duration("hold", 0, "keep the lab up this long before tearing down (Ctrl-C ends it early)")
	flag.Parse()
	if err := run(*nat, *v1, *hold); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(nat, v1 bool, hold time.Duration) (err error) {
	if miss := lab.Missing(); miss != "" {
		return fmt.Errorf("cannot build the lab here, missing: %s", miss)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute+hold)
	defer cancel()

	start := time.Now()
	l, err := lab.Build(lab.Options{NAT: nat})
	if err != nil {
		return err
	}
	// Ctrl-C is handled by the lab package: it tears the lab down and
	// exits with status 130. A normal return tears down here.
	defer func() {
		if cerr := l.Close(); cerr != nil && err == nil {
			err = cerr
		}
		fmt.Printf("lab %s torn down\n", l.ID)
	}()
	fmt.Printf("lab %s built in %v: namespaces", l.ID, time.Since(start).Round(time.Millisecond))
	for _, n := range l.Nodes() {
		fmt.Printf(" %s", n.NS)
	}
	fmt.Println()

	version, ike, esp := 2, "aes128-sha256-modp2048", "aes128gcm16"
	if v1 {
		version, ike, esp = 1, "aes128-sha1-modp1024", "aes128-sha1"
	}
	const psk = "ipsecgw-demo-psk"
	gw1, err := l.GW1.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf(lab.SiteToSite(l.GW1, l.GW2, version, psk, ike, esp))})
	if err != nil {
		return err
	}
	gw2, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf(lab.SiteToSite(l.GW2, l.GW1, version, psk, ike, esp))})
	if err != nil {
		return err
	}
	fmt.Printf("charon gw1 pid %d (VICI %s), charon gw2 pid %d (VICI %s)\n", gw1.Proc.PID, gw1.URI, gw2.Proc.PID, gw2.URI)

	t0 := time.Now()
	if _, err := lab.Establish(ctx, gw1, gw2, "s2s", "net"); err != nil {
		return err
	}
	fmt.Printf("IKEv%d SA and CHILD SA established in %v\n", version, time.Since(t0).Round(time.Millisecond))

	for _, p := range [][2]*lab.Node{{l.Host1, l.Host2}, {l.Host2, l.Host1}} {
		res, err := p[0].Ping(ctx, p[1].Addr, 3)
		if err != nil {
			return err
		}
		fmt.Printf("ping %s -> %s: %d/%d replies\n", p[0].Addr, p[1].Addr, res.Received, res.Transmitted)
	}
	for _, c := range []*lab.Charon{gw1, gw2} {
		out, err := c.Swanctl(ctx, "--list-sas")
		if err != nil {
			return err
		}
		fmt.Printf("--- %s: swanctl --list-sas ---\n%s", c.Name, out)
	}
	if hold > 0 {
		fmt.Printf("holding the lab for %v (Ctrl-C to end)\n", hold)
		time.Sleep(hold)
	}
	return nil
}
