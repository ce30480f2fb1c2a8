package control

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// Event is one line of `ipsecgw events`: something that happened to a
// conn, its IKE SA or its CHILD SAs, as the daemon's IKE reports it.
// Fields that do not apply to a type are left out.
type Event struct {
	Time time.Time `json:"time"`
	// Type is one of initiating, ike-up, ike-updated, ike-rekeyed,
	// ike-down, child-up, child-rekeyed, child-down, failure, state,
	// exchange.
	Type  string   `json:"type"`
	Conns []string `json:"conns"`
	// State and From: the conn's new and old state (state, failure).
	State string `json:"state,omitempty"`
	From  string `json:"from,omitempty"`
	// Cause and Text: why (failure, ike-down, child-down), as a metrics
	// label and in words.
	Cause string `json:"cause,omitempty"`
	Text  string `json:"text,omitempty"`
	// IKE SPIs (initiator's, responder's) of the IKE SA concerned; for
	// ike-rekeyed those of the new SA, OldIKE the replaced one's.
	InitiatorSPI string `json:"initiator_spi,omitempty"`
	ResponderSPI string `json:"responder_spi,omitempty"`
	OldIKE       string `json:"old_ike,omitempty"`
	// CHILD SA SPIs (ours, the peer's); for child-rekeyed those of the
	// new pair, OldSPIIn the replaced pair's inbound SPI.
	SPIIn    string `json:"spi_in,omitempty"`
	SPIOut   string `json:"spi_out,omitempty"`
	OldSPIIn string `json:"old_spi_in,omitempty"`
	Proposal string `json:"proposal,omitempty"`
	// Exchange, RTTMillis, Retransmits and TimedOut describe one of our
	// requests (exchange); DPD marks a liveness check.
	Exchange    string  `json:"exchange,omitempty"`
	RTTMillis   float64 `json:"rtt_ms,omitempty"`
	Retransmits int     `json:"retransmits,omitempty"`
	TimedOut    bool    `json:"timed_out,omitempty"`
	DPD         bool    `json:"dpd,omitempty"`
}

// WriteEvent prints one event as a line for `ipsecgw events`.
func WriteEvent(w io.Writer, e Event) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s", e.Time.UTC().Format("2006-01-02T15:04:05.000Z"), e.Type, strings.Join(e.Conns, ","))
	add := func(k, v string) {
		if v != "" {
			fmt.Fprintf(&b, " %s=%s", k, v)
		}
	}
	if e.From != "" {
		fmt.Fprintf(&b, " %s→%s", e.From, e.State)
	} else {
		add("state", e.State)
	}
	add("cause", e.Cause)
	if e.InitiatorSPI != "" {
		add("ike", e.InitiatorSPI+"_i/"+e.ResponderSPI+"_r")
	}
	add("old_ike", e.OldIKE)
	add("spi_in", e.SPIIn)
	add("spi_out", e.SPIOut)
	add("old_spi_in", e.OldSPIIn)
	add("proposal", e.Proposal)
	add("exchange", e.Exchange)
	if e.DPD {
		b.WriteString(" dpd")
	}
	if e.RTTMillis > 0 {
		fmt.Fprintf(&b, " rtt=%.1fms", e.RTTMillis)
	}
	if e.Retransmits > 0 {
		fmt.Fprintf(&b, " retransmits=%d", e.Retransmits)
	}
	if e.TimedOut {
		b.WriteString(" timed-out")
	}
	if e.Text != "" {
		fmt.Fprintf(&b, " %q", oneLine(e.Text))
	}
	b.WriteString("\n")
	_, err := io.WriteString(w, b.String())
	return err
}
