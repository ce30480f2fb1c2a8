package interop

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/internal/lab"
)

// Second subnets behind each gateway for the multi-subnet case. The lab's
// hosts live in 10.1.0.0/24 and 10.2.0.0/24; TestMatrix gives each host a
// second address in these and each gateway a route to it.
var (
	matrixLAN1b  = netip.MustParsePrefix("10.11.0.0/24")
	matrixLAN2b  = netip.MustParsePrefix("10.12.0.0/24")
	matrixHost1b = netip.MustParseAddr("10.11.0.2")
	matrixHost2b = netip.MustParseAddr("10.12.0.2")
)

// matrixCase is one row of the interop matrix: a proposal pair or an
// identity/selector variant, run in one direction.
type matrixCase struct {
	name string
	// ike and esp go into both configurations; ""/"" means each side's
	// defaults (no ike=/esp= in ipsec.conf, "default" in swanctl.conf).
	ike, esp string
	// wantIKE and wantESP are the algorithms as swanctl --list-sas prints
	// them; with defaults they depend on who initiates, see below.
	wantIKE, wantESP string
	// pfsGroup, when set, is the DH group a CHILD SA rekey must use
	// (strongSwan's name): the initial CHILD SA is keyed from the IKE SA
	// without a DH exchange, so PFS only shows in a rekey.
	pfsGroup string
	// fqdn identifies the gateways as @gw1.example / @gw2.example.
	fqdn bool
	// anyRemote makes ipsecgw's conn right=%any (only with strongSwan
	// initiating: a responder cannot initiate to %any).
	anyRemote bool
	// twoSubnets protects two subnets on each side in one CHILD SA.
	twoSubnets bool
}

// matrixResult is one line of the summary the test prints at the end.
type matrixResult struct {
	name, dir        string
	ike, esp         string // as strongSwan printed them
	ours             string // ipsecgw's IKE and ESP proposals
	ping             string
	iperf12, iperf21 float64 // Mbit/s received
	failed           bool
}

// TestMatrix is the ipsecgw ↔ strongSwan interop matrix: every proposal in
// both directions (ipsecgw initiating to a strongSwan responder and the
// reverse), FQDN identities, an ipsecgw responder with right=%any, and two
// subnets per side in one CHILD SA. Each case checks that both ends agree
// on the algorithms and SPIs, pings both ways between the LANs and runs
// iperf3 for 2 s in both directions at once. One lab and one charon serve
// all cases; charon is reconfigured and a fresh ipsecgw started per case.
func TestMatrix(t *testing.T) {
	l := lab.New(t, lab.Options{Tools: []string{"iperf3"}})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	matrixSecondSubnets(ctx, t, l)
	// The openssl plugin supplies 3DES and HMAC-MD5 for the legacy row;
	// des and md5 are strongSwan's own implementations, listed so the row
	// does not depend on how OpenSSL was built.
	plugins := append(slices.Clone(lab.DefaultPlugins), "des", "md5")
	charon, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf(), Plugins: plugins})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("charon log excerpt:\n%s", strings.Join(charon.LogExcerpt(), "\n"))
		}
	})

	proposals := []matrixCase{
		{name: "aes128-sha256-modp2048", ike: "aes128-sha256-modp2048", esp: "aes128gcm16",
			wantIKE: "AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_2048", wantESP: "AES_GCM_16-128"},
		{name: "aes256-sha512-ecp384-pfs", ike: "aes256-sha512-ecp384", esp: "aes256gcm16-ecp384",
			wantIKE: "AES_CBC-256/HMAC_SHA2_512_256/PRF_HMAC_SHA2_512/ECP_384", wantESP: "AES_GCM_16-256", pfsGroup: "ECP_384"},
		{name: "aes128-sha1-modp1024", ike: "aes128-sha1-modp1024", esp: "aes128-sha1",
			wantIKE: "AES_CBC-128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_1024", wantESP: "AES_CBC-128/HMAC_SHA1_96"},
		{name: "chacha20poly1305-x25519", ike: "chacha20poly1305-prfsha256-x25519", esp: "chacha20poly1305",
			wantIKE: "CHACHA20_POLY1305/PRF_HMAC_SHA2_256/CURVE_25519", wantESP: "CHACHA20_POLY1305"},
		{name: "3des-md5-modp1024", ike: "3des-md5-modp1024", esp: "3des-md5",
			wantIKE: "3DES_CBC/HMAC_MD5_96/PRF_HMAC_MD5/MODP_1024", wantESP: "3DES_CBC/HMAC_MD5_96"},
		{name: "defaults"},
	}
	ids := []matrixCase{
		{name: "fqdn-ids", fqdn: true},
		{name: "two-subnets", twoSubnets: true},
	}
	const base = "aes128-sha256-modp2048"
	for i := range ids {
		ids[i].ike, ids[i].esp = base, "aes128gcm16"
		ids[i].wantIKE, ids[i].wantESP = proposals[0].wantIKE, proposals[0].wantESP
	}

	var results []matrixResult
	run := func(tc matrixCase, ipsecgwInitiates bool) {
		dir := "strongSwan→ipsecgw"
		if ipsecgwInitiates {
			dir = "ipsecgw→strongSwan"
		}
		r := matrixResult{name: tc.name, dir: dir}
		ok := t.Run(tc.name+"/"+strings.ReplaceAll(dir, "→", "-to-"), func(t *testing.T) {
			matrixRun(ctx, t, l, charon, tc, ipsecgwInitiates, &r)
		})
		r.failed = !ok
		results = append(results, r)
	}
	for _, tc := range proposals {
		run(tc, true)
		run(tc, false)
	}
	for _, tc := range ids {
		run(tc, true)
		run(tc, false)
	}
	anyCase := ids[0]
	anyCase.name, anyCase.anyRemote = "right=%any-fqdn", true
	run(anyCase, false)

	var b strings.Builder
	fmt.Fprintf(&b, "%-26s %-20s %-4s %-58s %-30s %-8s %s\n", "case", "initiator→responder", "ok", "strongSwan IKE", "strongSwan ESP", "ping", "iperf3 Mbit/s 1→2 / 2→1")
	for _, r := range results {
		res := "pass"
		if r.failed {
			res = "FAIL"
		}
		fmt.Fprintf(&b, "%-26s %-20s %-4s %-58s %-30s %-8s %.0f / %.0f\n", r.name, r.dir, res, r.ike, r.esp, r.ping, r.iperf12, r.iperf21)
	}
	t.Logf("interop matrix:\n%s", b.String())
}

