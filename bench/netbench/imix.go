package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ipsecgw/ipsecgw/internal/lab"
)

// imixPort is the UDP port of the IMIX receiver on host2 (iperf3 uses
// iperfPort, which is idle by then).
const imixPort = 5202

// imixPattern is one cycle of the simple IMIX: 7 : 4 : 1 packets of 64,
// 576 and 1400 bytes, sizes of whole IPv4 packets. The classic large size
// is 1500, but no tunnel here carries a 1500-byte inner packet without
// fragmenting it (wireguard-go's MTU is 1420), and fragments would measure
// the fragmentation path instead; 1400 fits every system measured.
var imixPattern = []int{64, 576, 64, 64, 576, 64, 1400, 64, 576, 64, 64, 576}

// ipUDPHeaders is what an IPv4 UDP datagram adds to its payload.
const ipUDPHeaders = 20 + 8

// IMIXResult is one IMIX flood host1 → host2.
type IMIXResult struct {
	SentPackets int     `json:"sent_packets"`
	LostPackets int     `json:"lost_packets"`
	Seconds     float64 `json:"seconds"`
	RecvPPS     float64 `json:"received_pps"`
	// RecvBitsPerSec counts the IP packets (headers included) received.
	RecvBitsPerSec float64 `json:"received_ip_bits_per_second"`
}

// runIMIX sends the IMIX pattern from host1 to host2 as fast as one socket
// can for d, like iperf3 -b 0 does for the 64-byte flood, and counts what
// arrives. Sender and receiver are sockets of this process opened inside
// the nodes' namespaces, so no helper program is needed.
func runIMIX(ctx context.Context, l *lab.Lab, d time.Duration) (IMIXResult, error) {
	rc, err := l.Host2.ListenUDP(netip.AddrPortFrom(l.Host2.Addr, imixPort))
	if err != nil {
		return IMIXResult{}, fmt.Errorf("imix receiver: %w", err)
	}
	defer rc.Close()
	// iperf3 leaves the buffer at the default; so does this, to measure
	// the path rather than the receiver's queue.
	sc, err := l.Host1.ListenUDP(netip.AddrPortFrom(l.Host1.Addr, 0))
	if err != nil {
		return IMIXResult{}, fmt.Errorf("imix sender: %w", err)
	}
	defer sc.Close()

	var recvPkts, recvBytes atomic.Int64
	recvDone := make(chan error, 1)
	go func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := rc.ReadFromUDPAddrPort(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrDeadlineExceeded) {
					err = nil
				}
				recvDone <- err
				return
			}
			recvPkts.Add(1)
			recvBytes.Add(int64(n + ipUDPHeaders))
		}
	}()

	dst := netip.AddrPortFrom(l.Host2.Addr, imixPort)
	payload := make([]byte, 1500)
	sent := 0
	start := time.Now()
	deadline := start.Add(d)
	var sendErr error
	for ctx.Err() == nil && sendErr == nil {
		// Checking the clock once per cycle keeps time.Now off the
		// sender's per-packet cost.
		if time.Now().After(deadline) {
			break
		}
		for _, size := range imixPattern {
			if _, err := sc.WriteToUDPAddrPort(payload[:size-ipUDPHeaders], dst); err != nil {
				// A full queue (ENOBUFS) is loss, not failure.
				if !errors.Is(err, os.ErrDeadlineExceeded) && !isNoBufs(err) {
					sendErr = err
					break
				}
				continue
			}
			sent++
		}
	}
	elapsed := time.Since(start)
	// What is still in flight arrives within a few milliseconds; the
	// deadline ends the receiver after that.
	rc.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	if err := <-recvDone; err != nil {
		return IMIXResult{}, fmt.Errorf("imix receiver: %w", err)
	}
	if sendErr != nil {
		return IMIXResult{}, fmt.Errorf("imix sender: %w", sendErr)
	}
	if err := ctx.Err(); err != nil {
		return IMIXResult{}, err
	}
	got := int(recvPkts.Load())
	secs := elapsed.Seconds()
	return IMIXResult{SentPackets: sent, LostPackets: max(sent-got, 0), Seconds: secs,
		RecvPPS: float64(got) / secs, RecvBitsPerSec: float64(recvBytes.Load()) * 8 / secs}, nil
}

func isNoBufs(err error) bool { return errors.Is(err, syscall.ENOBUFS) }
