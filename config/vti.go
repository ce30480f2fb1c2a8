package config

import (
	"net/netip"
	"strings"
)

// Libreswan's VTI keywords beyond the device (routed.go): leftvti= is the
// address Libreswan puts on the VTI, vti-routing= whether it routes the
// remote subnets into it. Both mean the same on a route-based conn's TUN
// device:
//
//	leftvti=169.254.10.2/30   the local end's address on the device (rightvti= when right is local)
//	vti-routing=yes           the remote subnets routed into the device while the conn is loaded
//
// Libreswan routes by default (vti-routing=yes); ipsecgw only when asked,
// because a provider's template has 0.0.0.0/0 selectors, where such a
// route would take the gateway's own IKE and ESP into the tunnel, and its
// updown script or BGP routes instead. vti-routing=yes with a /0 remote
// subnet is therefore an error.

// convertVTI reads leftvti=/rightvti= of the local end and vti-routing=.
// Called after chooseLocal.
func (cb *connBuilder) convertVTI() {
	c := cb.c
	local := "right"
	if c.LocalIsLeft {
		local = "left"
	}
	if kv, ok := cb.get(local + "vti"); ok && kv.Value != "" {
		p, err := netip.ParsePrefix(kv.Value)
		switch {
		case err != nil || p.Addr().Zone() != "":
			cb.errf(kv, "%q is not an address with its prefix length (e.g. 169.254.10.2/30)", kv.Value)
		case c.Interface.ID == 0:
			cb.errf(kv, "%svti= puts an address on a route-based conn's device; give the conn mark=, if_id_in/if_id_out= or ipsec-interface=", local)
		default:
			c.VTIAddr = netip.PrefixFrom(p.Addr().Unmap(), p.Bits())
		}
	}
	kv, ok := cb.get("vti-routing")
	if !ok || kv.Value == "" {
		return
	}
	switch strings.ToLower(kv.Value) {
	case "no":
		return
	case "yes":
	default:
		cb.errf(kv, "%q: vti-routing takes yes or no", kv.Value)
		return
	}
	if c.Interface.ID == 0 {
		cb.errf(kv, "vti-routing=yes routes into a route-based conn's device; give the conn mark=, if_id_in/if_id_out= or ipsec-interface=")
		return
	}
	for _, ts := range c.Remote.Subnets {
		for _, p := range ts.Range.Prefixes() {
			if p.Bits() == 0 {
				cb.errf(kv, "vti-routing=yes would route %s, the gateway's own IKE and ESP included, into %s; "+
					"set vti-routing=no and route with the updown script or BGP", p, c.Interface.Name)
				return
			}
		}
	}
	c.VTIRouting = true
}
