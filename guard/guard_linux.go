package guard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/ipsecgw/ipsecgw/config"
)

// Protocol is the rtnetlink route protocol (rtm_protocol) that marks a
// route as a guard of ours, so that a restarted daemon, `ipsecgw guard`
// and `ip route flush proto 50` find exactly these routes. The kernel does
// not interpret protocols above 4 (RTPROT_STATIC); 50 is assigned neither
// by the kernel headers nor by iproute2's rt_protos, and is easy to
// remember: IP protocol 50 is ESP.
const Protocol netlink.RouteProtocol = 50

// ProtocolName is the name the documentation suggests for Protocol in
// /etc/iproute2/rt_protos.d/ipsecgw.conf ("50 ipsecgw"), so that `ip
// route` shows "proto ipsecgw".
const ProtocolName = "ipsecgw"

// Metric is the guard routes' metric (rtnetlink priority). It is higher
// than that of every route ipsecgw puts on its TUN device (IPv4 0, IPv6
// the kernel's default 1024) and of any route an operator would write, so
// every other route for the same prefix wins over a guard; the guard only
// decides where no such route exists. 2^31-1 reads back the same in tools
// that take the metric as signed.
const Metric = 1<<31 - 1

// Options configure a Guard.
type Options struct {
	// NetNS is the path of a network namespace file (e.g. /run/netns/x)
	// whose main routing table the Guard manages; empty means the
	// process's own namespace, which is where the daemon's TUN device is.
	NetNS string
	// Logger gets a line per route added or removed, one per exception
	// (each only the first time it is seen) and a summary per Sync. Nil
	// discards them.
	Logger *slog.Logger
	// Resolve looks up peers given by name; nil means SystemResolver.
	Resolve Resolver
}

// Guard installs and removes the guard routes of one network namespace.
// Its methods may be called from several goroutines.
type Guard struct {
	opts Options
	log  *slog.Logger

	mu sync.Mutex
	nl *netlink.Handle // opened on first use
	// told records the exceptions and unresolved peers already logged, so
	// that a reload repeats none of them.
	told map[string]bool
}

// New returns a Guard. It opens nothing yet: the first Sync, Routes or
// Flush opens the netlink socket and reports any error it meets.
func New(o Options) *Guard {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.Resolve == nil {
		o.Resolve = SystemResolver
	}
	return &Guard{opts: o, log: log, told: map[string]bool{}}
}

// Close releases the netlink socket. The guard routes stay.
func (g *Guard) Close() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.nl != nil {
		g.nl.Close()
		g.nl = nil
	}
	return nil
}

func (g *Guard) handle() (*netlink.Handle, error) {
	if g.nl != nil {
		return g.nl, nil
	}
	var (
		h   *netlink.Handle
		err error
	)
	if g.opts.NetNS == "" {
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE)
	} else {
		ns, nerr := netns.GetFromPath(g.opts.NetNS)
		if nerr != nil {
			return nil, fmt.Errorf("guard: network namespace %s: %w", g.opts.NetNS, nerr)
		}
		defer ns.Close()
		h, err = netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	}
	if err != nil {
		return nil, fmt.Errorf("guard: netlink: %w", err)
	}
	g.nl = h
	return h, nil
}

// Result says what a Sync found and did.
type Result struct {
	Plan Plan
	// Added, Kept and Removed list guard routes by prefix. Kept ones were
	// there already (from this process or an earlier one); Removed ones
	// were ours but no conn needs them any more, or were ours for a wanted
	// prefix but not a blackhole with Metric (then replaced by one).
	Added, Kept, Removed []netip.Prefix
	// RemovedDevices are devices of route-based conns that an earlier
	// run left (devices_linux.go) and no conn uses any more.
	RemovedDevices []string
}

