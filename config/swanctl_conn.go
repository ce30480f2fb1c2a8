package config

import (
	"fmt"
	"sort"
	"strings"
	"time"
)

// A swanctl.conf connection becomes one ipsec.conf-style conn section per
// CHILD SA (ipsecgw negotiates one CHILD SA per IKE SA): named after the
// connection when it has one child, "connection-child" otherwise. Its
// settings are translated into the ipsec.conf keywords of the same
// meaning, each keeping the file and line it came from, and then built and
// validated exactly like ipsec.conf, so every problem is reported as
// FILE:LINE of swanctl.conf with the swanctl key. Keys ipsecgw does not act
// upon are warnings, as in ipsec.conf.
//
// Timers: swanctl gives rekey times, ipsec.conf lifetimes and one margin
// shared by IKE and CHILD SAs. The CHILD SA keeps its times exactly
// (lifetime = life_time, margintime = life_time - rekey_time, rekeyfuzz =
// rand_time / margin); the IKE SA keeps its rekey (or reauthentication)
// time (ikelifetime = rekey_time + that margin).

// swanctlConnKeys: connection keys and what they become. "" marks keys
// handled by hand below.
var swanctlConnKeys = map[string]string{
	"version": "", "local_addrs": "", "remote_addrs": "", "proposals": "",
	"aggressive": "aggressive", "encap": "forceencaps", "mobike": "mobike", "fragmentation": "fragmentation",
	"dpd_delay": "", "dpd_timeout": "", "keyingtries": "keyingtries",
	"rekey_time": "", "reauth_time": "", "over_time": "", "rand_time": "",
}

// swanctlIgnoredConnKeys are valid swanctl.conf keys without an effect in
// ipsecgw yet (warned about when set).
var swanctlIgnoredConnKeys = map[string]bool{
	"local_port": true, "remote_port": true, "vips": true, "pull": true, "dscp": true, "childless": true,
	"send_certreq": true, "send_cert": true, "ocsp": true, "ppk_id": true, "ppk_required": true, "unique": true,
	"pools": true, "if_id_in": true, "if_id_out": true, "mediation": true, "mediated_by": true, "mediation_peer": true,
}

var swanctlChildKeys = map[string]string{
	"local_ts": "", "remote_ts": "", "esp_proposals": "", "ah_proposals": "", "mode": "type",
	"start_action": "", "dpd_action": "", "close_action": "closeaction",
	"rekey_time": "", "life_time": "", "rand_time": "", "rekey_bytes": "", "life_bytes": "", "rekey_packets": "", "life_packets": "",
	"replay_window": "replay_window", "inactivity": "inactivity", "reqid": "reqid", "sha256_96": "sha2-truncbug",
	"updown": "leftupdown",
}

var swanctlIgnoredChildKeys = map[string]bool{
	"ipcomp": true, "hw_offload": true, "copy_df": true, "copy_ecn": true, "copy_dscp": true, "hostaccess": true,
	"mark_in": true, "mark_out": true, "mark_in_sa": true, "set_mark_in": true, "set_mark_out": true,
	"if_id_in": true, "if_id_out": true, "label": true, "label_mode": true, "priority": true, "interface": true,
	"policies": true, "policies_fwd_out": true, "per_cpu_sas": true, "tfc_padding": true,
}

var swanctlAuthKeys = map[string]bool{"auth": true, "id": true}

var swanctlIgnoredAuthKeys = map[string]bool{
	"round": true, "certs": true, "pubkeys": true, "cacerts": true, "ca_id": true, "eap_id": true, "aaa_id": true,
	"xauth_id": true, "groups": true, "cert_policy": true, "revocation": true,
}

// swBuilder turns the tree into conn sections and secrets.
type swBuilder struct {
	r        *swReader
	sections []*rawSection
	secrets  []secretEntry
}

