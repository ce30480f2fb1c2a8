package interop

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/internal/lab"
)

// consoleConns renders the three tunnels of TestReloadOneTunnel from one
// gateway's view: "hosts" (host1 <-> host2), "upper" (the upper halves of
// the LANs, where the hosts get a second address) and "middle" (a quarter
// nobody uses), with middleESP as middle's proposals.
func consoleConns(local, remote *lab.Node, auto, middleESP string) string {
	part := func(n *lab.Node, last byte, bits int) string {
		a := n.LAN.Addr().As4()
		a[3] = last
		return netip.PrefixFrom(netip.AddrFrom4(a), bits).String()
	}
	return fmt.Sprintf(`conn %%default
  keyexchange=ikev2
  authby=secret
  left=%s
  leftid=@%s
  right=%s
  rightid=@%s
  ike=aes128-sha256-modp2048!
  esp=aes128gcm16!
  dpdaction=restart
  dpddelay=2s
  dpdtimeout=10s
  auto=%s

conn hosts
  leftsubnet=%s
  rightsubnet=%s

conn upper
  leftsubnet=%s
  rightsubnet=%s

conn middle
  leftsubnet=%s
  rightsubnet=%s
  esp=%s
`, local.Addr, local.Role, remote.PublicAddr, remote.Role, auto,
		part(local, 2, 32), part(remote, 2, 32), part(local, 128, 25), part(remote, 128, 25), part(local, 64, 26), part(remote, 64, 26), middleESP)
}

var consoleSecrets = "@gw1 @gw2 : PSK \"" + testPSK + "\"\n"

