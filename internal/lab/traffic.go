package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// PingResult summarises one ping run.
type PingResult struct {
	Transmitted, Received int
	Output                string
}

var pingSummary = regexp.MustCompile(`(\d+) packets transmitted, (\d+) (?:packets )?received`)

// Ping sends count echo requests from the node to dst (0.2 s apart) and
// returns an error unless every one was answered within the deadline.
func (n *Node) Ping(ctx context.Context, dst netip.Addr, count int) (PingResult, error) {
	count = max(count, 1) // ping -c 0 would never stop
	deadline := 2 + count // seconds: generous for a tunnel's first packet
	out, err := n.Run(ctx, "ping", "-n", "-q", "-c", strconv.Itoa(count), "-i", "0.2",
		"-w", strconv.Itoa(deadline), dst.String())
	res := PingResult{Output: out}
	if m := pingSummary.FindStringSubmatch(out); m != nil {
		res.Transmitted, _ = strconv.Atoi(m[1])
		res.Received, _ = strconv.Atoi(m[2])
	}
	if err != nil {
		return res, fmt.Errorf("ping %s from %s: %d/%d answered: %w", dst, n.Role, res.Received, res.Transmitted, err)
	}
	if res.Received < count {
		return res, fmt.Errorf("ping %s from %s: only %d of %d answered", dst, n.Role, res.Received, count)
	}
	return res, nil
}

// IperfResult is the summary of an iperf3 client run.
type IperfResult struct {
	SentBitsPerSecond     float64
	ReceivedBitsPerSecond float64
	Retransmits           int
	Seconds               float64
	// Intervals are the client's periodic reports (iperf3 -i), in order.
	Intervals []IperfInterval
	JSON      []byte // full iperf3 -J output
}

// IperfInterval is one periodic report: the sender's rate from Start to
// End, in seconds since the test began. At steady state it is also the
// receiver's: the socket buffer between them is a few milliseconds deep.
type IperfInterval struct {
	Start, End    float64
	BitsPerSecond float64
}

// IperfServer is an iperf3 server waiting for one test.
type IperfServer struct {
	Node *Node
	Port int
	Proc *Process
}

// StartIperfServer starts a one-off iperf3 server (it exits after one
// test) and waits until it listens.
func (n *Node) StartIperfServer(ctx context.Context, port int) (*IperfServer, error) {
	p, err := n.Start("iperf3-server", "iperf3", "-s", "-1", "-p", strconv.Itoa(port))
	if err != nil {
		return nil, err
	}
	s := &IperfServer{Node: n, Port: port, Proc: p}
	for {
		out, err := n.Run(ctx, "ss", "-Hltn", fmt.Sprintf("sport = :%d", port))
		if err == nil && strings.TrimSpace(out) != "" {
			return s, nil
		}
		select {
		case <-p.Done():
			return nil, fmt.Errorf("iperf3 server on %s exited: %s", n.Role, p.Output())
		case <-ctx.Done():
			return nil, fmt.Errorf("iperf3 server on %s not listening: %w", n.Role, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop ends the server if still running.
func (s *IperfServer) Stop() error { return s.Proc.Stop(syscall.SIGTERM, 2*time.Second) }

// Iperf runs an iperf3 TCP client from the node to dst for the given time
// with the given number of parallel streams, and parses its JSON report.
func (n *Node) Iperf(ctx context.Context, dst netip.Addr, port int, d time.Duration, streams int) (IperfResult, error) {
	return n.IperfEvery(ctx, dst, port, d, streams, time.Second)
}

// IperfEvery is Iperf with a periodic report every interval (iperf3 -i,
// at least 0.1 s) in IperfResult.Intervals.
func (n *Node) IperfEvery(ctx context.Context, dst netip.Addr, port int, d time.Duration, streams int, interval time.Duration) (IperfResult, error) {
	secs := max(int(d.Round(time.Second)/time.Second), 1)
	every := strconv.FormatFloat(max(interval.Seconds(), 0.1), 'f', -1, 64)
	out, err := n.Run(ctx, "iperf3", "-c", dst.String(), "-p", strconv.Itoa(port), "-J",
		"-t", strconv.Itoa(secs), "-P", strconv.Itoa(max(streams, 1)), "-i", every)
	res, perr := ParseIperfJSON([]byte(out))
	if err != nil {
		if perr != nil {
			// iperf3 -J reports its own failure inside the JSON.
			err = fmt.Errorf("%w (%v)", err, perr)
		}
		return res, fmt.Errorf("iperf3 from %s to %s: %w", n.Role, dst, err)
	}
	return res, perr
}

// ParseIperfJSON extracts throughput from `iperf3 -J` client output.
func ParseIperfJSON(b []byte) (IperfResult, error) {
	var doc struct {
		Error     string `json:"error"`
		Intervals []struct {
			Sum struct {
				Start         float64 `json:"start"`
				End           float64 `json:"end"`
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum"`
		} `json:"intervals"`
		End struct {
			SumSent struct {
				Seconds       float64 `json:"seconds"`
				BitsPerSecond float64 `json:"bits_per_second"`
				Retransmits   int     `json:"retransmits"`
			} `json:"sum_sent"`
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return IperfResult{}, fmt.Errorf("iperf3 JSON: %w", err)
	}
	r := IperfResult{JSON: b}
	r.SentBitsPerSecond = doc.End.SumSent.BitsPerSecond
	r.ReceivedBitsPerSecond = doc.End.SumReceived.BitsPerSecond
	r.Retransmits = doc.End.SumSent.Retransmits
	r.Seconds = doc.End.SumSent.Seconds
	for _, iv := range doc.Intervals {
		r.Intervals = append(r.Intervals, IperfInterval{Start: iv.Sum.Start, End: iv.Sum.End, BitsPerSecond: iv.Sum.BitsPerSecond})
	}
	if doc.Error != "" {
		return r, fmt.Errorf("iperf3: %s", doc.Error)
	}
	return r, nil
}
