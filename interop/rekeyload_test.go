package interop

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/internal/lab"
)

// udpRate is the iperf3 UDP rate (each direction) the load tests run at.
// TestIperf3UDPBaseline proves the lab carries it through the tunnel
// without loss when no rekey happens, so that loss in the rekey test is the
// rekeys' doing. IPSECGW_IPERF_UDP_RATE runs both tests at another rate
// (to see where this machine starts losing); IPSECGW_IPERF_UDP_RATES
// (comma-separated, e.g. "10M,20M,30M") makes the baseline test sweep.
const udpRate = "10M"

// loadRate is udpRate or its override from the environment.
func loadRate() string {
	if r := os.Getenv("IPSECGW_IPERF_UDP_RATE"); r != "" {
		return r
	}
	return udpRate
}

// udpLen is the UDP payload: 1200 bytes plus the inner IP/UDP headers and
// the ESP-in-UDP overhead stays below the 1500-byte uplink MTU.
const udpLen = 1200

// udpDir is one direction's receiver-side count from iperf3 -J.
type udpDir struct {
	Packets, Lost, OutOfOrder int
}

func (d udpDir) String() string {
	return fmt.Sprintf("%d datagrams, %d lost, %d out of order", d.Packets, d.Lost, d.OutOfOrder)
}

// udpRun is the result of iperf3 --bidir: Fwd is client → server, Rev is
// server → client.
type udpRun struct {
	Fwd, Rev udpDir
	// Start is when iperf3 began (second resolution); LossFwd and LossRev
	// list the intervals (1 s) in which the receiver missed datagrams, to
	// be set against the rekey times.
	Start            time.Time
	LossFwd, LossRev []udpInterval
	JSON             []byte
}

// udpInterval is a one-second report of a receiver.
type udpInterval struct {
	Start float64 `json:"start"` // seconds since udpRun.Start
	End   float64 `json:"end"`
	Lost  int     `json:"lost_packets"`
}

// iperfUDPBidir runs iperf3 UDP in both directions at once from client to
// server (which must run StartIperfServer on port) for secs seconds at rate
// per direction, and returns the receivers' counts. iperf3 numbers its
// datagrams: a receiver counts a gap in the numbers as lost and a number
// below the highest seen as out of order (taking it off the lost count), so
// nothing still in flight when the test stops counts as lost.
func iperfUDPBidir(ctx context.Context, client *lab.Node, server netip.Addr, port int, rate string, secs int) (udpRun, error) {
	out, err := client.Run(ctx, "iperf3", "-c", server.String(), "-p", strconv.Itoa(port), "-J", "--bidir",
		"-u", "-b", rate, "-l", strconv.Itoa(udpLen), "-t", strconv.Itoa(secs), "--get-server-output")
	run := udpRun{JSON: []byte(out)}
	var doc struct {
		Error string `json:"error"`
		// The server's own report (text: it does not run with -J),
		// where the per-second losses of host1→host2 are.
		ServerText string `json:"server_output_text"`
		Start      struct {
			Timestamp struct {
				Timesecs int64 `json:"timesecs"`
			} `json:"timestamp"`
		} `json:"start"`
		Intervals []struct {
			Sum    udpInterval `json:"sum"`
			SumRev udpInterval `json:"sum_bidir_reverse"`
		} `json:"intervals"`
		End struct {
			Streams []struct {
				UDP struct {
					Sender     bool `json:"sender"`
					OutOfOrder int  `json:"out_of_order"`
				} `json:"udp"`
			} `json:"streams"`
			SumReceived   udpSum `json:"sum_received"`
			SumReceivedBR udpSum `json:"sum_received_bidir_reverse"`
		} `json:"end"`
	}
	if jerr := json.Unmarshal(run.JSON, &doc); jerr != nil {
		return run, fmt.Errorf("iperf3 from %s: %v, output not JSON (%v):\n%s", client.Role, err, jerr, out)
	}
	if doc.Error != "" || err != nil {
		return run, fmt.Errorf("iperf3 from %s: %v: %s", client.Role, err, doc.Error)
	}
	run.Start = time.Unix(doc.Start.Timestamp.Timesecs, 0)
	for _, iv := range doc.Intervals {
		if iv.SumRev.Lost > 0 {
			run.LossRev = append(run.LossRev, iv.SumRev)
		}
	}
	for _, m := range serverLoss.FindAllStringSubmatch(doc.ServerText, -1) {
		if lost, _ := strconv.Atoi(m[3]); lost > 0 {
			iv := udpInterval{Lost: lost}
			iv.Start, _ = strconv.ParseFloat(m[1], 64)
			iv.End, _ = strconv.ParseFloat(m[2], 64)
			run.LossFwd = append(run.LossFwd, iv)
		}
	}
	run.Fwd = udpDir{Packets: doc.End.SumReceived.Packets, Lost: doc.End.SumReceived.Lost}
	run.Rev = udpDir{Packets: doc.End.SumReceivedBR.Packets, Lost: doc.End.SumReceivedBR.Lost}
	for _, s := range doc.End.Streams {
		if s.UDP.Sender {
			run.Fwd.OutOfOrder += s.UDP.OutOfOrder
		} else {
			run.Rev.OutOfOrder += s.UDP.OutOfOrder
		}
	}
	if run.Fwd.Packets == 0 || run.Rev.Packets == 0 {
		return run, fmt.Errorf("iperf3 from %s counted no datagrams:\n%s", client.Role, out)
	}
	return run, nil
}

