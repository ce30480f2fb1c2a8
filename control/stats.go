package control

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// Stats is the answer to `stats`: the dataplane's and IKE's counters and
// each conn's usage and drops, all since the daemon started.
type Stats struct {
	Dataplane DataplaneStats `json:"dataplane"`
	IKE       GlobalStatus   `json:"ike"`
	Conns     []ConnStats    `json:"conns"`
}

// DataplaneStats are the ESP dataplane's counters.
type DataplaneStats struct {
	// TxPackets/TxBytes: ESP sent (bytes of ESP); RxPackets/RxBytes:
	// decrypted packets written to the TUN (inner bytes).
	TxPackets uint64 `json:"tx_packets"`
	TxBytes   uint64 `json:"tx_bytes"`
	RxPackets uint64 `json:"rx_packets"`
	RxBytes   uint64 `json:"rx_bytes"`
	// Bypassed: passed in clear by policy; Held: held for a trap policy.
	Bypassed uint64 `json:"bypassed"`
	Held     uint64 `json:"held"`
	// Errors of socket sends, TUN writes and TUN reads.
	SendErrors  uint64 `json:"send_errors"`
	WriteErrors uint64 `json:"write_errors"`
	ReadErrors  uint64 `json:"read_errors"`
	// Drops by reason (every reason present: no_sa, replay, auth_failed,
	// selector_mismatch, malformed, queue_full, policy, expired).
	Drops map[string]uint64 `json:"drops"`
}

// ConnStats are one conn's counters.
type ConnStats struct {
	Name  string `json:"name"`
	State string `json:"state"`
	Usage Usage  `json:"usage"`
	// Drops are the packets of the conn's SAs dropped, by reason (the
	// same keys as DataplaneStats.Drops).
	Drops map[string]uint64 `json:"drops"`
}

// WriteStats prints the counters for `ipsecgw stats`.
func WriteStats(w io.Writer, s Stats) error {
	var b strings.Builder
	d := s.Dataplane
	fmt.Fprintf(&b, "dataplane: out %d ESP packets (%s), in %d packets (%s); bypassed %d, held %d; errors: send %d, TUN write %d, TUN read %d\n",
		d.TxPackets, humanBytes(d.TxBytes), d.RxPackets, humanBytes(d.RxBytes), d.Bypassed, d.Held, d.SendErrors, d.WriteErrors, d.ReadErrors)
	fmt.Fprintf(&b, "dataplane drops: %s\n", dropList(d.Drops))
	if err := WriteGlobal(&b, s.IKE); err != nil {
		return err
	}
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tBYTES IN\tPKTS IN\tBYTES OUT\tPKTS OUT\tLAST IN\tDROPS")
	for _, c := range s.Conns {
		last := "-"
		if c.Usage.LastInboundSeconds >= 0 {
			last = humanDuration(c.Usage.LastInboundSeconds) + " ago"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", c.Name, c.State, c.Usage.BytesIn, c.Usage.PacketsIn,
			c.Usage.BytesOut, c.Usage.PacketsOut, last, dropList(c.Drops))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// dropList renders the non-zero drop counters as "replay=3 no_sa=1", in
// the order of their names; "none" when all are zero.
func dropList(m map[string]uint64) string {
	var keys []string
	for k, n := range m {
		if n > 0 {
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return "none"
	}
	slices.Sort(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}
