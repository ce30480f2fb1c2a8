package config

import (
	"crypto/x509"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/ipsecgw/ipsecgw/spd"
)

// Dialect is the flavour of ipsec.conf a connection was written in.
type Dialect uint8

// Dialects. Libreswan covers Openswan and FreeS/WAN-descended files too.
const (
	DialectStrongSwan Dialect = iota
	DialectLibreswan
)

func (d Dialect) String() string {
	if d == DialectLibreswan {
		return "libreswan"
	}
	return "strongswan"
}

// IKEVersion says which IKE version a connection uses.
type IKEVersion uint8

// IKE versions. IKEAny (keyexchange=ike, Libreswan's ikev2=propose)
// initiates IKEv2 and accepts both as responder, as strongSwan does;
// IKEv1First (Libreswan 3's ikev2=permit) initiates IKEv1 and accepts
// both.
const (
	IKEAny     IKEVersion = 0
	IKEv1      IKEVersion = 1
	IKEv2      IKEVersion = 2
	IKEv1First IKEVersion = 3
)

// String is "ikev1", "ikev2", or "ike" for the versions that accept both.
func (v IKEVersion) String() string {
	switch v {
	case IKEv1:
		return "ikev1"
	case IKEv2:
		return "ikev2"
	}
	return "ike"
}

// Initiates is the version a conn initiates with: IKEv1 or IKEv2.
func (v IKEVersion) Initiates() IKEVersion {
	if v == IKEv1 || v == IKEv1First {
		return IKEv1
	}
	return IKEv2
}

// Accepts reports whether a conn takes an exchange of IKE major version
// major (1 or 2) as responder.
func (v IKEVersion) Accepts(major int) bool {
	switch v {
	case IKEv1:
		return major == 1
	case IKEv2:
		return major == 2
	}
	return major == 1 || major == 2
}

// Auto is what the daemon does with a connection at startup.
type Auto uint8

// auto= values.
const (
	AutoIgnore Auto = iota
	AutoAdd
	AutoRoute
	AutoStart
)

func (a Auto) String() string {
	return [...]string{"ignore", "add", "route", "start"}[a]
}

// Mode is the connection type.
type Mode uint8

// type= values.
const (
	ModeTunnel Mode = iota
	ModeTransport
	ModePassthrough
	ModeDrop
)

func (m Mode) String() string {
	return [...]string{"tunnel", "transport", "passthrough", "drop"}[m]
}

// AuthMethod is how one end authenticates.
type AuthMethod uint8

// Authentication methods.
const (
	AuthPubkey AuthMethod = iota // strongSwan's default authby
	AuthPSK
	AuthEAP
	AuthXAuthPSK
	AuthXAuthPubkey
	AuthNever
)

func (a AuthMethod) String() string {
	return [...]string{"pubkey", "psk", "eap", "xauthpsk", "xauthpubkey", "never"}[a]
}

// Action is a DPD or close action.
type Action uint8

// dpdaction= / closeaction= values.
const (
	ActionNone Action = iota
	ActionClear
	ActionHold
	ActionRestart
)

func (a Action) String() string {
	return [...]string{"none", "clear", "hold", "restart"}[a]
}

// Fragmentation is the IKE fragmentation setting.
type Fragmentation uint8

// fragmentation= values.
const (
	FragYes Fragmentation = iota
	FragNo
	FragAccept
	FragForce
)

func (f Fragmentation) String() string {
	return [...]string{"yes", "no", "accept", "force"}[f]
}

// End is one side of a connection.
type End struct {
	// Host is left=/right= as written: an address, a host name, %any or
	// %defaultroute. Addr is set when it is a literal address.
	Host    string
	Addr    netip.Addr
	Subnets []spd.TS
	ID      Identity
	Auth    AuthMethod
	Updown  string
	// Cert is leftcert=/rightcert= (loaded from CertFile) of a pubkey end:
	// ours to present, or the peer's we accept as it is. CA is leftca=/
	// rightca=: the peer's chain must contain this CA (a DN; IDAny when
	// unset). SendCert is leftsendcert=. Certificates are immutable once
	// loaded; clones share them.
	Cert     *x509.Certificate
	CertFile string
	CA       Identity
	SendCert SendCert
	// PSS: leftauth=rsa/pss signs with RSASSA-PSS (RFC 7427) instead of
	// PKCS#1 v1.5.
	PSS bool
}

func (e End) clone() End {
	e.Subnets = slices.Clone(e.Subnets)
	return e
}

// IsAny reports whether the end's address is unknown until negotiation.
func (e End) IsAny() bool { return e.Host == "%any" || e.Host == "%any6" || e.Host == "" }

