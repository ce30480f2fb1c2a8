package interop

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/internal/lab"
)

// TestAHIpsecgwToIpsecgw: two ipsecgw daemons negotiate an AH CHILD SA
// (ah=sha256, IKEv2 protocol ID 2) and carry pings both ways over it, on
// an IPv4 and an IPv6 underlay. strongSwan cannot be the peer: its
// userspace backend (libipsec, kernel-libipsec) creates ESP SAs only
// ("IPsec SA: protocol not supported" for anything else). The capture on
// gw2's uplink is checked with tshark's AH dissector: IP protocol 51, the
// SPIs the daemons report, sequence numbers counting up from 1 per SA,
// the inner ICMP echo requests and replies in clear, and no ESP at all.
// The daemons run with the default esp.encapsulation (auto), under which
// two ipsecgw put ESP in UDP: AH must still go raw.
// The ikev1 case negotiates the same AH SAs in IKEv1 quick mode.
func TestAHIpsecgwToIpsecgw(t *testing.T) {
	for _, tc := range []struct {
		name    string
		v6      bool
		version int
	}{{"ipv4", false, 2}, {"ipv6", true, 2}, {"ikev1", false, 1}} {
		t.Run(tc.name, func(t *testing.T) { testAH(t, tc.v6, tc.version) })
	}
}

func testAH(t *testing.T, v6 bool, version int) {
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	ike := "aes128gcm16-prfsha256-ecp256"
	if version == 1 {
		ike = "aes128-sha256-modp2048" // IKEv1 phase 1 has no AEAD ciphers
	}
	c1, c2 := siteConns(l, ike, "")
	c1.Version, c2.Version = version, version
	if v6 {
		a1, a2 := enableIPv6Underlay(ctx, t, l)
		c1.LocalAddr, c1.RemoteAddr, c1.LocalID, c1.RemoteID = a1, a2, a1, a2
		c2.LocalAddr, c2.RemoteAddr, c2.LocalID, c2.RemoteID = a2, a1, a2, a1
	}
	c1.StartAction = "start"
	conf := func(c lab.Conn) string { return c.IPsecConf() + "  ah=sha256!\n" }
	gw2 := startGateway(ctx, t, l.GW2, gatewayFiles{Conf: conf(c2), Secrets: c2.IPsecSecrets()})
	gw1 := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: conf(c1), Secrets: c1.IPsecSecrets()})
	s1, err := gw1.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	s2, err := gw2.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	if len(s1.Children) != 1 || len(s2.Children) != 1 {
		t.Fatalf("CHILD SAs: gw1 %+v, gw2 %+v", s1.Children, s2.Children)
	}
	ch1, ch2 := s1.Children[0], s2.Children[0]
	for _, c := range []control.ChildStatus{ch1, ch2} {
		if c.Protocol != "ah" || c.Proposal != "sha256" || c.UDPEncap {
			t.Errorf("CHILD SA %+v, want protocol ah, proposal sha256, no UDP", c)
		}
	}
	if ch1.SPIIn != ch2.SPIOut || ch1.SPIOut != ch2.SPIIn {
		t.Fatalf("CHILD SAs do not pair up: gw1 %+v, gw2 %+v", ch1, ch2)
	}
	if out, err := gw1.cli(ctx, "status"); err != nil || !strings.Contains(out, "  ah sha256  spi in "+ch1.SPIIn) {
		t.Errorf("ipsecgw status does not show the AH CHILD SA: %v\n%s", err, out)
	}

	capt, err := l.GW2.StartCapture(ctx, lab.IfUnderlay, "")
	if err != nil {
		t.Fatal(err)
	}
	const pings = 5
	pingBothWays(ctx, t, l, pings)
	if err := capt.Stop(); err != nil {
		t.Fatal(err)
	}
	if n, err := capt.Count(ctx, "esp"); err != nil || n != 0 {
		t.Errorf("%d ESP packets on the wire (%v), want none", n, err)
	}
	outer := "ip.src"
	if v6 {
		outer = "ipv6.src"
	}
	lines, err := capt.Fields(ctx, "ah", "ah.spi", "ah.sequence", "ah.icv", outer, "icmp.type")
	if err != nil {
		t.Fatal(err)
	}
	// Each ping is a request and a reply through the tunnel: 2*pings AH
	// packets per direction.
	if len(lines) != 4*pings {
		t.Fatalf("%d AH packets on gw2's uplink, want %d:\n%s", len(lines), 4*pings, strings.Join(lines, "\n"))
	}
	toGW2, toGW1 := "0x"+strings.ToLower(ch2.SPIIn), "0x"+strings.ToLower(ch1.SPIIn)
	next := map[string]uint64{toGW2: 1, toGW1: 1}
	echo := map[string]int{}
	for _, line := range lines {
		f := strings.Split(line, "\t")
		if len(f) < 5 {
			t.Fatalf("tshark line %q", line)
		}
		spi, seq := f[0], f[1]
		want, ok := next[spi]
		if !ok {
			t.Fatalf("AH packet with SPI %s, the CHILD SA has %s and %s", spi, toGW2, toGW1)
		}
		if n, err := strconv.ParseUint(seq, 10, 64); err != nil || n != want {
			t.Errorf("SPI %s: sequence number %s, want %d", spi, seq, want)
		}
		next[spi] = want + 1
		if icv := strings.ReplaceAll(f[2], ":", ""); len(icv) < 32 {
			t.Errorf("SPI %s seq %s: ICV field %q shorter than HMAC-SHA2-256-128's 16 bytes", spi, seq, f[2])
		}
		// The outer source says who sent it; the inner ICMP is in clear.
		from1 := strings.HasPrefix(f[3], c1.LocalAddr)
		if from1 != (spi == toGW2) {
			t.Errorf("SPI %s from %s: wrong direction", spi, f[3])
		}
		echo[fmt.Sprintf("%s/icmp%s", spi, f[4])]++
	}
	for _, k := range []string{toGW2 + "/icmp8", toGW2 + "/icmp0", toGW1 + "/icmp8", toGW1 + "/icmp0"} {
		if echo[k] != pings {
			t.Errorf("%s: %d packets, want %d (%v)", k, echo[k], pings, echo)
		}
	}
	s1, err = gw1.status(ctx, "s2s")
	if err != nil {
		t.Fatal(err)
	}
	if c := s1.Children[0]; c.PacketsIn != 2*pings || c.PacketsOut != 2*pings {
		t.Errorf("gw1's AH SA counters: %d in, %d out; want %d each", c.PacketsIn, c.PacketsOut, 2*pings)
	}
	t.Logf("AH (IKEv%d) over %s: %d packets, SPIs %s (to gw2) and %s (to gw1), sequence numbers 1..%d each, ICMP inside in clear", version, map[bool]string{false: "IPv4", true: "IPv6"}[v6], len(lines), toGW2, toGW1, 2*pings)
}
