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
	JSON                  []byte // full iperf3 -J output
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
	secs := max(int(d.Round(time.Second)/time.Second), 1)
	out, err := n.Run(ctx, "iperf3", "-c", dst.String(), "-p", strconv.Itoa(port), "-J",
		"-t", strconv.Itoa(secs), "-P", strconv.Itoa(max(streams, 1)))
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
		Error string `json:"error"`
		End   struct {
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
	if doc.Error != "" {
		return r, fmt.Errorf("iperf3: %s", doc.Error)
	}
	return r, nil
}