// serverLoss matches an interval line of the iperf3 server's receiving
// stream: "[  5][RX-S]   1.00-2.00   sec ... 0.024 ms  3/104 (2.9%)"; the
// summary at the end, which says "receiver" after it, does not match.
var serverLoss = regexp.MustCompile(`(?m)\[RX-S\]\s+([\d.]+)-([\d.]+)\s+sec.*?\s(\d+)/(\d+) \(\S+\)\s*$`)

// udpSum is an iperf3 UDP summary.
type udpSum struct {
	Packets int `json:"packets"`
	Lost    int `json:"lost_packets"`
}

// udpSocketErrors returns the UDP InErrors and RcvbufErrors of the node's
// namespace (/proc/net/snmp): datagrams its kernel dropped because a
// socket's receive buffer was full, that is lost by a receiver that did not
// keep up rather than by the tunnel.
func udpSocketErrors(ctx context.Context, n *lab.Node) (inErrors, rcvbuf int, err error) {
	out, err := n.Run(ctx, "cat", "/proc/net/snmp")
	if err != nil {
		return 0, 0, err
	}
	var names, values []string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != "Udp:" {
			continue
		}
		if names == nil {
			names = f[1:]
		} else {
			values = f[1:]
		}
	}
	if len(names) == 0 || len(names) != len(values) {
		return 0, 0, fmt.Errorf("no Udp counters in /proc/net/snmp of %s:\n%s", n.Role, out)
	}
	for i, name := range names {
		v, _ := strconv.Atoi(values[i])
		switch name {
		case "InErrors":
			inErrors = v
		case "RcvbufErrors":
			rcvbuf = v
		}
	}
	return inErrors, rcvbuf, nil
}

// rekeyTimeline lists the times of ipsecgw's rekeys in log (text-handler
// lines with time=...) relative to start, for loss reports.
func rekeyTimeline(log string, start time.Time) string {
	var b strings.Builder
	for _, line := range strings.Split(log, "\n") {
		var what string
		switch {
		case strings.Contains(line, "rekeying CHILD SA"):
			what = "CHILD"
		case strings.Contains(line, "IKE SA rekeyed"):
			what = "IKE"
		case strings.Contains(line, "reauthenticating IKE SA"):
			what = "reauth"
		default:
			continue
		}
		ts, _, _ := strings.Cut(strings.TrimPrefix(line, "time="), " ")
		if at, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			fmt.Fprintf(&b, " %s@%.3fs", what, at.Sub(start).Seconds())
		}
	}
	return b.String()
}

// capSpec is a capture captureIfAsked starts.
type capSpec struct {
	node       *lab.Node
	iface, bpf string
}

