package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ipsecgw/ipsecgw/internal/lab"
)

// iperfPort is the iperf3 server port on host2; each lab has its own
// namespaces, so a fixed port never collides with another run.
const iperfPort = 5201

// TCPResult is one iperf3 TCP run host1 → host2 with the gateways' CPU use.
type TCPResult struct {
	Streams     int     `json:"streams"`
	BitsPerSec  float64 `json:"bits_per_second"` // receiver side
	Bytes       float64 `json:"bytes"`           // received
	Retransmits int     `json:"retransmits"`
	// CPUSeconds is user+system time of both gateway daemons during the
	// run; negative when the system has no daemon (plain forwarding).
	CPUSeconds float64 `json:"cpu_seconds"`
	// CPUPerGB is CPUSeconds per 10^9 bytes received; negative when unknown.
	CPUPerGB float64 `json:"cpu_seconds_per_gb"`
	// UDPRcvbufErrors is how many datagrams the gateways' kernels dropped
	// during the run because a UDP socket's receive buffer was full (Udp
	// RcvbufErrors of /proc/net/snmp in both gateway namespaces): ESP in
	// UDP the daemon did not read in time, which TCP pays for with
	// retransmission timeouts. Negative when unknown.
	UDPRcvbufErrors int64 `json:"udp_rcvbuf_errors"`
}

// udpRcvbufErrors sums Udp RcvbufErrors over the gateways' namespaces.
func udpRcvbufErrors(ctx context.Context, l *lab.Lab) (int64, error) {
	var total int64
	for _, n := range []*lab.Node{l.GW1, l.GW2} {
		out, err := n.Run(ctx, "cat", "/proc/net/snmp")
		if err != nil {
			return 0, err
		}
		v, err := snmpCounter(out, "Udp", "RcvbufErrors")
		if err != nil {
			return 0, fmt.Errorf("%s: %w", n.Role, err)
		}
		total += v
	}
	return total, nil
}

// snmpCounter finds one counter in /proc/net/snmp, whose groups come as
// a line of names and a line of values, both starting with "Group:".
func snmpCounter(snmp, group, name string) (int64, error) {
	var names []string
	for _, line := range strings.Split(snmp, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || f[0] != group+":" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		for i, n := range names {
			if n == name && i < len(f) {
				return strconv.ParseInt(f[i], 10, 64)
			}
		}
		break
	}
	return 0, fmt.Errorf("no %s %s in /proc/net/snmp", group, name)
}

// UDPResult is one iperf3 64-byte UDP flood host1 → host2.
type UDPResult struct {
	SentPackets int     `json:"sent_packets"`
	LostPackets int     `json:"lost_packets"`
	Seconds     float64 `json:"seconds"`
	// RecvPPS is packets that arrived at host2 per second.
	RecvPPS float64 `json:"received_pps"`
}

// PingResult holds per-packet RTTs of one ping run host1 → host2.
type PingResult struct {
	Sent int       `json:"sent"`
	RTTs []float64 `json:"rtts_ms"`
}

