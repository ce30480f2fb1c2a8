package shared

import (
	"net/netip"
	"time"

	"github.com/ipsecgw/ipsecgw/spd"
)

// State is the state of a conn as shown by the status.
type State string

// Conn states.
const (
	StateDown         State = "down"
	StateConnecting   State = "connecting"
	StateEstablished  State = "established"
	StatePhase1Failed State = "phase1-failed"
	StatePhase2Failed State = "phase2-failed"
)

// IKEInfo describes an IKE SA (of either version) in events and status.
type IKEInfo struct {
	// Version is the IKE major version: 1 or 2.
	Version       int
	Initiator     bool
	SPIi, SPIr    uint64
	Local, Remote netip.AddrPort
	LocalID       string
	RemoteID      string
	Algorithms    string // e.g. "aes128-sha256-prfsha256-modp3072"
	// NATLocal: the peer saw another address than ours (we are behind a
	// NAT, or fake one), so we send the NAT keepalives (RFC 3948 §2.3);
	// NATRemote: the peer is behind a NAT.
	NATLocal, NATRemote bool
	Established         time.Time // zero until authenticated
	// RekeyAt is when the IKE SA is due to be rekeyed or reauthenticated
	// (zero: never, or the peer's job).
	RekeyAt time.Time
}

// NATDetected reports whether either side is behind a NAT (or fakes one).
func (i IKEInfo) NATDetected() bool { return i.NATLocal || i.NATRemote }

// ChildInfo describes one installed CHILD SA in events and status.
type ChildInfo struct {
	InSPI, OutSPI uint32
	// ReqID is the reqid the CHILD SA was installed with (ChildSA.ReqID):
	// updown scripts get it as PLUTO_REQID.
	ReqID             uint32
	Protocol          string // "esp"
	Algorithms        string // e.g. "aes128gcm16" or "aes128-sha256-modp2048"
	LocalTS, RemoteTS []spd.TS
	Encap             bool
	Established       time.Time
	// RekeyAt is when the CHILD SA is due to be rekeyed (zero: never, or
	// a successor exists); ExpireAt when it reaches its hard lifetime
	// (zero: none).
	RekeyAt, ExpireAt time.Time
}

// ConnStatus describes one conn: its state, the last failure and, while
// it has one, its IKE SA and CHILD SAs.
type ConnStatus struct {
	Name  string
	State State
	// Reason is the last failure, in words that say what to change; empty
	// when nothing failed since the conn was last established.
	Reason string
	// Cause classifies Reason (CauseNone when Reason is empty).
	Cause Cause
	// IKEInfo is the conn's IKE SA (zero when it has none: SPIi == 0).
	IKEInfo
	Children []ChildInfo
}
