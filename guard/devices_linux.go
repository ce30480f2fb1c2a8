package guard

import (
	"errors"
	"fmt"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/ipsecgw/ipsecgw/config"
)

// Route-based conns. A route-based conn's traffic is steered into its own
// device (ipsec100 …) by routes the updown script, BGP or the operator put
// on that device, for prefixes ipsecgw does not know (the selectors are
// 0.0.0.0/0). If the device vanished with a killed daemon, those routes
// would vanish with it and the traffic would leave by the default route
// in clear. So the daemon makes these devices persistent
// (tun.Config.Persist): after a crash the device stays, without carrier,
// with every address and route on it, and the kernel drops what is routed
// into it (nothing reads it), as it drops traffic for a kernel VTI whose
// SA is gone. The restarted daemon attaches to the device again. A clean
// stop and a reload that removes the conn remove the device (the operator
// asked for the tunnel to go).
//
// DeviceAlias marks these devices, so that Sync can remove one that a
// killed daemon left behind and that no conn of the configuration uses any
// more, and Flush can open the gateway deliberately.

// DeviceAlias is the interface alias (`ip link show` prints it) of the
// devices of route-based conns.
const DeviceAlias = "ipsecgw route-based conn"

// Device is a device of a route-based conn found in the namespace.
type Device struct {
	Name  string
	Index int
	// Attached is true while a process reads the device (it has
	// carrier); a device left by a killed daemon is not attached.
	Attached bool
}

// Devices lists the devices marked DeviceAlias.
func (g *Guard) Devices() ([]Device, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	h, err := g.handle()
	if err != nil {
		return nil, err
	}
	return listDevices(h)
}

func listDevices(h *netlink.Handle) ([]Device, error) {
	links, err := h.LinkList()
	for range 5 {
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
		links, err = h.LinkList()
	}
	if err != nil {
		return nil, fmt.Errorf("guard: listing devices: %w", err)
	}
	var out []Device
	for _, l := range links {
		a := l.Attrs()
		if a.Alias != DeviceAlias {
			continue
		}
		out = append(out, Device{Name: a.Name, Index: a.Index, Attached: a.RawFlags&unix.IFF_LOWER_UP != 0})
	}
	slices.SortFunc(out, func(a, b Device) int { return a.Index - b.Index })
	return out, nil
}

// routedNames are the device names of cfg's route-based conns that the
// daemon creates (auto=ignore conns get none).
func routedNames(cfg *config.Config) map[string]bool {
	names := map[string]bool{}
	for _, c := range cfg.Conns() {
		if c.RouteBased() && c.Auto != config.AutoIgnore {
			names[c.Interface.Name] = true
		}
	}
	return names
}

// pruneDevices removes the detached devices marked DeviceAlias that keep
// does not name (all of them for a nil keep). Attached ones belong to a
// running daemon, which removes them itself.
func (g *Guard) pruneDevices(h *netlink.Handle, keep map[string]bool, why string) ([]string, error) {
	devs, err := listDevices(h)
	if err != nil {
		return nil, err
	}
	var removed []string
	var errs []error
	for _, d := range devs {
		if d.Attached || keep[d.Name] {
			continue
		}
		if err := h.LinkDel(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: d.Index}}); err != nil && !errors.Is(err, unix.ENODEV) {
			errs = append(errs, fmt.Errorf("guard: removing device %s of a route-based conn: %w", d.Name, err))
			continue
		}
		removed = append(removed, d.Name)
		g.log.Info("route-based device left by an earlier run removed", "device", d.Name, "why", why)
	}
	return removed, errors.Join(errs...)
}

// FlushDevices removes every detached device marked DeviceAlias (left by
// a killed daemon): traffic routed into them then takes the next best
// route. Devices a running daemon reads are left alone.
func (g *Guard) FlushDevices() ([]string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	h, err := g.handle()
	if err != nil {
		return nil, err
	}
	return g.pruneDevices(h, nil, "flush")
}