// loadSwanctl reads a swanctl.conf into conn sections for the builder and
// the PSKs of its secrets section.
func loadSwanctl(fsys fileSystem, path string) ([]*rawSection, []secretEntry, Diagnostics) {
	r := &swReader{fs: fsys}
	root := &swNode{}
	r.readFile(root, path, "", 0)
	b := &swBuilder{r: r}
	for _, kv := range root.kvs {
		r.warnf(kv.file, kv.line, "%s: unknown top-level key, ignored", kv.key)
	}
	for _, s := range root.subs {
		switch s.name {
		case "connections":
			for _, kv := range s.kvs {
				r.warnf(kv.file, kv.line, "connections.%s: a key outside of a connection, ignored", kv.key)
			}
			for _, c := range s.subs {
				b.connection(c)
			}
		case "secrets":
			b.secretsSection(s)
		case "authorities", "pools":
			r.warnf(s.file, s.line, "%s: not supported by ipsecgw yet (no certificates, no virtual IPs); ignored", s.name)
		default:
			r.warnf(s.file, s.line, "%s: unknown top-level section, ignored", s.name)
		}
	}
	return b.sections, b.secrets, r.diags
}

func (b *swBuilder) kv(key, value string, src swKV, shown string) rawKV {
	return rawKV{Key: key, Value: value, File: src.file, Line: src.line, shown: shown}
}

// at locates a synthesized setting on a section header.
func at(n *swNode) swKV { return swKV{file: n.file, line: n.line} }

func (b *swBuilder) connection(c *swNode) {
	if c.referenced {
		return
	}
	if !validName(c.name) {
		b.r.errorf(c.file, c.line, "connection name %q: use letters, digits, '-', '_' and '.'", truncate(c.name, 40))
		return
	}
	var common []rawKV
	seen := map[string]bool{}
	for _, kv := range c.kvs {
		shown := c.path + "." + kv.key
		target, known := swanctlConnKeys[kv.key]
		switch {
		case swanctlIgnoredConnKeys[kv.key]:
			b.r.warnf(kv.file, kv.line, "%s: accepted but not supported yet by ipsecgw; it has no effect", shown)
			continue
		case !known:
			b.r.warnf(kv.file, kv.line, "%s: unknown connection key, ignored; see swanctl.conf(5)", shown)
			continue
		case target != "":
			if !seen[kv.key] {
				kvLast, _ := c.get(kv.key)
				common = append(common, b.kv(target, kvLast.value, kvLast, shown))
			}
		}
		seen[kv.key] = true
	}
	if kv, ok := c.get("version"); ok {
		v := map[string]string{"0": "ike", "1": "ikev1", "2": "ikev2"}[kv.value]
		if v == "" {
			b.r.errorf(kv.file, kv.line, "%s.version: %q; expected 0 (either), 1 or 2", c.path, kv.value)
		} else {
			common = append(common, b.kv("keyexchange", v, kv, c.path+".version"))
		}
	}
	for _, side := range []struct{ key, conf string }{{"local_addrs", "left"}, {"remote_addrs", "right"}} {
		if kv, ok := c.get(side.key); ok {
			common = append(common, b.kv(side.conf, kv.value, kv, c.path+"."+side.key))
		}
	}
	// swanctl lists are used as written: no defaults are appended (its own
	// "default" keyword names them), so the ipsec.conf form is strict.
	ike := swKV{file: c.file, line: c.line, value: "default"}
	ikeShown := c.path
	if kv, ok := c.get("proposals"); ok {
		ike, ikeShown = kv, c.path+".proposals"
	}
	common = append(common, b.kv("ike", strings.TrimSuffix(ike.value, "!")+"!", ike, ikeShown))
	common = append(common, b.auth(c, "local", "left")...)
	common = append(common, b.auth(c, "remote", "right")...)

	children := &swNode{}
	for _, s := range c.subs {
		if s.name == "children" {
			children = s
		}
		if s.name != "children" && !strings.HasPrefix(s.name, "local") && !strings.HasPrefix(s.name, "remote") {
			b.r.warnf(s.file, s.line, "%s: unknown section, ignored", s.path)
		}
	}
	if len(children.subs) == 0 {
		b.r.warnf(c.file, c.line, "%s has no children; ipsecgw negotiates IKE SAs only for their CHILD SAs, so it is not loaded", c.path)
		return
	}
	for _, ch := range children.subs {
		name := c.name
		if len(children.subs) > 1 {
			name = c.name + "-" + ch.name
		}
		if ch.referenced {
			continue
		}
		sec := &rawSection{Kind: "conn", Name: name, File: c.file, Line: c.line}
		sec.KVs = append(sec.KVs, common...)
		sec.KVs = append(sec.KVs, b.child(c, ch)...)
		b.sections = append(b.sections, sec)
	}
}

