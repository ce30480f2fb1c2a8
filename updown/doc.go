// Package updown runs the conns' leftupdown= scripts when their CHILD SAs
// come up and go down, with the environment strongSwan's updown plugin
// gives them (PLUTO_VERB up-client/down-client, up-host/down-host, each
// with -v6 for IPv6; PLUTO_CONNECTION, PLUTO_INTERFACE, PLUTO_REQID,
// PLUTO_ME, PLUTO_PEER, PLUTO_MY_CLIENT, PLUTO_PEER_CLIENT, PLUTO_UNIQUEID,
// PLUTO_MARK_IN/OUT ...; see environment), so that scripts written for
// strongSwan that add routes or firewall rules run unchanged.
//
// The Runner is fed by a subscription to IKE's typed events (ChildUp,
// ChildRekeyed, ChildDown, IKEDown, IKERekeyed); nothing polls and IKE
// never waits for a script. A script runs once per pair of local and
// remote selectors of a CHILD SA, as in strongSwan, but only for the first
// CHILD SA of a conn that carries that pair (up) and when the last one
// goes (down): a rekey or a make-before-break reauthentication does not
// run down after the successor's up.
//
// Differences from strongSwan, each because ipsecgw has no kernel IPsec:
// PLUTO_INTERFACE names the device that carries the conn's traffic
// (ipsecgw's TUN), not the underlay interface towards the peer; a script
// that creates a VTI or XFRM interface (ip link add ... type vti) makes a
// kernel device that ipsecgw's traffic never passes through. Each run is
// bounded by a timeout (DefaultTimeout), after which the script's process
// group is killed; failures are logged and counted in Status.
package updown
