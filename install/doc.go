// Package install is the userspace counterpart of the kernel's SA and
// policy interface: its Installer implements ike.ChildInstaller and puts
// the CHILD SAs and trap policies IKE negotiates into the dataplane's
// state — the SAD (package sad), the SPD (package spd, one immutable
// snapshot per change) and the routes of the remote subnets on the TUN
// device.
//
// A CHILD SA goes in inbound first (from then on the peer may use it),
// then outbound, then the policies that steer traffic into it, then the
// routes; removal goes the other way round. A rekeyed pair's policies stay
// while a successor of the same policy is installed, and the old inbound
// SA lingers briefly for packets still in flight. The responder of a
// rekey installs the new SA inbound-only (ChildSA.KeepOutbound) and
// switches to it when IKE says so (SwitchOutbound).
//
// It also queues what the dataplane reports from the packet path for IKE
// — soft lifetime expiries (SAEvent → RunRekeys) and authenticated ESP
// from a peer's new endpoint (PeerSource → RunPeerMoves) — without ever
// blocking the packet path.
//
// Usage (usage.go) keeps each conn's traffic since the daemon started
// across all its CHILD SAs — rekeys and reconnects included — for billing
// and metrics. ExportKeys (keys.go) hands out the current CHILD SAs' keys
// for debugging with Wireshark.
package install
