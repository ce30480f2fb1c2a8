package export

import (
	"fmt"
	"strings"

	"github.com/ipsecgw/ipsecgw/config"
)

// juniper writes Junos set commands for a route-based VPN on an SRX
// (Juniper's "IPsec VPN User Guide for Security Devices": security ike
// proposal/policy/gateway, security ipsec proposal/policy/vpn with
// bind-interface and traffic selectors, one per pair of subnets). Junos
// proposals hold one algorithm of each kind, so a proposal listing
// several becomes one Junos proposal per combination, in order of
// preference. DPD: interval = dpddelay, threshold = dpdtimeout/dpddelay
// (1–5). Security zones and policies for the st0 interface belong to the
// site's design and are not written.
func (p *peer) juniper() ([]File, error) {
	c := p.conn
	if p.opts.Interface == "" {
		return nil, fmt.Errorf("the juniper-srx export needs the SRX's interface that faces %s: give --interface (e.g. ge-0/0/0.0)", p.other.host)
	}
	if c.Mode != config.ModeTunnel || p.ah {
		return nil, fmt.Errorf("the juniper-srx export writes ESP tunnel mode route-based VPNs only")
	}
	n := "ipsecgw-" + p.name
	var b strings.Builder
	b.WriteString(p.header("#", "Junos configuration (set commands, SRX)"))
	set := func(format string, args ...any) { fmt.Fprintf(&b, "set "+format+"\n", args...) }

	var ikeProps []string
	for _, ip := range p.ike {
		encs, err := juniperIKENames.all(ip, config.TransformENCR)
		if err != nil {
			return nil, err
		}
		var auths []string
		if ip.AEAD() {
			// Junos takes no authentication-algorithm with AES-GCM and
			// picks the PRF itself: only SHA-256 matches what we sent.
			for _, t := range ip.Of(config.TransformPRF) {
				if t.ID != config.PRFHMACSHA2256 {
					return nil, fmt.Errorf("IKE proposal %s: Junos pairs AES-GCM with a SHA-256 PRF only", ip)
				}
			}
		} else if auths, err = juniperIKENames.all(ip, config.TransformINTEG); err != nil {
			return nil, err
		}
		groups, err := juniperIKENames.all(ip, config.TransformKE)
		if err != nil {
			return nil, err
		}
		for _, combo := range combos(encs, auths, groups) {
			name := fmt.Sprintf("%s-ike-%d", n, len(ikeProps)+1)
			ikeProps = append(ikeProps, name)
			set("security ike proposal %s authentication-method pre-shared-keys", name)
			set("security ike proposal %s dh-group %s", name, combo[len(combo)-1])
			if len(combo) == 3 {
				set("security ike proposal %s authentication-algorithm %s", name, combo[1])
			}
			set("security ike proposal %s encryption-algorithm %s", name, combo[0])
			set("security ike proposal %s lifetime-seconds %d", name, int64(c.IKELifetime.Seconds()))
		}
	}
	if c.Version.Initiates() == config.IKEv1 {
		mode := "main"
		if c.Aggressive {
			mode = "aggressive"
		}
		set("security ike policy %s mode %s", n, mode)
	}
	set("security ike policy %s proposals [ %s ]", n, strings.Join(ikeProps, " "))
	if p.psk != nil {
		if !printable(p.psk) {
			return nil, fmt.Errorf("the pre-shared key has characters Junos cannot take in ascii-text (blanks, quotes, ?, or non-ASCII)")
		}
		set("security ike policy %s pre-shared-key ascii-text \"%s\"", n, p.psk)
	} else {
		fmt.Fprintf(&b, "# set security ike policy %s pre-shared-key ascii-text \"<the pre-shared key; ipsecgw export --with-secrets writes it>\"\n", n)
	}
	set("security ike gateway %s ike-policy %s", n, n)
	set("security ike gateway %s address %s", n, p.other.host)
	local, err := juniperIdentity(p.own.id)
	if err != nil {
		return nil, err
	}
	remote, err := juniperIdentity(p.other.id)
	if err != nil {
		return nil, err
	}
	set("security ike gateway %s local-identity %s", n, local)
	set("security ike gateway %s remote-identity %s", n, remote)
	set("security ike gateway %s external-interface %s", n, p.opts.Interface)
	switch c.Version {
	case config.IKEv1:
		set("security ike gateway %s version v1-only", n)
	case config.IKEv2, config.IKEAny:
		set("security ike gateway %s version v2-only", n)
	}
	if p.dpdAction != "" {
		interval := min(max(int64(c.DPDDelay.Seconds()), 2), 60)
		threshold := min(max(int64(c.DPDTimeout.Seconds())/max(interval, 1), 1), 5)
		set("security ike gateway %s dead-peer-detection interval %d", n, interval)
		set("security ike gateway %s dead-peer-detection threshold %d", n, threshold)
	}

	var espProps []string
	for _, cp := range p.child {
		encs, err := juniperIPsecNames.all(cp, config.TransformENCR)
		if err != nil {
			return nil, err
		}
		var auths []string
		if !cp.AEAD() {
			if auths, err = juniperIPsecNames.all(cp, config.TransformINTEG); err != nil {
				return nil, err
			}
		}
		for _, combo := range combos(encs, auths) {
			name := fmt.Sprintf("%s-esp-%d", n, len(espProps)+1)
			espProps = append(espProps, name)
			set("security ipsec proposal %s protocol esp", name)
			if len(combo) == 2 {
				set("security ipsec proposal %s authentication-algorithm %s", name, combo[1])
			}
			set("security ipsec proposal %s encryption-algorithm %s", name, combo[0])
			set("security ipsec proposal %s lifetime-seconds %d", name, int64(c.Lifetime.Seconds()))
			if c.LifeBytes != 0 {
				set("security ipsec proposal %s lifetime-kilobytes %d", name, max(c.LifeBytes/1024, 1))
			}
		}
	}
	pfs, err := singlePFS(p.child, juniperIPsecNames)
	if err != nil {
		return nil, err
	}
	if pfs != "" {
		set("security ipsec policy %s perfect-forward-secrecy keys %s", n, pfs)
	}
	set("security ipsec policy %s proposals [ %s ]", n, strings.Join(espProps, " "))
	set("security ipsec vpn %s bind-interface %s", n, p.tunnelIface)
	set("security ipsec vpn %s ike gateway %s", n, n)
	set("security ipsec vpn %s ike ipsec-policy %s", n, n)
	own, err := prefixes(p.own.subnets, "juniper-srx")
	if err != nil {
		return nil, err
	}
	other, err := prefixes(p.other.subnets, "juniper-srx")
	if err != nil {
		return nil, err
	}
	i := 0
	for _, l := range own {
		for _, r := range other {
			if l.Addr().Is4() != r.Addr().Is4() {
				continue
			}
			i++
			set("security ipsec vpn %s traffic-selector ts%d local-ip %s", n, i, l)
			set("security ipsec vpn %s traffic-selector ts%d remote-ip %s", n, i, r)
		}
	}
	if p.initiates {
		set("security ipsec vpn %s establish-tunnels immediately", n)
	} else {
		set("security ipsec vpn %s establish-tunnels on-traffic", n)
	}
	return []File{{Name: "juniper-srx.set", Text: b.String()}}, nil
}

// juniperIdentity renders local-identity/remote-identity.
func juniperIdentity(id config.Identity) (string, error) {
	switch id.Type {
	case config.IDIPv4:
		return "inet " + id.Addr.String(), nil
	case config.IDIPv6:
		return "inet6 " + id.Addr.String(), nil
	case config.IDFQDN:
		return "hostname " + id.Value, nil
	case config.IDRFC822:
		return "user-at-hostname " + id.Value, nil
	}
	return "", fmt.Errorf("identity %s (%s) has no Junos IKE identity form", id, id.Type)
}
