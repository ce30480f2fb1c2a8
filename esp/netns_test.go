package esp

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/esp/conn"
	"github.com/ipsecgw/ipsecgw/internal/lab"
	"github.com/ipsecgw/ipsecgw/sad"
	"github.com/ipsecgw/ipsecgw/spd"
	"github.com/ipsecgw/ipsecgw/tun"
)

// listenIn opens the ESP sockets inside the namespace ns (see inNS).
func listenIn(ns string, cfg conn.Config) (c *conn.Conn, err error) {
	err = inNS(ns, func() error {
		c, err = conn.Listen(cfg)
		return err
	})
	return c, err
}

// nsGateway is one ipsecgw dataplane running in a lab gateway namespace.
type nsGateway struct {
	dp   *Dataplane
	tun  *tun.TUN
	conn *conn.Conn
	sad  *sad.Table
}

// startNSGateway runs a dataplane for node (towards peer) with fixed keys:
// out protects node's LAN -> peer's LAN with spiOut, in accepts spiIn.
func startNSGateway(t *testing.T, node, peer *lab.Node, workers int, udp bool, spiOut, spiIn uint32, outKeys, inKeys suite) *nsGateway {
	t.Helper()
	g := &nsGateway{sad: sad.NewTable(sad.Options{})}
	var err error
	g.tun, err = tun.Create(tun.Config{Name: "ipsecgw0", NetNS: "/run/netns/" + node.NS})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.tun.AddRoute(peer.LAN); err != nil {
		t.Fatal(err)
	}
	sel := anyPorts(spd.Selector{Local: spd.PrefixRange(node.LAN), Remote: spd.PrefixRange(peer.LAN)})
	port := uint16(conn.DefaultNATTPort)
	if !udp {
		port = 0 // raw IP protocol 50
	}
	local := netip.AddrPortFrom(node.Addr, port)
	remote := netip.AddrPortFrom(peer.PublicAddr, port)
	out, err := sad.New(sad.Config{SPI: spiOut, Dir: sad.Outbound, Local: local, Remote: remote, UDPEncap: udp,
		Selectors: []spd.Selector{sel}, Cipher: outKeys.protector(t), PolicyID: 1})
	if err != nil {
		t.Fatal(err)
	}
	in, err := sad.New(sad.Config{SPI: spiIn, Dir: sad.Inbound, Local: local, Remote: remote, UDPEncap: udp,
		Selectors: []spd.Selector{sel}, Cipher: inKeys.protector(t), PolicyID: 1, ReplayWindow: 1024})
	if err != nil {
		t.Fatal(err)
	}
	if err := g.sad.InstallInbound(in); err != nil {
		t.Fatal(err)
	}
	if err := g.sad.InstallOutbound(out); err != nil {
		t.Fatal(err)
	}
	live := &spd.Live{}
	tab, err := spd.Compile([]spd.Rule{{Selector: sel, Action: spd.Protect, PolicyID: 1}})
	if err != nil {
		t.Fatal(err)
	}
	live.Store(tab)
	g.dp, err = New(Config{TUN: g.tun, SAD: g.sad, SPD: live, Workers: workers,
		NewSender: func() Sender { return g.conn.NewSender() }})
	if err != nil {
		t.Fatal(err)
	}
	g.conn, err = listenIn(node.NS, conn.Config{Addr: node.Addr, IKEPort: conn.DefaultIKEPort, NATTPort: conn.DefaultNATTPort,
		ESP: g.dp.HandleESP, RawESP: !udp, UDPOffload: os.Getenv("ESP_NETNS_UDP_OFFLOAD") == "1"})
	if err != nil {
		t.Fatal(err)
	}
	g.dp.Start()
	t.Cleanup(g.stop)
	return g
}

// twoNSGateways starts ipsecgw on gw1 and gw2 of a fresh lab with the
// suite's fixed keys (different keys per direction).
func twoNSGateways(t *testing.T, s suite, workers int, udp bool) (*lab.Lab, *nsGateway, *nsGateway) {
	l := lab.New(t, lab.Options{Tools: []string{"iperf3"}})
	g1, g2 := startNSPair(t, l, s, workers, udp)
	return l, g1, g2
}

