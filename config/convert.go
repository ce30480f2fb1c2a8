package config

import (
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/ipsecgw/ipsecgw/spd"
)

var (
	autoValues = map[string]int{"ignore": int(AutoIgnore), "add": int(AutoAdd), "route": int(AutoRoute), "start": int(AutoStart),
		// Libreswan spellings.
		"ondemand": int(AutoRoute), "up": int(AutoStart), "keep": int(AutoStart), "manual": int(AutoIgnore)}
	typeValues = map[string]int{"tunnel": int(ModeTunnel), "transport": int(ModeTransport), "transport_proxy": int(ModeTransport),
		"passthrough": int(ModePassthrough), "pass": int(ModePassthrough), "drop": int(ModeDrop), "reject": int(ModeDrop)}
	keyexchangeValues = map[string]int{"ike": int(IKEAny), "ikev1": int(IKEv1), "ikev2": int(IKEv2)}
	ikev2Values       = map[string]int{"insist": int(IKEv2), "yes": int(IKEAny), "propose": int(IKEAny), "permit": int(IKEv1First), "no": int(IKEv1), "never": int(IKEv1)}
	actionValues      = map[string]int{"none": int(ActionNone), "clear": int(ActionClear), "hold": int(ActionHold), "restart": int(ActionRestart), "trap": int(ActionHold)}
	fragValues        = map[string]int{"yes": int(FragYes), "no": int(FragNo), "accept": int(FragAccept), "force": int(FragForce)}
	authbyValues      = map[string]AuthMethod{"secret": AuthPSK, "psk": AuthPSK, "pubkey": AuthPubkey, "rsasig": AuthPubkey, "rsa": AuthPubkey,
		"ecdsasig": AuthPubkey, "ecdsa": AuthPubkey, "rsa-sha1": AuthPubkey, "rsa-sha2": AuthPubkey, "rsa-sha2_256": AuthPubkey,
		"rsa-sha2_384": AuthPubkey, "rsa-sha2_512": AuthPubkey, "xauthpsk": AuthXAuthPSK, "xauthrsasig": AuthXAuthPubkey,
		"never": AuthNever, "null": AuthNever}
	endAuthValues = map[string]AuthMethod{"psk": AuthPSK, "secret": AuthPSK, "pubkey": AuthPubkey, "rsa": AuthPubkey, "ecdsa": AuthPubkey,
		"rsasig": AuthPubkey, "eap": AuthEAP, "xauth": AuthXAuthPSK, "null": AuthNever}
)

