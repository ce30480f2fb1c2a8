package control

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteGlobal prints the global section as one line after the table of
// `ipsecgw status`.
func WriteGlobal(w io.Writer, g GlobalStatus) error {
	cookies := "off"
	if g.CookieThreshold > 0 {
		cookies = fmt.Sprintf("from %d half-open", g.CookieThreshold)
		if g.CookieThresholdIP > 0 {
			cookies += fmt.Sprintf(" or %d per address", g.CookieThresholdIP)
		}
	}
	_, err := fmt.Fprintf(w, "IKE: %d SAs, %d/%d half-open; cookies %s: %d sent; %d refused at the half-open limit; queue drops %d (sockets) %d (IKE SAs)\n",
		g.IKESAs, g.HalfOpen, g.HalfOpenLimit, cookies, g.CookiesSent, g.HalfOpenRefused, g.IKEQueueDrops, g.IKESAQueueDrops)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "IKE drops: %s\n", dropList(g.Drops))
	return err
}

// WriteTable prints the connections as a compact table, one line per conn
// plus one indented line per CHILD SA, for `ipsecgw status`.
func WriteTable(w io.Writer, conns []ConnStatus) error {
	// The conn lines are aligned as a table; the CHILD SA lines go between
	// them unaligned, so that their long contents do not widen the columns.
	var buf strings.Builder
	tw := tabwriter.NewWriter(&buf, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSTATE\tREMOTE\tIKE\tUPTIME\tLAST ERROR")
	for _, c := range conns {
		ike, up, remote := "-", "-", dash(c.Remote)
		if c.IKE != nil {
			ike = c.IKE.Proposal
			up = humanDuration(c.IKE.UptimeSeconds)
			if c.IKE.NATDetected {
				// The table is what people look at in a NAT setup; the
				// JSON has had nat_detected all along.
				remote += " (NAT)"
			}
		}
		lastErr := c.LastError
		if c.Updown != nil && c.Updown.LastError != "" {
			// A failed updown script leaves the tunnel up but what the
			// script should have done (routes, firewall) undone.
			lastErr = strings.TrimPrefix(lastErr+"; "+c.Updown.LastError, "; ")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, c.State, remote, dash(ike), up, dash(oneLine(lastErr)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	lines := strings.SplitAfter(buf.String(), "\n")
	var out strings.Builder
	out.WriteString(lines[0])
	for i, c := range conns {
		out.WriteString(lines[i+1])
		if c.TCP != nil {
			out.WriteString(tcpLine(c.TCP))
		}
		for _, ch := range c.Children {
			fmt.Fprintf(&out, "  %s %s  spi in %s out %s  %s === %s  in %s %d pkts  out %s %d pkts  up %s\n",
				ch.Protocol, ch.Proposal, ch.SPIIn, ch.SPIOut,
				strings.Join(ch.LocalTS, ","), strings.Join(ch.RemoteTS, ","),
				humanBytes(ch.BytesIn), ch.PacketsIn, humanBytes(ch.BytesOut), ch.PacketsOut,
				humanDuration(ch.UptimeSeconds))
		}
	}
	_, err := io.WriteString(w, out.String())
	return err
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// oneLine keeps a multi-line error from breaking the table layout.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

func humanDuration(sec int64) string {
	d := time.Duration(sec) * time.Second
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", sec)
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", sec/60, sec%60)
	default:
		return fmt.Sprintf("%dh%02dm", sec/3600, (sec%3600)/60)
	}
}

func humanBytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%dB", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f%ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