// Sync makes the namespace's guard routes those cfg asks for (NewPlan):
// it adds the missing ones, keeps those of ours already there (this
// process's or an earlier one's), and removes routes of ours (Protocol)
// that no conn needs any more. Routes of other protocols are never touched. Every problem is
// in the returned error, which says what to do about it; Sync carries on
// with the other routes after one fails.
func (g *Guard) Sync(cfg *config.Config) (Result, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	res := Result{Plan: NewPlan(context.Background(), cfg.Conns(), g.opts.Resolve)}
	g.tell(res.Plan)
	h, err := g.handle()
	if err != nil {
		return res, err
	}
	have, err := listOurs(h)
	if err != nil {
		return res, err
	}
	want := map[netip.Prefix]bool{}
	for _, w := range res.Plan.Routes {
		want[w.Prefix] = true
	}
	kept := map[netip.Prefix]bool{}
	var stale []netlink.Route
	for _, r := range have {
		p := prefixOf(r)
		if want[p] && isGuard(r) && !kept[p] {
			kept[p] = true
			res.Kept = append(res.Kept, p)
			continue
		}
		stale = append(stale, r)
	}
	var errs []error
	// Add before removing, so that replacing a route of ours that has
	// another shape leaves no moment without a guard.
	for _, w := range res.Plan.Routes {
		if kept[w.Prefix] {
			continue
		}
		if err := h.RouteAdd(guardRoute(w.Prefix)); err != nil {
			errs = append(errs, explain("adding the guard route", w.Prefix, err))
			continue
		}
		res.Added = append(res.Added, w.Prefix)
		g.log.Info("leak guard added", "subnet", w.Prefix, "conns", strings.Join(w.Conns, ","), "metric", Metric, "proto", int(Protocol))
	}
	for _, r := range stale {
		p := prefixOf(r)
		if err := h.RouteDel(delRoute(r)); err != nil && !gone(err) {
			errs = append(errs, explain("removing the guard route", p, err))
			continue
		}
		res.Removed = append(res.Removed, p)
		why := "no conn needs it"
		if want[p] {
			why = "replaced by a blackhole with the guard metric"
		}
		g.log.Info("leak guard removed", "subnet", p, "why", why, "metric", r.Priority)
	}
	devs, err := g.pruneDevices(h, routedNames(cfg), "no conn uses it")
	if err != nil {
		errs = append(errs, err)
	}
	res.RemovedDevices = devs
	g.log.Info("leak guards synced", "guards", len(res.Plan.Routes), "kept", len(res.Kept), "added", len(res.Added),
		"removed", len(res.Removed), "exceptions", len(res.Plan.Exceptions), "errors", len(errs))
	return res, errors.Join(errs...)
}

// tell logs each exception and unresolved peer of the plan once per Guard.
func (g *Guard) tell(p Plan) {
	for _, e := range p.Exceptions {
		if key := "e\x00" + e.String(); !g.told[key] {
			g.told[key] = true
			g.log.Info("leak guard: remote subnet not guarded", "conn", e.Conn, "subnet", e.Prefix, "reason", e.Reason)
		}
	}
	for _, u := range p.Unresolved {
		if key := "u\x00" + u.Conn + "\x00" + u.Host; !g.told[key] {
			g.told[key] = true
			g.log.Warn("leak guard: cannot look up the peer, so its subnets are guarded without checking that "+
				"the peer lies outside them; if it lies inside, IKE to it is blackholed whenever no tunnel is up: "+
				"write right= as an address", "conn", u.Conn, "peer", u.Host, "err", u.Err)
		}
	}
}

// Route is a guard route of ours found in the routing table.
type Route struct {
	Prefix netip.Prefix
	Metric int
	// Blackhole is false for a route with our protocol that is not a
	// blackhole (not installed by ipsecgw; Sync removes it).
	Blackhole bool
}

// Routes lists the routes of ours (Protocol) in the main table.
func (g *Guard) Routes() ([]Route, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	h, err := g.handle()
	if err != nil {
		return nil, err
	}
	have, err := listOurs(h)
	if err != nil {
		return nil, err
	}
	out := make([]Route, 0, len(have))
	for _, r := range have {
		out = append(out, Route{Prefix: prefixOf(r), Metric: r.Priority, Blackhole: r.Type == unix.RTN_BLACKHOLE})
	}
	return out, nil
}