// convert turns every effective keyword into the typed field.
func (cb *connBuilder) convert() {
	c := cb.c
	var i int
	i = int(c.Auto)
	cb.enum("auto", autoValues, &i)
	c.Auto = Auto(i)
	i = int(c.Mode)
	cb.enum("type", typeValues, &i)
	c.Mode = Mode(i)
	if kv, ok := cb.get("type"); ok && strings.EqualFold(kv.Value, "reject") {
		cb.warnf(kv, "type=reject is handled as drop (no ICMP error is sent)")
	}
	i = int(c.Version)
	// In Libreswan files keyexchange=ike is generic and ikev2= decides.
	cb.enum("keyexchange", keyexchangeValues, &i)
	cb.enum("ikev2", ikev2Values, &i)
	c.Version = IKEVersion(i)
	for _, k := range []string{"dpdaction", "closeaction"} {
		if _, ok := cb.get(k); !ok {
			continue
		}
		i = 0
		cb.enum(k, actionValues, &i)
		if k == "dpdaction" {
			c.DPDAction = Action(i)
		} else {
			c.CloseAction = Action(i)
		}
	}
	i = int(c.Fragmentation)
	cb.enum("fragmentation", fragValues, &i)
	c.Fragmentation = Fragmentation(i)

	cb.duration("ikelifetime", &c.IKELifetime)
	cb.duration("lifetime", &c.Lifetime)
	cb.duration("margintime", &c.Margin)
	cb.duration("dpddelay", &c.DPDDelay)
	cb.duration("dpdtimeout", &c.DPDTimeout)
	cb.duration("inactivity", &c.Inactivity)
	cb.size("lifebytes", &c.LifeBytes)
	cb.size("lifepackets", &c.LifePackets)
	cb.size("marginbytes", &c.MarginBytes)
	cb.size("marginpackets", &c.MarginPackets)
	cb.boolean("rekey", &c.Rekey)
	cb.boolean("reauth", &c.Reauth)
	cb.boolean("aggressive", &c.Aggressive)
	cb.boolean("mobike", &c.MOBIKE)
	cb.convertTCP()
	if kv, ok := cb.get("forceencaps"); ok {
		if strings.EqualFold(kv.Value, "auto") { // Libreswan encapsulation=auto: NAT-T only behind NAT
			c.ForceEncaps = false
		} else {
			cb.boolean("forceencaps", &c.ForceEncaps)
		}
	}
	if kv, ok := cb.get("rekeyfuzz"); ok {
		n, err := strconv.Atoi(strings.TrimSuffix(kv.Value, "%"))
		if err != nil || n < 0 || n > 100000 {
			cb.errf(kv, "%q is not a percentage (e.g. 100%%)", kv.Value)
		} else {
			c.RekeyFuzz = n
		}
	}
	if kv, ok := cb.get("keyingtries"); ok {
		if kv.Value == "%forever" {
			c.KeyingTries = 0
		} else if n, err := strconv.Atoi(kv.Value); err != nil || n < 0 {
			cb.errf(kv, "%q is not a number of tries or %%forever", kv.Value)
		} else {
			c.KeyingTries = n
		}
	}
	if kv, ok := cb.get("replay_window"); ok {
		if n, err := strconv.Atoi(kv.Value); err != nil || n < 0 || n > MaxReplayWindow {
			cb.errf(kv, "%q is not a replay window size between 0 and %d packets", kv.Value, MaxReplayWindow)
		} else {
			c.ReplayWindow = n
		}
	}
	if kv, ok := cb.get("reqid"); ok {
		if n, err := strconv.ParseUint(kv.Value, 10, 32); err != nil || n == 0 {
			cb.errf(kv, "%q is not a reqid (a number from 1 to 4294967295)", kv.Value)
		} else {
			c.ReqID = uint32(n)
		}
	}
	for k, kv := range cb.eff {
		if kw, _, _, _ := lookupConnKeyword(k); kw.action == kwIgnored {
			c.Ignored = append(c.Ignored, kv.Key)
		}
	}
	slices.Sort(c.Ignored)

	cb.convertInterface()
	cb.convertTCPMSS()
	cb.convertPriority()
	cb.convertAuth()
	left := cb.convertEnd("left")
	right := cb.convertEnd("right")
	cb.chooseLocal(left, right)
	cb.convertVTI()
	cb.convertProposals()
}

func (cb *connBuilder) convertAuth() {
	auth := AuthPubkey
	if kv, ok := cb.get("authby"); ok {
		cb.b.authLine[cb.c.Name] = kv
		// Libreswan allows "rsasig,secret": either; the first decides what we do.
		var first string
		if methods := splitList(kv.Value); len(methods) > 0 {
			first = strings.ToLower(methods[0])
		}
		a, found := authbyValues[first]
		if !found {
			cb.errf(kv, "invalid value %q; expected secret, psk, pubkey, rsasig, ecdsasig, xauthpsk, xauthrsasig or never", kv.Value)
		}
		auth = a
	}
	cb.c.Local.Auth, cb.c.Remote.Auth = auth, auth
}

