// Package export writes the configuration the peer of a connection needs:
// the same tunnel seen from the other end (left and right swapped), with
// the connection's own proposals, lifetimes, DPD, identities and subnets,
// in the syntax of the product the peer runs (strongSwan's ipsec.conf or
// swanctl.conf, Libreswan, Cisco IOS, Juniper SRX, or ipsecgw itself).
//
// Only the proposals the file configured are exported, not the daemon
// defaults ipsecgw appends to a list without "!": the peer gets a strict
// list, so both ends agree on exactly what was asked for. The pre-shared
// key is written only when Options.WithSecrets is set; without it the
// formats that need one carry a comment saying where it goes.
package export

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/spd"
)

// Format names a product's configuration syntax.
type Format string

// Formats.
const (
	StrongSwan Format = "strongswan"  // ipsec.conf + ipsec.secrets (strongSwan 5, stroke)
	Swanctl    Format = "swanctl"     // swanctl.conf (strongSwan 5.2+ and 6, vici)
	Libreswan  Format = "libreswan"   // ipsec.conf + ipsec.secrets in Libreswan's dialect
	CiscoIOS   Format = "cisco-ios"   // IOS / IOS XE configuration commands
	JuniperSRX Format = "juniper-srx" // Junos set commands for an SRX
	IPsecGW    Format = "ipsecgw"     // ipsec.conf + ipsec.secrets as ipsecgw reads them
)

// Formats lists every format, for help texts and flag checks.
var Formats = []Format{StrongSwan, Swanctl, Libreswan, CiscoIOS, JuniperSRX, IPsecGW}

// Options says what to write.
type Options struct {
	Format Format
	// WithSecrets includes the pre-shared key. Without it no byte of the
	// key appears in the output.
	WithSecrets bool
	// Address is this gateway's address as the peer reaches it; it
	// replaces our left/right when that is %any, %defaultroute or an
	// address the peer does not see (behind a NAT).
	Address string
	// Interface is, on Cisco IOS and Juniper SRX, the peer device's
	// interface that faces us (the crypto map goes on it, the IKE gateway
	// listens on it). Required for juniper-srx, optional for cisco-ios.
	Interface string
	// TunnelInterface is the SRX secure tunnel interface the route-based
	// VPN binds to (default st0.0).
	TunnelInterface string
}

// File is one configuration file of the export.
type File struct {
	Name string // conventional file name: ipsec.conf, ipsec.secrets, swanctl.conf ...
	Text string
}

// Export renders the peer's configuration for connection name.
func Export(cfg *config.Config, name string, opts Options) ([]File, error) {
	c, ok := cfg.Conn(name)
	if !ok {
		return nil, fmt.Errorf("no conn named %q (conns: %s)", name, strings.Join(cfg.Names(), ", "))
	}
	p, err := newPeer(cfg, c, opts)
	if err != nil {
		return nil, err
	}
	switch opts.Format {
	case StrongSwan:
		return p.ipsecConf(false), nil
	case IPsecGW:
		return p.ipsecConf(true), nil
	case Swanctl:
		return p.swanctl(), nil
	case Libreswan:
		return p.libreswan()
	case CiscoIOS:
		return p.cisco()
	case JuniperSRX:
		return p.juniper()
	}
	return nil, fmt.Errorf("unknown format %q; expected one of %s", opts.Format, formatList())
}

// strict is the "!" of an ipsec.conf list that gets no defaults.
func strict(defaults bool) string {
	if defaults {
		return ""
	}
	return "!"
}

func formatList() string {
	s := make([]string, len(Formats))
	for i, f := range Formats {
		s[i] = string(f)
	}
	return strings.Join(s, ", ")
}

// side is one end as the peer sees it.
type side struct {
	host    string // address or host name; %any when unknown
	addr    netip.Addr
	id      config.Identity
	subnets []spd.TS
}

// peer is the connection turned around: own is the peer (our remote end),
// other is us (our local end).
type peer struct {
	name        string
	conn        config.Conn
	own, other  side
	ike, child  []config.Proposal
	ah          bool
	initiates   bool        // the peer starts the tunnel (we only respond)
	auto        config.Auto // what the written conn does at start
	dpdAction   string      // ipsec.conf dpdaction of the written conn; "" = no DPD
	closeAction string      // ipsec.conf closeaction; "" = none (Convert only)
	// ikeDefaults/childDefaults: the list is followed by ipsecgw's
	// defaults (Convert of a list without "!").
	ikeDefaults, childDefaults bool
	psk                        []byte // nil without WithSecrets
	opts                       Options
	source                     string
	tunnelIface                string
}