// captureIfAsked starts the captures when IPSECGW_REKEY_CAPTURE is set, to
// find where packets were lost; they are kept with the lab's files when the
// test fails. They cost CPU, so the load tests run without them by default.
func captureIfAsked(ctx context.Context, t *testing.T, specs ...capSpec) {
	t.Helper()
	if os.Getenv("IPSECGW_REKEY_CAPTURE") == "" {
		return
	}
	for _, c := range specs {
		cp, err := c.node.StartCapture(ctx, c.iface, c.bpf)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = cp.Stop() })
		t.Logf("capturing %s/%s (%s) into %s", c.node.Role, c.iface, c.bpf, cp.File)
	}
}

// TestIperf3UDPBaseline is the control for TestRekeyUnderIperf3UDP: the
// same tunnel without any rekey (default lifetimes) carries udpRate each
// way with iperf3 UDP for 20 s and no datagram is lost.
func TestIperf3UDPBaseline(t *testing.T) {
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c1, c2 := siteConns(l, "aes128-sha256-ecp256", "aes128gcm16-ecp256")
	if _, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf(c2)}); err != nil {
		t.Fatal(err)
	}
	gw := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: c1.IPsecConf(), Secrets: c1.IPsecSecrets(), LogLevel: "info"})
	if out, err := gw.cli(ctx, "up", "s2s"); err != nil {
		t.Fatalf("ipsecgw up: %v\n%s", err, out)
	}
	if _, err := gw.waitState(ctx, "s2s", control.StateEstablished); err != nil {
		t.Fatal(err)
	}
	rates := []string{loadRate()}
	if s := os.Getenv("IPSECGW_IPERF_UDP_RATES"); s != "" {
		rates = strings.Split(s, ",")
	}
	for i, rate := range rates {
		port := 5201 + i
		srv, err := l.Host2.StartIperfServer(ctx, port)
		if err != nil {
			t.Fatal(err)
		}
		run, err := iperfUDPBidir(ctx, l.Host1, l.Host2.Addr, port, rate, 20)
		_ = srv.Stop()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("iperf3 -u -b %s -l %d --bidir, no rekey: host1→host2 %v; host2→host1 %v", rate, udpLen, run.Fwd, run.Rev)
		if os.Getenv("IPSECGW_IPERF_JSON") != "" {
			t.Logf("%s", run.JSON)
		}
		if run.Fwd.Lost != 0 || run.Rev.Lost != 0 {
			t.Errorf("at %s without rekeys: lost %d host1→host2 and %d host2→host1", rate, run.Fwd.Lost, run.Rev.Lost)
		}
	}
}