func startNSPair(t *testing.T, l *lab.Lab, s suite, workers int, udp bool) (*nsGateway, *nsGateway) {
	k12, k21 := s, s
	k21.encKey = append([]byte(nil), s.encKey...)
	k21.encKey[0] ^= 0xff
	g1 := startNSGateway(t, l.GW1, l.GW2, workers, udp, 0x1201, 0x2101, k12, k21)
	g2 := startNSGateway(t, l.GW2, l.GW1, workers, udp, 0x2101, 0x1201, k21, k12)
	return g1, g2
}

func (g *nsGateway) stop() {
	g.conn.Close()
	g.dp.Close()
}

func dropSummary(st Stats) string {
	s := ""
	for r, c := range st.Drops {
		if c != 0 {
			s += fmt.Sprintf(" %v=%d", sad.DropReason(r), c)
		}
	}
	return s
}

// TestNetnsPingIperf runs two ipsecgw dataplanes with fixed keys in the
// lab's gateway namespaces (real TUN devices, UDP 4500 sockets) and passes
// ping and a short iperf3 TCP transfer between host1 and host2 through
// them.
func TestNetnsPingIperf(t *testing.T) {
	if os.Geteuid() != 0 {
		requireInterop(t, "the netns test needs root")
	}
	// Both encapsulations: ESP in UDP 4500 (RFC 3948) and raw IP
	// protocol 50.
	for _, udp := range []bool{true, false} {
		name := "esp-in-udp"
		if !udp {
			name = "raw-esp"
		}
		t.Run(name, func(t *testing.T) { netnsPingIperf(t, udp) })
	}
}

func netnsPingIperf(t *testing.T, udp bool) {
	s := allSuites(t)[0] // AES-GCM-16
	l, g1, g2 := twoNSGateways(t, s, 0, udp)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if _, err := l.Host1.Ping(ctx, l.Host2.Addr, 3); err != nil {
		t.Fatalf("%v\ngw1 %+v\ngw2 %+v", err, g1.dp.Stats(), g2.dp.Stats())
	}
	if _, err := l.Host2.Ping(ctx, l.Host1.Addr, 3); err != nil {
		t.Fatal(err)
	}
	st1 := g1.dp.Stats()
	if st1.TxPackets < 6 || st1.RxPackets < 6 {
		t.Fatalf("pings did not go through the dataplane: %+v", st1)
	}
	for _, streams := range []int{1, 4} {
		srv, err := l.Host2.StartIperfServer(ctx, 5201+streams)
		if err != nil {
			t.Fatal(err)
		}
		res, err := l.Host1.Iperf(ctx, l.Host2.Addr, srv.Port, 2*time.Second, streams)
		if err != nil {
			t.Fatal(err)
		}
		if res.ReceivedBitsPerSecond <= 0 {
			t.Fatalf("iperf3 received nothing: %+v", res)
		}
		t.Logf("iperf3 %d stream(s) 2 s through ipsecgw (AES-128-GCM, %s): %.0f Mbit/s, %d retransmits", streams, t.Name(), res.ReceivedBitsPerSecond/1e6, res.Retransmits)
	}
	st1, st2 := g1.dp.Stats(), g2.dp.Stats()
	t.Logf("gw1 tx %d rx %d drops:%s | gw2 tx %d rx %d drops:%s | conn gw2 %+v", st1.TxPackets, st1.RxPackets, dropSummary(st1),
		st2.TxPackets, st2.RxPackets, dropSummary(st2), g2.conn.Stats())
	for _, st := range []Stats{st1, st2} {
		for _, r := range []sad.DropReason{sad.DropAuthFailed, sad.DropMalformed, sad.DropSelectorMismatch, sad.DropNoSA} {
			if st.Drops[r] != 0 {
				t.Errorf("unexpected drops %v: %d", r, st.Drops[r])
			}
		}
	}
}

