// Command demo builds the strongSwan interop lab and brings up a
// site-to-site tunnel between its two gateways: by default ipsecgw in gw1
// (ipsec.conf and ipsec.secrets in strongSwan syntax, auto=start) against
// strongSwan's charon in gw2. It waits for the tunnel, pings host1 ↔ host2
// both ways, prints `ipsecgw status` and `swanctl --list-sas`, measures a
// short iperf3 run through the tunnel and tears everything down (also on
// Ctrl-C). With -peer strongswan both gateways run charon instead. It needs
// root and strongSwan; see internal/lab. Run it from the repository (it
// builds ipsecgw itself):
//
//	go run ./internal/lab/demo [-peer ipsecgw|strongswan] [-nat] [-v1] [-iperf 3s] [-hold 30s]
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ipsecgw/ipsecgw/internal/lab"
)

type options struct {
	peer  string
	nat   bool
	v1    bool
	iperf time.Duration
	hold  time.Duration
}

func main() {
	var o options
	flag.StringVar(&o.peer, "peer", "ipsecgw", "what runs in gw1 against strongSwan in gw2: ipsecgw, or strongswan (a strongSwan pair)")
	flag.BoolVar(&o.nat, "nat", false, "put gw1 behind a MASQUERADE NAT router")
	flag.BoolVar(&o.v1, "v1", false, "IKEv1 main mode (aes128-sha1-modp1024, esp aes128-sha1) instead of IKEv2")
	flag.DurationVar(&o.iperf, "iperf", 3*time.Second, "iperf3 run through the tunnel (0 skips it)")
	flag.DurationVar(&o.hold, "hold", 0, "keep the lab up this long before tearing down (Ctrl-C ends it early)")
	flag.Parse()
	final, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
	// After run returned, so after the teardown: the last line says what
	// was shown.
	fmt.Println(final)
}

// The demo's fixed parameters: ipsec.conf's ike= and esp= in strongSwan
// syntax, and a PSK that exists only inside the throw-away lab.
const (
	psk     = "ipsecgw-demo-psk"
	ikeV2   = "aes128-sha256-modp2048"
	espV2   = "aes128gcm16"
	iperfTo = 5201
)

// tunnel is what one mode brought up, for printStatus.
type tunnel struct {
	what    string        // "ipsecgw ↔ strongSwan"
	gw      *lab.IPsecGW  // ipsecgw in gw1; nil in strongswan mode
	charons []*lab.Charon // every charon instance
}

// run does the demo and returns its final line.
func run(o options) (final string, err error) {
	if o.peer != "ipsecgw" && o.peer != "strongswan" {
		return "", fmt.Errorf("-peer %q: want ipsecgw or strongswan", o.peer)
	}
	var tools []string
	if o.iperf > 0 {
		tools = append(tools, "iperf3")
	}
	if miss := lab.Missing(tools...); miss != "" {
		return "", fmt.Errorf("cannot build the lab here, missing: %s", miss)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute+o.hold+o.iperf)
	defer cancel()

	bin := ""
	if o.peer == "ipsecgw" {
		// A fixed cache directory rather than a temporary one: Ctrl-C
		// ends the program from the lab's signal handler, which would
		// leave a temporary directory behind; this one is reused.
		cache, err := os.UserCacheDir()
		if err != nil {
			return "", err
		}
		dir := filepath.Join(cache, "ipsecgw-demo")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", err
		}
		t0 := time.Now()
		if bin, err = lab.BuildIPsecGW(dir); err != nil {
			return "", err
		}
		fmt.Printf("built %s in %v\n", bin, time.Since(t0).Round(time.Millisecond))
	}

	start := time.Now()
	l, err := lab.Build(lab.Options{NAT: o.nat})
	if err != nil {
		return "", err
	}
	// Ctrl-C is handled by the lab package: it stops every process the
	// lab started (ipsecgw and charon included), deletes the namespaces
	// and exits with status 130. A normal return tears down here.
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

	var tun tunnel
	if o.peer == "ipsecgw" {
		tun, err = ipsecgwTunnel(ctx, l, bin, o.v1)
	} else {
		tun, err = strongswanPair(ctx, l, o.v1)
	}
	if err != nil {
		return "", err
	}

	if err := pingBothWays(ctx, l); err != nil {
		return "", err
	}
	if err := printStatus(ctx, tun); err != nil {
		return "", err
	}
	final = fmt.Sprintf("demo OK: %s, ping both ways", tun.what)
	if o.iperf > 0 {
		mbit, err := iperf(ctx, l, o.iperf)
		if err != nil {
			return "", err
		}
		final += fmt.Sprintf(", iperf3 %.0f Mbit/s", mbit)
	}
	if o.hold > 0 {
		fmt.Printf("holding the lab for %v (Ctrl-C to end)\n", o.hold)
		time.Sleep(o.hold)
	}
	return final, nil
}

