// Package ikev1 is the IKEv1 engine of ipsecgw (RFC 2409 over ISAKMP, RFC
// 2408, in the IPsec DOI, RFC 2407): main and aggressive mode with
// pre-shared keys, quick mode, informational exchanges, dead peer
// detection (RFC 3706) and NAT traversal (RFC 3947/3948 and the drafts
// before them). It negotiates ISAKMP SAs and IPsec SAs for the Manager of
// package ike, which owns them, exactly as ike/ikev2 does for IKEv2: the
// same shared.Host and shared.SA, the same events, the same
// shared.ChildInstaller. Its wire codec is ike/ikev1/isakmp, its key
// schedule and message protection ike/ikev1/keymat.
//
// # Shape
//
// The Manager creates ISAKMP SAs through an Engine (Initiate, and
// HandleNew for a first main or aggressive mode message) and routes every
// later message to its SA by our cookie. Each ISAKMP SA runs one
// goroutine, its event loop: received messages, timers and commands are
// events processed one at a time. An exchange is a task for either role
// (exchange.go): mainMode (task_main.go), aggressiveMode
// (task_aggressive.go), quickMode (task_quick.go); informational messages
// are one-way and handled directly (task_info.go). Our own exchanges run
// one at a time; the peer's quick modes run side by side, by message ID.
// Tasks only queue further work: the next exchange starts after the event
// that made it possible, once the IV chain has moved (keymat.IVChain).
//
// # Retransmission
//
// As strongSwan's task_manager_v1: the initiator of an exchange resends
// its cached message with the shared schedule (shared.RetransmitDelay:
// Retransmit.Timeout × Base^n, Tries times); a responder answers a
// repeated request (recognised by a hash of its bytes, before anything is
// decrypted) with its cached answer; in aggressive and quick mode the
// responder resends message 2 itself until message 3 arrives, and the
// initiator resends message 3 whenever message 2 arrives again.
// Informational messages are never retransmitted (RFC 2409 §5.7).
//
// # Phase 1
//
// Main mode finds the responder's PSK by the peer's address (the
// identities are encrypted in messages 5 and 6), as strongSwan does:
// the first candidate conn whose configured IDs have a PSK, else the PSK
// of the two addresses. Aggressive mode, initiated by conns with
// aggressive=yes, sends the identities in clear and the responder looks
// the PSK up by them; since its message 2 exposes a hash of the PSK to
// offline guessing, we answer it only for conns with aggressive=yes.
// INITIAL-CONTACT is sent in main mode 5 / aggressive mode 3 unless
// another SA serves the peer, and a received one drops the older SAs with
// the same identities and their IPsec SAs (RFC 2407 §4.6.3.3).
//
// # Quick mode
//
// One IPsec SA pair per quick mode and per pair of subnets (a conn with
// several subnets per side negotiates every local/remote pair, as
// Libreswan does; each pair gets its own reqid so that the dataplane
// keeps an outbound SA per pair). PFS uses the group of the first esp=
// proposal that names one, for all transforms (strongSwan's choice).
// Lifetimes are proposed in seconds (and kilobytes with lifebytes=); a
// responder takes the shorter of the peer's and its own and announces its
// own with RESPONDER-LIFETIME when the peer asked for longer (RFC 2407
// §4.6.3.1). The responder installs the inbound SA when it sends message
// 2 and switches its outbound traffic at message 3; the initiator keeps
// sending on the SA it replaces for SwitchDelay after message 3, and
// deletes that SA (or retires the ISAKMP SA it came from) DrainDelay
// after the switch, so that neither a packet sent too early nor one still
// in flight behind our DELETE is lost in a rekey. A responder that sets the commit bit gets our
// traffic only after its CONNECTED; an initiator that sets it gets
// CONNECTED from us in a fourth message.
//
// # Lifecycle
//
// IPsec SAs are rekeyed at lifetime - margintime - fuzz by a new quick
// mode for the same selectors; the initiator of the rekey deletes the old
// SA once traffic moved (Libreswan's behaviour). The ISAKMP SA is
// reauthenticated before its lifetime by a new phase 1 (IKEv1 cannot
// rekey it); the IPsec SAs move to the new ISAKMP SA without a quick mode
// and the old one is deleted alone, so traffic never notices. The same
// happens when the peer reauthenticates and deletes the old ISAKMP SA.
// DELETE payloads go both ways for ISAKMP and ESP SAs. Dead peer
// detection (dpd.go) probes a silent peer every dpddelay and declares it
// dead after dpdtimeout without an answer; the Manager applies
// dpdaction.
//
// # NAT traversal
//
// Every NAT-T Vendor ID (RFC 3947 and drafts 02/03) is announced; the
// best common version decides the NAT-D payload numbers and the UDP
// encapsulation modes. A NAT (or forceencaps=yes, or ipsecgw's Vendor ID
// with ESP in UDP preferred, which fake one) moves the initiator to port
// 4500 from main mode 5 / aggressive mode 3 on, and IPsec SAs are
// installed UDP-encapsulated.
//
// # Known limits
//
// Pre-shared keys only (no certificates, XAUTH or mode config, so no
// transaction exchange); IKEv1 fragmentation is not sent or reassembled;
// tunnel mode only, like the dataplane; one SA payload per quick mode.
// An auto=route conn with several pairs of subnets: the dataplane ties
// every IPsec SA of a conn with a trap policy to that policy, so its
// pairs share one outbound SA; such a conn should use auto=start or add.
package ikev1