// auth translates the local or remote authentication rounds ("local",
// "local-1", "local2" ...); ipsecgw authenticates in one round.
func (b *swBuilder) auth(c *swNode, prefix, side string) []rawKV {
	var rounds []*swNode
	for _, s := range c.subs {
		if strings.HasPrefix(s.name, prefix) {
			rounds = append(rounds, s)
		}
	}
	var out []rawKV
	if len(rounds) == 0 {
		if side == "right" {
			// swanctl's remote id defaults to %any, ipsec.conf's to the address.
			out = append(out, b.kv("rightid", "%any", at(c), c.path+".remote.id"))
		}
		return out
	}
	sort.SliceStable(rounds, func(i, j int) bool { return rounds[i].name < rounds[j].name })
	for _, extra := range rounds[1:] {
		b.r.errorf(extra.file, extra.line, "%s: a second %s authentication round (ipsecgw authenticates each side in one round)", extra.path, prefix)
	}
	r := rounds[0]
	for _, kv := range r.kvs {
		shown := r.path + "." + kv.key
		switch {
		case swanctlIgnoredAuthKeys[kv.key]:
			b.r.warnf(kv.file, kv.line, "%s: accepted but not supported yet by ipsecgw; it has no effect", shown)
		case !swanctlAuthKeys[kv.key]:
			b.r.warnf(kv.file, kv.line, "%s: unknown authentication key, ignored", shown)
		}
	}
	if kv, ok := r.get("auth"); ok {
		// "eap-md5", "rsa/pss-sha256", "pubkey-sha256": the method is the
		// first part.
		method := strings.FieldsFunc(strings.ToLower(kv.value), func(r rune) bool { return r == '-' || r == '/' || r == ':' })
		m := ""
		if len(method) > 0 {
			m = method[0]
		}
		out = append(out, b.kv(side+"auth", m, kv, r.path+".auth"))
	} else {
		out = append(out, b.kv(side+"auth", "pubkey", at(r), r.path+".auth"))
	}
	if kv, ok := r.get("id"); ok {
		out = append(out, b.kv(side+"id", kv.value, kv, r.path+".id"))
	} else if side == "right" {
		out = append(out, b.kv("rightid", "%any", at(r), r.path+".id"))
	}
	return out
}

