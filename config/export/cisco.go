package export

import (
	"fmt"
	"net/netip"
	"strings"

	"github.com/ipsecgw/ipsecgw/config"
)

// cisco writes IOS / IOS XE configuration commands for a crypto map
// tunnel: for IKEv2 an IKEv2 proposal, policy, keyring and profile
// (Cisco's "FlexVPN and Internet Key Exchange Version 2 Configuration
// Guide"), for IKEv1 an ISAKMP policy and key ("Security for VPNs with
// IPsec Configuration Guide"); then transform sets, a crypto ACL from the
// subnets and the crypto map entry. Timers map as: IKE lifetime =
// ikelifetime, SA lifetime = lifetime (IOS rekeys by itself before it
// ends), DPD = dpddelay with a retry interval of dpdtimeout/5 (IOS gives
// up after five retries).
func (p *peer) cisco() ([]File, error) {
	c := p.conn
	n := "ipsecgw-" + p.name
	if !p.other.addr.IsValid() || !p.other.addr.Is4() {
		return nil, fmt.Errorf("the cisco-ios export writes IPv4 crypto maps; our address %s is not an IPv4 address (give --address)", p.other.host)
	}
	var b strings.Builder
	b.WriteString(p.header("!", "Cisco IOS configuration"))
	line := func(indent int, format string, args ...any) {
		fmt.Fprintf(&b, "%s%s\n", strings.Repeat(" ", indent), fmt.Sprintf(format, args...))
	}
	psk := "<the pre-shared key; ipsecgw export --with-secrets writes it>"
	if p.psk != nil {
		if !printable(p.psk) {
			return nil, fmt.Errorf("the pre-shared key has characters IOS cannot take in a pre-shared-key command (blanks, quotes, ?, or non-ASCII)")
		}
		psk = string(p.psk)
	}
	v1 := c.Version.Initiates() == config.IKEv1
	if v1 {
		for i, ip := range p.ike {
			groups, err := ciscoISAKMPNames.all(ip, config.TransformKE)
			if err != nil {
				return nil, err
			}
			encs, err := ciscoISAKMPNames.all(ip, config.TransformENCR)
			if err != nil {
				return nil, err
			}
			hashes, err := ciscoISAKMPNames.all(ip, config.TransformINTEG)
			if err != nil {
				return nil, err
			}
			// An ISAKMP policy holds one algorithm of each kind.
			for j, combo := range combos(encs, hashes, groups) {
				line(0, "crypto isakmp policy %d", 10*(i+1)+j)
				line(1, "encryption %s", combo[0])
				line(1, "hash %s", combo[1])
				line(1, "authentication pre-share")
				line(1, "group %s", combo[2])
				line(1, "lifetime %d", int64(c.IKELifetime.Seconds()))
				line(0, "!")
			}
		}
		if p.psk != nil {
			line(0, "crypto isakmp key %s address %s", psk, p.other.host)
		} else {
			line(0, "! crypto isakmp key %s address %s", psk, p.other.host)
		}
		if p.dpdAction != "" {
			d, r := ciscoDPD(c)
			line(0, "crypto isakmp keepalive %d %d periodic", d, r)
		}
		line(0, "!")
	} else {
		var names []string
		for i, ip := range p.ike {
			name := fmt.Sprintf("%s-%d", n, i+1)
			names = append(names, name)
			line(0, "crypto ikev2 proposal %s", name)
			encs, err := ciscoIKEv2Names.all(ip, config.TransformENCR)
			if err != nil {
				return nil, err
			}
			line(1, "encryption %s", strings.Join(encs, " "))
			if !ip.AEAD() {
				integs, err := ciscoIKEv2Names.all(ip, config.TransformINTEG)
				if err != nil {
					return nil, err
				}
				line(1, "integrity %s", strings.Join(integs, " "))
			}
			prfs, err := ciscoIKEv2Names.all(ip, config.TransformPRF)
			if err != nil {
				return nil, err
			}
			if ip.AEAD() {
				line(1, "prf %s", strings.Join(prfs, " "))
			}
			groups, err := ciscoIKEv2Names.all(ip, config.TransformKE)
			if err != nil {
				return nil, err
			}
			line(1, "group %s", strings.Join(groups, " "))
			line(0, "!")
		}
		line(0, "crypto ikev2 policy %s", n)
		for _, name := range names {
			line(1, "proposal %s", name)
		}
		line(0, "!")
		line(0, "crypto ikev2 keyring %s", n)
		line(1, "peer %s", p.name)
		line(2, "address %s", p.other.host)
		if p.psk != nil {
			line(2, "pre-shared-key %s", psk)
		} else {
			line(2, "! pre-shared-key %s", psk)
		}
		line(1, "!")
		line(0, "!")
		remote, err := ciscoIdentity(p.other.id, true)
		if err != nil {
			return nil, err
		}
		local, err := ciscoIdentity(p.own.id, false)
		if err != nil {
			return nil, err
		}
		line(0, "crypto ikev2 profile %s", n)
		line(1, "match identity remote %s", remote)
		line(1, "identity local %s", local)
		line(1, "authentication remote pre-share")
		line(1, "authentication local pre-share")
		line(1, "keyring local %s", n)
		line(1, "lifetime %d", int64(c.IKELifetime.Seconds()))
		if p.dpdAction != "" {
			d, r := ciscoDPD(c)
			line(1, "dpd %d %d periodic", d, r)
		}
		line(0, "!")
	}
	names := ciscoESPNames
	if p.ah {
		names = ciscoAHNames
	}
	var sets []string
	for _, cp := range p.child {
		encs, err := names.all(cp, config.TransformENCR)
		if err != nil {
			return nil, err
		}
		var integs []string
		if !cp.AEAD() {
			if integs, err = names.all(cp, config.TransformINTEG); err != nil {
				return nil, err
			}
		}
		for _, combo := range combos(encs, integs) {
			name := fmt.Sprintf("%s-%d", n, len(sets)+1)
			sets = append(sets, name)
			line(0, "crypto ipsec transform-set %s %s", name, strings.Join(combo, " "))
			line(1, "mode %s", c.Mode)
			line(0, "!")
		}
	}
	if len(sets) > 6 {
		return nil, fmt.Errorf("the CHILD proposals expand to %d transform sets; a crypto map entry takes at most 6", len(sets))
	}
	pfs, err := singlePFS(p.child, ciscoIKEv2Names)
	if err != nil {
		return nil, err
	}
	own, err := prefixes(p.own.subnets, "cisco-ios")
	if err != nil {
		return nil, err
	}
	other, err := prefixes(p.other.subnets, "cisco-ios")
	if err != nil {
		return nil, err
	}
	line(0, "ip access-list extended %s", n)
	for _, l := range own {
		for _, r := range other {
			if !l.Addr().Is4() || !r.Addr().Is4() {
				return nil, fmt.Errorf("the cisco-ios export writes IPv4 crypto ACLs; %s or %s is IPv6", l, r)
			}
			line(1, "permit ip %s %s", ciscoACL(l), ciscoACL(r))
		}
	}
	line(0, "!")
	line(0, "crypto map %s 10 ipsec-isakmp", n)
	line(1, "set peer %s", p.other.host)
	line(1, "set transform-set %s", strings.Join(sets, " "))
	if pfs != "" {
		line(1, "set pfs group%s", pfs)
	}
	line(1, "set security-association lifetime seconds %d", int64(c.Lifetime.Seconds()))
	if c.LifeBytes != 0 {
		line(1, "set security-association lifetime kilobytes %d", max(c.LifeBytes/1024, 1))
	}
	if !v1 {
		line(1, "set ikev2-profile %s", n)
	}
	line(1, "match address %s", n)
	line(0, "!")
	if p.opts.Interface != "" {
		line(0, "interface %s", p.opts.Interface)
		line(1, "crypto map %s", n)
		line(0, "!")
	} else {
		line(0, "! apply it on the interface that faces %s: interface <name> / crypto map %s", p.other.host, n)
	}
	if p.initiates {
		line(0, "! IOS brings a crypto map tunnel up on the first packet that matches access list %s", n)
	}
	return []File{{Name: "cisco-ios.txt", Text: b.String()}}, nil
}

