package control

import (
	"fmt"
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
	// Usage is the conn's traffic since the daemon started, over all its
	// CHILD SAs: rekeys and reconnects do not reset it.
	Usage Usage `json:"usage"`
	// TCP is set for conns with enable-tcp (control/tcp.go).
	TCP *TCPStatus `json:"tcp,omitempty"`
	// Updown is what the conn's leftupdown= script did; null when the conn
	// has none.
	Updown *UpdownStatus `json:"updown"`
	// Health says how alive the tunnel looks: the last inbound packet and
	// the dead peer detection.
	Health Health `json:"health"`
	// Bandwidth is the conn's traffic rate over the last interval.
	Bandwidth Bandwidth `json:"bandwidth"`
}

// DPD states of Health.
const (
	DPDOff     = "off"     // dpdaction=none: no liveness checks
	DPDIdle    = "idle"    // on, but no check has completed yet
	DPDOK      = "ok"      // the last check was answered
	DPDTimeout = "timeout" // the last check went unanswered (every retransmission)
)

// Health is a conn's liveness as seen from here.
type Health struct {
	// LastInboundSeconds is how long ago the last inbound packet came
	// (as Usage); -1 when none ever came.
	LastInboundSeconds int64 `json:"last_inbound_seconds"`
	// DPD is off, idle, ok or timeout (the DPD* constants).
	DPD string `json:"dpd"`
	// DPDDelaySeconds is dpddelay (0 when DPD is off).
	DPDDelaySeconds int64 `json:"dpd_delay_seconds"`
	// LastDPDSeconds is how long ago the last check completed (answered
	// or given up); -1 when none did.
	LastDPDSeconds int64 `json:"last_dpd_seconds"`
	// LastDPDRTTMillis is the round trip of the last answered check
	// without retransmission, in milliseconds; -1 when unknown.
	LastDPDRTTMillis float64 `json:"last_dpd_rtt_ms"`
}

// Bandwidth is a conn's inner traffic rate, from its usage records, over
// the last completed interval (BandwidthInterval; IntervalSeconds 0 and
// rates 0 until the first interval has passed).
type Bandwidth struct {
	InBytesPerSecond  uint64  `json:"in_bytes_per_second"`
	OutBytesPerSecond uint64  `json:"out_bytes_per_second"`
	IntervalSeconds   float64 `json:"interval_seconds"`
}

// BandwidthInterval is how often the daemon computes Bandwidth.
const BandwidthInterval = 5 * time.Second

// Usage is a conn's cumulative traffic since the daemon started (inner
// bytes and packets, as the CHILD SA counters), for billing and
// monitoring.
type Usage struct {
	BytesIn    uint64 `json:"bytes_in"`
	PacketsIn  uint64 `json:"packets_in"`
	BytesOut   uint64 `json:"bytes_out"`
	PacketsOut uint64 `json:"packets_out"`
	// LastInboundSeconds is how long ago the last inbound packet came,
	// to about a second; -1 when none ever came.
	LastInboundSeconds int64 `json:"last_inbound_seconds"`
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
	// Drops counts received IKE messages (both versions) dropped without
	// being acted on, by reason; every reason is present. half_open_limit
	// and queue_full are HalfOpenRefused and IKESAQueueDrops again, so
	// that the map alone accounts for every drop.
	Drops map[string]uint64 `json:"drops"`
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
