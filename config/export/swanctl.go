package export

import (
	"fmt"
	"strings"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
)

// swanctl writes one swanctl.conf with the connection and, with
// WithSecrets, its secrets section. ipsec.conf's lifetimes become
// swanctl's the way strongSwan's stroke plugin converts them: the rekey
// (or reauthentication) starts margintime before the lifetime ends, with a
// random part of up to margintime × rekeyfuzz.
func (p *peer) swanctl() []File {
	var b strings.Builder
	b.WriteString(p.header("#", "swanctl.conf (strongSwan)"))
	b.WriteString("connections {\n")
	p.swanctlConn(&b)
	b.WriteString("}\nsecrets {\n")
	p.swanctlSecret(&b)
	b.WriteString("}\n")
	return []File{{Name: "swanctl.conf", Text: b.String()}}
}

// swanctlConn writes the connection, inside "connections {".
func (p *peer) swanctlConn(b *strings.Builder) {
	c := p.conn
	ind := 1
	open := func(name string) { fmt.Fprintf(b, "%s%s {\n", strings.Repeat("  ", ind), name); ind++ }
	closeB := func() { ind--; fmt.Fprintf(b, "%s}\n", strings.Repeat("  ", ind)) }
	kv := func(k, v string) {
		if v != "" {
			fmt.Fprintf(b, "%s%s = %s\n", strings.Repeat("  ", ind), k, v)
		}
	}
	jitter := time.Duration(int64(c.Margin) / 100 * int64(c.RekeyFuzz))

	open(p.name)
	kv("version", swanctlVersion(c.Version))
	kv("local_addrs", p.own.hostOr("%any"))
	kv("remote_addrs", p.other.host)
	kv("proposals", proposalListWith(p.ike, p.ikeDefaults))
	if c.Aggressive {
		kv("aggressive", "yes")
	}
	if c.ForceEncaps {
		kv("encap", "yes")
	}
	if !c.MOBIKE {
		kv("mobike", "no")
	}
	switch {
	case !c.Rekey:
		kv("rekey_time", "0")
		kv("reauth_time", "0")
	case c.Reauth:
		kv("rekey_time", "0")
		kv("reauth_time", seconds(c.IKELifetime-c.Margin))
	default:
		kv("rekey_time", seconds(c.IKELifetime-c.Margin))
	}
	if c.Rekey {
		kv("over_time", seconds(c.Margin))
		kv("rand_time", seconds(jitter))
	}
	if p.dpdAction != "" {
		kv("dpd_delay", seconds(c.DPDDelay))
		kv("dpd_timeout", seconds(c.DPDTimeout))
	}
	open("local")
	kv("auth", "psk")
	kv("id", p.own.id.String())
	closeB()
	open("remote")
	kv("auth", "psk")
	kv("id", p.other.id.String())
	closeB()
	open("children")
	open(p.name)
	kv("local_ts", tsList(p.own.subnets))
	kv("remote_ts", tsList(p.other.subnets))
	if p.ah {
		kv("ah_proposals", proposalListWith(p.child, p.childDefaults))
	} else {
		kv("esp_proposals", proposalListWith(p.child, p.childDefaults))
	}
	if c.Mode == config.ModeTransport {
		kv("mode", "transport")
	}
	if c.Rekey {
		kv("rekey_time", seconds(c.Lifetime-c.Margin))
		kv("rand_time", seconds(jitter))
	} else {
		kv("rekey_time", "0")
	}
	kv("life_time", seconds(c.Lifetime))
	if c.LifeBytes != 0 {
		kv("life_bytes", fmt.Sprint(c.LifeBytes))
		kv("rekey_bytes", fmt.Sprint(c.LifeBytes-min(c.MarginBytes, c.LifeBytes)))
	}
	if c.LifePackets != 0 {
		kv("life_packets", fmt.Sprint(c.LifePackets))
		kv("rekey_packets", fmt.Sprint(c.LifePackets-min(c.MarginPackets, c.LifePackets)))
	}
	if c.ReplayWindow >= 0 {
		kv("replay_window", fmt.Sprint(c.ReplayWindow))
	}
	// swanctl calls ipsec.conf's hold "trap".
	kv("dpd_action", strings.Replace(p.dpdAction, "hold", "trap", 1))
	kv("close_action", strings.Replace(p.closeAction, "hold", "trap", 1))
	kv("start_action", map[config.Auto]string{config.AutoStart: "start", config.AutoRoute: "trap"}[p.auto])
	if p.auto != config.AutoStart && p.auto != config.AutoRoute {
		kv("start_action", "none")
	}
	closeB()
	closeB()
	closeB()
}

// swanctlSecret writes the ike secret, inside "secrets {".
func (p *peer) swanctlSecret(b *strings.Builder) {
	if p.psk == nil {
		fmt.Fprintf(b, "  # ike-%s { id-1 = %s  id-2 = %s  secret = <the pre-shared key; --with-secrets writes it> }\n", p.name, p.own.id, p.other.id)
		return
	}
	fmt.Fprintf(b, "  ike-%s {\n    id-1 = %s\n    id-2 = %s\n    secret = %s\n  }\n", p.name, p.own.id, p.other.id, hexPSK(p.psk))
}

// swanctlVersion is the connection's version: 0 takes both and initiates
// IKEv2, as ipsec.conf's keyexchange=ike.
func swanctlVersion(v config.IKEVersion) string {
	switch strongSwanVersion(v) {
	case "ikev1":
		return "1"
	case "ikev2":
		return "2"
	}
	return "0"
}
