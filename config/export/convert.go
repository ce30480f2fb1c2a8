package export

import (
	"fmt"
	"strings"

	"github.com/ipsecgw/ipsecgw/config"
)

// Convert writes every conn of cfg as it is, not turned around, in
// strongSwan's ipsec.conf + ipsec.secrets (StrongSwan) or swanctl.conf
// (Swanctl): `ipsecgw config convert`. The proposals are the configured
// ones; a list to which ipsecgw appends its defaults ends in "default" in
// swanctl.conf (its keyword for them) and has no "!" in ipsec.conf, so the
// written file means the same to ipsecgw. Secrets only WithSecrets. Conns
// that cannot be written (other than PSK authentication, type=pass/drop,
// auto=ignore for swanctl, which has no such state) are left out, each
// with a note saying why.
func Convert(cfg *config.Config, format Format, withSecrets bool) (files []File, notes []string, err error) {
	if format != StrongSwan && format != Swanctl {
		return nil, nil, fmt.Errorf("config convert writes strongswan (ipsec.conf) or swanctl, not %q", format)
	}
	var peers []*peer
	for _, c := range cfg.Conns() {
		if format == Swanctl && c.Auto == config.AutoIgnore {
			notes = append(notes, fmt.Sprintf("conn %s: auto=ignore, not written (swanctl.conf has no ignored connections)", c.Name))
			continue
		}
		p, err := newSide(cfg, c, Options{Format: format, WithSecrets: withSecrets}, false)
		if err != nil {
			notes = append(notes, fmt.Sprintf("conn %s not written: %v", c.Name, err))
			continue
		}
		if c.IKEDefaults > 0 {
			p.ikeDefaults = true
		}
		if c.ChildDefaults > 0 {
			p.childDefaults = true
		}
		peers = append(peers, p)
	}
	src := strings.Join(cfg.Files(), ", ")
	if format == Swanctl {
		var b strings.Builder
		fmt.Fprintf(&b, "# swanctl.conf converted by ipsecgw config convert from %s\nconnections {\n", src)
		for _, p := range peers {
			p.swanctlConn(&b)
		}
		b.WriteString("}\nsecrets {\n")
		for _, p := range peers {
			p.swanctlSecret(&b)
		}
		b.WriteString("}\n")
		return []File{{Name: "swanctl.conf", Text: b.String()}}, notes, nil
	}
	var b, s strings.Builder
	fmt.Fprintf(&b, "# ipsec.conf converted by ipsecgw config convert from %s\n", src)
	fmt.Fprintf(&s, "# ipsec.secrets converted by ipsecgw config convert from %s\n", src)
	for _, p := range peers {
		p.ipsecConn(&b)
		p.ipsecSecret(&s)
	}
	return []File{{Name: "ipsec.conf", Text: b.String()}, {Name: "ipsec.secrets", Text: s.String()}}, notes, nil
}