// Conn is one effective connection: %default and also= applied, aliases
// resolved, defaults filled in, left/right turned into local/remote.
type Conn struct {
	Name    string
	File    string // where the conn section starts
	Line    int
	Dialect Dialect

	Local, Remote End
	// LocalIsLeft records which of left/right was chosen as the local end.
	LocalIsLeft bool

	Version IKEVersion
	Auto    Auto
	Mode    Mode

	IKE []Proposal // IKE proposals, daemon defaults appended unless strict
	ESP []Proposal // CHILD SA proposals for ESP (empty when AH is used)
	AH  []Proposal // CHILD SA proposals for AH (empty unless ah= or phase2=ah)
	// IKEStrict/ChildStrict: the proposal ended in "!" (or the file is in
	// the Libreswan dialect, which never appends defaults).
	IKEStrict, ChildStrict bool
	// IKEDefaults/ChildDefaults count the daemon default proposals appended
	// at the end of IKE / ChildProposals() (0 when strict), so that what the
	// file configured can be told apart (ConfiguredIKE, ConfiguredChild).
	IKEDefaults, ChildDefaults int

	IKELifetime   time.Duration
	Lifetime      time.Duration
	Margin        time.Duration
	RekeyFuzz     int // percent
	LifeBytes     uint64
	LifePackets   uint64
	MarginBytes   uint64
	MarginPackets uint64
	KeyingTries   int // 0 = %forever
	Rekey, Reauth bool

	DPDAction   Action
	DPDDelay    time.Duration
	DPDTimeout  time.Duration
	CloseAction Action
	Inactivity  time.Duration // 0 = none

	Aggressive    bool
	ForceEncaps   bool
	MOBIKE        bool
	Fragmentation Fragmentation
	ReplayWindow  int    // packets; -1 = daemon default
	ReqID         uint32 // 0 = allocated by the daemon
	// Priority orders this conn's policies before identical ones of other
	// conns: lower first; 0 (unset) after every explicit priority
	// (swanctl's and Libreswan's priority=; failover.go).
	Priority uint32
	// Interface is the device of a route-based conn (mark=, if_id_*,
	// ipsec-interface=, vti-interface=; routed.go); zero when policy-based.
	Interface Interface
	// TCPMSS is the MSS clamp of a route-based conn's device: 0 none,
	// TCPMSSFromMTU, or a fixed MSS (tcpmss=; mss.go).
	TCPMSS int
	// VTIAddr is the local end's address on that device (leftvti=) and
	// VTIRouting routes the remote subnets into it (vti-routing=yes;
	// vti.go).
	VTIAddr    netip.Prefix
	VTIRouting bool

	// TCP says when IKE and ESP go over TCP (RFC 9329) and TCPRemotePort
	// to which port of the peer (config/tcp.go).
	TCP           TCPMode
	TCPRemotePort uint16

	// Ignored lists keywords set for this conn that ipsecgw accepts but does
	// not act upon yet (each also produced a warning).
	Ignored []string
}

// Clone returns a deep copy, so that callers cannot change a Config.
func (c Conn) Clone() Conn {
	c.Local = c.Local.clone()
	c.Remote = c.Remote.clone()
	c.IKE = cloneProposals(c.IKE)
	c.ESP = cloneProposals(c.ESP)
	c.AH = cloneProposals(c.AH)
	c.Ignored = slices.Clone(c.Ignored)
	return c
}

// ChildProposals returns the ESP proposals, or the AH ones for an AH conn.
func (c Conn) ChildProposals() []Proposal {
	if len(c.AH) > 0 {
		return c.AH
	}
	return c.ESP
}

// ConfiguredIKE returns the IKE proposals of the file, without the
// appended daemon defaults.
func (c Conn) ConfiguredIKE() []Proposal {
	return cloneProposals(c.IKE[:len(c.IKE)-c.IKEDefaults])
}

// ConfiguredChild returns the CHILD SA proposals (ESP, or AH for an AH
// conn) of the file, without the appended daemon defaults.
func (c Conn) ConfiguredChild() []Proposal {
	ps := c.ChildProposals()
	return cloneProposals(ps[:len(ps)-c.ChildDefaults])
}

// UsesPSK reports whether either end authenticates with a pre-shared key.
func (c Conn) UsesPSK() bool {
	return c.Local.Auth == AuthPSK || c.Remote.Auth == AuthPSK || c.Local.Auth == AuthXAuthPSK || c.Remote.Auth == AuthXAuthPSK
}

// strongSwan defaults of ipsec.conf(5).
const (
	DefaultIKELifetime = 3 * time.Hour
	DefaultLifetime    = time.Hour
	DefaultMargin      = 9 * time.Minute
	DefaultRekeyFuzz   = 100
	DefaultKeyingTries = 3
	DefaultDPDDelay    = 30 * time.Second
	DefaultDPDTimeout  = 150 * time.Second
)

// Limits enforced on connections, see the package documentation.
const (
	MaxConns         = 10000
	MaxSubnetsPerEnd = 256
	MaxAlsoDepth     = 32
	MaxLifetime      = 365 * 24 * time.Hour
	MinLifetime      = 10 * time.Second
	MaxReplayWindow  = 1 << 20
)

func defaultConn(name string, d Dialect) Conn {
	c := Conn{
		Name:         name,
		Dialect:      d,
		Version:      IKEAny,
		Auto:         AutoIgnore,
		Mode:         ModeTunnel,
		IKELifetime:  DefaultIKELifetime,
		Lifetime:     DefaultLifetime,
		Margin:       DefaultMargin,
		RekeyFuzz:    DefaultRekeyFuzz,
		KeyingTries:  DefaultKeyingTries,
		Rekey:        true,
		Reauth:       true,
		DPDDelay:     DefaultDPDDelay,
		DPDTimeout:   DefaultDPDTimeout,
		MOBIKE:       true,
		ReplayWindow: -1,
	}
	if d == DialectLibreswan {
		// Openswan and Libreswan 3 initiate IKEv1 unless ikev2= says otherwise.
		c.Version = IKEv1
	}
	return c
}

func (c Conn) String() string {
	return fmt.Sprintf("conn %s: %s %s === %s %s (%s, %s)", c.Name, c.Local.Host, subnetsString(c.Local.Subnets), subnetsString(c.Remote.Subnets), c.Remote.Host, c.Version, c.Auto)
}

func subnetsString(ts []spd.TS) string {
	s := ""
	for i, t := range ts {
		if i > 0 {
			s += ","
		}
		s += t.String()
	}
	return s
}
