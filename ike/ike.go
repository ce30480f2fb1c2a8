// Package ike is ipsecgw's IKE negotiator as the rest of the program sees
// it: a Manager that owns every IKE SA of the daemon, whatever its IKE
// version, and tells the rest of the program what happened through typed
// events.
//
// # Layout
//
//	ike          the facade: Manager (registry of IKE SAs by our SPI,
//	             half-open and cookie accounting, conn status folded from
//	             events, subscriptions, conn policies: keyingtries,
//	             dpdaction/closeaction, trap holds), version dispatch
//	ike/shared   what the engines and the facade share: the Host and SA
//	             interfaces between them, events, status types, the
//	             ChildInstaller, proposal selection, traffic selector
//	             narrowing, identities, the retransmission schedule
//	ike/ikev2    the IKEv2 engine (RFC 7296): IKE SAs as event loops of
//	             tasks; ike/ikev2/message is its wire codec
//	ike/ikev1    the IKEv1 engine (RFC 2409: main, aggressive and quick
//	             mode) over the same shared pieces; ike/ikev1/isakmp is
//	             its wire codec, ike/ikev1/keymat its key schedule
//
// The Manager dispatches received datagrams on the ISAKMP header's major
// version: IKEv1 messages to their ISAKMP SA by our cookie (or to the
// IKEv1 engine for a new phase 1), IKEv2 messages by our SPI. A conn
// initiates the version keyexchange= names (keyexchange=ike: IKEv2;
// Libreswan's ikev2=permit: IKEv1) and accepts what it allows.
//
// # Events
//
// Engines report each change as it happens (shared.Event: Initiating,
// IKEUp, IKEUpdated, IKERekeyed, IKEDown, ChildUp, ChildRekeyed,
// ChildDown, Failure, and ExchangeDone for each request of ours that was
// answered or given up, with its round trip); the Manager folds them into the conn status and
// adds StateChanged when a conn's state or failure text changed. Every
// subscriber (Manager.Subscribe) gets every event in order, without the
// Manager ever waiting for it: the daemon's state log, metrics, sd_notify
// and updown scripts read them. Status() answers from the folded state.
//
// Probe (probe.go) proves the IKE SA loops alive for the daemon's
// watchdog; ExportKeys (keys.go) hands out IKE SA keys for debugging.
//
// # Policies
//
// What follows from an event is decided here, the same way for every IKE
// version: keyingtries and the fixed-interval retry of auto=start conns,
// dpdaction= when the peer stopped answering (IKEDown with CausePeerDead)
// and closeaction= when it deleted the IKE SA (CausePeerDeleted), and the
// trap policies of the hold actions (policy.go).
package ike

import "github.com/ipsecgw/ipsecgw/ike/shared"

// The types the rest of the program uses, defined in ike/shared so that
// the engines can use them too.
type (
	ChildInstaller = shared.ChildInstaller
	ChildSA        = shared.ChildSA
	Clock          = shared.Clock
	Timer          = shared.Timer
	Encapsulation  = shared.Encapsulation
	State          = shared.State
	ConnStatus     = shared.ConnStatus
	IKEInfo        = shared.IKEInfo
	ChildInfo      = shared.ChildInfo
	Event          = shared.Event
	Cause          = shared.Cause
	Retransmit     = shared.Retransmit
	Protocol       = shared.Protocol
)

// Encapsulation policies and conn states (see ike/shared).
const (
	EncapNAT          = shared.EncapNAT
	EncapAuto         = shared.EncapAuto
	EncapUDP          = shared.EncapUDP
	StateDown         = shared.StateDown
	StateConnecting   = shared.StateConnecting
	StateEstablished  = shared.StateEstablished
	StatePhase1Failed = shared.StatePhase1Failed
	StatePhase2Failed = shared.StatePhase2Failed
	// CHILD SA protocols (ChildSA.Protocol).
	ProtoESP = shared.ProtoESP
	ProtoAH  = shared.ProtoAH
)

// StateChanged is the event the Manager adds when a conn's state or
// failure text changed (see ike/shared).
type StateChanged = shared.StateChanged