func newPeer(cfg *config.Config, c config.Conn, opts Options) (*peer, error) {
	return newSide(cfg, c, opts, true)
}

// newSide prepares the conn for writing: mirrored for the peer (export),
// or as it is (Convert).
func newSide(cfg *config.Config, c config.Conn, opts Options, mirror bool) (*peer, error) {
	if c.Local.Auth != config.AuthPSK || c.Remote.Auth != config.AuthPSK {
		return nil, fmt.Errorf("conn %s authenticates with %s/%s; only pre-shared key conns can be exported", c.Name, c.Local.Auth, c.Remote.Auth)
	}
	if c.Mode != config.ModeTunnel && c.Mode != config.ModeTransport {
		return nil, fmt.Errorf("conn %s is type=%s; only tunnel and transport conns have a peer configuration", c.Name, c.Mode)
	}
	p := &peer{name: c.Name, conn: c, opts: opts, source: fmt.Sprintf("%s:%d", filepath.Base(c.File), c.Line), tunnelIface: opts.TunnelInterface}
	if p.tunnelIface == "" {
		p.tunnelIface = "st0.0"
	}
	p.own = side{host: c.Remote.Host, addr: c.Remote.Addr, id: idOf(c.Remote), subnets: c.Remote.Subnets}
	p.other = side{host: c.Local.Host, addr: c.Local.Addr, id: idOf(c.Local), subnets: c.Local.Subnets}
	if !mirror {
		p.own, p.other = p.other, p.own
		p.ike, p.child, p.ah = c.ConfiguredIKE(), c.ConfiguredChild(), len(c.AH) > 0
		p.auto = c.Auto
		if c.DPDAction != config.ActionNone {
			p.dpdAction = c.DPDAction.String()
		}
		if c.CloseAction != config.ActionNone {
			p.closeAction = c.CloseAction.String()
		}
		return p, p.withPSK(cfg, c)
	}
	if opts.Address != "" {
		a, err := netip.ParseAddr(opts.Address)
		if err != nil {
			return nil, fmt.Errorf("--address %q: %v", opts.Address, err)
		}
		p.other.host, p.other.addr = a.Unmap().String(), a.Unmap()
		if c.Local.ID.Type == config.IDAny {
			p.other.id = config.Identity{Type: idTypeOf(a), Addr: a.Unmap()}
		}
	}
	if p.other.host == "" || strings.HasPrefix(p.other.host, "%") {
		return nil, fmt.Errorf("conn %s: our address is %s, which the peer cannot use; give the address it reaches us at with --address", c.Name, c.Local.Host)
	}
	if p.other.id.Type == config.IDAny {
		return nil, fmt.Errorf("conn %s: our identity is unknown (no leftid and no literal address); set an id or give --address", c.Name)
	}
	if len(p.own.subnets) == 0 || len(p.other.subnets) == 0 {
		return nil, fmt.Errorf("conn %s: the subnets of both ends must be known to write the peer's selectors (set leftsubnet and rightsubnet)", c.Name)
	}
	p.ike, p.child, p.ah = c.ConfiguredIKE(), c.ConfiguredChild(), len(c.AH) > 0
	// Exactly one end starts the tunnel: the peer does when we only
	// respond (auto=add, or route: our trap waits for traffic, its start
	// brings the SA up sooner).
	p.initiates = c.Auto != config.AutoStart
	p.auto = config.AutoAdd
	if p.initiates {
		p.auto = config.AutoStart
	}
	if c.DPDAction != config.ActionNone {
		p.dpdAction = "clear"
		if p.initiates {
			p.dpdAction = "restart"
		}
	}
	return p, p.withPSK(cfg, c)
}

