package config

import (
	"fmt"
	"strconv"
	"strings"
)

// TCP MSS clamping (tcpmss=). With a kernel VTI, strongSwan and Libreswan
// users clamp the MSS of the TCP SYNs crossing the tunnel with iptables'
// or nft's TCPMSS rule (--clamp-mss-to-pmtu, --set-mss N). A route-based
// conn's device is ipsecgw's own TUN, so ipsecgw does it in its dataplane
// (tun.TUN.SetClampMSS), named after that rule:
//
//	tcpmss=no    no clamping (the default)
//	tcpmss=yes   the device MTU minus 40 (IPv4) or 60 (IPv6), like --clamp-mss-to-pmtu
//	tcpmss=N     at most N (536 to 65535), like --set-mss N
//
// The MSS of SYNs and SYN-ACKs is lowered in both directions, never raised.

// TCPMSSFromMTU is Conn.TCPMSS for tcpmss=yes.
const TCPMSSFromMTU = -1

// minTCPMSS is the MSS every IPv4 host must accept (RFC 9293 §3.7.1); a
// lower clamp would only make segments smaller than any path needs.
const minTCPMSS = 536

// convertTCPMSS reads tcpmss=.
func (cb *connBuilder) convertTCPMSS() {
	kv, ok := cb.get("tcpmss")
	if !ok || kv.Value == "" {
		return
	}
	switch v := strings.ToLower(kv.Value); v {
	case "no":
		return
	case "yes":
		cb.c.TCPMSS = TCPMSSFromMTU
	default:
		n, err := strconv.ParseUint(v, 10, 16)
		if err != nil || n < minTCPMSS {
			cb.errf(kv, "%q is not a tcpmss (yes: the device MTU minus 40/60 bytes; no; or an MSS from %d to 65535)", kv.Value, minTCPMSS)
			return
		}
		cb.c.TCPMSS = int(n)
	}
	if cb.c.Interface.ID == 0 {
		cb.errf(kv, "tcpmss= clamps on a route-based conn's own device (mark=, if_id_in/if_id_out=, ipsec-interface=); "+
			"policy-based conns share the main TUN device: clamp there with a firewall rule, e.g. "+
			"nft add rule inet filter forward tcp flags syn tcp option maxseg size set rt mtu")
		cb.c.TCPMSS = 0
	}
}

// checkTCPMSS rejects two loaded conns on one device that ask for
// different clamps: the device has one.
func (b *builder) checkTCPMSS() {
	byID := map[uint32]Conn{}
	for _, c := range b.conns {
		if c.Interface.ID == 0 || c.Auto == AutoIgnore {
			continue
		}
		if o, ok := byID[c.Interface.ID]; ok && o.TCPMSS != c.TCPMSS {
			b.add(SeverityError, rawKV{File: c.File, Line: c.Line, sect: c.Name}, c.Name,
				fmt.Sprintf("tcpmss=%s here but tcpmss=%s in conn %q, which shares device %s: a device has one MSS clamp",
					tcpMSSString(c.TCPMSS), tcpMSSString(o.TCPMSS), o.Name, c.Interface.Name))
			continue
		}
		byID[c.Interface.ID] = c
	}
}

// tcpMSSString writes a Conn.TCPMSS as tcpmss= takes it.
func tcpMSSString(v int) string {
	switch v {
	case 0:
		return "no"
	case TCPMSSFromMTU:
		return "yes"
	}
	return strconv.Itoa(v)
}
