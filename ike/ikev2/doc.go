// Package ikev2 is the IKEv2 engine of ipsecgw (RFC 7296): it turns the
// connections of a config.Config into IKE SAs and CHILD SAs, and hands every
// negotiated CHILD SA to a ChildInstaller (the daemon's ESP dataplane).
//
// # Shape
//
// A Manager owns every IKE SA. The daemon feeds it each received IKE
// datagram with HandlePacket and gives it a Send function for the way back;
// the Manager never touches sockets. HandlePacket only parses the fixed
// header, copies the datagram and posts it to the event loop of the IKE SA
// it belongs to, so it never blocks on cryptography.
//
// Each IKE SA runs one goroutine, its event loop: received messages, timer
// expiries and commands (Up, Down, Close, DPD) are all events processed one
// at a time, so an IKE SA's state is touched by one goroutine only and DPD,
// deletes and new CHILD SAs interleave without locks. Timers come from the
// injected Clock; each armed timer carries a generation number, and a timer
// event whose generation is stale (the exchange it guarded has finished) is
// ignored.
//
// Exchanges are built from tasks (tasks.go): an initiator task builds a
// request and processes its response; the responder side is one handler per
// exchange type. Window size is 1 (RFC 7296 §2.3): one request of ours is
// outstanding at a time, further tasks wait in a queue.
//
// # Retransmission
//
// A request is encoded once; its bytes are cached and retransmitted as they
// are (never re-encoded) after Retransmit.Timeout, then ×Retransmit.Base
// each time (strongSwan: 4 s, ×1.8), Retransmit.Tries times; when the last
// wait expires the exchange fails with a reason saying so. A responder caches
// its last response and answers a retransmitted request (same message ID as
// the last one processed) with those bytes, without processing it again
// (RFC 7296 §2.1). An IKE_SA_INIT request retransmitted to a responder that
// already created the half-open SA is recognised by the initiator's SPI and
// address, and answered from that SA's cache as well.
//
// # NAT traversal
//
// NAT_DETECTION_SOURCE_IP / _DESTINATION_IP are always sent and checked.
// When either hash differs (a real NAT, or a peer that fakes NAT detection
// such as strongSwan with kernel-libipsec or forceencaps=yes), the
// initiator moves to port 4500 from IKE_AUTH on, and CHILD SAs are
// installed UDP-encapsulated (ChildSA.Encap). With forceencaps=yes we fake
// our own source hash the way strongSwan does, so the peer encapsulates too.
// Send is called with local port 4500 for messages that must go out of the
// NAT-T socket; the daemon adds the four-zero-byte non-ESP marker there.
//
// A NAT in front of the peer may change its mapping (reboot, expired
// entry). An authenticated IKE request or response from a new address or
// port, or authenticated ESP-in-UDP reported by the dataplane
// (Manager.PeerMovedESP), moves the IKE SA and all its CHILD SAs there
// (ChildInstaller.UpdateRemote) when the peer is behind a NAT and we are
// not, or we are the responder (RFC 7296 §2.23; strongSwan's rule).
//
// # Cookies
//
// When the number of half-open responder IKE SAs reaches
// Options.CookieThreshold, IKE_SA_INIT requests without a valid COOKIE are
// answered statelessly with one (RFC 7296 §2.6): cookie = version of the
// secret | SHA-256(Ni | IPi | SPIi | secret), with the secret replaced every
// CookieSecretLifetime and the previous one still accepted. The initiator
// side repeats its IKE_SA_INIT with the COOKIE notify first.
//
// # Failures
//
// Every failure a user can cause is recorded in the conn's ConnStatus with a
// reason that says what to change: the proposals of both sides, which side's
// PSK or ID is wrong, which subnets did not match. Secrets never reach logs,
// errors or statuses.
//
// # Rekeying and renewal
//
// CHILD SAs are rekeyed at lifetime - margintime - random(margintime ×
// rekeyfuzz) with CREATE_CHILD_SA and REKEY_SA (PFS group from esp=),
// make-before-break: the new SA is installed, then the old one deleted;
// at the hard lifetime a CHILD SA is deleted. lifebytes/lifepackets give
// soft limits (life - margin - fuzz, ChildSA.SoftBytes/SoftPackets) that
// the dataplane counts; when one is crossed it calls Manager.RekeyChild
// (queued by the daemon, never blocking the packet path). The responder
// of a CHILD rekey installs the new SA inbound-only (ChildSA.KeepOutbound)
// and switches its outbound traffic to it (OutboundSwitcher) when the
// initiator deletes the old SA: the initiator installs its inbound side
// only when it processes the response. In a CHILD rekey collision the
// redundant SA is never switched to, so deleting it never leaves the conn
// without an outbound SA. The IKE SA is rekeyed (reauth=no, RFC 7296
// §2.18: CHILD SAs move to the new SA) by either side, or reauthenticated
// (reauth=yes: a new IKE SA for every conn it serves, then the old one
// deleted) by the original initiator only, at ikelifetime - margintime -
// fuzz. Rekeys and reauthentications started by the peer are answered.
//
// # Known limits
//
//   - PSK authentication only (no certificates, EAP, or AUTH method 14);
//     ASN.1 DN identities cannot be used.
//   - IKE fragmentation (RFC 7383, frag.go): protected messages larger
//     than Options.FragmentSize (IP datagram, default 1280) go out as SKF
//     fragments when the peer announced support and fragmentation= is yes
//     (the default) or force; received fragments are reassembled.
//   - Rekey collisions are resolved as RFC 7296 §2.8.1 and §2.8.2 say:
//     the CHILD or IKE SA from the exchange with the lowest nonce is
//     deleted by its initiator, the initiator of the surviving one
//     deletes the old SA (with an IKE SA the CHILD SAs move to the
//     survivor). Reauthentications are not: only the original initiator
//     reauthenticates.
//   - AH proposals, MOBIKE, configuration payloads (virtual IPs) and
//     redirects are not negotiated.
//   - Window size 1 (RFC 7296 §2.3), as strongSwan uses by default.
//
// # Tests
//
// ike_test.go, more_test.go, robust_test.go and unit_test.go run two (or
// three) Managers over an in-memory network with a fake clock inside
// testing/synctest bubbles, so retransmission, DPD and rekey timers are
// exercised without waiting. interop_test.go (package ike_test) runs
// against strongSwan 5.9 in network namespaces (internal/lab); it needs
// root and charon, and is skipped otherwise and in -short mode.
//
// # API
//
// The Manager's methods (manager.go):
//
//	func NewManager(opts Options) (*Manager, error)
//	func (m *Manager) Start()                          // auto=start: initiate; auto=route: InstallTrap
//	func (m *Manager) HandlePacket(local, remote netip.AddrPort, pkt []byte)
//	func (m *Manager) Up(name string) error            // initiate (or add a CHILD SA to an IKE SA with the same peer)
//	func (m *Manager) Acquire(name string)             // trap hit: Up unless already connecting/up
//	func (m *Manager) Down(name string) error          // delete the conn's CHILD SAs (and the IKE SA when it serves nothing else)
//	func (m *Manager) Status() []ConnStatus            // one entry per IKEv2 conn, file order
//	func (m *Manager) ReloadConfig(cfg *config.Config) // new config for new SAs; removed conns are taken down
//	func (m *Manager) Close(ctx context.Context) error  // DELETE every IKE SA, wait for the answers until ctx ends, remove children, stop
//	func (m *Manager) ReportInvalidSPI(remote netip.Addr, spi uint32) // ESP with an unknown SPI: INVALID_SPI to the peer (rate-limited)
package ikev2