// matrixRun runs one case: configure both ends, establish in the given
// direction, compare, move traffic, tear down.
func matrixRun(ctx context.Context, t *testing.T, l *lab.Lab, charon *lab.Charon, tc matrixCase, ipsecgwInitiates bool, r *matrixResult) {
	c1, c2 := siteConns(l, tc.ike, tc.esp)
	if tc.ike == "" {
		// strongSwan's own default proposals; ipsec.conf gets no ike=/esp=
		// at all, so ipsecgw uses its defaults.
		c2.IKEProposals, c2.ESPProposals = "default", "default"
	}
	if tc.fqdn {
		c1.LocalID, c1.RemoteID = "@gw1.example", "@gw2.example"
		c2.LocalID, c2.RemoteID = "gw2.example", "gw1.example"
	}
	if tc.anyRemote {
		c1.RemoteAddr = "%any"
	}
	if tc.twoSubnets {
		c1.LocalTS = l.GW1.LAN.String() + "," + matrixLAN1b.String()
		c1.RemoteTS = l.GW2.LAN.String() + "," + matrixLAN2b.String()
		c2.LocalTS, c2.RemoteTS = c1.RemoteTS, c1.LocalTS
	}
	if err := charon.Reconfigure(ctx, lab.SwanctlConf(c2)); err != nil {
		t.Fatal(err)
	}
	gw := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: c1.IPsecConf(), Secrets: c1.IPsecSecrets()})
	if ipsecgwInitiates {
		if out, err := gw.cli(ctx, "up", "s2s"); err != nil {
			t.Fatalf("ipsecgw up: %v\n%s", err, out)
		}
	} else if err := charon.Initiate(ctx, "s2s", "net"); err != nil {
		t.Fatal(err)
	}
	st, err := gw.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	if st.IKE == nil || st.IKE.Initiator != ipsecgwInitiates {
		t.Fatalf("ipsecgw initiator=%v, want %v: %+v", st.IKE != nil && st.IKE.Initiator, ipsecgwInitiates, st.IKE)
	}
	sa, err := charon.WaitEstablished(ctx, "s2s", "net")
	if err != nil {
		t.Fatal(err)
	}
	ch, _ := sa.Child("net")
	r.ike, r.esp = sa.Proposal(), ch.Proposal()
	if len(st.Children) == 1 {
		r.ours = st.IKE.Proposal + " / " + st.Children[0].Proposal
	}
	wantIKE, wantESP := tc.wantIKE, tc.wantESP
	if tc.ike == "" {
		wantIKE, wantESP = matrixDefaults(ipsecgwInitiates)
	}
	checkAgree(t, st, sa, wantIKE, wantESP)
	if tc.fqdn {
		if sa.LocalID != "gw2.example" || sa.RemoteID != "gw1.example" {
			t.Errorf("strongSwan IDs: local %q remote %q, want gw2.example / gw1.example", sa.LocalID, sa.RemoteID)
		}
		if !strings.Contains(st.IKE.LocalID, "gw1.example") || !strings.Contains(st.IKE.RemoteID, "gw2.example") {
			t.Errorf("ipsecgw IDs: local %q remote %q, want gw1.example / gw2.example", st.IKE.LocalID, st.IKE.RemoteID)
		}
	}
	if tc.twoSubnets {
		matrixCheckSelectors(t, st, ch)
	}

	pingBothWays(ctx, t, l, 2)
	r.ping = "2+2 ok"
	if tc.twoSubnets {
		// Second subnet to second subnet, and across (first to second):
		// one CHILD SA with two selectors on each side carries all four
		// combinations.
		for _, p := range []struct {
			node     *lab.Node
			src, dst netip.Addr
		}{
			{l.Host1, matrixHost1b, matrixHost2b},
			{l.Host2, matrixHost2b, matrixHost1b},
			{l.Host1, l.Host1.Addr, matrixHost2b},
			{l.Host2, matrixHost2b, l.Host1.Addr},
		} {
			if out, err := p.node.Run(ctx, "ping", "-n", "-q", "-c", "2", "-i", "0.2", "-w", "4", "-I", p.src.String(), p.dst.String()); err != nil {
				t.Fatalf("ping %s → %s: %v\n%s", p.src, p.dst, err, out)
			}
		}
		r.ping = "6+6 ok"
	}
	r.iperf12, r.iperf21 = matrixIperf(ctx, t, l)
	if tc.pfsGroup != "" {
		matrixPFSRekey(ctx, t, l, charon, gw, tc.pfsGroup)
	}
	t.Logf("%s, %s: strongSwan %s / %s; ipsecgw %s; iperf3 %.0f / %.0f Mbit/s",
		tc.name, r.dir, r.ike, r.esp, r.ours, r.iperf12, r.iperf21)

	if err := gw.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := charon.WaitDown(ctx, "s2s"); err != nil {
		t.Errorf("IKE SA left at strongSwan: %v", err)
	}
}