// convertEnd reads the keywords of one side into an End.
func (cb *connBuilder) convertEnd(side string) End {
	e := End{Auth: cb.c.Local.Auth, Host: "%any"}
	if kv, ok := cb.get(side); ok {
		host := kv.Value
		if strings.Contains(host, ",") {
			host = strings.TrimSpace(strings.Split(host, ",")[0])
			cb.warnf(kv, "several addresses given; ipsecgw uses only the first, %s", host)
		}
		switch {
		case host == "%any" || host == "%any4" || host == "%any6" || host == "%defaultroute" || host == "%defaultroute6":
			e.Host = host
		case strings.HasPrefix(host, "%"):
			cb.errf(kv, "unsupported special value %q; use an address, a host name, %%any or %%defaultroute", host)
		default:
			if a, err := netip.ParseAddr(host); err == nil {
				if a.Zone() != "" {
					cb.errf(kv, "%q: zones are not allowed", host)
				}
				e.Addr = a.Unmap()
				e.Host = e.Addr.String()
			} else if validHostname(host) {
				e.Host = host
			} else {
				cb.errf(kv, "%q is neither an IP address nor a host name", host)
			}
		}
	}
	var pp *spd.TS // leftprotoport=: the protocol and ports of every subnet
	if kv, ok := cb.get(side + "protoport"); ok {
		proto, lo, hi, err := parseProtoPort(kv.Value)
		if err != nil {
			cb.errf(kv, "%v", err)
		} else {
			pp = &spd.TS{Protocol: proto, Ports: spd.PortRange{From: lo, To: hi}}
		}
	}
	kvSub, hasSub := cb.get(side + "subnet")
	if kvs, ok := cb.get(side + "subnets"); ok {
		if hasSub {
			cb.errf(kvs, "%ssubnet and %ssubnets cannot both be set; keep one", side, side)
		}
		kvSub, hasSub = kvs, true
	}
	if hasSub {
		items := splitList(kvSub.Value)
		if len(items) > MaxSubnetsPerEnd {
			cb.errf(kvSub, "%d subnets; at most %d are allowed per side", len(items), MaxSubnetsPerEnd)
			items = items[:0]
		}
		for _, it := range items {
			if it == "%dynamic" {
				// strongSwan: the end's own (possibly not yet known) address.
				if e.Addr.IsValid() {
					e.Subnets = append(e.Subnets, spd.HostTS(e.Addr))
				}
				continue
			}
			ts, err := parseSubnet(it)
			if err != nil {
				cb.errf(kvSub, "%v", err)
				continue
			}
			if pp != nil && ts.Protocol == 0 && ts.Ports == spd.AllPorts {
				ts.Protocol, ts.Ports = pp.Protocol, pp.Ports
			}
			if slices.Contains(e.Subnets, ts) {
				cb.warnf(kvSub, "subnet %s is listed twice", ts)
				continue
			}
			e.Subnets = append(e.Subnets, ts)
		}
	} else if e.Addr.IsValid() {
		// Without a subnet the end protects only its own address.
		ts := spd.HostTS(e.Addr)
		if pp != nil {
			ts.Protocol, ts.Ports = pp.Protocol, pp.Ports
		}
		e.Subnets = []spd.TS{ts}
	}
	if kv, ok := cb.get(side + "id"); ok {
		id, err := ParseIdentity(kv.Value)
		if err != nil {
			cb.errf(kv, "%v; write an address, @fqdn, user@fqdn, @#hexkeyid or %%any", err)
		}
		e.ID = id
	} else if e.Addr.IsValid() {
		e.ID = ipID(e.Addr)
	}
	if kv, ok := cb.get(side + "auth"); ok {
		v := strings.ToLower(kv.Value)
		if strings.Contains(v, "/pss") {
			e.PSS, v = true, strings.Replace(v, "/pss", "", 1)
		}
		a, found := endAuthValues[strings.SplitN(v, "-", 2)[0]]
		if !found {
			cb.errf(kv, "invalid value %q; expected psk, pubkey, rsa, ecdsa, eap or xauth", kv.Value)
		}
		e.Auth = a
		cb.b.authLine[cb.c.Name] = kv
	}
	if kv, ok := cb.get(side + "updown"); ok {
		e.Updown = kv.Value
	}
	cb.convertCert(side, &e)
	return e
}

// chooseLocal decides which end is ours, as strongSwan does: left if it is
// one of our addresses, else right if that is, else left anyway (with a
// warning when the host's addresses are known).
func (cb *connBuilder) chooseLocal(left, right End) {
	c := cb.c
	local := func(e End) bool {
		if strings.HasPrefix(e.Host, "%defaultroute") {
			return true
		}
		return e.Addr.IsValid() && slices.Contains(cb.b.opts.LocalAddrs, e.Addr)
	}
	c.LocalIsLeft = true
	switch {
	case local(left):
	case local(right):
		c.LocalIsLeft = false
	case cb.b.opts.LocalAddrs != nil && c.Auto != AutoIgnore && (left.Addr.IsValid() || right.Addr.IsValid()):
		kv, ok := cb.get("left")
		if !ok {
			kv = cb.headerKV()
		}
		cb.warnf(kv, "neither left (%s) nor right (%s) is an address of this host; left is taken as local", left.Host, right.Host)
	}
	if c.LocalIsLeft {
		c.Local, c.Remote = left, right
	} else {
		c.Local, c.Remote = right, left
	}
}

