package config

import (
	"fmt"
	"slices"
	"strings"
)

// ChangeKind says what happened to a connection between two Configs.
type ChangeKind uint8

// Change kinds.
const (
	ConnAdded ChangeKind = iota + 1
	ConnRemoved
	ConnChanged
)

func (k ChangeKind) String() string {
	switch k {
	case ConnAdded:
		return "added"
	case ConnRemoved:
		return "removed"
	}
	return "changed"
}

// Impact says what a changed connection needs for the change to take
// effect. Higher values include the lower ones.
type Impact uint8

// Impacts, from least to most disruptive.
const (
	// ImpactNone: nothing to do for established SAs (e.g. auto= or the
	// line number changed); the daemon only updates its bookkeeping.
	ImpactNone Impact = iota
	// ImpactRekey: timers and limits (lifetimes, DPD, keyingtries...); the
	// new values apply from the next rekey, no SA has to be replaced now.
	ImpactRekey
	// ImpactNewChild: what the CHILD SA protects or how (subnets, ESP
	// proposals, mode, replay window); CHILD SAs must be re-created.
	ImpactNewChild
	// ImpactNewIKE: who we talk to or how we authenticate (addresses, IDs,
	// IKE version, IKE proposals, PSK); the IKE SA must be re-established.
	ImpactNewIKE
)

func (i Impact) String() string {
	return [...]string{"none", "rekey", "new CHILD SA", "new IKE SA"}[i]
}

// ConnChange is one difference between two Configs.
type ConnChange struct {
	Name   string
	Kind   ChangeKind
	Impact Impact   // for ConnChanged
	Fields []string // names of the changed settings, for ConnChanged
}

func (c ConnChange) String() string {
	if c.Kind != ConnChanged {
		return fmt.Sprintf("conn %s %s", c.Name, c.Kind)
	}
	return fmt.Sprintf("conn %s changed (%s): %s", c.Name, c.Impact, strings.Join(c.Fields, ", "))
}

// Diff compares two Configs: connections added, removed, or changed, and
// for a changed one what it needs. Connections that did not change are
// not listed, so a reload can leave their tunnels alone. PSKs are
// compared in constant time and never reported, only named as "psk".
func Diff(oldCfg, newCfg *Config) []ConnChange {
	var out []ConnChange
	for _, o := range oldCfg.conns {
		if _, ok := newCfg.byName[o.Name]; !ok {
			out = append(out, ConnChange{Name: o.Name, Kind: ConnRemoved})
		}
	}
	for _, n := range newCfg.conns {
		i, ok := oldCfg.byName[n.Name]
		if !ok {
			out = append(out, ConnChange{Name: n.Name, Kind: ConnAdded})
			continue
		}
		o := oldCfg.conns[i]
		impact, fields := compareConns(o, n)
		oldPSK, oldHas := oldCfg.PSK(o)
		newPSK, newHas := newCfg.PSK(n)
		if oldHas != newHas || !oldPSK.Equal(newPSK) {
			fields = append(fields, "psk")
			impact = max(impact, ImpactNewIKE)
		}
		if len(fields) > 0 {
			out = append(out, ConnChange{Name: n.Name, Kind: ConnChanged, Impact: impact, Fields: fields})
		}
	}
	return out
}

func compareConns(o, n Conn) (Impact, []string) {
	var fields []string
	impact := ImpactNone
	check := func(changed bool, name string, level Impact) {
		if changed {
			fields = append(fields, name)
			impact = max(impact, level)
		}
	}
	endSame := func(a, b End) bool {
		return a.Host == b.Host && a.Addr == b.Addr && a.ID.Equal(b.ID) && a.Auth == b.Auth &&
			a.CertFile == b.CertFile && (a.Cert == nil) == (b.Cert == nil) && (a.Cert == nil || a.Cert.Equal(b.Cert)) &&
			a.CA.Equal(b.CA) && a.SendCert == b.SendCert && a.PSS == b.PSS
	}
	check(!endSame(o.Local, n.Local) || o.LocalIsLeft != n.LocalIsLeft, "local", ImpactNewIKE)
	check(!endSame(o.Remote, n.Remote), "remote", ImpactNewIKE)
	check(o.Version != n.Version, "keyexchange", ImpactNewIKE)
	check(!proposalsEqual(o.IKE, n.IKE), "ike", ImpactNewIKE)
	check(o.Aggressive != n.Aggressive, "aggressive", ImpactNewIKE)
	check(o.ForceEncaps != n.ForceEncaps, "forceencaps", ImpactNewIKE)
	check(o.MOBIKE != n.MOBIKE, "mobike", ImpactNewIKE)
	check(o.Fragmentation != n.Fragmentation, "fragmentation", ImpactNewIKE)
	check(o.TCP != n.TCP || o.TCPRemotePort != n.TCPRemotePort, "enable-tcp", ImpactNewIKE)

	check(!slices.Equal(o.Local.Subnets, n.Local.Subnets), "local subnets", ImpactNewChild)
	check(!slices.Equal(o.Remote.Subnets, n.Remote.Subnets), "remote subnets", ImpactNewChild)
	check(!proposalsEqual(o.ESP, n.ESP), "esp", ImpactNewChild)
	check(!proposalsEqual(o.AH, n.AH), "ah", ImpactNewChild)
	check(o.Mode != n.Mode, "type", ImpactNewChild)
	check(o.ReplayWindow != n.ReplayWindow, "replay_window", ImpactNewChild)
	check(o.ReqID != n.ReqID, "reqid", ImpactNewChild)
	check(o.Interface != n.Interface, "interface", ImpactNewChild)
	check(o.Priority != n.Priority, "priority", ImpactNewChild)

	check(o.IKELifetime != n.IKELifetime, "ikelifetime", ImpactRekey)
	check(o.Lifetime != n.Lifetime, "lifetime", ImpactRekey)
	check(o.Margin != n.Margin, "margintime", ImpactRekey)
	check(o.RekeyFuzz != n.RekeyFuzz, "rekeyfuzz", ImpactRekey)
	check(o.LifeBytes != n.LifeBytes || o.MarginBytes != n.MarginBytes, "lifebytes", ImpactRekey)
	check(o.LifePackets != n.LifePackets || o.MarginPackets != n.MarginPackets, "lifepackets", ImpactRekey)
	check(o.KeyingTries != n.KeyingTries, "keyingtries", ImpactRekey)
	check(o.Rekey != n.Rekey, "rekey", ImpactRekey)
	check(o.Reauth != n.Reauth, "reauth", ImpactRekey)
	check(o.DPDAction != n.DPDAction || o.DPDDelay != n.DPDDelay || o.DPDTimeout != n.DPDTimeout, "dpd", ImpactRekey)
	check(o.CloseAction != n.CloseAction, "closeaction", ImpactRekey)
	check(o.Inactivity != n.Inactivity, "inactivity", ImpactRekey)

	check(o.Auto != n.Auto, "auto", ImpactNone)
	check(o.TCPMSS != n.TCPMSS, "tcpmss", ImpactNone)
	check(o.VTIAddr != n.VTIAddr || o.VTIRouting != n.VTIRouting, "vti", ImpactNone)
	check(o.Local.Updown != n.Local.Updown, "updown", ImpactNone)
	return impact, fields
}