// tunRoutes lists the destinations routed into gw1's TUN device.
func tunRoutes(ctx context.Context, t *testing.T, l *lab.Lab) string {
	t.Helper()
	out, err := l.GW1.Run(ctx, "ip", "-4", "route", "show", "dev", tunName)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// pingFrom pings dst from src (a source address of node) count times,
// interval apart, and returns how many were sent and answered. No
// deadline (-w), as floodPing: with one, ping keeps sending until count
// answers came, and requests still in flight at its end look lost.
func pingFrom(ctx context.Context, node *lab.Node, src, dst netip.Addr, count int, interval string) (int, int, string) {
	out, _ := node.Run(ctx, "ping", "-n", "-q", "-I", src.String(), "-c", strconv.Itoa(count), "-i", interval, dst.String())
	m := regexp.MustCompile(`(\d+) packets transmitted, (\d+) (?:packets )?received`).FindStringSubmatch(out)
	if m == nil {
		return 0, 0, out
	}
	sent, _ := strconv.Atoi(m[1])
	received, _ := strconv.Atoi(m[2])
	return sent, received, out
}

// TestReloadOneTunnel: three tunnels between two ipsecgw gateways; a
// reload that edits one of them (middle's ESP proposal) renegotiates only
// it: the other two keep their IKE and CHILD SPIs and lose no ping while
// it happens. Their routes into the TUN are there while they are up, and
// go when a conn is taken down or removed. The status shows DPD answered
// and the traffic rate of the pinged tunnels.
func TestReloadOneTunnel(t *testing.T) {
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	// Second addresses in the upper halves of the LANs, for "upper".
	src, dst := netip.MustParseAddr("10.1.0.130"), netip.MustParseAddr("10.2.0.130")
	for _, a := range []struct {
		n    *lab.Node
		addr netip.Addr
	}{{l.Host1, src}, {l.Host2, dst}} {
		if out, err := a.n.Run(ctx, "ip", "addr", "add", a.addr.String()+"/24", "dev", lab.IfHost); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	startGateway(ctx, t, l.GW2, gatewayFiles{Conf: consoleConns(l.GW2, l.GW1, "add", "aes128gcm16,aes256gcm16!"), Secrets: consoleSecrets, LogLevel: "info"})
	gw := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: consoleConns(l.GW1, l.GW2, "start", "aes128gcm16!"), Secrets: consoleSecrets, LogLevel: "info"})
	before := map[string]control.ConnStatus{}
	for _, name := range []string{"hosts", "upper", "middle"} {
		st, err := gw.waitState(ctx, name, control.StateEstablished)
		if err != nil {
			t.Fatal(err)
		}
		before[name] = st
	}
	routes := tunRoutes(ctx, t, l)
	for _, r := range []string{"10.2.0.2 ", "10.2.0.128/25", "10.2.0.64/26"} {
		if !strings.Contains(routes, r) {
			t.Errorf("no TUN route for %s while its tunnel is up:\n%s", r, routes)
		}
	}

	// Pings through hosts and upper for ~4 s while middle is edited.
	const count = 80
	type result struct {
		sent, received int
		out            string
	}
	var wg sync.WaitGroup
	res := make([]result, 2)
	for i, p := range []struct{ src, dst netip.Addr }{{l.Host1.Addr, l.Host2.Addr}, {src, dst}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, r, out := pingFrom(ctx, l.Host1, p.src, p.dst, count, "0.05")
			res[i] = result{s, r, out}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	if err := os.WriteFile(gw.ConfPath, []byte(consoleConns(l.GW1, l.GW2, "start", "aes256gcm16!")), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := gw.cli(ctx, "reload")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ipsecgw reload: %s", strings.TrimSpace(out))
	if !strings.Contains(out, "middle") || strings.Contains(out, "hosts") || strings.Contains(out, "upper") {
		t.Errorf("the reload should change middle only: %s", out)
	}
	var middle control.ConnStatus
	for {
		middle, err = gw.waitState(ctx, "middle", control.StateEstablished)
		if err != nil {
			t.Fatal(err)
		}
		if len(middle.Children) == 1 && middle.Children[0].Proposal == "aes256gcm16" {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Bandwidth: the rate of the last 5 s interval, read while the pings run.
	var maxIn uint64
	for maxIn == 0 {
		st, err := gw.status(ctx, "hosts")
		if err != nil {
			t.Fatal(err)
		}
		maxIn = max(maxIn, st.Bandwidth.InBytesPerSecond)
		if maxIn == 0 && ctx.Err() == nil {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		t.Logf("hosts: bandwidth %+v", st.Bandwidth)
		break
	}
	wg.Wait()
	for i, name := range []string{"hosts", "upper"} {
		if res[i].sent != count || res[i].received != count {
			t.Errorf("%s: %d of %d pings answered during the reload of middle:\n%s", name, res[i].received, res[i].sent, res[i].out)
		}
	}
	t.Logf("pings during the reload: hosts %d/%d, upper %d/%d", res[0].received, res[0].sent, res[1].received, res[1].sent)
	if maxIn == 0 {
		t.Error("hosts: no inbound bandwidth seen while pinging")
	}
	afterPings := map[string]control.ConnStatus{}
	for _, name := range []string{"hosts", "upper"} {
		if afterPings[name], err = gw.status(ctx, name); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"hosts", "upper"} {
		st := afterPings[name]
		b := before[name]
		if st.IKE == nil || len(st.Children) != 1 || st.IKE.InitiatorSPI != b.IKE.InitiatorSPI || st.IKE.ResponderSPI != b.IKE.ResponderSPI ||
			st.Children[0].SPIIn != b.Children[0].SPIIn || st.Children[0].SPIOut != b.Children[0].SPIOut {
			t.Errorf("%s was renegotiated by the reload of middle: %+v %+v -> %+v %+v", name, b.IKE, b.Children, st.IKE, st.Children)
		} else {
			t.Logf("%s kept IKE SPIs %s/%s and CHILD SPIs %s/%s", name, st.IKE.InitiatorSPI, st.IKE.ResponderSPI, st.Children[0].SPIIn, st.Children[0].SPIOut)
		}
		// Read right after the pings, before any wait below.
		if h := afterPings[name].Health; h.LastInboundSeconds < 0 || h.LastInboundSeconds > 2 {
			t.Errorf("%s: health %+v right after the pings, want a recent inbound packet", name, h)
		}
		// A DPD check goes out once no IKE message came for dpddelay (2 s);
		// the reload's exchanges postpone it, so wait for its answer.
		for st.Health.DPD != control.DPDOK && ctx.Err() == nil {
			time.Sleep(200 * time.Millisecond)
			if st, err = gw.status(ctx, name); err != nil {
				t.Fatal(err)
			}
		}
		if st.Health.DPD != control.DPDOK || st.Health.LastDPDSeconds < 0 {
			t.Errorf("%s: health %+v, want dpd ok", name, st.Health)
		}
	}
	if middle.Children[0].SPIIn == before["middle"].Children[0].SPIIn {
		t.Errorf("middle kept its CHILD SA %s despite the new proposal", middle.Children[0].SPIIn)
	}
	t.Logf("middle: CHILD SPIs %s/%s -> %s/%s (%s)", before["middle"].Children[0].SPIIn, before["middle"].Children[0].SPIOut,
		middle.Children[0].SPIIn, middle.Children[0].SPIOut, middle.Children[0].Proposal)

	// Routes follow the tunnels: down removes middle's, removing upper
	// from the file removes upper's, hosts keeps its own and still works.
	if _, err := gw.cli(ctx, "down", "middle"); err != nil {
		t.Fatal(err)
	}
	if _, err := gw.waitState(ctx, "middle", control.StateDown); err != nil {
		t.Fatal(err)
	}
	conf := consoleConns(l.GW1, l.GW2, "start", "aes256gcm16!")
	conf = conf[:strings.Index(conf, "conn upper")] + conf[strings.Index(conf, "conn middle"):]
	if err := os.WriteFile(gw.ConfPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	gw.Proc.Signal(syscall.SIGHUP)
	deadline := time.Now().Add(10 * time.Second)
	for {
		routes = tunRoutes(ctx, t, l)
		if !strings.Contains(routes, "10.2.0.128/25") && !strings.Contains(routes, "10.2.0.64/26") || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if strings.Contains(routes, "10.2.0.128/25") || strings.Contains(routes, "10.2.0.64/26") || !strings.Contains(routes, "10.2.0.2 ") {
		t.Errorf("TUN routes after down middle and removing upper:\n%s", routes)
	}
	if _, err := l.Host1.Ping(ctx, l.Host2.Addr, 2); err != nil {
		t.Error(err)
	}
}
