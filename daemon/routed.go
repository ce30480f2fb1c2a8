package daemon

import (
	"maps"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/guard"
	"github.com/ipsecgw/ipsecgw/transform"
	"github.com/ipsecgw/ipsecgw/tun"
)

// Route-based conns (config.Interface): each interface ID gets a TUN
// device of its own, named as the conn says (ipsec<ID>, or Libreswan's
// vti-interface=), which the dataplane reads and writes beside the main
// TUN (esp.Dataplane.AddInterface). ipsecgw puts no address and no route
// on it: the user's updown script (PLUTO_INTERFACE), BGP or static routes
// do, as with a VTI. The device is persistent, so that it and those routes
// outlive a killed daemon (fail closed); Close removes it.

// addInterfaces creates the devices of cfg's route-based conns that do
// not exist yet and makes cfg's conn → interface ID and conn → priority=
// mappings the ones the installer uses. Called at build and, before IKE sees a new
// configuration, at reload. A device that cannot be created is logged:
// the conn's SAs come up, and their traffic is dropped until a reload
// manages.
func (g *Gateway) addInterfaces(cfg *config.Config) {
	if g.dp == nil || g.inst == nil {
		return // a gateway without a dataplane (tests of the control logic)
	}
	ids := map[string]uint32{}
	prios := map[string]uint32{}
	byID := map[uint32][]config.Conn{}
	for _, c := range cfg.Conns() {
		if c.Priority != 0 {
			prios[c.Name] = c.Priority
		}
		if c.RouteBased() && c.Auto != config.AutoIgnore {
			ids[c.Name] = c.Interface.ID
			byID[c.Interface.ID] = append(byID[c.Interface.ID], c)
		}
	}
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		conns := byID[id]
		underlay := underlayMTU(conns[0].Remote.Addr)
		mtu := routedMTU(conns, underlay)
		g.ifMu.Lock()
		dev, exists := g.ifaces[id]
		g.ifMu.Unlock()
		if exists {
			// A reload: the proposals, the peer or the underlay may
			// have changed, and so the MTU and the clamp with it.
			g.updateInterface(dev, conns, mtu, underlay)
			g.applyVTI(id, dev, conns)
			continue
		}
		// Persistent: killed, the daemon leaves the device and the routes
		// on it behind, so traffic routed into the tunnel is dropped
		// instead of leaving by the default route (package guard). A
		// restarted daemon attaches to it here.
		dev, err := tun.Create(tun.Config{Name: conns[0].Interface.Name, MTU: mtu, Persist: true, Alias: guard.DeviceAlias})
		if err != nil {
			g.log.Error("cannot create the device of a route-based conn", "conn", conns[0].Name, "device", conns[0].Interface.Name, "err", err)
			continue
		}
		if err := dev.SetClampMSS(clampSetting(conns[0].TCPMSS)); err != nil {
			g.log.Error("TCP MSS clamp of a route-based device", "device", dev.Name(), "err", err)
		}
		if err := g.dp.AddInterface(id, dev, g.inst.InterfacePolicies(id)); err != nil {
			dev.Close()
			g.log.Error("cannot add the device of a route-based conn", "conn", conns[0].Name, "device", dev.Name(), "err", err)
			continue
		}
		g.ifMu.Lock()
		g.ifaces[id] = dev
		g.ifMu.Unlock()
		g.applyVTI(id, dev, conns)
		g.log.Info("route-based device created", "device", dev.Name(), "interface_id", id, "mtu", dev.MTU(), "underlay_mtu", underlay,
			"conns", len(conns), "tcpmss", conns[0].TCPMSS)
	}
	g.connIfaces.Store(&ids)
	g.connPrios.Store(&prios)
}

// routedDevice is what updateInterface changes on a route-based conn's
// device (*tun.TUN).
type routedDevice interface {
	Name() string
	MTU() int
	SetMTU(int) error
	SetClampMSS(int) error
	AddAddress(netip.Prefix) error
	RemoveAddress(netip.Prefix) error
	AddRoute(netip.Prefix) error
	RemoveRoute(netip.Prefix) error
}