// TestRekeyUnderIperf3UDP: ipsecgw rekeys the CHILD SA every 3 s (lifetime
// 10 s, margintime 7 s, no fuzz) and the IKE SA every 13 s (ikelifetime
// 20 s, reauth=no) while iperf3 sends UDP at udpRate from host1 to host2
// and from host2 to host1 at the same time for 70 s: at least 20 CHILD
// rekeys and 5 IKE rekeys happen during the transfer and no datagram is
// lost in either direction (iperf3's receivers count gaps in their
// sequence numbers). strongSwan ends with the same single SA pair as
// ipsecgw.
func TestRekeyUnderIperf3UDP(t *testing.T) {
	if testing.Short() {
		t.Skip("rekey waits for lifetimes to pass")
	}
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	c1, c2 := siteConns(l, "aes128-sha256-ecp256", "aes128gcm16-ecp256")
	charon, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf(c2)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("charon log excerpt:\n%s", strings.Join(charon.LogExcerpt(), "\n"))
		}
	})
	conf := c1.IPsecConf() + "  lifetime=10s\n  ikelifetime=20s\n  margintime=7s\n  rekeyfuzz=0%\n  reauth=no\n"
	gw := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: conf, Secrets: c1.IPsecSecrets(), LogLevel: "info"})
	if out, err := gw.cli(ctx, "up", "s2s"); err != nil {
		t.Fatalf("ipsecgw up: %v\n%s", err, out)
	}
	before, err := gw.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := l.Host2.StartIperfServer(ctx, 5201)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Stop()
	// ESP from strongSwan as it reaches ipsecgw: per-SPI sequence gaps
	// tell loss before gw1 from loss inside it.
	captureIfAsked(ctx, t, capSpec{l.GW1, "ul", "udp port 4500 and src host " + l.GW2.PublicAddr.String()})
	in1, rb1, err1 := udpSocketErrors(ctx, l.Host1)
	in2, rb2, err2 := udpSocketErrors(ctx, l.Host2)
	if err1 != nil || err2 != nil {
		t.Fatal(err1, err2)
	}
	// Only the rekeys that happen while iperf3 runs count.
	log0 := gw.Log()
	// 70 s: past the 20th CHILD rekey (~61 s) and the 5th IKE rekey (~65 s).
	rate := loadRate()
	run, err := iperfUDPBidir(ctx, l.Host1, l.Host2.Addr, 5201, rate, 70)
	if err != nil {
		t.Fatal(err)
	}
	during := strings.TrimPrefix(gw.Log(), log0)
	childRekeys := strings.Count(during, "rekeying CHILD SA")
	ikeRekeys := strings.Count(during, "IKE SA rekeyed")
	// strongSwan answers a CHILD rekey and switches to the new SA only
	// when ipsecgw deletes the old one, so ESP should never need holding
	// here (unlike a reauthentication); the count says whether it did.
	held := strings.Count(during, "ESP held until its CHILD SA was installed")
	t.Logf("iperf3 -u -b %s -l %d --bidir -t 70 across %d CHILD rekeys and %d IKE rekeys: host1→host2 %v; host2→host1 %v; "+
		"ESP on a new CHILD SA held until it was installed %d times",
		rate, udpLen, childRekeys, ikeRekeys, run.Fwd, run.Rev, held)
	if run.Fwd.Lost != 0 || run.Rev.Lost != 0 {
		// Where the loss happened: a receiver whose socket buffer ran
		// over (the machine's CPU budget, not the tunnel) shows it in
		// its UDP RcvbufErrors; otherwise the seconds with losses, set
		// against the rekeys, point at the rekey that lost them.
		in1b, rb1b, _ := udpSocketErrors(ctx, l.Host1)
		in2b, rb2b, _ := udpSocketErrors(ctx, l.Host2)
		t.Errorf("lost %d datagrams host1→host2 and %d host2→host1 across the rekeys; "+
			"UDP socket drops during the run: host1 (receives host2→host1) InErrors %d RcvbufErrors %d, host2 InErrors %d RcvbufErrors %d; "+
			"seconds with loss host1→host2 %v, host2→host1 %v; rekeys (s after iperf3's start, %v):%s",
			run.Fwd.Lost, run.Rev.Lost, in1b-in1, rb1b-rb1, in2b-in2, rb2b-rb2, run.LossFwd, run.LossRev,
			run.Start.UTC().Format(time.TimeOnly), rekeyTimeline(during, run.Start))
	}
	if childRekeys < 20 || ikeRekeys < 5 {
		t.Errorf("%d CHILD rekeys and %d IKE rekeys during the transfer, want at least 20 and 5", childRekeys, ikeRekeys)
	}
	if n := strings.Count(during, "CHILD SA reached its hard lifetime"); n > 0 {
		t.Errorf("%d CHILD SAs reached their hard lifetime instead of being rekeyed", n)
	}
	after := waitOnePair(ctx, t, gw, charon, "AES_GCM_16-128/ECP_256")
	if after.IKE.InitiatorSPI == before.IKE.InitiatorSPI {
		t.Errorf("the IKE SA was never replaced: %+v", after.IKE)
	}
}