func (b *swBuilder) child(c, ch *swNode) []rawKV {
	var out []rawKV
	for _, kv := range ch.kvs {
		shown := ch.path + "." + kv.key
		target, known := swanctlChildKeys[kv.key]
		switch {
		case swanctlIgnoredChildKeys[kv.key]:
			b.r.warnf(kv.file, kv.line, "%s: accepted but not supported yet by ipsecgw; it has no effect", shown)
		case !known:
			b.r.warnf(kv.file, kv.line, "%s: unknown CHILD SA key, ignored; see swanctl.conf(5)", shown)
		case target != "":
			if last, _ := ch.get(kv.key); last.line == kv.line && last.file == kv.file {
				out = append(out, b.kv(target, kv.value, kv, shown))
			}
		}
	}
	for _, ts := range []struct{ key, conf string }{{"local_ts", "leftsubnet"}, {"remote_ts", "rightsubnet"}} {
		if kv, ok := ch.get(ts.key); ok {
			var items []string
			for _, it := range splitList(kv.value) {
				if it == "dynamic" {
					it = "%dynamic"
				}
				items = append(items, it)
			}
			out = append(out, b.kv(ts.conf, strings.Join(items, ","), kv, ch.path+"."+ts.key))
		}
	}
	esp, hasESP := ch.get("esp_proposals")
	ah, hasAH := ch.get("ah_proposals")
	switch {
	case hasAH:
		if hasESP {
			b.r.warnf(esp.file, esp.line, "%s.esp_proposals: ah_proposals is set too; ipsecgw negotiates AH only", ch.path)
		}
		out = append(out, b.kv("ah", strings.TrimSuffix(ah.value, "!")+"!", ah, ch.path+".ah_proposals"))
	case hasESP:
		out = append(out, b.kv("esp", strings.TrimSuffix(esp.value, "!")+"!", esp, ch.path+".esp_proposals"))
	default:
		out = append(out, b.kv("esp", "default!", at(ch), ch.path+".esp_proposals"))
	}
	auto := "add" // a loaded swanctl connection always answers
	autoKV := at(ch)
	if kv, ok := ch.get("start_action"); ok {
		autoKV = kv
		switch strings.ToLower(kv.value) {
		case "none":
		case "trap":
			auto = "route"
		case "start", "trap|start", "start|trap":
			auto = "start"
		default:
			b.r.errorf(kv.file, kv.line, "%s.start_action: %q; expected none, trap or start", ch.path, kv.value)
		}
	}
	out = append(out, b.kv("auto", auto, autoKV, ch.path+".start_action"))
	// DPD runs when the connection has a dpd_delay; the action is the
	// child's (default clear).
	if kv, ok := c.get("dpd_delay"); ok {
		if d, err := ParseDuration(kv.value); err != nil {
			b.r.errorf(kv.file, kv.line, "%s.dpd_delay: %v", c.path, err)
		} else if d > 0 {
			out = append(out, b.kv("dpddelay", kv.value, kv, c.path+".dpd_delay"))
			action := swKV{file: kv.file, line: kv.line, value: "clear"}
			shown := c.path + ".dpd_delay"
			if a, ok := ch.get("dpd_action"); ok {
				action, shown = a, ch.path+".dpd_action"
			}
			out = append(out, b.kv("dpdaction", action.value, action, shown))
			if t, ok := c.get("dpd_timeout"); ok {
				out = append(out, b.kv("dpdtimeout", t.value, t, c.path+".dpd_timeout"))
			}
		}
	}
	out = append(out, b.timers(c, ch)...)
	return out
}

// dur reads a duration key of n, with a default.
func (b *swBuilder) dur(n *swNode, key string, dflt time.Duration) (time.Duration, swKV, bool) {
	kv, ok := n.get(key)
	if !ok {
		return dflt, at(n), false
	}
	d, err := ParseDuration(kv.value)
	if err != nil {
		b.r.errorf(kv.file, kv.line, "%s.%s: %v", n.path, key, err)
		return dflt, kv, false
	}
	return d, kv, true
}