// convertProposals builds the IKE and CHILD SA proposal lists.
func (cb *connBuilder) convertProposals() {
	c := cb.c
	libre := c.Dialect == DialectLibreswan
	ikeKV, hasIKE := cb.get("ike")
	ikeStr := DefaultIKEProposal
	if hasIKE {
		ikeStr = ikeKV.Value
	} else {
		ikeKV = cb.headerKV()
	}
	ike, strict, err := ParseProposals(ProtoIKE, ikeStr)
	if err != nil {
		cb.errf(ikeKV, "%v", err)
	} else {
		if u := unsupportedTransforms(ike); len(u) > 0 {
			hint := ""
			if slices.ContainsFunc(u, func(n string) bool { return strings.HasPrefix(n, "mlkem") }) {
				hint = " (ML-KEM only as an additional key exchange after a classic one: x25519-ke1_mlkem768)"
			}
			cb.errf(ikeKV, "unsupported algorithm(s) %s; ipsecgw supports AES-CBC/CTR/GCM, ChaCha20-Poly1305, 3DES, MD5, SHA-1, SHA-2, AES-XCBC, MODP 768-8192, ECP 256/384/521, X25519 and X448%s", strings.Join(u, ", "), hint)
		}
		c.IKEStrict = strict || (libre && hasIKE)
		if !c.IKEStrict {
			n := len(ike)
			ike = appendDefaults(ike, daemonDefaults(ProtoIKE))
			c.IKEDefaults = len(ike) - n
		}
		c.IKE = ike
	}

	proto := ProtoESP
	childKV, hasChild := cb.get("esp")
	if kv, ok := cb.get("phase2alg"); ok {
		if hasChild {
			cb.warnf(kv, "both esp= and phase2alg= are set; phase2alg= wins")
		}
		childKV, hasChild = kv, true
	}
	if kv, ok := cb.get("phase2"); ok {
		switch strings.ToLower(kv.Value) {
		case "esp":
		case "ah":
			proto = ProtoAH
		default:
			cb.errf(kv, "invalid value %q; expected esp or ah", kv.Value)
		}
	}
	if kv, ok := cb.get("ah"); ok {
		if hasChild && proto == ProtoESP {
			cb.warnf(kv, "ah= is set, so the esp= proposals are not used")
		}
		proto, childKV, hasChild = ProtoAH, kv, true
	}
	childStr := DefaultESPProposal
	if proto == ProtoAH {
		childStr = DefaultAHProposal
	}
	if hasChild {
		childStr = childKV.Value
	} else {
		childKV = cb.headerKV()
	}
	child, strict, err := ParseProposals(proto, childStr)
	if err != nil {
		cb.errf(childKV, "%v", err)
		return
	}
	// Libreswan's pfs=yes (its default) reuses the IKE DH group when the
	// phase2 proposal names none; pfsgroup= names one explicitly.
	pfsKV, hasPFS := cb.get("pfs")
	pfs := libre
	if hasPFS {
		v, err := parseBool(pfsKV.Value)
		if err != nil {
			cb.errf(pfsKV, "%v", err)
		}
		pfs = v
	}
	var group []Transform
	if kv, ok := cb.get("pfsgroup"); ok {
		a, found := strongSwanAlgorithms[strings.ToLower(kv.Value)]
		if !found {
			a, found = libreswanAlgorithms[strings.ToLower(kv.Value)]
		}
		if !found || a.typ != TransformKE {
			cb.errf(kv, "%q is not a DH group (e.g. modp2048, ecp256)", kv.Value)
		} else {
			group = []Transform{{Type: TransformKE, ID: a.id}}
		}
	} else if pfs && libre && len(c.IKE) > 0 {
		group = c.IKE[0].Of(TransformKE)[:1]
	}
	for i := range child {
		p := &child[i]
		if hasPFS && !pfs {
			p.Transforms = slices.DeleteFunc(p.Transforms, func(t Transform) bool { return t.Type == TransformKE })
		} else if len(p.Of(TransformKE)) == 0 && len(group) > 0 && (libre || hasPFS) {
			p.Transforms = append(p.Transforms, group...)
		}
	}
	if kv, ok := cb.get("sha2-truncbug"); ok {
		if v, err := parseBool(kv.Value); err != nil {
			cb.errf(kv, "%v", err)
		} else if v {
			for i := range child {
				for j, t := range child[i].Transforms {
					if t.Type == TransformINTEG && t.ID == IntegHMACSHA256128 {
						child[i].Transforms[j].ID = IntegHMACSHA25696
					}
				}
			}
		}
	}
	if kv, ok := cb.get("esn"); ok {
		var esn []Transform
		switch strings.ToLower(kv.Value) {
		case "yes":
			esn = []Transform{{Type: TransformESN, ID: ESNYes}}
		case "no":
			esn = []Transform{{Type: TransformESN, ID: ESNNo}}
		case "either":
			esn = []Transform{{Type: TransformESN, ID: ESNYes}, {Type: TransformESN, ID: ESNNo}}
		default:
			cb.errf(kv, "invalid value %q; expected yes, no or either", kv.Value)
		}
		for i := range child {
			child[i].Transforms = append(slices.DeleteFunc(child[i].Transforms, func(t Transform) bool { return t.Type == TransformESN }), esn...)
		}
	}
	for i := range child {
		sortTransforms(child[i].Transforms)
	}
	if u := unsupportedTransforms(child); len(u) > 0 {
		cb.errf(childKV, "unsupported algorithm(s) %s", strings.Join(u, ", "))
	}
	c.ChildStrict = strict || (libre && hasChild)
	if !c.ChildStrict {
		n := len(child)
		child = appendDefaults(child, daemonDefaults(proto))
		c.ChildDefaults = len(child) - n
	}
	if proto == ProtoAH {
		c.AH = child
	} else {
		c.ESP = child
	}
}

