package control

import (
	"fmt"
	"strings"
)

// TCPStatus is how a conn with enable-tcp reaches its peer (RFC 9329).
type TCPStatus struct {
	// Mode is the conn's enable-tcp (yes or fallback).
	Mode string `json:"mode"`
	// Transport is "tcp" or "udp": what IKE and ESP to the peer use now.
	Transport string `json:"transport"`
	// Reason says why (e.g. "enable-tcp=fallback: no answer over UDP to
	// IKE_SA_INIT").
	Reason string `json:"reason"`
	// State of the stream we dial: "connected" or "connecting" (empty
	// over UDP and for responders).
	State string `json:"state,omitempty"`
	// Remote is the peer's TCP endpoint, Via the address the stream is
	// connected to (the peer, or a proxy).
	Remote string `json:"remote,omitempty"`
	Via    string `json:"via,omitempty"`
	// TLS: the stream we dial runs in TLS (tcp.tls, RFC 9329 §8).
	TLS bool `json:"tls,omitempty"`
	// UpSeconds is the current stream's age; Reconnects counts streams
	// dialled again after one dropped; LastError is the last dial or
	// stream error.
	UpSeconds  int64  `json:"up_seconds,omitempty"`
	Reconnects int    `json:"reconnects"`
	LastError  string `json:"last_error,omitempty"`
}

// tcpLine is the indented status line of a conn with enable-tcp.
func tcpLine(t *TCPStatus) string {
	var b strings.Builder
	fmt.Fprintf(&b, "  transport %s (%s)", t.Transport, t.Reason)
	if t.State != "" {
		fmt.Fprintf(&b, "  %s", t.State)
	}
	if t.Via != "" {
		fmt.Fprintf(&b, " via %s up %s", t.Via, humanDuration(t.UpSeconds))
	}
	if t.TLS {
		b.WriteString(" in TLS")
	}
	if t.Reconnects > 0 {
		fmt.Fprintf(&b, "  reconnects %d", t.Reconnects)
	}
	if t.LastError != "" {
		fmt.Fprintf(&b, "  last error: %s", oneLine(t.LastError))
	}
	b.WriteByte('\n')
	return b.String()
}
