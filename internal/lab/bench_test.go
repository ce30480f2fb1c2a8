package lab

import (
	"context"
	"testing"
	"time"
)

// BenchmarkStrongSwanThroughput measures the strongSwan ↔ strongSwan
// baseline (kernel-libipsec, ESP AES-128-GCM) with one iperf3 TCP stream
// of 3 s per iteration between the LAN hosts, reported as Mbit/s. This is
// the figure ipsecgw's own benchmarks are compared with in the same run.
//
//	go test ./internal/lab -run '^$' -bench StrongSwanThroughput -benchtime 3x
func BenchmarkStrongSwanThroughput(b *testing.B) {
	l := New(b, Options{Tools: []string{"iperf3"}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const ike, esp = "aes128-sha256-modp2048", "aes128gcm16"
	gw1, err := l.GW1.StartCharon(ctx, CharonConfig{Swanctl: SwanctlConf(SiteToSite(l.GW1, l.GW2, 2, testPSK, ike, esp))})
	if err != nil {
		b.Fatal(err)
	}
	gw2, err := l.GW2.StartCharon(ctx, CharonConfig{Swanctl: SwanctlConf(SiteToSite(l.GW2, l.GW1, 2, testPSK, ike, esp))})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := Establish(ctx, gw1, gw2, "s2s", "net"); err != nil {
		b.Fatal(err)
	}
	var total float64
	var retrans int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		srv, err := l.Host2.StartIperfServer(ctx, 5201+i%100)
		if err != nil {
			b.Fatal(err)
		}
		res, err := l.Host1.Iperf(ctx, l.Host2.Addr, srv.Port, 3*time.Second, 1)
		if err != nil {
			b.Fatal(err)
		}
		total += res.ReceivedBitsPerSecond
		retrans += res.Retransmits
		_ = srv.Stop()
	}
	b.ReportMetric(total/float64(b.N)/1e6, "Mbit/s")
	b.ReportMetric(float64(retrans)/float64(b.N), "retrans/op")
}
