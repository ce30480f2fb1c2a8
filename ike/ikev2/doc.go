// Package ikev2 is the IKEv2 engine of ipsecgw (RFC 7296): it negotiates
// IKE SAs and CHILD SAs for the Manager of package ike, which owns them,
// and hands every negotiated CHILD SA to a shared.ChildInstaller (the
// daemon's ESP dataplane).
//
// # Shape
//
// The Manager creates IKE SAs through an Engine (Initiate,
// HandleInitRequest) and keeps a shared.SA handle on each; the engine
// asks the Manager for what is shared between IKE SAs and versions (the
// registry, the configuration, PSKs, conn policies) through shared.Host
// and reports everything that happens as shared.Events. The engine never
// touches sockets: the Manager delivers received datagrams (SA.Deliver)
// and Config.Send sends.
//
// Each IKE SA runs one goroutine, its event loop: received messages, timer
// expiries and commands (Up, Down, Close, DPD) are all events processed one
// at a time, so an IKE SA's state is touched by one goroutine only and DPD,
// deletes and new CHILD SAs interleave without locks. Timers come from the
// injected Clock; each armed timer carries a generation number, and a timer
// event whose generation is stale (the exchange it guarded has finished) is
// ignored.
//
// An exchange is a task (exchange.go) for either role, strongSwan's
// task_t: the initiator builds the request and processes the response,
// the responder processes the request, builds the response and then
// finishes what follows it (answered). There is one task per exchange
// kind: initTask (IKE_SA_INIT, task_init.go), authTask (IKE_AUTH with the
// first CHILD SA, task_auth.go), childTask (CREATE_CHILD_SA for a CHILD
// SA, task_child.go), ikeRekeyTask (CREATE_CHILD_SA rekeying the IKE SA,
// task_ikerekey.go) and infoTask (INFORMATIONAL, task_info.go). A task
// owns its scratch state (key exchanges, nonces, offers); the IKE SA
// keeps what outlives an exchange, and what IKE_SA_INIT leaves for
// IKE_AUTH (handshake) only until it is authenticated. Window size is 1
// (RFC 7296 §2.3): one request of ours is outstanding at a time, further
// tasks wait in a queue.
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
// (shared.SA.PeerMoved), moves the IKE SA and all its CHILD SAs there
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
// Every failure a user can cause is reported as a shared.Failure with a
// typed cause and a text that says what to change: the proposals of both
// sides, which side's PSK or ID is wrong, which subnets did not match. A
// responder refuses with the notify RFC 7296 names (a task's process
// returns a notifyError). Secrets never reach logs, errors or events.
//
// # Rekeying and renewal
//
// CHILD SAs are rekeyed at lifetime - margintime - random(margintime ×
// rekeyfuzz) with CREATE_CHILD_SA and REKEY_SA (PFS group from esp=),
// make-before-break: the new SA is installed, then the old one deleted;
// at the hard lifetime a CHILD SA is deleted. lifebytes/lifepackets give
// soft limits (life - margin - fuzz, ChildSA.SoftBytes/SoftPackets) that
// the dataplane counts; when one is crossed the Manager calls SA.RekeyChild
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
// Proposals with additional key exchanges (ke1_mlkem768 ..., RFC 9370)
// apply to rekeys too: an IKE SA rekey (ike=) and a CHILD SA created or
// rekeyed with CREATE_CHILD_SA (esp=) carry the first key exchange in
// CREATE_CHILD_SA and each additional one in an IKE_FOLLOWUP_KE exchange
// (§2.2.4, task_followupke.go); the keys derive from all the shared
// secrets. The CHILD SA that IKE_AUTH creates has no key exchange.
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
// The Manager-level tests in package ike run two (or three) Managers over
// an in-memory network with a fake clock inside testing/synctest bubbles,
// so retransmission, DPD and rekey timers are exercised without waiting;
// ike's interop_test.go runs against strongSwan 5.9 in network
// namespaces. This package's own tests cover what is internal to the
// engine (cookies, fragment reassembly limits, ID encoding, volume
// limits and collision rules).
package ikev2