func appendDefaults(ps, defs []Proposal) []Proposal {
	for _, d := range defs {
		if !slices.ContainsFunc(ps, d.Equal) {
			ps = append(ps, d)
		}
	}
	return ps
}

func validHostname(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for i := 0; i < len(label); i++ {
			ch := label[i]
			if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_') {
				return false
			}
		}
	}
	// A name made of digits and dots only is a mistyped address.
	return strings.Trim(h, "0123456789.") != ""
}

// validate checks a loaded (auto != ignore) connection as a whole.
func (cb *connBuilder) validate() {
	c := cb.c
	hdr := cb.headerKV()
	if c.Local.Host == "%any" && c.Remote.Host == "%any" {
		cb.errf(hdr, "neither left= nor right= is set; set the local and remote gateway addresses")
	}
	if c.Remote.IsAny() && (c.Auto == AutoStart || c.Auto == AutoRoute) {
		kv, ok := cb.get(map[bool]string{true: "right", false: "left"}[c.LocalIsLeft])
		if !ok {
			kv = hdr
		}
		cb.warnf(kv, "auto=%s needs a remote address to initiate to, but the remote end is %%any; use auto=add", c.Auto)
	}
	cb.checkOverlap()
	if c.Lifetime < MinLifetime || c.IKELifetime < MinLifetime {
		kv, ok := cb.get("lifetime")
		if c.IKELifetime < MinLifetime {
			kv, ok = cb.get("ikelifetime")
		}
		if !ok {
			kv = hdr
		}
		cb.errf(kv, "lifetime below the minimum of %v", MinLifetime)
	}
	if c.Rekey && c.Margin >= c.Lifetime && c.Lifetime >= MinLifetime {
		kv, ok := cb.get("margintime")
		if !ok {
			kv = hdr
		}
		cb.warnf(kv, "margintime (%v) is not below lifetime (%v): the CHILD SA would be rekeyed as soon as it is up; lower margintime", c.Margin, c.Lifetime)
	}
	if c.Rekey && c.Margin >= c.IKELifetime && c.IKELifetime >= MinLifetime {
		kv, ok := cb.get("margintime")
		if !ok {
			kv = hdr
		}
		cb.warnf(kv, "margintime (%v) is not below ikelifetime (%v); lower margintime", c.Margin, c.IKELifetime)
	}
	if c.DPDAction != ActionNone && c.DPDTimeout < c.DPDDelay {
		kv, ok := cb.get("dpdtimeout")
		if !ok {
			kv = hdr
		}
		cb.warnf(kv, "dpdtimeout (%v) is shorter than dpddelay (%v): the peer would be declared dead before the second probe", c.DPDTimeout, c.DPDDelay)
	}
	if supported := func(a AuthMethod) bool { return a == AuthPSK || a == AuthPubkey }; !supported(c.Local.Auth) || !supported(c.Remote.Auth) {
		kv, ok := cb.b.authLine[c.Name]
		if !ok {
			kv = hdr
		}
		cb.warnf(kv, "authentication %s/%s is not supported yet; ipsecgw authenticates with pre-shared keys (authby=secret) or certificates (authby=pubkey)", c.Local.Auth, c.Remote.Auth)
	}
	if c.Mode == ModePassthrough || c.Mode == ModeDrop {
		cb.warnf(cb.eff["type"], "type=%s is not supported yet; the conn is accepted but installs no policy", c.Mode)
	}
	if c.Mode == ModeTransport && len(c.AH) == 0 {
		cb.warnf(cb.eff["type"], "the dataplane carries transport mode with AH only (ah=): this conn's ESP CHILD SAs will fail to install")
	}
	if c.Version != IKEv2 && hasAddKE(c.IKE) {
		// IKEv1 has no additional key exchanges: a conn that also takes
		// IKEv1 would accept one without them.
		kv, ok := cb.get("ike")
		if !ok {
			kv = hdr
		}
		cb.errf(kv, "additional key exchanges (ke1_ ... ke7_) need IKEv2 only; set keyexchange=ikev2 (this conn is %s)", c.Version)
	} else if c.Version != IKEv2 && hasAddKE(c.ChildProposals()) {
		kv, ok := cb.get("esp")
		if !ok {
			if kv, ok = cb.get("ah"); !ok {
				kv = hdr
			}
		}
		cb.errf(kv, "additional key exchanges (ke1_ ... ke7_) need IKEv2 only; set keyexchange=ikev2 (this conn is %s)", c.Version)
	}
	if c.Aggressive && c.Version == IKEv2 {
		kv, _ := cb.get("aggressive")
		cb.warnf(kv, "aggressive mode exists only in IKEv1; it has no effect with IKEv2")
	} else if c.Aggressive && c.UsesPSK() {
		kv, _ := cb.get("aggressive")
		cb.warnf(kv, "aggressive mode sends a hash of the PSK that anyone who sees the exchange (or starts one, as responder) can crack offline; use main mode unless the peer needs aggressive mode, and then a long random PSK")
	}
}

