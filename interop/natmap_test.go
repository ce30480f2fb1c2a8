package interop

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/internal/lab"
)

// TestNATMappingChangePeerBehindNAT: strongSwan in gw1 behind the lab's
// MASQUERADE router initiates to an ipsecgw responder (right=%any) in gw2,
// with dpd_delay = 2s. host1 and host2 ping each other every 100 ms
// through the tunnel. Mid-traffic the NAT loses its state and hands out
// other ports (conntrack -F and a masquerade rule restricted to
// 20000-20099), so strongSwan's packets reach ipsecgw from a new public
// port while ipsecgw still sends ESP-in-UDP to the old one, where nothing
// answers. strongSwan, receiving nothing, sends a DPD from the new port;
// ipsecgw must move the CHILD SA there (not only the IKE SA), and pings in
// both directions must be answered again. Checked by counts: replies to
// requests sent well after the change in both directions, ipsecgw's status
// showing the new port, and ESP from ipsecgw to the new port on the wire.
func TestNATMappingChangePeerBehindNAT(t *testing.T) {
	natMappingChange(t, "dpd_delay = 2s")
}

// natMappingChange runs the scenario of TestNATMappingChangePeerBehindNAT
// with swExtra in strongSwan's connection section: with a short
// dpd_delay ipsecgw learns the new port from an IKE message; without one,
// only ESP arrives from it.
func natMappingChange(t *testing.T, swExtra string) {
	l := lab.New(t, lab.Options{NAT: true, Tools: []string{"tshark", "conntrack"}})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	gwConn, swConn := siteConns(l, "aes128-sha256-modp2048", "aes128gcm16")
	// siteConns gives gw1's view first; here ipsecgw is gw2.
	swConn, gwConn = gwConn, swConn
	swConn.LocalAddr = l.GW1.Addr.String() // its own address behind the NAT
	swConn.ConnExtra = swExtra
	gwConn.RemoteAddr = "%any"
	charon, err := l.GW1.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf(swConn)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("charon log excerpt:\n%s", strings.Join(charon.LogExcerpt(), "\n"))
		}
	})
	gw := startGateway(ctx, t, l.GW2, gatewayFiles{Conf: gwConn.IPsecConf(), Secrets: gwConn.IPsecSecrets()})
	if err := charon.Initiate(ctx, "s2s", "net"); err != nil {
		t.Fatal(err)
	}
	st, err := gw.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	if st.IKE == nil || !st.IKE.NATDetected || len(st.Children) != 1 || !st.Children[0].UDPEncap {
		t.Fatalf("ipsecgw does not see the peer behind a NAT with ESP in UDP: %+v", st)
	}
	oldRemote, err := netip.ParseAddrPort(st.Remote)
	if err != nil {
		t.Fatalf("ipsecgw status remote %q: %v", st.Remote, err)
	}
	pingBothWays(ctx, t, l, 2)

	// Everything ipsecgw sends on the underlay, to see where its ESP goes.
	capt, err := l.GW2.StartCapture(ctx, lab.IfUnderlay, "udp and src host "+l.GW2.Addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer capt.Stop()

	p12, err := startPing(l.Host1, l.Host2.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p12.stop()
	p21, err := startPing(l.Host2, l.Host1.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p21.stop()
	// Traffic flows both ways before the NAT changes.
	for p12.maxSeq() < 10 || p21.maxSeq() < 10 {
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			t.Fatalf("pings not answered before the NAT change: host1→host2 %d, host2→host1 %d replies", len(p12.replies()), len(p21.replies()))
		}
	}

	// The NAT forgets its mappings and uses another port range.
	rules := "flush table ip labnat\ntable ip labnat {\n chain post {\n  type nat hook postrouting priority srcnat; policy accept;\n  oifname \"" +
		lab.IfNATOut + "\" meta l4proto { tcp, udp } masquerade to :20000-20099\n  oifname \"" + lab.IfNATOut + "\" masquerade\n }\n}\n"
	if out, err := l.NATRouter.Run(ctx, "sh", "-c", "printf '%s' '"+rules+"' | nft -f - && conntrack -F"); err != nil {
		t.Fatalf("changing the NAT: %v\n%s", err, out)
	}
	t0 := time.Now()
	// Every request answered up to now was sent before the change; one
	// sent 20 intervals (2 s) after the last of them is surely sent after
	// it, so its reply proves the new path.
	cut12, cut21 := p12.maxSeq()+20, p21.maxSeq()+20
	const wantAfter = 20
	for p12.countAbove(cut12) < wantAfter || p21.countAbove(cut21) < wantAfter {
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil || time.Since(t0) > 60*time.Second {
			st, _ := gw.status(ctx, "s2s")
			t.Fatalf("traffic did not recover after the NAT mapping changed: replies to requests sent 2 s after the change: host1→host2 %d, host2→host1 %d (want %d each); ipsecgw remote %s (before %s)",
				p12.countAbove(cut12), p21.countAbove(cut21), wantAfter, st.Remote, oldRemote)
		}
	}
	recovered := time.Since(t0)
	r12, r21 := p12.stop(), p21.stop()
	if err := capt.Stop(); err != nil {
		t.Fatal(err)
	}

	// ipsecgw now sends IKE and ESP to the NAT's new port.
	st, err = gw.status(ctx, "s2s")
	if err != nil {
		t.Fatal(err)
	}
	newRemote, err := netip.ParseAddrPort(st.Remote)
	if err != nil || newRemote.Port() < 20000 || newRemote.Port() > 20099 {
		t.Errorf("ipsecgw's IKE SA talks to %q, not the NAT's new port (20000-20099)", st.Remote)
	}
	toNew, err := capt.Count(ctx, fmt.Sprintf("esp && udp.dstport == %d", newRemote.Port()))
	if err != nil {
		t.Fatal(err)
	}
	toOld, err := capt.Count(ctx, fmt.Sprintf("esp && udp.dstport == %d", oldRemote.Port()))
	if err != nil {
		t.Fatal(err)
	}
	if toNew == 0 {
		t.Errorf("no ESP from ipsecgw to the new port %d on the wire (%d to the old port %d)", newRemote.Port(), toOld, oldRemote.Port())
	}
	sa, err := charon.WaitEstablished(ctx, "s2s", "net")
	if err != nil {
		t.Fatal(err)
	}
	if !sa.NATLocal {
		t.Errorf("strongSwan does not see itself behind the NAT: %+v", sa)
	}
	t.Logf("NAT mapping %v -> %v: %d replies each way to requests sent 2 s or more after the change, all in %v after it",
		oldRemote, newRemote, wantAfter, recovered.Round(100*time.Millisecond))
	// The outage is the longest run of unanswered requests, one every
	// 100 ms (a figure to report, not to assert: the machine is shared).
	for _, r := range []struct {
		name string
		s    pingStats
	}{{"host1→host2", r12}, {"host2→host1", r21}} {
		t.Logf("%s: %d sent, %d answered, %d lost; outage %d consecutive requests (~%.1f s)",
			r.name, r.s.sent, r.s.received, r.s.sent-r.s.received, r.s.gap, float64(r.s.gap)/10)
	}
	t.Logf("ESP from ipsecgw during the test: %d packets to the old port %d, %d to the new port %d",
		toOld, oldRemote.Port(), toNew, newRemote.Port())
	pingBothWays(ctx, t, l, 3)
}

// bgPing is a ping running in the background (every 100 ms, up to 10
// minutes), read while it runs.
type bgPing struct {
	proc *lab.Process
}

var icmpSeq = regexp.MustCompile(`icmp_seq=(\d+)`)

func startPing(from *lab.Node, dst netip.Addr) (*bgPing, error) {
	p, err := from.Start("ping-"+dst.String(), "ping", "-n", "-i", "0.1", "-c", "6000", "-W", "1", dst.String())
	if err != nil {
		return nil, err
	}
	return &bgPing{proc: p}, nil
}

// replies returns the sequence numbers answered so far.
func (p *bgPing) replies() []int {
	var out []int
	for _, m := range icmpSeq.FindAllStringSubmatch(p.proc.Output(), -1) {
		if n, err := strconv.Atoi(m[1]); err == nil {
			out = append(out, n)
		}
	}
	return out
}

func (p *bgPing) maxSeq() int {
	m := 0
	for _, s := range p.replies() {
		m = max(m, s)
	}
	return m
}

// countAbove counts the answered requests with a sequence number above n.
func (p *bgPing) countAbove(n int) int {
	c := 0
	for _, s := range p.replies() {
		if s > n {
			c++
		}
	}
	return c
}

type pingStats struct {
	sent, received int
	gap            int // the longest run of unanswered requests
}

var pingTotals = regexp.MustCompile(`(\d+) packets transmitted, (\d+) (?:packets )?received`)

// stop ends the ping (SIGINT: it prints its summary) and returns its
// counts. A second call returns the same.
func (p *bgPing) stop() pingStats {
	_ = p.proc.Stop(syscall.SIGINT, 3*time.Second)
	out := p.proc.Output()
	var s pingStats
	if m := pingTotals.FindStringSubmatch(out); m != nil {
		s.sent, _ = strconv.Atoi(m[1])
		s.received, _ = strconv.Atoi(m[2])
	}
	seen := map[int]bool{}
	last := 0
	for _, n := range p.replies() {
		seen[n] = true
		last = max(last, n)
	}
	run := 0
	for n := 1; n <= last; n++ {
		if seen[n] {
			run = 0
			continue
		}
		run++
		s.gap = max(s.gap, run)
	}
	return s
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// TestNATMappingChangeESPOnly: as TestNATMappingChangePeerBehindNAT, but
// strongSwan runs no DPD: after the NAT change only its ESP (the pings
// from host1) reaches ipsecgw from the new port, and ipsecgw must follow
// on authenticated ESP.
func TestNATMappingChangeESPOnly(t *testing.T) {
	natMappingChange(t, "dpd_delay = 0s")
}