// TestNetnsThroughput is the throughput figure (not an assertion): iperf3
// TCP between host1 and host2 over the plain routed veths, then through
// two fixed-key ipsecgw dataplanes (AES-128-GCM) with 1 and 2 crypto
// workers, 1 and 4 streams. It runs only with ESP_NETNS_PERF=1 (it takes
// about a minute and loads both cores). ESP-in-UDP by default;
// ESP_NETNS_RAW=1 uses plain ESP on raw sockets (what two ipsecgw without
// NAT negotiate unless forceencaps=yes), ESP_NETNS_UDP_OFFLOAD=1 UDP
// GSO/GRO (what the daemon uses):
//
//	ESP_NETNS_PERF=1 [ESP_NETNS_RAW=1|ESP_NETNS_UDP_OFFLOAD=1] go test -run NetnsThroughput -v ./esp/
func TestNetnsThroughput(t *testing.T) {
	if os.Getenv("ESP_NETNS_PERF") != "1" {
		t.Skip("set ESP_NETNS_PERF=1 to measure")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	secs := 5 * time.Second
	l := lab.New(t, lab.Options{Tools: []string{"iperf3"}})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	port := 5300
	measure := func(what string) {
		for _, streams := range []int{1, 4} {
			port++
			srv, err := l.Host2.StartIperfServer(ctx, port)
			if err != nil {
				t.Fatal(err)
			}
			before1, before2 := udpRcvbufErrors(ctx, t, l.GW1), udpRcvbufErrors(ctx, t, l.GW2)
			res, err := l.Host1.Iperf(ctx, l.Host2.Addr, srv.Port, secs, streams)
			if err != nil {
				t.Fatal(err)
			}
			// Retransmits are loss when the gateways' UDP sockets
			// overflowed (RcvbufErrors) or the dataplane dropped; else
			// they point at reordering or loss elsewhere.
			t.Logf("%-32s %d stream(s): %6.0f Mbit/s  retransmits %d  UDP RcvbufErrors gw1 %d gw2 %d", what, streams,
				res.ReceivedBitsPerSecond/1e6, res.Retransmits,
				udpRcvbufErrors(ctx, t, l.GW1)-before1, udpRcvbufErrors(ctx, t, l.GW2)-before2)
		}
	}
	// Plain routing between the LANs over the underlay veth.
	r1 := []string{"ip", "route", "add", l.GW2.LAN.String(), "via", l.GW2.Addr.String()}
	r2 := []string{"ip", "route", "add", l.GW1.LAN.String(), "via", l.GW1.Addr.String()}
	if _, err := l.GW1.Run(ctx, r1...); err != nil {
		t.Fatal(err)
	}
	if _, err := l.GW2.Run(ctx, r2...); err != nil {
		t.Fatal(err)
	}
	measure("plain veth")
	r1[2], r2[2] = "del", "del"
	if _, err := l.GW1.Run(ctx, r1...); err != nil {
		t.Fatal(err)
	}
	if _, err := l.GW2.Run(ctx, r2...); err != nil {
		t.Fatal(err)
	}
	s := allSuites(t)[0]
	for _, workers := range []int{1, 2} {
		udp := os.Getenv("ESP_NETNS_RAW") != "1"
		g1, g2 := startNSPair(t, l, s, workers, udp)
		measure(fmt.Sprintf("ipsecgw aes128gcm16 udp=%v workers=%d", udp, workers))
		st1, st2 := g1.dp.Stats(), g2.dp.Stats()
		t.Logf("  gw1 tx %d drops:%s | gw2 rx %d drops:%s", st1.TxPackets, dropSummary(st1), st2.RxPackets, dropSummary(st2))
		g1.stop()
		g2.stop()
	}
}

// udpRcvbufErrors is the UDP RcvbufErrors counter of node's namespace
// (/proc/net/snmp): datagrams dropped because a socket buffer was full.
func udpRcvbufErrors(ctx context.Context, t *testing.T, node *lab.Node) uint64 {
	t.Helper()
	out, err := node.Run(ctx, "cat", "/proc/net/snmp")
	if err != nil {
		t.Fatal(err)
	}
	var names, values []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f
		} else {
			values = f
		}
	}
	for i, n := range names {
		if n == "RcvbufErrors" && i < len(values) {
			v, err := strconv.ParseUint(values[i], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no Udp RcvbufErrors in /proc/net/snmp of %s", node.Role)
	return 0
}