// vtiState is what applyVTI put on a device.
type vtiState struct {
	addrs, routes []netip.Prefix
}

// vtiWant is what the conns of one device ask to be put on it: their
// leftvti= addresses and, with vti-routing=yes, their remote subnets.
func vtiWant(conns []config.Conn) vtiState {
	var w vtiState
	for _, c := range conns {
		if c.VTIAddr.IsValid() && !slices.Contains(w.addrs, c.VTIAddr) {
			w.addrs = append(w.addrs, c.VTIAddr)
		}
		if !c.VTIRouting {
			continue
		}
		for _, ts := range c.Remote.Subnets {
			for _, p := range ts.Range.Prefixes() {
				if !slices.Contains(w.routes, p) {
					w.routes = append(w.routes, p)
				}
			}
		}
	}
	return w
}

// applyVTI makes the addresses and routes Libreswan's leftvti= and
// vti-routing=yes ask for those on the device of interface ID id: what an
// earlier configuration put there and this one no longer asks for is
// removed, the rest added (adding what is there already is not an error,
// so a device a killed daemon left keeps working). The routes stay while
// the conn is loaded: with no CHILD SA the daemon drops what they bring,
// as the guard does for policy-based conns. Failures are logged.
func (g *Gateway) applyVTI(id uint32, dev routedDevice, conns []config.Conn) {
	want := vtiWant(conns)
	g.ifMu.Lock()
	old := g.ifVTI[id]
	g.ifMu.Unlock()
	for _, a := range old.addrs {
		if !slices.Contains(want.addrs, a) {
			if err := dev.RemoveAddress(a); err != nil {
				g.log.Warn("removing a leftvti= address", "device", dev.Name(), "addr", a, "err", err)
			}
		}
	}
	for _, r := range old.routes {
		if !slices.Contains(want.routes, r) {
			if err := dev.RemoveRoute(r); err != nil {
				g.log.Warn("removing a vti-routing route", "device", dev.Name(), "subnet", r, "err", err)
			}
		}
	}
	for _, a := range want.addrs {
		if err := dev.AddAddress(a); err != nil {
			g.log.Error("cannot put the leftvti= address on a route-based device", "device", dev.Name(), "addr", a, "err", err)
		}
	}
	for _, r := range want.routes {
		if err := dev.AddRoute(r); err != nil {
			g.log.Error("cannot route a remote subnet into a route-based device (vti-routing=yes)", "device", dev.Name(), "subnet", r, "err", err)
		}
	}
	g.ifMu.Lock()
	if g.ifVTI == nil {
		g.ifVTI = map[uint32]vtiState{}
	}
	g.ifVTI[id] = want
	g.ifMu.Unlock()
}

// updateInterface applies a reloaded configuration to an existing device:
// its MTU (the conns' ESP proposals, their peer or the underlay changed;
// without this a device kept the MTU of the proposals it was made for,
// and larger SAs' packets would need fragmenting after encryption) and
// its TCP MSS clamp. The MTU never exceeds what the dataplane's buffers
// hold (esp.Dataplane.AddInterface's limit).
func (g *Gateway) updateInterface(dev routedDevice, conns []config.Conn, mtu, underlay int) {
	if g.dev != nil {
		mtu = min(mtu, max(g.dev.MTU(), tun.DefaultPathMTU))
	}
	if old := dev.MTU(); old != mtu {
		if err := dev.SetMTU(mtu); err != nil {
			g.log.Error("cannot change the MTU of a route-based device", "device", dev.Name(), "mtu", old, "want", mtu, "err", err)
		} else {
			g.log.Info("route-based device MTU changed", "device", dev.Name(), "mtu", mtu, "was", old, "underlay_mtu", underlay)
		}
	}
	if err := dev.SetClampMSS(clampSetting(conns[0].TCPMSS)); err != nil {
		g.log.Error("TCP MSS clamp of a route-based device", "device", dev.Name(), "err", err)
	}
}

// clampSetting turns config's tcpmss= (checked the same on all conns of a
// device) into the device's setting.
func clampSetting(v int) int {
	if v == config.TCPMSSFromMTU {
		return tun.MSSFromMTU
	}
	return v
}