// ciscoIdentity renders an identity for "match identity remote" (remote)
// or "identity local".
func ciscoIdentity(id config.Identity, remote bool) (string, error) {
	switch id.Type {
	case config.IDIPv4:
		if remote {
			return fmt.Sprintf("address %s 255.255.255.255", id.Addr), nil
		}
		return "address " + id.Addr.String(), nil
	case config.IDIPv6:
		if remote {
			return fmt.Sprintf("address ipv6 %s/128", id.Addr), nil
		}
		return "address " + id.Addr.String(), nil
	case config.IDFQDN:
		return "fqdn " + id.Value, nil
	case config.IDRFC822:
		return "email " + id.Value, nil
	case config.IDKeyID:
		return "key-id " + id.Value, nil
	}
	return "", fmt.Errorf("identity %s (%s) has no Cisco IKEv2 profile form", id, id.Type)
}

// ciscoACL renders a prefix as "host A" or "A WILDCARD".
func ciscoACL(p netip.Prefix) string {
	if p.Bits() == 32 {
		return "host " + p.Addr().String()
	}
	if p.Bits() == 0 {
		return "any"
	}
	mask := ^uint32(0) >> p.Bits()
	a := p.Addr().As4()
	return fmt.Sprintf("%s %d.%d.%d.%d", netip.AddrFrom4(a), mask>>24, mask>>16&0xff, mask>>8&0xff, mask&0xff)
}

// ciscoDPD is "dpd INTERVAL RETRY": IOS declares the peer dead after five
// unanswered retries, so RETRY = dpdtimeout / 5, within IOS's 2–60 s.
func ciscoDPD(c config.Conn) (int64, int64) {
	interval := min(max(int64(c.DPDDelay.Seconds()), 10), 3600)
	retry := min(max(int64(c.DPDTimeout.Seconds())/5, 2), 60)
	return interval, retry
}
