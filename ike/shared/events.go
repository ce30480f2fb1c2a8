package shared

import (
	"fmt"
	"time"
)

// Event is something that happened to an IKE SA, a CHILD SA or a conn. An
// engine reports events to its Host as they happen, from the IKE SA's
// event loop; the Manager folds them into the status and hands them, in
// order, to every subscriber (the daemon's state log, metrics, sd_notify,
// updown scripts). Nobody polls.
type Event interface {
	// Conns names the conns the event concerns.
	Conns() []string
}

// Initiating: a negotiation for the conn started (Up, a trap, a restart
// action, a re-created CHILD SA).
type Initiating struct {
	Conn string
}

// IKEUp: an IKE SA was authenticated. Conns are the conns it serves.
type IKEUp struct {
	Names []string
	IKE   IKEInfo
}

// IKEUpdated: what is known of an IKE SA changed without a change of
// state (IKE_SA_INIT done, a NAT detected, the peer moved to a new
// endpoint).
type IKEUpdated struct {
	Names []string
	IKE   IKEInfo
}

// IKERekeyed: an IKE SA was replaced by a rekeyed one (RFC 7296 §2.18)
// that took over its CHILD SAs.
type IKERekeyed struct {
	Names    []string
	Old, New IKEInfo
}

// IKEDown: an IKE SA ended (deleted by us or the peer, the peer is dead,
// it failed, it was replaced). Its conns are left without it, and the
// CHILD SAs it still held (Children) were removed with it. Failed says
// that a Failure event for these conns came first and their state stays
// what it said.
type IKEDown struct {
	Names    []string
	IKE      IKEInfo
	Children []ChildInfo
	Cause    Cause
	Text     string
	Failed   bool
}

// ChildUp: a CHILD SA was installed.
type ChildUp struct {
	Conn  string
	IKE   IKEInfo
	Child ChildInfo
}

// ChildRekeyed: a CHILD SA replacing Old was installed (make before
// break: Old is still installed and goes with a ChildDown later).
type ChildRekeyed struct {
	Conn     string
	IKE      IKEInfo
	Old, New ChildInfo
}

// ChildDown: a CHILD SA was removed. Rekeyed says it was replaced by a
// successor (nothing changes for the conn's traffic); Left that the conn
// has no CHILD SA left under this IKE SA and no longer uses it.
type ChildDown struct {
	Conn    string
	IKE     IKEInfo
	Child   ChildInfo
	Cause   Cause
	Text    string
	Rekeyed bool
	Left    bool
}

// Failure: a negotiation for the conn failed, or the conn went down for a
// reason the user should see. State is the state the conn is in because
// of it (phase1-failed, phase2-failed; down for a dead peer; connecting
// when another attempt follows). Text says what to change.
type Failure struct {
	Conn  string
	State State
	Cause Cause
	Text  string
}

// ExchangeDone: a request of ours got its response, or was given up after
// every retransmission (TimedOut). It feeds the exchange round-trip
// histogram and the DPD timeout counter of the metrics; it changes no
// state. RTT is from the first transmission to the response, and only
// set when no retransmission was needed (Karn's rule: with one, the
// response may answer either copy).
type ExchangeDone struct {
	Names []string
	IKE   IKEInfo
	// Exchange is the exchange type's name ("IKE_SA_INIT", "IKE_AUTH",
	// "CREATE_CHILD_SA", "INFORMATIONAL"; IKEv1: "MAIN_MODE" ...).
	Exchange string
	// DPD: the request was a liveness check (RFC 7296 §2.4: an empty
	// INFORMATIONAL request).
	DPD         bool
	RTT         time.Duration
	Retransmits int
	TimedOut    bool
}

// StateChanged is published by the Manager (engines do not send it) when
// folding an event changed a conn's state or its failure text.
type StateChanged struct {
	Conn     string
	From, To State
	Reason   string
	Status   ConnStatus // the conn's status after the change
}