// hasAddKE reports whether a proposal has an RFC 9370 additional key
// exchange other than NONE.
func hasAddKE(ps []Proposal) bool {
	for _, p := range ps {
		for _, t := range p.Transforms {
			if t.Type >= TransformADDKE && t.ID != KENone {
				return true
			}
		}
	}
	return false
}

// checkOverlap rejects local and remote subnets that overlap: traffic
// between them could not be routed into the tunnel. A /0 on one side is
// the usual "everything through the tunnel" setup and is allowed.
func (cb *connBuilder) checkOverlap() {
	c := cb.c
	for _, l := range c.Local.Subnets {
		for _, r := range c.Remote.Subnets {
			if isAll(l.Range) || isAll(r.Range) {
				continue
			}
			if !overlaps(l.Range, r.Range) || l.Protocol != 0 && r.Protocol != 0 && l.Protocol != r.Protocol {
				continue
			}
			side := "leftsubnet"
			if !c.LocalIsLeft {
				side = "rightsubnet"
			}
			kv, ok := cb.get(side)
			if !ok {
				if kv, ok = cb.get(side + "s"); !ok {
					kv = cb.headerKV()
				}
			}
			cb.errf(kv, "local subnet %s overlaps remote subnet %s; the two sides of a tunnel must be different networks", l, r)
		}
	}
}

// overlaps reports whether two address ranges share an address. Ports do
// not matter here: routing into the tunnel goes by address.
func overlaps(a, b spd.AddrRange) bool {
	return a.From.Is4() == b.From.Is4() && !a.To.Less(b.From) && !b.To.Less(a.From)
}

// isAll reports whether a range is a whole address family (0.0.0.0/0, ::/0).
func isAll(r spd.AddrRange) bool {
	ps := r.Prefixes()
	return len(ps) == 1 && ps[0].Bits() == 0
}
