package interop

import (
	"context"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/internal/lab"
)

// benchTunnel starts charon in gw2 and ipsecgw in gw1 with the usual
// site-to-site conn (auto=add) and returns both.
func benchTunnel(ctx context.Context, b *testing.B, l *lab.Lab, ike, esp string) (*gateway, *lab.Charon) {
	b.Helper()
	c1, c2 := siteConns(l, ike, esp)
	charon, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf(c2)})
	if err != nil {
		b.Fatal(err)
	}
	gw := startGateway(ctx, b, l.GW1, gatewayFiles{Conf: c1.IPsecConf(), Secrets: c1.IPsecSecrets()})
	return gw, charon
}

// BenchmarkUpToFirstPacket measures, per iteration, the time from the up
// request on the control socket to the first ping answered through the
// tunnel (ipsecgw initiator, strongSwan responder, aes128-sha256-modp2048 /
// aes128gcm16), reported as ms-to-established and ms-to-first-packet.
// The ping includes starting the ping process in the host namespace.
//
//	sudo go test ./interop -run '^$' -bench UpToFirstPacket -benchtime 10x
func BenchmarkUpToFirstPacket(b *testing.B) {
	l := lab.New(b, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	gw, charon := benchTunnel(ctx, b, l, "aes128-sha256-modp2048", "aes128gcm16")
	cl, err := control.Dial(ctx, gw.Socket)
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	var toEstablished, toPacket time.Duration
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		if err := cl.Up(ctx, "s2s"); err != nil {
			b.Fatal(err)
		}
		for {
			c, err := gw.status(ctx, "s2s")
			if err != nil {
				b.Fatal(err)
			}
			if c.State == control.StateEstablished {
				break
			}
			if c.State == control.StatePhase1Failed || c.State == control.StatePhase2Failed {
				b.Fatalf("%s: %s", c.State, c.LastError)
			}
			time.Sleep(time.Millisecond)
		}
		toEstablished += time.Since(start)
		if _, err := l.Host1.Ping(ctx, l.Host2.Addr, 1); err != nil {
			b.Fatal(err)
		}
		toPacket += time.Since(start)
		b.StopTimer()
		if err := cl.Down(ctx, "s2s"); err != nil {
			b.Fatal(err)
		}
		if err := charon.WaitDown(ctx, "s2s"); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(toEstablished.Microseconds())/1e3/float64(b.N), "ms-to-established")
	b.ReportMetric(float64(toPacket.Microseconds())/1e3/float64(b.N), "ms-to-first-packet")
}

// BenchmarkThroughputAgainstStrongSwan runs iperf3 (TCP, 1 stream, 5 s per
// iteration) through an ipsecgw ↔ strongSwan tunnel in both directions.
// strongSwan's kernel-libipsec is the slower end (about 0.4 Gbit/s here
// between two strongSwans), so this measures the pair, not ipsecgw alone.
//
//	sudo go test ./interop -run '^$' -bench Throughput -benchtime 1x
func BenchmarkThroughputAgainstStrongSwan(b *testing.B) {
	l := lab.New(b, lab.Options{Tools: []string{"iperf3"}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	gw, charon := benchTunnel(ctx, b, l, "aes128-sha256-modp2048", "aes128gcm16")
	if out, err := gw.cli(ctx, "up", "s2s"); err != nil {
		b.Fatalf("ipsecgw up: %v\n%s", err, out)
	}
	if _, err := charon.WaitEstablished(ctx, "s2s", "net"); err != nil {
		b.Fatal(err)
	}
	var enc, dec float64
	b.ResetTimer()
	for range b.N {
		for i, dir := range [][2]*lab.Node{{l.Host1, l.Host2}, {l.Host2, l.Host1}} {
			srv, err := dir[1].StartIperfServer(ctx, 5201)
			if err != nil {
				b.Fatal(err)
			}
			res, err := dir[0].Iperf(ctx, dir[1].Addr, srv.Port, 5*time.Second, 1)
			srv.Stop()
			if err != nil {
				b.Fatal(err)
			}
			if i == 0 {
				enc += res.ReceivedBitsPerSecond
			} else {
				dec += res.ReceivedBitsPerSecond
			}
			b.Logf("iperf3 %s → %s: %.0f Mbit/s, %d retransmits", dir[0].Role, dir[1].Role, res.ReceivedBitsPerSecond/1e6, res.Retransmits)
		}
	}
	b.ReportMetric(enc/1e6/float64(b.N), "Mbit/s-ipsecgw-encrypts")
	b.ReportMetric(dec/1e6/float64(b.N), "Mbit/s-ipsecgw-decrypts")
}

// BenchmarkThroughputIpsecgwPair runs iperf3 (TCP, 1 and 4 streams, 5 s per
// iteration) through a tunnel between two ipsecgw daemons (aes128gcm16),
// host1 → host2. Both gateways, both iperf3 ends and the crypto share the
// machine's cores.
//
//	sudo go test ./interop -run '^$' -bench ThroughputIpsecgwPair -benchtime 3x
func BenchmarkThroughputIpsecgwPair(b *testing.B) {
	l := lab.New(b, lab.Options{Tools: []string{"iperf3"}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	c1, c2 := siteConns(l, "aes128gcm16-prfsha256-x25519", "aes128gcm16")
	c1.StartAction = "start"
	startGateway(ctx, b, l.GW2, gatewayFiles{Conf: c2.IPsecConf(), Secrets: c2.IPsecSecrets(), LogLevel: "info"})
	gw1 := startGateway(ctx, b, l.GW1, gatewayFiles{Conf: c1.IPsecConf(), Secrets: c1.IPsecSecrets(), LogLevel: "info"})
	if _, err := gw1.waitState(ctx, "s2s", control.StateEstablished); err != nil {
		b.Fatal(err)
	}
	var one, four float64
	b.ResetTimer()
	for range b.N {
		for _, streams := range []int{1, 4} {
			srv, err := l.Host2.StartIperfServer(ctx, 5201)
			if err != nil {
				b.Fatal(err)
			}
			res, err := l.Host1.Iperf(ctx, l.Host2.Addr, srv.Port, 5*time.Second, streams)
			srv.Stop()
			if err != nil {
				b.Fatal(err)
			}
			if streams == 1 {
				one += res.ReceivedBitsPerSecond
			} else {
				four += res.ReceivedBitsPerSecond
			}
			b.Logf("iperf3 %d stream(s): %.0f Mbit/s, %d retransmits", streams, res.ReceivedBitsPerSecond/1e6, res.Retransmits)
		}
	}
	b.ReportMetric(one/1e6/float64(b.N), "Mbit/s-1-stream")
	b.ReportMetric(four/1e6/float64(b.N), "Mbit/s-4-streams")
}
