package updown

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/ipsecgw/ipsecgw/ike"
	"github.com/ipsecgw/ipsecgw/spd"
)

// Mark is a netfilter mark with its mask, as strongSwan's mark= and
// PLUTO_MARK_IN/OUT write it ("100/0xffffffff").
type Mark struct {
	Value, Mask uint32
}

// Conn is what a script run needs of a conn's configuration, taken when
// its CHILD SA comes up and kept until it goes: a reload that changes or
// removes the conn later runs the matching down with what up saw, as
// strongSwan runs the down of a CHILD SA with the config it was made from.
type Conn struct {
	Name string
	// Script is leftupdown= (the local end's updown) as written: a path,
	// possibly with arguments, run by /bin/sh -c.
	Script string
	// Interface names the network interface that carries the conn's
	// traffic (PLUTO_INTERFACE): ipsecgw's TUN device.
	Interface string
	// MarkIn, MarkOut, IfIDIn and IfIDOut are passed on as
	// PLUTO_MARK_IN/OUT and PLUTO_IF_ID_IN/OUT when non-zero, as
	// strongSwan does.
	MarkIn, MarkOut Mark
	IfIDIn, IfIDOut uint32
}

// policy is one pair of traffic selectors of a CHILD SA: strongSwan calls
// its updown once per pair, so do we.
type policy struct {
	local, remote spd.TS
}

// policies lists a CHILD SA's pairs of selectors, every local one with
// every remote one (the policies the dataplane installs for it).
func policies(ch ike.ChildInfo) []policy {
	var out []policy
	for _, l := range ch.LocalTS {
		for _, r := range ch.RemoteTS {
			if l.Is4() != r.Is4() {
				continue
			}
			out = append(out, policy{l, r})
		}
	}
	return out
}

// environment is the script's whole environment for one policy of one
// CHILD SA going up or down: PATH plus the PLUTO_* variables strongSwan's
// updown plugin sets (src/libcharon/plugins/updown/updown_listener.c in
// strongSwan 5.9), with the same spelling of each value. The variables
// for things ipsecgw does not have (PLUTO_XAUTH_ID, virtual IPs and DNS
// servers from mode config, PLUTO_IPCOMP, PLUTO_HOST_ACCESS) are never
// set, as strongSwan leaves them out when they do not apply.
func environment(up bool, c Conn, ikeSA ike.IKEInfo, ch ike.ChildInfo, p policy, reqID, uniqueID uint32, path string) []string {
	me, peer := ikeSA.Local.Addr().Unmap(), ikeSA.Remote.Addr().Unmap()
	env := []string{
		"PATH=" + path,
		"PLUTO_VERSION=1.1",
		"PLUTO_VERB=" + verb(up, me, p.local),
		"PLUTO_CONNECTION=" + c.Name,
		"PLUTO_INTERFACE=" + orUnknown(c.Interface),
		"PLUTO_REQID=" + strconv.FormatUint(uint64(reqID), 10),
		"PLUTO_PROTO=" + orDefault(ch.Protocol, "esp"),
		"PLUTO_UNIQUEID=" + strconv.FormatUint(uint64(uniqueID), 10),
		"PLUTO_ME=" + me.String(),
		"PLUTO_MY_ID=" + idString(ikeSA.LocalID),
		"PLUTO_MY_CLIENT=" + subnet(p.local).String(),
		"PLUTO_MY_PORT=" + ports(p.local),
		"PLUTO_MY_PROTOCOL=" + strconv.Itoa(int(p.local.Protocol)),
		"PLUTO_PEER=" + peer.String(),
		"PLUTO_PEER_ID=" + idString(ikeSA.RemoteID),
		"PLUTO_PEER_CLIENT=" + subnet(p.remote).String(),
		"PLUTO_PEER_PORT=" + ports(p.remote),
		"PLUTO_PEER_PROTOCOL=" + strconv.Itoa(int(p.remote.Protocol)),
	}
	if c.MarkIn.Value != 0 {
		env = append(env, "PLUTO_MARK_IN="+c.MarkIn.String())
	}
	if c.MarkOut.Value != 0 {
		env = append(env, "PLUTO_MARK_OUT="+c.MarkOut.String())
	}
	if c.IfIDIn != 0 {
		env = append(env, "PLUTO_IF_ID_IN="+strconv.FormatUint(uint64(c.IfIDIn), 10))
	}
	if c.IfIDOut != 0 {
		env = append(env, "PLUTO_IF_ID_OUT="+strconv.FormatUint(uint64(c.IfIDOut), 10))
	}
	if ikeSA.NATDetected() {
		// strongSwan sets it to the peer's IKE port whenever a NAT is seen
		// on either side.
		env = append(env, "PLUTO_UDP_ENC="+strconv.Itoa(int(ikeSA.Remote.Port())))
	}
	return env
}

// String writes the mark as strongSwan's updown does: decimal value, hex
// mask.
func (m Mark) String() string { return fmt.Sprintf("%d/0x%08x", m.Value, m.Mask) }

// verb is PLUTO_VERB: up/down, -host when the local selector is exactly
// our own outer address (a host-to-host conn; the script then protects
// this host, not a subnet behind it), else -client; -v6 for IPv6 (of the
// host address, or of the local subnet).
func verb(up bool, me netip.Addr, local spd.TS) string {
	v := "down"
	if up {
		v = "up"
	}
	isHost := local.Range.From == me && local.Range.To == me
	if isHost {
		v += "-host"
	} else {
		v += "-client"
	}
	if (isHost && me.Is6()) || (!isHost && !local.Is4()) {
		v += "-v6"
	}
	return v
}

// subnet is the smallest prefix that covers the selector's addresses:
// PLUTO_MY_CLIENT and PLUTO_PEER_CLIENT are subnets, and strongSwan
// widens a range that is not one to the next larger subnet too.
func subnet(t spd.TS) netip.Prefix {
	from, to := t.Range.From, t.Range.To
	for bits := from.BitLen(); bits >= 0; bits-- {
		p := netip.PrefixFrom(from, bits).Masked()
		if p.Contains(to) {
			return p
		}
	}
	return netip.PrefixFrom(from, 0).Masked()
}

// ports is PLUTO_MY_PORT/PLUTO_PEER_PORT: the port, or "0" for all ports,
// or "from:to" for a range.
func ports(t spd.TS) string {
	from, to := t.Ports.From, t.Ports.To
	if from == to || (from == 0 && to == 0xffff) {
		return strconv.Itoa(int(from))
	}
	return strconv.Itoa(int(from)) + ":" + strconv.Itoa(int(to))
}

// idString writes an identity as strongSwan prints it to updown scripts:
// an FQDN without ipsec.conf's leading "@".
func idString(id string) string {
	if strings.HasPrefix(id, "@") && !strings.HasPrefix(id, "@#") {
		return id[1:]
	}
	return id
}

func orUnknown(s string) string { return orDefault(s, "unknown") }

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
