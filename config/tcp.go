package config

import (
	"strconv"
)

// TCPMode says when a conn carries IKE and ESP over TCP (RFC 9329).
type TCPMode uint8

const (
	// TCPNo: UDP only (the default; strongSwan has no TCP at all).
	TCPNo TCPMode = iota
	// TCPYes: TCP from the first message on.
	TCPYes
	// TCPFallback: UDP first, TCP once the UDP IKE_SA_INIT went
	// unanswered (Libreswan's enable-tcp=fallback).
	TCPFallback
)

var tcpModeNames = [...]string{TCPNo: "no", TCPYes: "yes", TCPFallback: "fallback"}

func (m TCPMode) String() string {
	if int(m) < len(tcpModeNames) {
		return tcpModeNames[m]
	}
	return "unknown"
}

// DefaultTCPPort is the peer's TCP port unless tcp-remoteport= says
// otherwise (RFC 9329 §4; Libreswan's default).
const DefaultTCPPort = 4500

var tcpModeValues = map[string]int{"no": int(TCPNo), "yes": int(TCPYes), "fallback": int(TCPFallback)}

// The keywords, in both dialects. Libreswan spells them enable-tcp= and
// tcp-remoteport=; ipsecgw's strongSwan-dialect spellings (strongSwan has
// no TCP encapsulation) are tcpencap= and tcpremoteport=. Each pair shares
// one canonical name, so the two spellings override each other as the
// other aliases do.
var tcpKeywords = map[string]keyword{
	"enable-tcp":     {action: kwUsed, canonical: "tcpencap", libreswan: true},
	"tcp-remoteport": {action: kwUsed, canonical: "tcpremoteport", libreswan: true},
	"tcpencap":       {action: kwUsed},
	"tcpremoteport":  {action: kwUsed},
}

func init() {
	for k, v := range tcpKeywords {
		connKeywords[k] = v
	}
}

// convertTCP reads the TCP keywords of a conn.
func (cb *connBuilder) convertTCP() {
	c := cb.c
	c.TCPRemotePort = DefaultTCPPort
	i := int(c.TCP)
	cb.enum("tcpencap", tcpModeValues, &i)
	c.TCP = TCPMode(i)
	if c.TCP != TCPNo {
		cb.tcpNeedsIKEv2()
	}
	if kv, ok := cb.get("tcpremoteport"); ok {
		n, err := strconv.ParseUint(kv.Value, 10, 16)
		if err != nil || n == 0 {
			cb.errf(kv, "%q is not a TCP port (1-65535)", kv.Value)
			return
		}
		c.TCPRemotePort = uint16(n)
	}
}

// tcpNeedsIKEv2 checks the IKE version of a conn with TCP: RFC 9329
// frames IKEv2 only. enable-tcp= exists since Libreswan 4, which
// initiates IKEv2 by default, so a Libreswan-dialect conn that says
// nothing about the version (whose default here is Libreswan 3's IKEv1)
// takes IKEv2; a conn that asks for IKEv1 is refused.
func (cb *connBuilder) tcpNeedsIKEv2() {
	c := cb.c
	kv, _ := cb.get("tcpencap")
	_, kx := cb.get("keyexchange")
	_, v2 := cb.get("ikev2")
	switch {
	case !kx && !v2 && c.Version == IKEv1:
		c.Version = IKEAny
	case c.Version == IKEv1 || c.Version == IKEv1First:
		cb.errf(kv, "IKE over TCP (RFC 9329) is IKEv2 only, and this conn initiates IKEv1 (%s): use keyexchange=ikev2 (Libreswan: ikev2=insist or yes) or drop %s", c.Version, kv.Key)
	}
}

// TCPView is the TCP part of config show.
type TCPView struct {
	Mode       string `json:"mode"`
	RemotePort uint16 `json:"remote_port"`
}