func (e Initiating) Conns() []string   { return []string{e.Conn} }
func (e IKEUp) Conns() []string        { return e.Names }
func (e IKEUpdated) Conns() []string   { return e.Names }
func (e IKERekeyed) Conns() []string   { return e.Names }
func (e IKEDown) Conns() []string      { return e.Names }
func (e ChildUp) Conns() []string      { return []string{e.Conn} }
func (e ChildRekeyed) Conns() []string { return []string{e.Conn} }
func (e ChildDown) Conns() []string    { return []string{e.Conn} }
func (e Failure) Conns() []string      { return []string{e.Conn} }
func (e StateChanged) Conns() []string { return []string{e.Conn} }
func (e ExchangeDone) Conns() []string { return e.Names }

// Cause classifies why a negotiation failed or an SA went down, for
// metrics and programs; the event's Text says it in words.
type Cause uint8

// Causes.
const (
	CauseNone Cause = iota
	// CauseConfig: our own configuration cannot work (no proposal, no PSK
	// for the IDs, an ID that cannot be used, no local address).
	CauseConfig
	// CauseResolve: the peer's name could not be resolved.
	CauseResolve
	// CauseTimeout: the peer did not answer a request (all retransmissions).
	CauseTimeout
	// CauseNoProposal: no common IKE or ESP proposal.
	CauseNoProposal
	// CauseInvalidKE: the peer insists on a key exchange group we do not
	// offer.
	CauseInvalidKE
	// CauseAuthFailed: authentication failed (PSK differs, AUTH did not
	// verify, the peer rejected ours).
	CauseAuthFailed
	// CauseIDMismatch: the peer's identity is not the one configured.
	CauseIDMismatch
	// CauseTSUnacceptable: the traffic selectors (subnets) do not match.
	CauseTSUnacceptable
	// CausePeerRefused: the peer refused for another reason (an error
	// notify, a malformed answer).
	CausePeerRefused
	// CauseInternal: the dataplane or a local resource refused (SPI,
	// installation, key derivation).
	CauseInternal
	// CausePeerDead: the peer stopped answering on an established SA
	// (DPD, a lost exchange).
	CausePeerDead
	// CausePeerDeleted: the peer deleted the SA.
	CausePeerDeleted
	// CauseAdmin: taken down on purpose (ipsecgw down, reload, shutdown).
	CauseAdmin
	// CauseExpired: the SA reached its hard lifetime.
	CauseExpired
	// CauseCertExpired: a certificate of the peer's chain is outside its
	// validity period (expired or not yet valid).
	CauseCertExpired
	// CauseCertUnknownCA: the peer's certificate does not chain to a
	// trusted CA (ipsec.d/cacerts), or not to the one rightca= names.
	CauseCertUnknownCA
	// CauseCertIDMismatch: the peer's identity is not in its certificate
	// (subjectAltName or subject DN).
	CauseCertIDMismatch
	// CauseCertRevoked: a CRL lists the peer's certificate.
	CauseCertRevoked
	// CauseCertInvalid: the peer sent no usable certificate, or its
	// signature (AUTH payload) did not verify with the certificate's key.
	CauseCertInvalid
)

var causeNames = [...]string{
	CauseNone: "none", CauseConfig: "config", CauseResolve: "resolve", CauseTimeout: "timeout",
	CauseNoProposal: "no-proposal", CauseInvalidKE: "invalid-ke", CauseAuthFailed: "auth-failed",
	CauseIDMismatch: "id-mismatch", CauseTSUnacceptable: "ts-unacceptable", CausePeerRefused: "peer-refused",
	CauseInternal: "internal", CausePeerDead: "peer-dead", CausePeerDeleted: "peer-deleted",
	CauseAdmin: "admin", CauseExpired: "expired", CauseCertExpired: "cert-expired", CauseCertUnknownCA: "cert-unknown-ca",
	CauseCertIDMismatch: "cert-id-mismatch", CauseCertRevoked: "cert-revoked", CauseCertInvalid: "cert-invalid",
}

// String is the cause's name as metrics and JSON show it.
func (c Cause) String() string {
	if int(c) < len(causeNames) {
		return causeNames[c]
	}
	return fmt.Sprintf("cause(%d)", uint8(c))
}
