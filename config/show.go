package config

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// EndView is the printable form of an End.
type EndView struct {
	Address string   `json:"address"`
	ID      string   `json:"id"`
	Subnets []string `json:"subnets"`
	Auth    string   `json:"auth"`
	// Cert is leftcert=/rightcert= as "FILE (subject, valid until T)",
	// CA the leftca=/rightca= constraint; empty when not set.
	Cert string `json:"cert,omitempty"`
	CA   string `json:"ca,omitempty"`
}

// DPDView is the printable form of the DPD settings.
type DPDView struct {
	Action     string `json:"action"`
	DelaySec   int64  `json:"delay_seconds"`
	TimeoutSec int64  `json:"timeout_seconds"`
}

// ConnView is the effective connection as `ipsecgw config show` prints it:
// defaults applied, also= resolved, lifetimes in seconds, proposals as
// lists of algorithm names, the PSK masked.
type ConnView struct {
	Name          string     `json:"name"`
	Source        string     `json:"source"`
	Dialect       string     `json:"dialect"`
	Auto          string     `json:"auto"`
	Type          string     `json:"type"`
	IKEVersion    string     `json:"ike_version"`
	Local         EndView    `json:"local"`
	Remote        EndView    `json:"remote"`
	LocalIsLeft   bool       `json:"local_is_left"`
	IKE           [][]string `json:"ike_proposals"`
	IKEStrict     bool       `json:"ike_strict"`
	ChildProtocol string     `json:"child_protocol"`
	Child         [][]string `json:"child_proposals"`
	ChildStrict   bool       `json:"child_strict"`
	IKELifetime   int64      `json:"ike_lifetime_seconds"`
	Lifetime      int64      `json:"lifetime_seconds"`
	Margin        int64      `json:"margin_seconds"`
	RekeyFuzz     int        `json:"rekeyfuzz_percent"`
	LifeBytes     uint64     `json:"lifebytes,omitempty"`
	LifePackets   uint64     `json:"lifepackets,omitempty"`
	KeyingTries   string     `json:"keyingtries"`
	Rekey         bool       `json:"rekey"`
	Reauth        bool       `json:"reauth"`
	DPD           DPDView    `json:"dpd"`
	CloseAction   string     `json:"closeaction"`
	Inactivity    int64      `json:"inactivity_seconds,omitempty"`
	Aggressive    bool       `json:"aggressive"`
	ForceEncaps   bool       `json:"forceencaps"`
	MOBIKE        bool       `json:"mobike"`
	Fragmentation string     `json:"fragmentation"`
	ReplayWindow  string     `json:"replay_window"`
	ReqID         uint32     `json:"reqid,omitempty"`
	// TCP is set when IKE and ESP may go over TCP (enable-tcp=yes or
	// fallback): the mode and the peer's port.
	TCP     *TCPView `json:"tcp,omitempty"`
	PSK     string   `json:"psk"`
	Ignored []string `json:"ignored_keywords,omitempty"`
}

func endView(e End) EndView {
	v := EndView{Address: e.Host, ID: effectiveID(e).String(), Auth: e.Auth.String(), Subnets: []string{}}
	if e.Cert != nil {
		subject := e.Cert.Subject.String()
		if dn, err := ParseDERDN(e.Cert.RawSubject); err == nil {
			subject = FormatDN(dn)
		}
		v.Cert = fmt.Sprintf("%s (%s, valid until %s)", e.CertFile, subject, e.Cert.NotAfter.UTC().Format(time.RFC3339))
	}
	if e.CA.Type == IDDERASN1DN {
		v.CA = e.CA.Value
	}
	for _, s := range e.Subnets {
		v.Subnets = append(v.Subnets, s.String())
	}
	if len(e.Subnets) == 0 {
		v.Subnets = append(v.Subnets, "dynamic")
	}
	return v
}

func proposalNames(ps []Proposal) [][]string {
	out := [][]string{}
	for _, p := range ps {
		out = append(out, p.Names())
	}
	return out
}

