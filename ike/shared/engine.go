package shared

import (
	"crypto"
	"net/netip"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/transform"
)

// SA is the Manager's handle on one IKE SA of an engine. Each IKE SA runs
// its own event loop (a Loop); these methods post to it and return without
// waiting for it, except where a method says otherwise. Those returning
// bool report whether the SA took the request (false: it is gone, or its
// queue is full where a method says it never blocks: those take received
// packets or dataplane reports, which may come at any rate).
type SA interface {
	// Done is closed when the SA's loop has ended.
	Done() <-chan struct{}
	// Deliver hands a received datagram (the SA's own copy) to the loop; it
	// never blocks. With inline, the caller lends its goroutine: when the
	// loop is idle the datagram is processed before Deliver returns
	// (Loop.TryRun).
	Deliver(local, remote netip.AddrPort, pkt []byte, inline bool) bool
	// AddChild negotiates a CHILD SA for conn c, whose peer the SA serves.
	AddChild(c config.Conn) bool
	// DownConn deletes the conn's CHILD SAs, and the IKE SA when it serves
	// nothing else. It waits until the loop has handled the request and
	// reports whether the SA served the conn.
	DownConn(name string) bool
	// Delete deletes the IKE SA at the peer, then ends it; reason, when
	// set, is recorded for its conns (CauseAdmin).
	Delete(reason string) bool
	// Destroy ends the SA at once, without telling the peer.
	Destroy() bool
	// DropStale ends the SA silently if it is established: the peer sent
	// INITIAL_CONTACT on a new SA with the same identities, so it has no
	// state for this one (RFC 7296 §2.4). It never blocks.
	DropStale() bool
	// ReportInvalidSPI tells the peer that ESP arrived with an SPI we do
	// not know (rate-limited by the SA). It never blocks.
	ReportInvalidSPI(spi uint32) bool
	// DeleteChild deletes the CHILD SA with our inbound SPI inSPI (at the
	// peer, then here) if the SA holds it; the conn's closeaction does not
	// apply. It never blocks.
	DeleteChild(inSPI uint32) bool
	// RekeyChild rekeys the CHILD SA with SPI spi (ours when inbound) if
	// the SA holds it. It never blocks.
	RekeyChild(spi uint32, inbound bool) bool
	// PeerMoved reports that authenticated ESP-in-UDP for our inbound SPI
	// inSPI came from src; the SA follows the peer there if it holds the
	// CHILD SA and the rules of RFC 7296 §2.23 allow. It never blocks.
	PeerMoved(inSPI uint32, src netip.AddrPort) bool
}

// Host is what an engine asks of the Manager that owns its IKE SAs. Its
// methods are safe for concurrent use and never wait for an IKE SA's
// loop, so an engine calls them from its loops.
type Host interface {
	// Config is the current configuration; it changes on reload.
	Config() *config.Config
	// Emit reports an event. The Manager folds it into the conn status
	// and publishes it, and applies the policies it triggers (dpdaction
	// and closeaction after an IKEDown with CausePeerDead or
	// CausePeerDeleted, resetting keyingtries after an IKEUp).
	Emit(ev Event)
	// Register adds a new IKE SA to the registry under a fresh SPI of ours
	// (for IKEv1: our cookie), which it returns. remote is the peer's
	// address. Until Unregister, the Manager's Close waits for its Done.
	Register(sa SA, initiator bool, remote netip.Addr) (spi uint64, err error)
	// Unregister removes an SA that ended.
	Unregister(sa SA)
	// AnsweredDelete keeps, for a short while, the peer's DELETE that
	// ended the IKE SA whose SPI of ours is spi, and our answer, so that a
	// retransmission of that DELETE (our answer was lost) is answered
	// although the SA is gone.
	AnsweredDelete(spi uint64, local, remote netip.AddrPort, request, response []byte)
	// AddHalfOpen records a responder SA that has not authenticated yet,
	// keyed by the peer's endpoint and SPI so that a retransmitted first
	// request finds it; false when the half-open limit is reached (the SA
	// must then end).
	AddHalfOpen(sa SA, remote netip.AddrPort, spiI uint64) bool
	// LeaveHalfOpen ends the half-open accounting of sa (authenticated or
	// ended).
	LeaveHalfOpen(sa SA)
	// ServePeer records the conn whose peer sa serves, so that Up of a
	// conn with the same peer adds its CHILD SA there; nil withdraws it (a
	// rekeyed, reauthenticated or deleted SA takes no new CHILD SAs). The
	// Host keeps c without copying it (a gateway holds thousands of SAs),
	// so neither side may change *c afterwards.
	ServePeer(sa SA, c *config.Conn)
	// Authenticated records the pair of identities sa authenticated
	// ("local|remote") and returns the other SAs with the same pair, for
	// INITIAL_CONTACT.
	Authenticated(sa SA, ids string) []SA
	// HasPeerSA reports whether an SA other than sa serves c's peer (then
	// no INITIAL_CONTACT is sent).
	HasPeerSA(sa SA, c config.Conn) bool
	// ReqID is the reqid of the conn's CHILD SAs.
	ReqID(c config.Conn) uint32
	// Candidates lists the conns of IKE major version version a responder
	// may use for a request from remote arriving at local: exact peer
	// addresses first, then wildcards. The conns are the Host's own
	// copies of the current configuration, shared by every SA that uses
	// them: never written through.
	Candidates(version int, local, remote netip.AddrPort) []*config.Conn
	// PSK looks up the shared secret for a pair of identities; the caller
	// clears it.
	PSK(local, remote config.Identity) ([]byte, bool)
	// Trust is the trust store (CA certificates, CRLs) of the current
	// configuration.
	Trust() *config.TrustStore
	// PrivateKey finds the private key in ipsec.secrets whose public half
	// is pub (the key of our certificate).
	PrivateKey(pub crypto.PublicKey) (crypto.Signer, bool)
	// RetryKeying applies keyingtries to an initiation of conn c that the
	// peer did not answer: when another attempt is due it reports true,
	// with the attempt's number and the limit in words (the engine then
	// ends the SA and calls Up); otherwise false.
	RetryKeying(c config.Conn) (attempt int, limit string, retry bool)
	// Up initiates a conn as Manager.Up does.
	Up(name string) error
	// Hold installs the conn's trap policy for dpdaction=hold or
	// closeaction=hold (what names which).
	Hold(c config.Conn, what string)
}

// Prober is implemented by the SAs of engines whose event loops can prove
// they are alive (the daemon's watchdog, sd_notify WATCHDOG=1): Probe
// posts answer to the SA's loop, to run there in turn with its other
// events. It never waits (the queue takes it even when full); it reports
// false when the SA is gone (which is not a stuck loop). An optional
// interface, so that an engine without it simply is not probed.
type Prober interface {
	Probe(answer func()) bool
}

// IKEKeys are the keys of one IKE SA as Wireshark's IKEv2 decryption
// table wants them (debugging only: ipsecgw export-keys).
type IKEKeys struct {
	Version    int
	SPIi, SPIr uint64
	// Encr and Integ are the negotiated transforms (Integ is IntegNone
	// with an AEAD cipher).
	Encr, Integ            transform.Transform
	SKei, SKer, SKai, SKar []byte
}

// KeyExporter is implemented by the SAs of engines that can hand out
// their keys for debugging: ExportKeys runs deliver in the SA's loop with
// copies of its current keys, or with ok false before IKE_SA_INIT has
// derived them. It reports false (and deliver never runs) when the SA is
// gone.
type KeyExporter interface {
	ExportKeys(deliver func(k IKEKeys, ok bool)) bool
}