// ipsecgwTunnel runs ipsecgw in gw1 with an auto=start conn to charon in
// gw2 and waits until both ends report the tunnel up.
func ipsecgwTunnel(ctx context.Context, l *lab.Lab, bin string, v1 bool) (tunnel, error) {
	version, ike, esp := versionProposals(v1)
	c1 := lab.SiteToSite(l.GW1, l.GW2, version, psk, ike, esp)
	c2 := lab.SiteToSite(l.GW2, l.GW1, version, psk, ike, esp)
	// Identities are the addresses each side sees (gw1's public one when
	// it sits behind the NAT).
	c1.LocalID, c1.RemoteID = l.GW1.PublicAddr.String(), l.GW2.PublicAddr.String()
	c2.LocalID, c2.RemoteID = l.GW2.PublicAddr.String(), l.GW1.PublicAddr.String()
	c1.StartAction = "start"

	charon, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf(c2)})
	if err != nil {
		return tunnel{}, err
	}
	fmt.Printf("charon gw2 pid %d (VICI %s)\n", charon.Proc.PID, charon.URI)

	t0 := time.Now()
	gw, err := l.GW1.StartIPsecGW(ctx, lab.IPsecGWConfig{Bin: bin, IPsecConf: c1.IPsecConf(), Secrets: c1.IPsecSecrets()})
	if err != nil {
		return tunnel{}, err
	}
	fmt.Printf("ipsecgw gw1 pid %d (socket %s), ipsec.conf:\n%s", gw.Proc.PID, gw.Socket, indent(c1.IPsecConf()))
	// auto=start brings the tunnel up in well under a second; a minute
	// without it means it will not come, and the logs say why.
	wctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	st, err := gw.WaitEstablished(wctx, "s2s")
	if err != nil {
		return tunnel{}, fmt.Errorf("%w\nipsecgw log:\n%s\ncharon log:\n%s", err, gw.Log(), strings.Join(charon.LogExcerpt(), "\n"))
	}
	sa, err := charon.WaitEstablished(wctx, "s2s", "net")
	if err != nil {
		return tunnel{}, err
	}
	ch, _ := sa.Child("net")
	fmt.Printf("IKEv%d SA and CHILD SA established in %v: ipsecgw %s / %s, strongSwan %s / %s\n",
		version, time.Since(t0).Round(time.Millisecond), st.IKE.Proposal, st.Children[0].Proposal, sa.Proposal(), ch.Proposal())
	return tunnel{what: "ipsecgw ↔ strongSwan", gw: gw, charons: []*lab.Charon{charon}}, nil
}

// strongswanPair is the lab's own check: charon in both gateways.
func strongswanPair(ctx context.Context, l *lab.Lab, v1 bool) (tunnel, error) {
	version, ike, esp := versionProposals(v1)
	gw1, err := l.GW1.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf(lab.SiteToSite(l.GW1, l.GW2, version, psk, ike, esp))})
	if err != nil {
		return tunnel{}, err
	}
	gw2, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf(lab.SiteToSite(l.GW2, l.GW1, version, psk, ike, esp))})
	if err != nil {
		return tunnel{}, err
	}
	fmt.Printf("charon gw1 pid %d (VICI %s), charon gw2 pid %d (VICI %s)\n", gw1.Proc.PID, gw1.URI, gw2.Proc.PID, gw2.URI)
	t0 := time.Now()
	if _, err := lab.Establish(ctx, gw1, gw2, "s2s", "net"); err != nil {
		return tunnel{}, err
	}
	fmt.Printf("IKEv%d SA and CHILD SA established in %v\n", version, time.Since(t0).Round(time.Millisecond))
	return tunnel{what: fmt.Sprintf("strongSwan ↔ strongSwan (IKEv%d)", version), charons: []*lab.Charon{gw1, gw2}}, nil
}

// versionProposals is the IKE version and proposals of the demo tunnel:
// IKEv2, or with -v1 the cloud VPN template's IKEv1 main mode.
func versionProposals(v1 bool) (int, string, string) {
	if v1 {
		return 1, "aes128-sha1-modp1024", "aes128-sha1"
	}
	return 2, ikeV2, espV2
}

func pingBothWays(ctx context.Context, l *lab.Lab) error {
	for _, p := range [][2]*lab.Node{{l.Host1, l.Host2}, {l.Host2, l.Host1}} {
		res, err := p[0].Ping(ctx, p[1].Addr, 3)
		if err != nil {
			return err
		}
		fmt.Printf("ping %s -> %s: %d/%d replies\n", p[0].Addr, p[1].Addr, res.Received, res.Transmitted)
	}
	return nil
}

func printStatus(ctx context.Context, tun tunnel) error {
	if tun.gw != nil {
		out, err := tun.gw.CLI(ctx, "status")
		if err != nil {
			return err
		}
		fmt.Printf("--- gw1: ipsecgw status ---\n%s", out)
	}
	for _, c := range tun.charons {
		out, err := c.Swanctl(ctx, "--list-sas")
		if err != nil {
			return err
		}
		fmt.Printf("--- %s: swanctl --list-sas ---\n%s", c.Name, out)
	}
	return nil
}

// iperf runs one TCP stream from host1 to host2 through the tunnel and
// returns what the receiver got, in Mbit/s.
func iperf(ctx context.Context, l *lab.Lab, d time.Duration) (float64, error) {
	srv, err := l.Host2.StartIperfServer(ctx, iperfTo)
	if err != nil {
		return 0, err
	}
	defer srv.Stop()
	res, err := l.Host1.Iperf(ctx, l.Host2.Addr, iperfTo, d, 1)
	if err != nil {
		return 0, err
	}
	mbit := res.ReceivedBitsPerSecond / 1e6
	fmt.Printf("iperf3 %s -> %s, %v, 1 TCP stream: %.1f Mbit/s received, %d retransmits\n",
		l.Host1.Addr, l.Host2.Addr, d, mbit, res.Retransmits)
	return mbit, nil
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ") + "\n"
}