// View returns the printable effective form of a connection.
func (c *Config) View(name string) (ConnView, bool) {
	conn, ok := c.Conn(name)
	if !ok {
		return ConnView{}, false
	}
	v := ConnView{
		Name: conn.Name, Source: fmt.Sprintf("%s:%d", conn.File, conn.Line), Dialect: conn.Dialect.String(),
		Auto: conn.Auto.String(), Type: conn.Mode.String(), IKEVersion: conn.Version.String(),
		Local: endView(conn.Local), Remote: endView(conn.Remote), LocalIsLeft: conn.LocalIsLeft,
		IKE: proposalNames(conn.IKE), IKEStrict: conn.IKEStrict,
		ChildProtocol: "esp", Child: proposalNames(conn.ChildProposals()), ChildStrict: conn.ChildStrict,
		IKELifetime: int64(conn.IKELifetime.Seconds()), Lifetime: int64(conn.Lifetime.Seconds()),
		Margin: int64(conn.Margin.Seconds()), RekeyFuzz: conn.RekeyFuzz,
		LifeBytes: conn.LifeBytes, LifePackets: conn.LifePackets,
		KeyingTries: strconv.Itoa(conn.KeyingTries), Rekey: conn.Rekey, Reauth: conn.Reauth,
		DPD:         DPDView{Action: conn.DPDAction.String(), DelaySec: int64(conn.DPDDelay.Seconds()), TimeoutSec: int64(conn.DPDTimeout.Seconds())},
		CloseAction: conn.CloseAction.String(), Inactivity: int64(conn.Inactivity.Seconds()),
		Aggressive: conn.Aggressive, ForceEncaps: conn.ForceEncaps, MOBIKE: conn.MOBIKE,
		Fragmentation: conn.Fragmentation.String(), ReplayWindow: "default", ReqID: conn.ReqID,
		PSK: "none", Ignored: conn.Ignored,
	}
	if len(conn.AH) > 0 {
		v.ChildProtocol = "ah"
	}
	if conn.TCP != TCPNo {
		v.TCP = &TCPView{Mode: conn.TCP.String(), RemotePort: conn.TCPRemotePort}
	}
	if conn.KeyingTries == 0 {
		v.KeyingTries = "%forever"
	}
	if conn.ReplayWindow >= 0 {
		v.ReplayWindow = strconv.Itoa(conn.ReplayWindow)
	}
	if conn.UsesPSK() {
		if _, found := c.PSK(conn); found {
			v.PSK = "<redacted>"
		} else {
			v.PSK = "missing"
		}
	}
	return v, true
}

// Text renders the view for people, one setting a line.
func (v ConnView) Text() string {
	var b strings.Builder
	w := func(k, format string, args ...any) {
		fmt.Fprintf(&b, "  %-16s %s\n", k+":", fmt.Sprintf(format, args...))
	}
	fmt.Fprintf(&b, "conn %s (%s, %s dialect)\n", v.Name, v.Source, v.Dialect)
	w("auto", "%s", v.Auto)
	w("type", "%s", v.Type)
	w("ike version", "%s", v.IKEVersion)
	side := map[bool][2]string{true: {"left", "right"}, false: {"right", "left"}}[v.LocalIsLeft]
	for i, e := range []EndView{v.Local, v.Remote} {
		name := [2]string{"local", "remote"}[i]
		w(name, "%s (%s)", e.Address, side[i])
		w(name+" id", "%s", e.ID)
		w(name+" auth", "%s", e.Auth)
		if e.Cert != "" {
			w(name+" cert", "%s", e.Cert)
		}
		if e.CA != "" {
			w(name+" ca", "%s", e.CA)
		}
		w(name+" subnets", "%s", strings.Join(e.Subnets, ", "))
	}
	strict := map[bool]string{true: " (strict)", false: ""}
	for i, p := range v.IKE {
		w(fmt.Sprintf("ike[%d]", i), "%s%s", strings.Join(p, "-"), strict[v.IKEStrict && i == 0])
	}
	for i, p := range v.Child {
		w(fmt.Sprintf("%s[%d]", v.ChildProtocol, i), "%s%s", strings.Join(p, "-"), strict[v.ChildStrict && i == 0])
	}
	w("ikelifetime", "%ds", v.IKELifetime)
	w("lifetime", "%ds", v.Lifetime)
	w("margintime", "%ds", v.Margin)
	w("rekeyfuzz", "%d%%", v.RekeyFuzz)
	if v.LifeBytes != 0 {
		w("lifebytes", "%d", v.LifeBytes)
	}
	if v.LifePackets != 0 {
		w("lifepackets", "%d", v.LifePackets)
	}
	w("keyingtries", "%s", v.KeyingTries)
	w("rekey", "%s", yesNo(v.Rekey))
	w("reauth", "%s", yesNo(v.Reauth))
	w("dpd", "action=%s delay=%ds timeout=%ds", v.DPD.Action, v.DPD.DelaySec, v.DPD.TimeoutSec)
	w("closeaction", "%s", v.CloseAction)
	if v.Inactivity != 0 {
		w("inactivity", "%ds", v.Inactivity)
	}
	w("aggressive", "%s", yesNo(v.Aggressive))
	w("forceencaps", "%s", yesNo(v.ForceEncaps))
	w("mobike", "%s", yesNo(v.MOBIKE))
	w("fragmentation", "%s", v.Fragmentation)
	if v.TCP != nil {
		w("enable-tcp", "%s tcp-remoteport=%d", v.TCP.Mode, v.TCP.RemotePort)
	}
	w("replay_window", "%s", v.ReplayWindow)
	if v.ReqID != 0 {
		w("reqid", "%d", v.ReqID)
	}
	w("psk", "%s", v.PSK)
	if len(v.Ignored) > 0 {
		w("ignored", "%s", strings.Join(v.Ignored, ", "))
	}
	return b.String()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
