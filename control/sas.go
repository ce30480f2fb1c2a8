package control

import (
	"fmt"
	"io"
	"strings"
	"time"
)

// SAEntry is one conn with SAs in `ipsecgw list-sas`: its IKE SA (null
// when only CHILD SAs of a rekeyed IKE SA are left) and its CHILD SAs.
type SAEntry struct {
	Conn     string    `json:"conn"`
	IKE      *IKESA    `json:"ike"`
	Children []ChildSA `json:"children"`
}

// IKESA describes an IKE SA with its lifetime. Times are seconds from
// now; -1 means "not scheduled" (the peer rekeys, or rekeying is off).
type IKESA struct {
	Version      int    `json:"version"`
	Initiator    bool   `json:"initiator"`
	InitiatorSPI string `json:"initiator_spi"`
	ResponderSPI string `json:"responder_spi"`
	Local        string `json:"local"`
	Remote       string `json:"remote"`
	LocalID      string `json:"local_id"`
	RemoteID     string `json:"remote_id"`
	Proposal     string `json:"proposal"`
	NATDetected  bool   `json:"nat_detected"`
	// EstablishedSeconds is the SA's age.
	EstablishedSeconds int64 `json:"established_seconds"`
	// RekeySeconds is when it is rekeyed or reauthenticated.
	RekeySeconds int64 `json:"rekey_seconds"`
}

// ChildSA describes a CHILD SA pair with its lifetimes and counters.
type ChildSA struct {
	Protocol string   `json:"protocol"`
	Proposal string   `json:"proposal"`
	SPIIn    string   `json:"spi_in"`
	SPIOut   string   `json:"spi_out"`
	UDPEncap bool     `json:"udp_encap"`
	LocalTS  []string `json:"local_ts"`
	RemoteTS []string `json:"remote_ts"`
	// EstablishedSeconds is the SA's age; RekeySeconds and
	// ExpiresSeconds are the times left until its rekey and its hard
	// lifetime (-1: none).
	EstablishedSeconds int64 `json:"established_seconds"`
	RekeySeconds       int64 `json:"rekey_seconds"`
	ExpiresSeconds     int64 `json:"expires_seconds"`
	// LifeBytes and LifePackets are the hard volume limits (0: none).
	LifeBytes   uint64 `json:"life_bytes"`
	LifePackets uint64 `json:"life_packets"`
	BytesIn     uint64 `json:"bytes_in"`
	PacketsIn   uint64 `json:"packets_in"`
	BytesOut    uint64 `json:"bytes_out"`
	PacketsOut  uint64 `json:"packets_out"`
}

// WriteSAs prints the SAs for `ipsecgw list-sas`, one block per conn.
func WriteSAs(w io.Writer, sas []SAEntry) error {
	var b strings.Builder
	if len(sas) == 0 {
		b.WriteString("no SAs\n")
	}
	for _, e := range sas {
		if i := e.IKE; i != nil {
			role := "responder"
			if i.Initiator {
				role = "initiator"
			}
			nat := ""
			if i.NATDetected {
				nat = ", NAT"
			}
			fmt.Fprintf(&b, "%s: IKEv%d %s, %s...%s [%s]...[%s]%s, up %s\n", e.Conn, i.Version, role,
				i.Local, i.Remote, i.LocalID, i.RemoteID, nat, humanDuration(i.EstablishedSeconds))
			fmt.Fprintf(&b, "  IKE SPIs %s_i %s_r, %s, rekey %s\n", i.InitiatorSPI, i.ResponderSPI, i.Proposal, inSeconds(i.RekeySeconds))
		} else {
			fmt.Fprintf(&b, "%s: no IKE SA\n", e.Conn)
		}
		for _, c := range e.Children {
			encap := ""
			if c.UDPEncap {
				encap = " in UDP"
			}
			fmt.Fprintf(&b, "  %s%s %s, SPIs in %s out %s, %s === %s\n", c.Protocol, encap, c.Proposal, c.SPIIn, c.SPIOut,
				strings.Join(c.LocalTS, ","), strings.Join(c.RemoteTS, ","))
			fmt.Fprintf(&b, "    up %s, rekey %s, expires %s%s; in %s %d pkts, out %s %d pkts\n",
				humanDuration(c.EstablishedSeconds), inSeconds(c.RekeySeconds), inSeconds(c.ExpiresSeconds), volume(c),
				humanBytes(c.BytesIn), c.PacketsIn, humanBytes(c.BytesOut), c.PacketsOut)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// inSeconds renders a time left: "in 5m00s", "-" when not scheduled.
func inSeconds(s int64) string {
	if s < 0 {
		return "-"
	}
	return "in " + humanDuration(s)
}

// volume renders the hard volume limits of a CHILD SA, if any.
func volume(c ChildSA) string {
	var parts []string
	if c.LifeBytes > 0 {
		parts = append(parts, "after "+humanBytes(c.LifeBytes))
	}
	if c.LifePackets > 0 {
		parts = append(parts, fmt.Sprintf("after %d pkts", c.LifePackets))
	}
	if len(parts) == 0 {
		return ""
	}
	return " or " + strings.Join(parts, " or ")
}

// SecondsUntil is what SAEntry's time fields hold for a deadline: whole
// seconds from now to at, 0 when it has passed, -1 when at is zero.
func SecondsUntil(at, now time.Time) int64 {
	if at.IsZero() {
		return -1
	}
	if !at.After(now) {
		return 0
	}
	return int64(at.Sub(now) / time.Second)
}