// Flush removes every route of ours: the deliberate opening of the
// gateway. A running daemon installs the guards again at its next reload
// or start.
func (g *Guard) Flush() ([]netip.Prefix, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	h, err := g.handle()
	if err != nil {
		return nil, err
	}
	have, err := listOurs(h)
	if err != nil {
		return nil, err
	}
	var removed []netip.Prefix
	var errs []error
	for _, r := range have {
		p := prefixOf(r)
		if err := h.RouteDel(delRoute(r)); err != nil && !gone(err) {
			errs = append(errs, explain("removing the guard route", p, err))
			continue
		}
		removed = append(removed, p)
		g.log.Info("leak guard removed (flush)", "subnet", p)
	}
	return removed, errors.Join(errs...)
}

// listOurs returns the routes with our protocol in the main table, IPv4
// then IPv6. A dump that the kernel reports as interrupted (the table
// changed meanwhile, e.g. a TUN route was added) is repeated.
func listOurs(h *netlink.Handle) ([]netlink.Route, error) {
	filter := &netlink.Route{Table: unix.RT_TABLE_MAIN, Protocol: Protocol}
	mask := netlink.RT_FILTER_TABLE | netlink.RT_FILTER_PROTOCOL
	var out []netlink.Route
	for _, family := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		var (
			rs  []netlink.Route
			err error
		)
		for range 5 {
			rs, err = h.RouteListFiltered(family, filter, mask)
			if !errors.Is(err, netlink.ErrDumpInterrupted) {
				break
			}
		}
		if err != nil {
			return nil, fmt.Errorf("guard: listing routes: %w", err)
		}
		out = append(out, rs...)
	}
	return out, nil
}

// isGuard reports whether a route of ours has the shape guardRoute gives.
func isGuard(r netlink.Route) bool {
	return r.Type == unix.RTN_BLACKHOLE && r.Priority == Metric
}

func guardRoute(p netip.Prefix) *netlink.Route {
	return &netlink.Route{
		Dst:      ipNet(p),
		Type:     unix.RTN_BLACKHOLE,
		Protocol: Protocol,
		Priority: Metric,
		Table:    unix.RT_TABLE_MAIN,
	}
}

// delRoute names exactly one listed route for RTM_DELROUTE: prefix, type,
// protocol, metric and table (the kernel deletes the first route that
// matches what is given).
func delRoute(r netlink.Route) *netlink.Route {
	return &netlink.Route{
		Dst:      ipNet(prefixOf(r)),
		Type:     r.Type,
		Protocol: r.Protocol,
		Priority: r.Priority,
		Table:    unix.RT_TABLE_MAIN,
	}
}

func prefixOf(r netlink.Route) netip.Prefix {
	if r.Dst == nil {
		if r.Family == netlink.FAMILY_V6 {
			return netip.PrefixFrom(netip.IPv6Unspecified(), 0)
		}
		return netip.PrefixFrom(netip.IPv4Unspecified(), 0)
	}
	a, _ := netip.AddrFromSlice(r.Dst.IP)
	ones, _ := r.Dst.Mask.Size()
	return netip.PrefixFrom(a.Unmap(), ones)
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

// gone reports the errors of deleting a route that is not there (any
// more): someone else removed it, which is what we wanted.
func gone(err error) bool {
	return errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT)
}

// explain turns a netlink error into one that says what to do.
func explain(op string, p netip.Prefix, err error) error {
	switch {
	case errors.Is(err, unix.EPERM):
		return fmt.Errorf("guard: %s %s: %w: ipsecgw needs CAP_NET_ADMIN in its network namespace for the leak guards "+
			"(run it as root or with AmbientCapabilities=CAP_NET_ADMIN); without them traffic for this subnet "+
			"leaves in clear whenever no tunnel is up", op, p, err)
	case errors.Is(err, unix.EEXIST):
		return fmt.Errorf("guard: %s %s: %w: a route for it with metric %d exists that ipsecgw did not install; "+
			"it was left alone and decides where this traffic goes when no tunnel is up", op, p, err, Metric)
	}
	return fmt.Errorf("guard: %s %s: %w", op, p, err)
}
