package main

import (
	"os"
	"strings"
	"testing"
)

func TestParseUDP(t *testing.T) {
	// Shape of iperf3 3.12 `-u -J` client output (trimmed): end.sum holds
	// the sender's packet count and the receiver's loss.
	old := `{"end":{"sum":{"seconds":2.0,"packets":1000,"lost_packets":200,"sender":true}}}`
	r, err := parseUDP([]byte(old))
	if err != nil {
		t.Fatal(err)
	}
	if r.RecvPPS != 400 || r.SentPackets != 1000 || r.LostPackets != 200 {
		t.Errorf("3.12 shape: %+v, want 400 pps of 1000 sent, 200 lost", r)
	}
	// Newer iperf3 adds end.sum_received, which wins.
	newer := `{"end":{"sum":{"seconds":2.0,"packets":1000,"lost_packets":0},"sum_received":{"seconds":4.0,"packets":1000,"lost_packets":600}}}`
	if r, err = parseUDP([]byte(newer)); err != nil || r.RecvPPS != 100 {
		t.Errorf("sum_received shape: %+v %v, want 100 pps", r, err)
	}
	for _, bad := range []string{`{"error":"unable to connect"}`, `{"end":{}}`, `{"end":{"sum":{"packets":5}}}`, `not json`} {
		if _, err := parseUDP([]byte(bad)); err == nil {
			t.Errorf("parseUDP(%s): no error", bad)
		}
	}
}

func TestPercentileAndStat(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	if p := percentile(xs, 50); p != 5 {
		t.Errorf("p50 = %v, want 5", p)
	}
	if p := percentile(xs, 99); p != 10 {
		t.Errorf("p99 = %v, want 10", p)
	}
	if p := percentile(nil, 50); p != 0 {
		t.Errorf("p50 of nothing = %v", p)
	}
	if s := stat([]float64{3, 1, 2, 10}); s.Median != 2.5 || s.Min != 1 || s.Max != 10 || s.N != 4 {
		t.Errorf("stat = %+v", s)
	}
	if s := stat(nil); s.N != 0 {
		t.Errorf("stat(nil) = %+v", s)
	}
}

func TestCPUTicksOfSelf(t *testing.T) {
	// Burn a little CPU so the counter is non-zero in any clock-tick unit.
	x := 0
	for i := range 50_000_000 {
		x += i
	}
	_ = x
	n, err := cpuTicks([]int{os.Getpid()})
	if err != nil {
		t.Fatal(err)
	}
	if n <= 0 {
		t.Errorf("own CPU ticks = %d after a busy loop", n)
	}
	if _, err := cpuTicks([]int{-1}); err == nil {
		t.Error("no error for a missing process")
	}
}

func TestMarkdownPacketRate(t *testing.T) {
	r := &Report{Options: options{Tests: []string{testUDP64, testIMIX}, Systems: []string{"ipsecgw-aes128gcm", "wireguard-go"}, Reps: 1}}
	r.Samples = []Sample{
		{System: "ipsecgw-aes128gcm", UDP: UDPResult{SentPackets: 1000, LostPackets: 250, RecvPPS: 60000}, IMIX: IMIXResult{SentPackets: 100, RecvPPS: 40000}},
		{System: "wireguard-go", UDP: UDPResult{SentPackets: 1000, LostPackets: 500, RecvPPS: 30000}, IMIX: IMIXResult{SentPackets: 100, LostPackets: 50, RecvPPS: 20000}},
	}
	r.summarize()
	md := r.Markdown()
	for _, want := range []string{"| 60 | 25 | 40 |", "| 30 | 50 | 20 |", "| 2.00× | 2.00× |"} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, "Throughput (Gbit/s)") {
		t.Errorf("Markdown has the TCP table though -tests had no tcp:\n%s", md)
	}
}

func TestSNMPCounter(t *testing.T) {
	snmp := "Ip: Forwarding DefaultTTL\nIp: 1 64\nUdp: InDatagrams NoPorts InErrors OutDatagrams RcvbufErrors SndbufErrors\nUdp: 10 2 7 9 5 0\nUdpLite: InDatagrams RcvbufErrors\nUdpLite: 0 99\n"
	if v, err := snmpCounter(snmp, "Udp", "RcvbufErrors"); err != nil || v != 5 {
		t.Errorf("Udp RcvbufErrors = %d, %v; want 5", v, err)
	}
	if _, err := snmpCounter(snmp, "Udp", "Nothing"); err == nil {
		t.Error("a missing counter was found")
	}
}
