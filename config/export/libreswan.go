package export

import (
	"fmt"
	"strings"

	"github.com/ipsecgw/ipsecgw/config"
)

// libreswan writes ipsec.conf and ipsec.secrets in Libreswan's dialect:
// proposals as ENC-INTEG;DH with "+" between alternatives, the CHILD DH
// group as PFS, leftsubnets={...} for several subnets.
func (p *peer) libreswan() ([]File, error) {
	c := p.conn
	ike, err := libreswanProposals(p.ike, true)
	if err != nil {
		return nil, err
	}
	child, err := libreswanProposals(p.child, false)
	if err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString(p.header("#", "ipsec.conf (Libreswan)"))
	fmt.Fprintf(&b, "\nconn %s\n", p.name)
	kv := func(k, v string) { fmt.Fprintf(&b, "\t%s=%s\n", k, v) }
	kv("ikev2", map[config.IKEVersion]string{config.IKEv2: "insist", config.IKEv1: "no", config.IKEAny: "propose", config.IKEv1First: "permit"}[c.Version])
	kv("authby", "secret")
	if c.Mode == config.ModeTransport {
		kv("type", "transport")
	}
	kv("left", p.own.hostOr("%defaultroute"))
	kv("leftid", p.own.id.String())
	subnets := func(side string, s side) {
		if len(s.subnets) == 1 {
			kv(side+"subnet", s.subnets[0].String())
			return
		}
		kv(side+"subnets", "{"+strings.ReplaceAll(tsList(s.subnets), ",", " ")+"}")
	}
	subnets("left", p.own)
	kv("right", p.other.host)
	kv("rightid", p.other.id.String())
	subnets("right", p.other)
	kv("ike", ike)
	if p.ah {
		kv("phase2", "ah")
	}
	kv("phase2alg", child)
	pfs := false
	for _, cp := range p.child {
		pfs = pfs || cp.PFS()
	}
	kv("pfs", yesNo(pfs))
	if esn := libreswanESN(p.child); esn != "" {
		kv("esn", esn)
	}
	if c.Aggressive {
		kv("aggressive", "yes")
	}
	kv("ikelifetime", seconds(c.IKELifetime))
	kv("salifetime", seconds(c.Lifetime))
	kv("rekeymargin", seconds(c.Margin))
	kv("rekeyfuzz", fmt.Sprintf("%d%%", c.RekeyFuzz))
	if !c.Rekey {
		kv("rekey", "no")
	}
	if p.dpdAction != "" {
		kv("dpdaction", p.dpdAction)
		kv("dpddelay", seconds(c.DPDDelay))
		kv("dpdtimeout", seconds(c.DPDTimeout))
	}
	if c.ForceEncaps {
		kv("encapsulation", "yes")
	}
	if c.ReplayWindow >= 0 {
		kv("replay-window", fmt.Sprint(c.ReplayWindow))
	}
	if p.initiates {
		kv("auto", "start")
	} else {
		kv("auto", "add")
	}
	files := []File{{Name: "ipsec.conf", Text: b.String()}}
	var s strings.Builder
	s.WriteString(p.header("#", "ipsec.secrets (Libreswan)"))
	if p.psk != nil {
		fmt.Fprintf(&s, "%s %s : PSK %s\n", p.own.id, p.other.id, hexPSK(p.psk))
	} else {
		fmt.Fprintf(&s, "# %s %s : PSK <the pre-shared key; ipsecgw export --with-secrets writes it>\n", p.own.id, p.other.id)
	}
	return append(files, File{Name: "ipsec.secrets", Text: s.String()}), nil
}

// libreswanProposals renders proposals as ENC[+ENC]-INTEG[+INTEG][;DH[+DH]].
// IKE proposals with a classic cipher name their integrity algorithms,
// from which Libreswan derives the PRF as strongSwan does; AEAD ones name
// the PRF in that place.
func libreswanProposals(ps []config.Proposal, ike bool) (string, error) {
	var out []string
	for _, p := range ps {
		encs, err := libreswanNames.all(p, config.TransformENCR)
		if err != nil {
			return "", err
		}
		integs, err := libreswanNames.all(p, config.TransformINTEG)
		if err != nil {
			return "", err
		}
		if ike {
			prfs, err := libreswanNames.all(p, config.TransformPRF)
			if err != nil {
				return "", err
			}
			if p.AEAD() {
				integs = prfs
			} else if strings.Join(prfs, "+") != strings.Join(integs, "+") {
				return "", fmt.Errorf("IKE proposal %s names PRFs other than its integrity algorithms, which Libreswan's ike= cannot express", p)
			}
		}
		s := strings.Join(encs, "+")
		if len(integs) > 0 {
			s += "-" + strings.Join(integs, "+")
		}
		dhs, err := libreswanNames.all(p, config.TransformKE)
		if err != nil {
			return "", err
		}
		if len(dhs) > 0 {
			s += ";" + strings.Join(dhs, "+")
		}
		out = append(out, s)
	}
	return strings.Join(out, ","), nil
}

// libreswanESN is esn= for the CHILD proposals: Libreswan sets it per conn.
func libreswanESN(ps []config.Proposal) string {
	if len(ps) == 0 {
		return ""
	}
	var yes, no bool
	for _, t := range ps[0].Of(config.TransformESN) {
		yes = yes || t.ID == config.ESNYes
		no = no || t.ID == config.ESNNo
	}
	switch {
	case yes && no:
		return "either"
	case yes:
		return "yes"
	}
	return ""
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
