package export

import (
	"fmt"
	"strings"

	"github.com/ipsecgw/ipsecgw/config"
)

// ipsecConf writes strongSwan's ipsec.conf and ipsec.secrets. ipsecgw
// reads the same dialect, so the ipsecgw format is this file too; only
// its header names the other product.
func (p *peer) ipsecConf(forIPsecGW bool) []File {
	product := "strongSwan"
	if forIPsecGW {
		product = "ipsecgw"
	}
	var b, s strings.Builder
	b.WriteString(p.header("#", "ipsec.conf ("+product+")"))
	p.ipsecConn(&b)
	s.WriteString(p.header("#", "ipsec.secrets ("+product+")"))
	p.ipsecSecret(&s)
	return []File{{Name: "ipsec.conf", Text: b.String()}, {Name: "ipsec.secrets", Text: s.String()}}
}

// ipsecConn writes the conn section.
func (p *peer) ipsecConn(b *strings.Builder) {
	c := p.conn
	fmt.Fprintf(b, "\nconn %s\n", p.name)
	kv := func(k, v string) {
		if v != "" {
			fmt.Fprintf(b, "  %s=%s\n", k, v)
		}
	}
	kv("keyexchange", strongSwanVersion(c.Version))
	kv("authby", "secret")
	if c.Mode == config.ModeTransport {
		kv("type", "transport")
	}
	kv("left", p.own.hostOr("%defaultroute"))
	kv("leftid", p.own.id.String())
	kv("leftsubnet", tsList(p.own.subnets))
	kv("right", p.other.host)
	kv("rightid", p.other.id.String())
	kv("rightsubnet", tsList(p.other.subnets))
	kv("ike", proposalList(p.ike)+strict(p.ikeDefaults))
	if p.ah {
		kv("ah", proposalList(p.child)+strict(p.childDefaults))
	} else {
		kv("esp", proposalList(p.child)+strict(p.childDefaults))
	}
	if c.Aggressive {
		kv("aggressive", "yes")
	}
	kv("ikelifetime", seconds(c.IKELifetime))
	kv("lifetime", seconds(c.Lifetime))
	kv("margintime", seconds(c.Margin))
	kv("rekeyfuzz", fmt.Sprintf("%d%%", c.RekeyFuzz))
	if c.LifeBytes != 0 {
		kv("lifebytes", fmt.Sprint(c.LifeBytes))
		kv("marginbytes", fmt.Sprint(c.MarginBytes))
	}
	if c.LifePackets != 0 {
		kv("lifepackets", fmt.Sprint(c.LifePackets))
		kv("marginpackets", fmt.Sprint(c.MarginPackets))
	}
	if !c.Rekey {
		kv("rekey", "no")
	}
	if !c.Reauth {
		kv("reauth", "no")
	}
	if p.dpdAction != "" {
		kv("dpdaction", p.dpdAction)
		kv("dpddelay", seconds(c.DPDDelay))
		kv("dpdtimeout", seconds(c.DPDTimeout))
	}
	kv("closeaction", p.closeAction)
	if c.ForceEncaps {
		kv("forceencaps", "yes")
	}
	if !c.MOBIKE {
		kv("mobike", "no")
	}
	if c.ReplayWindow >= 0 {
		kv("replay_window", fmt.Sprint(c.ReplayWindow))
	}
	kv("auto", p.auto.String())
}

// ipsecSecret writes the PSK line, or a comment where it goes.
func (p *peer) ipsecSecret(s *strings.Builder) {
	if p.psk != nil {
		fmt.Fprintf(s, "%s %s : PSK %s\n", p.own.id, p.other.id, hexPSK(p.psk))
	} else {
		fmt.Fprintf(s, "# %s %s : PSK <the pre-shared key; --with-secrets writes it>\n", p.own.id, p.other.id)
	}
}

// strongSwanVersion is keyexchange= for the peer: the version we
// initiate with, or ike when we take both and initiate IKEv2 (the peer
// then does the same).
func strongSwanVersion(v config.IKEVersion) string {
	if v == config.IKEAny {
		return "ike"
	}
	return v.Initiates().String()
}