// matrixDefaults is what both daemons' default proposals negotiate.
// strongSwan 5.9.8 lists MODP_3072 first among its default DH groups and
// AES-CBC/HMAC-SHA2 before AES-GCM for ESP, and it picks in its own order
// of preference as responder: an ipsecgw initiator offering x25519 first
// gets INVALID_KE_PAYLOAD asking for MODP_3072 and ends with CBC+SHA256 for
// ESP. As initiator, strongSwan offers the same order first and ipsecgw
// takes the initiator's first acceptable proposal, so both directions end
// with the same algorithms.
func matrixDefaults(bool) (ike, esp string) {
	return "AES_CBC-128/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/MODP_3072", "AES_CBC-128/HMAC_SHA2_256_128"
}

// matrixCheckSelectors checks that both ends narrowed the two-subnet conn
// to one CHILD SA carrying both subnets of each side.
func matrixCheckSelectors(t *testing.T, st control.ConnStatus, ch lab.ChildSA) {
	t.Helper()
	want1 := []string{lab.LAN1.String(), matrixLAN1b.String()}
	want2 := []string{lab.LAN2.String(), matrixLAN2b.String()}
	same := func(got, want []string) bool {
		// Order is not significant; compare sorted copies.
		g, w := slices.Clone(got), slices.Clone(want)
		slices.Sort(g)
		slices.Sort(w)
		return slices.Equal(g, w)
	}
	if !same(ch.LocalTS, want2) || !same(ch.RemoteTS, want1) {
		t.Errorf("strongSwan selectors: local %v remote %v, want %v === %v", ch.LocalTS, ch.RemoteTS, want2, want1)
	}
	if !same(st.Children[0].LocalTS, want1) || !same(st.Children[0].RemoteTS, want2) {
		t.Errorf("ipsecgw selectors: local %v remote %v, want %v === %v", st.Children[0].LocalTS, st.Children[0].RemoteTS, want1, want2)
	}
	t.Logf("selectors: strongSwan %v === %v; ipsecgw %v === %v", ch.LocalTS, ch.RemoteTS, st.Children[0].LocalTS, st.Children[0].RemoteTS)
}

// matrixSecondSubnets puts a second subnet on each LAN: the host gets an
// address in it next to its first, and so does the gateway's LAN
// interface, which makes the subnet on-link for the gateway (no route
// needed) and gives charon's kernel-libipsec the local address inside the
// local selector it needs to install the route for it ("error installing
// route with policy 10.12.0.0/24 === 10.1.0.0/24 out" without one). Hosts
// route everything else to their gateway already.
func matrixSecondSubnets(ctx context.Context, t *testing.T, l *lab.Lab) {
	t.Helper()
	for _, s := range []struct {
		host, gw *lab.Node
		addr     netip.Addr
		pfx      netip.Prefix
	}{
		{l.Host1, l.GW1, matrixHost1b, matrixLAN1b},
		{l.Host2, l.GW2, matrixHost2b, matrixLAN2b},
	} {
		gwAddr := netip.PrefixFrom(s.pfx.Addr().Next(), s.pfx.Bits()).String()
		if out, err := s.gw.Run(ctx, "ip", "addr", "add", gwAddr, "dev", lab.IfLAN); err != nil {
			t.Fatalf("%s: %v\n%s", s.gw.Role, err, out)
		}
		hostAddr := netip.PrefixFrom(s.addr, s.pfx.Bits()).String()
		if out, err := s.host.Run(ctx, "ip", "addr", "add", hostAddr, "dev", lab.IfHost); err != nil {
			t.Fatalf("%s: %v\n%s", s.host.Role, err, out)
		}
	}
}