// cpuTicks sums utime+stime of the given processes in clock ticks
// (lab.ProcCPU).
func cpuTicks(pids []int) (int64, error) {
	var total time.Duration
	for _, pid := range pids {
		d, err := lab.ProcCPU(pid)
		if err != nil {
			return 0, err
		}
		total += d
	}
	return int64(total / (time.Second / clockTicks)), nil
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times; Linux fixes
// it at 100 on every architecture Go supports here.
const clockTicks = 100

// runTCP runs one iperf3 TCP test and measures the daemons' CPU time
// around it. during, if set, runs concurrently (the ping under load).
func runTCP(ctx context.Context, l *lab.Lab, pids []int, d time.Duration, streams int) (TCPResult, error) {
	srv, err := l.Host2.StartIperfServer(ctx, iperfPort)
	if err != nil {
		return TCPResult{}, err
	}
	defer srv.Stop()
	var before int64
	if len(pids) > 0 {
		if before, err = cpuTicks(pids); err != nil {
			return TCPResult{}, err
		}
	}
	rcvbufBefore, rcvbufErr := udpRcvbufErrors(ctx, l)
	res, err := l.Host1.Iperf(ctx, l.Host2.Addr, srv.Port, d, streams)
	if err != nil {
		return TCPResult{}, err
	}
	r := TCPResult{Streams: streams, BitsPerSec: res.ReceivedBitsPerSecond, Retransmits: res.Retransmits, CPUSeconds: -1, CPUPerGB: -1, UDPRcvbufErrors: -1}
	if after, err := udpRcvbufErrors(ctx, l); err == nil && rcvbufErr == nil {
		r.UDPRcvbufErrors = after - rcvbufBefore
	}
	var doc struct {
		End struct {
			SumReceived struct {
				Bytes float64 `json:"bytes"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(res.JSON, &doc); err != nil {
		return r, fmt.Errorf("iperf3 JSON: %w", err)
	}
	r.Bytes = doc.End.SumReceived.Bytes
	if len(pids) > 0 {
		after, err := cpuTicks(pids)
		if err != nil {
			return r, fmt.Errorf("gateway CPU time after the run (did a daemon exit?): %w", err)
		}
		r.CPUSeconds = float64(after-before) / clockTicks
		if r.Bytes > 0 {
			r.CPUPerGB = r.CPUSeconds / (r.Bytes / 1e9)
		}
	}
	return r, nil
}

// runUDP floods 64-byte UDP datagrams as fast as iperf3 can send them
// (-b 0) and reports how many arrived per second.
func runUDP(ctx context.Context, l *lab.Lab, d time.Duration) (UDPResult, error) {
	srv, err := l.Host2.StartIperfServer(ctx, iperfPort)
	if err != nil {
		return UDPResult{}, err
	}
	defer srv.Stop()
	secs := max(int(d.Round(time.Second)/time.Second), 1)
	out, err := l.Host1.Run(ctx, "iperf3", "-c", l.Host2.Addr.String(), "-p", strconv.Itoa(srv.Port),
		"-u", "-l", "64", "-b", "0", "-t", strconv.Itoa(secs), "-J")
	if err != nil {
		return UDPResult{}, fmt.Errorf("iperf3 UDP: %w", err)
	}
	return parseUDP([]byte(out))
}

// parseUDP reads an iperf3 -u -J client report. iperf3 3.12 puts the
// receiver's loss count into end.sum; newer versions also have
// end.sum_received, which is preferred when present.
func parseUDP(b []byte) (UDPResult, error) {
	type sum struct {
		Seconds     float64 `json:"seconds"`
		Packets     int     `json:"packets"`
		LostPackets int     `json:"lost_packets"`
	}
	var doc struct {
		Error string `json:"error"`
		End   struct {
			Sum         *sum `json:"sum"`
			SumReceived *sum `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return UDPResult{}, fmt.Errorf("iperf3 UDP JSON: %w", err)
	}
	if doc.Error != "" {
		return UDPResult{}, fmt.Errorf("iperf3 UDP: %s", doc.Error)
	}
	s := doc.End.Sum
	if s == nil {
		return UDPResult{}, errors.New("iperf3 UDP JSON: no end.sum")
	}
	r := UDPResult{SentPackets: s.Packets, LostPackets: s.LostPackets, Seconds: s.Seconds}
	received := s.Packets - s.LostPackets
	if rs := doc.End.SumReceived; rs != nil && rs.Packets > 0 {
		received = rs.Packets - rs.LostPackets
		r.Seconds = rs.Seconds
	}
	if r.Seconds <= 0 {
		return r, errors.New("iperf3 UDP JSON: zero duration")
	}
	r.RecvPPS = float64(received) / r.Seconds
	return r, nil
}

var rttRe = regexp.MustCompile(`icmp_seq=\d+ .*time=([0-9.]+) ms`)

// runPing sends count echo requests 10 ms apart and returns every RTT.
// Unanswered requests are simply missing from RTTs (ping exits non-zero
// then, which is not an error here: loss is a result).
func runPing(ctx context.Context, n *lab.Node, dst netip.Addr, count int) (PingResult, error) {
	deadline := count/100 + 5
	out, err := n.Run(ctx, "ping", "-n", "-i", "0.01", "-c", strconv.Itoa(count), "-w", strconv.Itoa(deadline), dst.String())
	r := PingResult{Sent: count}
	for _, m := range rttRe.FindAllStringSubmatch(out, -1) {
		v, perr := strconv.ParseFloat(m[1], 64)
		if perr == nil {
			r.RTTs = append(r.RTTs, v)
		}
	}
	if err != nil && len(r.RTTs) == 0 {
		return r, fmt.Errorf("ping: %w", err)
	}
	return r, nil
}

// percentile returns the p-th percentile (0..100) by nearest rank.
func percentile(xs []float64, p float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	rank := int(p/100*float64(len(s))+0.999999) - 1
	return s[min(max(rank, 0), len(s)-1)]
}