// pruneInterfaces removes the devices no conn of cfg uses any more.
func (g *Gateway) pruneInterfaces(cfg *config.Config) {
	if g.dp == nil {
		return
	}
	used := map[uint32]bool{}
	for _, c := range cfg.Conns() {
		if c.RouteBased() && c.Auto != config.AutoIgnore {
			used[c.Interface.ID] = true
		}
	}
	g.ifMu.Lock()
	defer g.ifMu.Unlock()
	for id, dev := range g.ifaces {
		if used[id] {
			continue
		}
		delete(g.ifaces, id)
		delete(g.ifVTI, id)
		name := dev.Name()
		if err := g.dp.RemoveInterface(id); err != nil {
			g.log.Warn("removing a route-based device", "device", name, "err", err)
		}
		g.log.Info("route-based device removed", "device", name, "interface_id", id)
	}
}

// connInterface is the installer's view: a conn's interface ID, 0 for
// policy-based conns.
func (g *Gateway) connInterface(conn string) uint32 {
	if m := g.connIfaces.Load(); m != nil {
		return (*m)[conn]
	}
	return 0
}

// connPriority is the installer's view of a conn's priority= (0: unset).
func (g *Gateway) connPriority(conn string) uint32 {
	if m := g.connPrios.Load(); m != nil {
		return (*m)[conn]
	}
	return 0
}

// interfaceName is the device that carries a conn's traffic, for updown
// scripts (PLUTO_INTERFACE).
func (g *Gateway) interfaceName(c config.Conn) string {
	if c.RouteBased() {
		return c.Interface.Name
	}
	return g.dev.Name()
}

// routedMTU is the device MTU for conns sharing one device: the underlay
// MTU minus the largest ESP overhead any of their ESP proposals can cost,
// with UDP encapsulation (a NAT may appear) and the peer's address family
// (IPv4 when unknown), the way providers derive 1419-style MTUs for their
// VTIs. Nothing then needs fragmenting after encryption.
func routedMTU(conns []config.Conn, underlay int) int {
	mtu := underlay
	for _, c := range conns {
		f := tun.ESPFraming{UDPEncap: true, OuterIPv6: c.Remote.Addr.Is6()}
		for _, p := range c.ESP {
			for _, e := range p.Of(config.TransformENCR) {
				ei, err := transform.Lookup(transform.Transform{Type: transform.TypeENCR, ID: transform.ID(e.ID), KeyLen: e.KeyLen})
				if err != nil {
					continue
				}
				icv := ei.ICVSize
				for _, in := range p.Of(config.TransformINTEG) {
					if ii, err := transform.Lookup(transform.Transform{Type: transform.TypeINTEG, ID: transform.ID(in.ID)}); err == nil {
						icv = max(icv, ii.ICVSize)
					}
				}
				f.IVLen, f.BlockSize, f.ICVLen = max(f.IVLen, ei.IVSize), max(f.BlockSize, ei.BlockSize, 1), max(f.ICVLen, icv)
			}
		}
		if f.BlockSize == 0 { // no known proposal: the worst ipsecgw supports
			f.IVLen, f.BlockSize, f.ICVLen = 16, 16, 32
		}
		if m, err := tun.InnerMTU(underlay, f); err == nil {
			mtu = min(mtu, m)
		}
	}
	return mtu
}

// underlayMTU is the MTU of the interface the host routes peer through
// (the one of the default route for a peer not known yet), or 1500.
func underlayMTU(peer netip.Addr) int {
	dst := peer
	if !dst.IsValid() || dst.IsUnspecified() {
		dst = netip.MustParseAddr("198.51.100.1") // any global address: the default route
	}
	routes, err := netlink.RouteGet(net.IP(dst.AsSlice()))
	if err != nil || len(routes) == 0 {
		return tun.DefaultPathMTU
	}
	link, err := netlink.LinkByIndex(routes[0].LinkIndex)
	if err != nil || link.Attrs().MTU <= 0 {
		return tun.DefaultPathMTU
	}
	return link.Attrs().MTU
}
