package tcpencap

import (
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/ipsecgw/ipsecgw/esp/conn"
)

// TestNoAllocPerPacket: sending a batch of ESP packets over a stream and
// receiving them at the other end allocates nothing once the buffers
// exist (the dataplane's per-packet path stays at 0 allocations over TCP
// too).
func TestNoAllocPerPacket(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race")
	}
	client, server := pair(t)
	arrived := make(chan int, 1024)
	go server.Serve(Handler{
		Src: netip.MustParseAddrPort("192.0.2.1:4500"),
		ESP: func(batch []conn.ESPPacket) { arrived <- len(batch) },
	})
	batch := make([]conn.OutPacket, 32)
	for i := range batch {
		batch[i].B = espPkt(uint32(i+1), 1400)
	}
	roundTrip := func() {
		if n, err := client.Send(batch); n != len(batch) || err != nil {
			t.Fatalf("Send = %d, %v", n, err)
		}
		for got := 0; got < len(batch); {
			got += <-arrived
		}
	}
	if a := testing.AllocsPerRun(200, roundTrip); a != 0 {
		t.Fatalf("%.1f allocations per batch of %d packets, want 0", a, len(batch))
	}
}

// BenchmarkStream measures ESP throughput over loopback TCP, framing and
// both system calls included (run under the lab lock).
func BenchmarkStream(b *testing.B) {
	client, server := pair(b)
	var received atomic.Uint64
	go server.Serve(Handler{ESP: func(batch []conn.ESPPacket) { received.Add(uint64(len(batch))) }})
	batch := make([]conn.OutPacket, 32)
	for i := range batch {
		batch[i].B = espPkt(uint32(i+1), 1400)
	}
	b.SetBytes(int64(len(batch) * 1400))
	b.ReportAllocs()
	for b.Loop() {
		if n, err := client.Send(batch); n != len(batch) || err != nil {
			b.Fatalf("Send = %d, %v", n, err)
		}
	}
	b.StopTimer()
	client.Close()
	server.Close()
	b.ReportMetric(float64(received.Load())/float64(b.N), "pkts-received/op")
}