func (p *peer) withPSK(cfg *config.Config, c config.Conn) error {
	if !p.opts.WithSecrets {
		return nil
	}
	psk, ok := cfg.PSK(c)
	if !ok {
		return fmt.Errorf("conn %s: no pre-shared key in the secrets file for %s and %s", c.Name, idOf(c.Local), idOf(c.Remote))
	}
	p.psk = psk.Bytes()
	return nil
}

// idOf is the identity an end uses: its id=, or its address.
func idOf(e config.End) config.Identity {
	if e.ID.Type == config.IDAny && e.Addr.IsValid() {
		return config.Identity{Type: idTypeOf(e.Addr), Addr: e.Addr}
	}
	return e.ID
}

func idTypeOf(a netip.Addr) config.IDType {
	if a.Is4() {
		return config.IDIPv4
	}
	return config.IDIPv6
}

// hostOrAny is the peer's own address keyword: %any when we accept it
// from anywhere (it then uses its default route).
func (s side) hostOr(dflt string) string {
	if s.host == "" || strings.HasPrefix(s.host, "%") {
		return dflt
	}
	return s.host
}

func tsList(ts []spd.TS) string {
	s := make([]string, len(ts))
	for i, t := range ts {
		s[i] = t.String()
	}
	return strings.Join(s, ",")
}

// proposalList renders proposals in strongSwan syntax, leaving out what
// strongSwan fills in by itself: PRFs that are the ones it derives from
// the integrity algorithms, and "noesn" as the only ESN choice.
func proposalList(ps []config.Proposal) string {
	return proposalListWith(ps, false)
}

// proposalListWith appends the "default" keyword when defaults follow.
func proposalListWith(ps []config.Proposal, defaults bool) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		var derived []string
		for _, t := range p.Of(config.TransformINTEG) {
			derived = append(derived, derivedPRF[t.Name()])
		}
		var prfs []string
		for _, t := range p.Of(config.TransformPRF) {
			prfs = append(prfs, t.Name())
		}
		omitPRF := !p.AEAD() && slices.Equal(prfs, slices.Compact(derived))
		esns := p.Of(config.TransformESN)
		omitESN := len(esns) == 1 && esns[0].ID == config.ESNNo
		var names []string
		for _, t := range p.Transforms {
			if (omitPRF && t.Type == config.TransformPRF) || (omitESN && t.Type == config.TransformESN) {
				continue
			}
			names = append(names, t.Name())
		}
		s[i] = strings.Join(names, "-")
	}
	if defaults {
		s = append(s, "default")
	}
	return strings.Join(s, ",")
}

// derivedPRF is the PRF strongSwan (and config) derive from an integrity
// algorithm of an IKE proposal that names no PRF.
var derivedPRF = map[string]string{
	"md5": "prfmd5", "sha1": "prfsha1", "sha256": "prfsha256", "sha256_96": "prfsha256",
	"sha384": "prfsha384", "sha512": "prfsha512", "aesxcbc": "prfaesxcbc",
}

// seconds renders a duration as whole seconds ("3600s"), which every
// product's parser takes.
func seconds(d time.Duration) string { return fmt.Sprintf("%ds", int64(d/time.Second)) }

func hexPSK(b []byte) string { return "0x" + hex.EncodeToString(b) }

// header is the comment that opens every file: where it came from and for
// which side.
func (p *peer) header(comment string, file string) string {
	return fmt.Sprintf("%s %s for the peer of ipsecgw conn %s (%s), written by ipsecgw export:\n%s this side is %s, ipsecgw is %s.\n",
		comment, file, p.name, p.source, comment, p.own.hostOr("the peer"), p.other.host)
}

// prefixes splits selectors into CIDR prefixes for products whose ACLs and
// traffic selectors take prefixes only; protocol/port selectors have no
// such form there.
func prefixes(ts []spd.TS, product string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, t := range ts {
		if t.Protocol != 0 || t.Ports != spd.AllPorts {
			return nil, fmt.Errorf("selector %s limits protocol or ports, which the %s export does not write", t, product)
		}
		out = append(out, t.Range.Prefixes()...)
	}
	return out, nil
}

// printable reports whether a PSK can be written as quoted text on the
// command line of a network device.
func printable(b []byte) bool {
	return len(b) > 0 && !slices.ContainsFunc(b, func(c byte) bool { return c < 0x21 || c > 0x7e || c == '"' || c == '\\' || c == '?' })
}
