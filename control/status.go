package control

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Connection states as the control protocol names them. They are part of the
// documented JSON schema: never rename one.
const (
	StateDown         = "down"
	StateConnecting   = "connecting"
	StateEstablished  = "established"
	StatePhase1Failed = "phase1-failed"
	StatePhase2Failed = "phase2-failed"
)

// ConnStatus is one configured connection as `ipsecgw status --json` shows it.
// Every field is always present (zero values included) so that consumers can
// rely on the keys; see the package documentation for the schema.
type ConnStatus struct {
	Name string `json:"name"`
	// State is one of down, connecting, established, phase1-failed,
	// phase2-failed (an auto=route conn waiting for traffic is down).
	State string `json:"state"`
	// Auto is the conn's auto= value (add, route, start, ignore).
	Auto string `json:"auto"`
	// Version is the IKE version of the conn: "ikev1", "ikev2" or "ike"
	// (either, as initiator IKEv2).
	Version string `json:"version"`
	// Local and Remote are the outer addresses: the configured ones, or the
	// negotiated ones (with ports) once an IKE SA exists.
	Local  string `json:"local"`
	Remote string `json:"remote"`
	// LastError is why the last attempt failed ("" if none did); it stays
	// after a later success until the next failure, as a hint.
	LastError string `json:"last_error"`
	// IKE is the current IKE SA, null when there is none.
	IKE *IKEStatus `json:"ike"`
	// Children are the installed CHILD SAs (empty when none).
	Children []ChildStatus `json:"children"`
}

// IKEStatus describes an IKE SA.
type IKEStatus struct {
	// Initiator is true when this gateway initiated the IKE SA.
	Initiator bool `json:"initiator"`
	// SPIs as 16 hex digits.
	InitiatorSPI string `json:"initiator_spi"`
	ResponderSPI string `json:"responder_spi"`
	// Proposal is the negotiated proposal in strongSwan syntax
	// (aes128-sha256-modp2048).
	Proposal      string `json:"proposal"`
	LocalID       string `json:"local_id"`
	RemoteID      string `json:"remote_id"`
	NATDetected   bool   `json:"nat_detected"`
	UptimeSeconds int64  `json:"uptime_seconds"`
}

// ChildStatus describes one CHILD SA pair.
type ChildStatus struct {
	// Proposal is the negotiated ESP/AH proposal in strongSwan syntax
	// (aes128gcm16, aes128-sha256-modp2048).
	Proposal string `json:"proposal"`
	Protocol string `json:"protocol"` // "esp" or "ah"
	// SPIs as 8 hex digits: inbound is ours, outbound the peer's.
	SPIIn    string   `json:"spi_in"`
	SPIOut   string   `json:"spi_out"`
	UDPEncap bool     `json:"udp_encap"`
	LocalTS  []string `json:"local_ts"`
	RemoteTS []string `json:"remote_ts"`
	// Counters from the SAD: traffic that passed each SA.
	BytesIn       uint64 `json:"bytes_in"`
	PacketsIn     uint64 `json:"packets_in"`
	BytesOut      uint64 `json:"bytes_out"`
	PacketsOut    uint64 `json:"packets_out"`
	UptimeSeconds int64  `json:"uptime_seconds"`
}

// GlobalStatus is the daemon-wide part of the status: how loaded the IKE
// responder is and what it turned away since the daemon started, so that
// an IKE_SA_INIT flood shows up in `ipsecgw status`. Every key is always
// present.
type GlobalStatus struct {
	// IKESAs is the number of IKE SAs, half-open ones included.
	IKESAs int `json:"ike_sas"`
	// HalfOpen is the number of responder IKE SAs that have not completed
	// IKE_AUTH; HalfOpenLimit (ike.half_open_limit) the most kept.
	HalfOpen      int `json:"half_open"`
	HalfOpenLimit int `json:"half_open_limit"`
	// CookieThreshold and CookieThresholdIP are the settings
	// ike.cookie_threshold and ike.cookie_threshold_ip (0: off).
	CookieThreshold   int `json:"cookie_threshold"`
	CookieThresholdIP int `json:"cookie_threshold_ip"`
	// CookiesSent counts IKE_SA_INIT requests answered with a COOKIE.
	CookiesSent uint64 `json:"cookies_sent"`
	// HalfOpenRefused counts IKE_SA_INIT requests dropped unanswered at
	// the half-open limit.
	HalfOpenRefused uint64 `json:"half_open_refused"`
	// IKEQueueDrops counts IKE datagrams dropped because the queue from
	// the sockets to IKE was full; IKESAQueueDrops those dropped because
	// the event queue of their IKE SA was full. Peers retransmit both.
	IKEQueueDrops   uint64 `json:"ike_queue_drops"`
	IKESAQueueDrops uint64 `json:"ike_sa_queue_drops"`
}

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
	return err
}

// FormatSPI renders an ESP SPI the way strongSwan prints it.
func FormatSPI(spi uint32) string { return fmt.Sprintf("%08x", spi) }

// FormatIKESPI renders an IKE SPI.
func FormatIKESPI(spi uint64) string { return fmt.Sprintf("%016x", spi) }

// Uptime converts a start time to whole seconds before now (0 for a zero
// start).
func Uptime(since, now time.Time) int64 {
	if since.IsZero() || now.Before(since) {
		return 0
	}
	return int64(now.Sub(since) / time.Second)
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
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, c.State, remote, dash(ike), up, dash(oneLine(c.LastError)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	lines := strings.SplitAfter(buf.String(), "\n")
	var out strings.Builder
	out.WriteString(lines[0])
	for i, c := range conns {
		out.WriteString(lines[i+1])
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