// TestReauthNoLoss: with reauth=yes ipsecgw renews the IKE SA every 10 s
// (ikelifetime 15 s, margintime 5 s, no fuzz) by reauthentication, make
// before break: a new IKE SA with its own CHILD SA is negotiated from
// scratch, takes over the traffic, and only then is the old IKE SA (and
// its CHILD SA) deleted. While host1 pings host2 every 2 ms for ~40 s, at
// least 3 reauthentications happen (seen as distinct IKE SPIs in ipsecgw's
// status) and not one echo request or reply is lost; afterwards strongSwan
// holds exactly one IKE SA, the one ipsecgw uses.
func TestReauthNoLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("reauthentication waits for lifetimes to pass")
	}
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c1, c2 := siteConns(l, "aes128-sha256-ecp256", "aes128gcm16-ecp256")
	charon, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf(c2)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("charon log excerpt:\n%s", strings.Join(charon.LogExcerpt(), "\n"))
		}
	})
	conf := c1.IPsecConf() + "  ikelifetime=15s\n  margintime=5s\n  rekeyfuzz=0%\n  reauth=yes\n"
	gw := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: conf, Secrets: c1.IPsecSecrets(), LogLevel: "info"})
	if out, err := gw.cli(ctx, "up", "s2s"); err != nil {
		t.Fatalf("ipsecgw up: %v\n%s", err, out)
	}
	first, err := gw.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	// Every IKE SA ipsecgw's status shows while the pings run: a
	// reauthentication replaces both SPIs, a mere rekey could not happen
	// here (reauth=yes never rekeys with CREATE_CHILD_SA).
	seen := map[string]bool{first.IKE.InitiatorSPI + "/" + first.IKE.ResponderSPI: true}
	pollCtx, stopPoll := context.WithCancel(ctx)
	polled := make(chan struct{})
	go func() {
		defer close(polled)
		for pollCtx.Err() == nil {
			if st, err := gw.status(pollCtx, "s2s"); err == nil && st.IKE != nil {
				seen[st.IKE.InitiatorSPI+"/"+st.IKE.ResponderSPI] = true
			}
			select {
			case <-pollCtx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	// Pings both ways as the hosts see them and ESP on both uplinks: a
	// lost echo reply is found at host2 and missing at host1, and its ESP
	// packet (SPI, time) on the uplinks, against the IKE exchanges.
	captureIfAsked(ctx, t, capSpec{l.Host1, "eth0", "icmp"}, capSpec{l.Host2, "eth0", "icmp"},
		capSpec{l.GW1, "ul", "udp port 4500"}, capSpec{l.GW2, "ul", "udp port 4500"})
	log0 := gw.Log()
	// 20000 requests 2 ms apart: ~40 s, past the 3rd reauthentication
	// (~30 s plus the negotiation times).
	const count = 20000
	sent, received, out, err := floodPing(ctx, l.Host1, l.Host2.Addr, count, "0.002")
	stopPoll()
	<-polled
	if err != nil {
		t.Fatal(err)
	}
	during := strings.TrimPrefix(gw.Log(), log0)
	reauths := strings.Count(during, "reauthenticating IKE SA")
	// strongSwan sends on the new CHILD SA right after its IKE_AUTH
	// response; how often ipsecgw had to hold such packets until it had
	// processed the response shows how often that race was on.
	held := strings.Count(during, "ESP held until its CHILD SA was installed")
	t.Logf("flood ping: %d sent, %d received, %d lost across %d reauthentications; %d distinct IKE SAs seen in the status; "+
		"ESP on a new CHILD SA held until it was installed %d times",
		sent, received, sent-received, reauths, len(seen), held)
	if sent != count || received != sent {
		t.Errorf("lost %d of %d echo requests/replies across the reauthentications:\n%s", sent-received, sent, out)
	}
	if reauths < 3 || len(seen) < 4 {
		t.Errorf("%d reauthentications logged and %d IKE SAs seen, want at least 3 and 4", reauths, len(seen))
	}
	after := waitOnePair(ctx, t, gw, charon, "AES_GCM_16-128")
	if after.IKE.InitiatorSPI == first.IKE.InitiatorSPI || after.Children[0].SPIIn == first.Children[0].SPIIn {
		t.Errorf("still the first IKE SA or CHILD SA: first %+v %+v, after %+v %+v", first.IKE, first.Children, after.IKE, after.Children)
	}
}
