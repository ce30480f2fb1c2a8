// Package guard keeps traffic for protected remote subnets from leaving
// the gateway in clear when no tunnel carries it: after the daemon died
// (even by SIGKILL), while a conn has no CHILD SA, after `ipsecgw down`
// and after a clean shutdown.
//
// # Why
//
// ipsecgw steers protected traffic into its TUN device with one route per
// remote subnet (daemon.Installer, tun.TUN.AddRoute). Those routes go when
// the last CHILD SA of a conn goes and with the device when the process
// ends; the kernel then forwards the traffic by its next best route,
// typically the underlay's default route, in clear. Kernel IPsec does not
// leak there because its policies outlive the IKE daemon. A userspace
// gateway needs kernel state that outlives it too.
//
// # What is installed
//
// For every remote subnet (config.Conn.Remote.Subnets) of every conn with
// auto=start, auto=route or auto=add, one blackhole route in the main
// table, IPv4 and IPv6:
//
//	blackhole 10.2.0.0/24 proto 50 metric 2147483647
//
// Its metric (Metric) is higher than that of the TUN's routes, so while
// the TUN route exists it carries the traffic; when it is gone, the guard
// still wins over a default route or any other shorter prefix, and the
// kernel drops the packets silently, as it does for a kernel IPsec policy
// without an SA. Any other route for exactly the same prefix (an
// operator's backup path, say) also wins over the guard by metric: that is
// a deliberate choice of the operator's.
//
// The route protocol (Protocol, 50) marks the routes as ours: Sync, run
// by the daemon at start and on every reload, adds the missing guards,
// keeps those already there (a restarted daemon adopts what the previous
// one left), and removes routes of ours that no conn needs any more (the
// conn was removed or set to auto=ignore). Routes of any other protocol
// are never touched.
//
// Exceptions, logged once each at info level with the reason:
//   - a prefix containing the address of a conn's peer (right=, looked up
//     when given by name): IKE and ESP must still reach the peer, so
//     host-to-host conns and subnets around the peer stay unguarded;
//   - a /0 prefix: a blackhole default route cannot win over the
//     underlay's default route (same length, lower metric there), and a
//     lower-metric one would cut the gateway off; route-based conns, whose
//     selectors are /0, are guarded by their persistent device instead
//     (below);
//   - conns of type=passthrough or type=drop, which carry no tunnel.
//
// # Route-based conns
//
// A route-based conn's traffic goes into its own device by routes that
// its updown script, BGP or the operator put there, for prefixes the
// configuration does not name. The daemon makes those devices persistent
// and marks them with DeviceAlias (devices_linux.go): a killed daemon
// leaves the device, without carrier, and every route on it in place, and
// the kernel drops what is routed into a TUN device nobody reads. A
// restarted daemon attaches to it again. A clean stop, and a reload that
// removes the last conn of the device, remove it with its routes (the
// operator took the tunnel down). Sync removes devices an earlier run left
// that no conn uses any more; `ipsecgw guard flush` removes those left
// detached; `ipsecgw guard list` shows them. This relies on the kernel
// using routes through a device without carrier, its default
// (net.ipv4.conf.*.ignore_routes_with_linkdown=0, the same for IPv6).
//
// # Lifetime
//
// The guards stay after `ipsecgw down`, after a clean shutdown and after a
// crash: the gateway fails closed. They are gone after a reboot, like
// kernel IPsec policies; the daemon installs them again when it starts
// (`ipsecgw guard sync` installs them without starting it).
//
// To open the gateway deliberately, remove the conn from ipsec.conf (or
// set auto=ignore) and reload, or remove the routes by hand:
//
//	ipsecgw guard flush
//	ip route flush proto 50; ip -6 route flush proto 50
//
// A running daemon puts flushed guards back at its next reload or start.
//
// Sync runs in the daemon's own network namespace (Options.NetNS for
// tests) and needs CAP_NET_ADMIN there; its errors say what to do and
// never stop the daemon. The guards belong to the namespace, so it takes
// one daemon per namespace, as the TUN device and the IKE ports do: a
// second daemon's Sync would remove the first one's guards.
package guard
