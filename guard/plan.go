package guard

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
)

// Want is one guard route a configuration asks for.
type Want struct {
	Prefix netip.Prefix
	// Conns are the connections whose remote subnets include Prefix, in
	// configuration order.
	Conns []string
}

// Exception is a remote subnet of a guarded connection that gets no guard
// route, and why.
type Exception struct {
	Conn   string
	Prefix netip.Prefix
	Reason string
}

func (e Exception) String() string {
	return fmt.Sprintf("conn %s: %s: %s", e.Conn, e.Prefix, e.Reason)
}

// Unresolved is a peer given by name (right=vpn.example.com) whose
// addresses could not be looked up, so the guard routes could not be
// checked against them. The routes are installed anyway: leaking is what
// the guard exists to prevent, and a remote subnet that contains its own
// peer's public address is rare.
type Unresolved struct {
	Conn, Host string
	Err        error
}

func (u Unresolved) String() string {
	return fmt.Sprintf("conn %s: peer %q: %v", u.Conn, u.Host, u.Err)
}

// Plan is what a configuration asks of the guard.
type Plan struct {
	// Routes are sorted by address family, address and length.
	Routes     []Want
	Exceptions []Exception
	Unresolved []Unresolved
}

// Resolver looks up the addresses of a peer given by name.
type Resolver func(ctx context.Context, host string) ([]netip.Addr, error)

// DNSTimeout bounds each look-up of a peer given by name.
const DNSTimeout = 3 * time.Second

// SystemResolver is the Resolver of the host's own DNS configuration.
func SystemResolver(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// Reasons for exceptions; the log and `ipsecgw guard sync` show them.
const (
	reasonDefault = "a blackhole route for a whole address family cannot win over the underlay's " +
		"default route (equal prefix length, and the default route's metric is lower); " +
		"a route-based conn (mark=, if_id_*, ipsec-interface=) is guarded by its persistent device instead; " +
		"a policy-based full tunnel is not guarded"
	reasonPeerFmt = "contains the peer %s of conn %s, which IKE and ESP must still reach when no tunnel is up"
	reasonModeFmt = "type=%s: its traffic does not go through a tunnel"
)

// guarded reports whether a connection's remote subnets get guard routes:
// every conn the daemon loads for negotiation, whether it initiates
// (auto=start), waits for traffic (auto=route) or for the peer (auto=add),
// whatever its IKE version.
func guarded(c config.Conn) bool {
	return c.Auto == config.AutoStart || c.Auto == config.AutoRoute || c.Auto == config.AutoAdd
}

// NewPlan works out the guard routes for conns: one per remote subnet of
// every guarded conn, except /0 prefixes and prefixes that contain the
// address of any conn's peer. Peers given by name are looked up with
// resolve (each with DNSTimeout), but only when some subnet needs the
// check; resolve may be nil when no conn names its peer.
func NewPlan(ctx context.Context, conns []config.Conn, resolve Resolver) Plan {
	type candidate struct {
		conn string
		p    netip.Prefix
	}
	var plan Plan
	var cands []candidate
	for _, c := range conns {
		if !guarded(c) {
			continue
		}
		for _, ts := range c.Remote.Subnets {
			for _, p := range ts.Range.Prefixes() {
				switch {
				case c.Mode != config.ModeTunnel && c.Mode != config.ModeTransport:
					plan.Exceptions = append(plan.Exceptions, Exception{Conn: c.Name, Prefix: p, Reason: fmt.Sprintf(reasonModeFmt, c.Mode)})
				case p.Bits() == 0:
					plan.Exceptions = append(plan.Exceptions, Exception{Conn: c.Name, Prefix: p, Reason: reasonDefault})
				default:
					cands = append(cands, candidate{c.Name, p})
				}
			}
		}
	}
	if len(cands) == 0 {
		return plan
	}

	// The peers of every conn, guarded or not: `ipsecgw up` may bring up
	// an auto=ignore conn too, and its IKE must not be blackholed either.
	type peer struct {
		conn string
		addr netip.Addr
	}
	var peers []peer
	looked := map[string][]netip.Addr{}
	for _, c := range conns {
		r := c.Remote
		switch {
		case r.Addr.IsValid():
			peers = append(peers, peer{c.Name, r.Addr.Unmap()})
		case r.IsAny() || r.Host[0] == '%':
			// %any, %defaultroute …: no address to keep reachable.
		default:
			addrs, ok := looked[r.Host]
			if !ok {
				var err error
				addrs, err = lookup(ctx, resolve, r.Host)
				if err != nil {
					plan.Unresolved = append(plan.Unresolved, Unresolved{Conn: c.Name, Host: r.Host, Err: err})
				}
				looked[r.Host] = addrs
			}
			for _, a := range addrs {
				peers = append(peers, peer{c.Name, a.Unmap()})
			}
		}
	}

	// inside returns a peer within p, the conn's own first so that the
	// reason names the obvious one.
	inside := func(conn string, p netip.Prefix) (peer, bool) {
		for _, own := range []bool{true, false} {
			for _, pe := range peers {
				if (pe.conn == conn) == own && p.Contains(pe.addr) {
					return pe, true
				}
			}
		}
		return peer{}, false
	}
	byPrefix := map[netip.Prefix]*Want{}
	for _, cd := range cands {
		if pe, ok := inside(cd.conn, cd.p); ok {
			plan.Exceptions = append(plan.Exceptions, Exception{Conn: cd.conn, Prefix: cd.p,
				Reason: fmt.Sprintf(reasonPeerFmt, pe.addr, pe.conn)})
			continue
		}
		w := byPrefix[cd.p]
		if w == nil {
			w = &Want{Prefix: cd.p}
			byPrefix[cd.p] = w
		}
		if !slices.Contains(w.Conns, cd.conn) {
			w.Conns = append(w.Conns, cd.conn)
		}
	}
	for _, w := range byPrefix {
		plan.Routes = append(plan.Routes, *w)
	}
	slices.SortFunc(plan.Routes, func(a, b Want) int { return comparePrefix(a.Prefix, b.Prefix) })
	return plan
}

func lookup(ctx context.Context, resolve Resolver, host string) ([]netip.Addr, error) {
	if resolve == nil {
		return nil, fmt.Errorf("no resolver for peer names")
	}
	ctx, cancel := context.WithTimeout(ctx, DNSTimeout)
	defer cancel()
	addrs, err := resolve(ctx, host)
	if err == nil && len(addrs) == 0 {
		err = fmt.Errorf("no addresses")
	}
	return addrs, err
}

// comparePrefix orders IPv4 before IPv6, then by address, then shorter
// prefixes first.
func comparePrefix(a, b netip.Prefix) int {
	if a.Addr().Is4() != b.Addr().Is4() {
		if a.Addr().Is4() {
			return -1
		}
		return 1
	}
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return a.Bits() - b.Bits()
}