// timers translates the rekey times (see the file comment); swanctl's
// defaults are rekey_time 4h for IKE, 1h for CHILD SAs, life_time 110 %
// of the rekey time and rand_time the difference.
func (b *swBuilder) timers(c, ch *swNode) []rawKV {
	var out []rawKV
	secs := func(d time.Duration) string { return fmt.Sprintf("%ds", int64(d/time.Second)) }
	rekey, rekeyKV, _ := b.dur(ch, "rekey_time", time.Hour)
	life, lifeKV, hasLife := b.dur(ch, "life_time", rekey+rekey/10)
	if !hasLife && rekey == 0 {
		life = DefaultLifetime
	}
	margin := life - rekey
	rnd, rndKV, _ := b.dur(ch, "rand_time", margin)
	if rekey > 0 && margin <= 0 {
		b.r.errorf(lifeKV.file, lifeKV.line, "%s: life_time (%v) must be longer than rekey_time (%v)", ch.path, life, rekey)
		return nil
	}
	out = append(out, b.kv("lifetime", secs(life), lifeKV, ch.path+".life_time"))
	if rekey > 0 {
		out = append(out, b.kv("margintime", secs(margin), rekeyKV, ch.path+".rekey_time"))
		out = append(out, b.kv("rekeyfuzz", fmt.Sprintf("%d%%", min(int64(rnd)*100/int64(margin), 100000)), rndKV, ch.path+".rand_time"))
	}
	ikeRekey, ikeRekeyKV, _ := b.dur(c, "rekey_time", 4*time.Hour)
	reauth, reauthKV, _ := b.dur(c, "reauth_time", 0)
	switch {
	case reauth > 0 && (ikeRekey == 0 || reauth <= ikeRekey):
		out = append(out, b.kv("reauth", "yes", reauthKV, c.path+".reauth_time"))
		out = append(out, b.kv("ikelifetime", secs(reauth+max(margin, 0)), reauthKV, c.path+".reauth_time"))
	case ikeRekey > 0:
		out = append(out, b.kv("reauth", "no", ikeRekeyKV, c.path+".rekey_time"))
		out = append(out, b.kv("ikelifetime", secs(ikeRekey+max(margin, 0)), ikeRekeyKV, c.path+".rekey_time"))
	}
	if rekey == 0 && ikeRekey == 0 && reauth == 0 {
		out = append(out, b.kv("rekey", "no", rekeyKV, ch.path+".rekey_time"))
	}
	for _, v := range []struct{ life, rekey, life2, margin2 string }{{"life_bytes", "rekey_bytes", "lifebytes", "marginbytes"}, {"life_packets", "rekey_packets", "lifepackets", "marginpackets"}} {
		l, okL := ch.get(v.life)
		rk, okR := ch.get(v.rekey)
		if !okL && !okR {
			continue
		}
		ln, errL := parseSize(l.value)
		rn, errR := parseSize(rk.value)
		switch {
		case okL && errL != nil:
			b.r.errorf(l.file, l.line, "%s.%s: %v", ch.path, v.life, errL)
		case okR && errR != nil:
			b.r.errorf(rk.file, rk.line, "%s.%s: %v", ch.path, v.rekey, errR)
		case !okL:
			// Only a rekey volume: the SA expires 10 % later, as swanctl.
			out = append(out, b.kv(v.life2, fmt.Sprint(rn+rn/10), rk, ch.path+"."+v.rekey))
			out = append(out, b.kv(v.margin2, fmt.Sprint(rn/10), rk, ch.path+"."+v.rekey))
		case !okR:
			out = append(out, b.kv(v.life2, fmt.Sprint(ln), l, ch.path+"."+v.life))
		case rn >= ln:
			b.r.errorf(rk.file, rk.line, "%s.%s must be smaller than %s", ch.path, v.rekey, v.life)
		default:
			out = append(out, b.kv(v.life2, fmt.Sprint(ln), l, ch.path+"."+v.life))
			out = append(out, b.kv(v.margin2, fmt.Sprint(ln-rn), rk, ch.path+"."+v.rekey))
		}
	}
	return out
}

// secretsSection reads the ike* secrets (PSKs); others are warned about.
func (b *swBuilder) secretsSection(s *swNode) {
	for _, kv := range s.kvs {
		b.r.warnf(kv.file, kv.line, "secrets.%s: a key outside of a secret, ignored", kv.key)
	}
	for _, sec := range s.subs {
		if !strings.HasPrefix(sec.name, "ike") {
			b.r.warnf(sec.file, sec.line, "%s: only ike secrets (PSKs) are used by ipsecgw; ignored", sec.path)
			continue
		}
		e := secretEntry{kind: "PSK", file: sec.file, line: sec.line}
		ok := true
		for _, kv := range sec.kvs {
			switch {
			case kv.key == "secret":
			case strings.HasPrefix(kv.key, "id"): // id, id-1, id-peer ...
				id, err := ParseIdentity(kv.value)
				if err != nil {
					b.r.errorf(kv.file, kv.line, "%s.%s: %v", sec.path, kv.key, err)
					ok = false
					continue
				}
				e.ids = append(e.ids, id)
			default:
				b.r.warnf(kv.file, kv.line, "%s.%s: unknown key of an ike secret, ignored", sec.path, kv.key)
			}
		}
		kv, has := sec.get("secret")
		if !has {
			b.r.errorf(sec.file, sec.line, "%s: no secret = ...", sec.path)
			continue
		}
		// The reader removed any quotes: 0x and 0s values are encoded,
		// anything else is the key itself.
		key, err := []byte(kv.value), error(nil)
		if strings.HasPrefix(kv.value, "0x") || strings.HasPrefix(kv.value, "0s") {
			key, err = decodeSecret(kv.value)
		} else if kv.value == "" {
			err = fmt.Errorf("the secret is empty")
		}
		if err != nil {
			// decodeSecret's messages never quote the secret.
			b.r.errorf(kv.file, kv.line, "%s.secret: %v", sec.path, err)
			continue
		}
		if ok {
			e.psk = PSK{b: key}
			b.secrets = append(b.secrets, e)
		}
	}
}