// matrixIperf runs iperf3 for 2 s host1→host2 and host2→host1 at the same
// time and returns the received rates in Mbit/s.
func matrixIperf(ctx context.Context, t *testing.T, l *lab.Lab) (mbps12, mbps21 float64) {
	t.Helper()
	const port = 5301
	srv2, err := l.Host2.StartIperfServer(ctx, port)
	if err != nil {
		t.Fatal(err)
	}
	defer srv2.Stop()
	srv1, err := l.Host1.StartIperfServer(ctx, port+1)
	if err != nil {
		t.Fatal(err)
	}
	defer srv1.Stop()
	var wg sync.WaitGroup
	var r12, r21 lab.IperfResult
	var err12, err21 error
	wg.Go(func() { r12, err12 = l.Host1.Iperf(ctx, l.Host2.Addr, port, 2*time.Second, 1) })
	wg.Go(func() { r21, err21 = l.Host2.Iperf(ctx, l.Host1.Addr, port+1, 2*time.Second, 1) })
	wg.Wait()
	if err12 != nil || err21 != nil {
		t.Fatalf("iperf3: host1→host2: %v; host2→host1: %v", err12, err21)
	}
	if r12.ReceivedBitsPerSecond == 0 || r21.ReceivedBitsPerSecond == 0 {
		t.Fatalf("iperf3 moved nothing: host1→host2 %v bit/s, host2→host1 %v bit/s", r12.ReceivedBitsPerSecond, r21.ReceivedBitsPerSecond)
	}
	return r12.ReceivedBitsPerSecond / 1e6, r21.ReceivedBitsPerSecond / 1e6
}

// matrixPFSRekey has strongSwan rekey the CHILD SA and checks that the new
// one was keyed with a fresh DH exchange in group, at both ends, and that
// traffic still flows.
func matrixPFSRekey(ctx context.Context, t *testing.T, l *lab.Lab, charon *lab.Charon, gw *gateway, group string) {
	t.Helper()
	before, err := gw.status(ctx, "s2s")
	if err != nil || len(before.Children) != 1 {
		t.Fatalf("before rekey: %v %+v", err, before)
	}
	if out, err := charon.Swanctl(ctx, "--rekey", "--child", "net"); err != nil {
		t.Fatalf("swanctl --rekey: %v\n%s", err, out)
	}
	// Both ends keep the old CHILD SA listed for a while after the rekey
	// (strongSwan until charon.delete_rekeyed_delay, 5 s, has passed), so
	// the new pair is found by its SPIs rather than by waiting for a
	// single entry.
	for {
		sa, ok, err := charon.SA(ctx, "s2s")
		if err != nil {
			t.Fatal(err)
		}
		st, serr := gw.status(ctx, "s2s")
		if ok && serr == nil {
			j := slices.IndexFunc(sa.Children, func(c lab.ChildSA) bool {
				return c.State == "INSTALLED" && !strings.EqualFold(c.SPIOut, before.Children[0].SPIIn)
			})
			i := -1
			if j >= 0 {
				i = slices.IndexFunc(st.Children, func(c control.ChildStatus) bool { return strings.EqualFold(c.SPIOut, sa.Children[j].SPIIn) })
			}
			if i >= 0 {
				ch := sa.Children[j]
				if ch.DHGroup != group || !strings.EqualFold(st.Children[i].SPIIn, ch.SPIOut) {
					t.Errorf("rekeyed CHILD SA: strongSwan %s (SPIs in/out %s/%s), ipsecgw %s (SPIs in/out %s/%s); want DH group %s",
						ch.Proposal(), ch.SPIIn, ch.SPIOut, st.Children[i].Proposal, st.Children[i].SPIIn, st.Children[i].SPIOut, group)
				}
				t.Logf("PFS rekey: strongSwan %s, ipsecgw %s", ch.Proposal(), st.Children[i].Proposal)
				break
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("CHILD SA not rekeyed: strongSwan %+v, ipsecgw %+v", sa.Children, st.Children)
		case <-time.After(50 * time.Millisecond):
		}
	}
	pingBothWays(ctx, t, l, 2)
}
