package ikev1

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"log/slog"
	"net/netip"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev1/isakmp"
	"github.com/ipsecgw/ipsecgw/ike/shared"
)

// Config configures an Engine. The Manager (package ike) builds it.
type Config struct {
	// Host is the Manager that owns the ISAKMP SAs. Required.
	Host shared.Host
	// Send transmits one IKE message. local is the address and port it must
	// leave from (500, or 4500 once NAT-T floated: the caller then prepends
	// the non-ESP marker), remote where it goes. It must not keep pkt after
	// returning and must not block for long. Required.
	Send func(local, remote netip.AddrPort, pkt []byte) error
	// Installer receives negotiated IPsec SAs. Required.
	Installer shared.ChildInstaller
	Clock     shared.Clock // required
	Logger    *slog.Logger // required
	// Drops counts received messages dropped, by reason; nil gives the
	// engine counters of its own.
	Drops *shared.Drops
	// Retransmit sets retransmission timing (defaults filled in); both
	// versions use the same settings.
	Retransmit shared.Retransmit
	// Encapsulation chooses between raw ESP and ESP in UDP when no NAT
	// forces UDP.
	Encapsulation shared.Encapsulation
	// HalfOpenTimeout is how long a responder keeps an ISAKMP SA whose
	// phase 1 does not complete.
	HalfOpenTimeout time.Duration
}

// Engine negotiates IKEv1 SAs for a Manager: it creates ISAKMP SAs as
// initiator (Initiate) and responder (HandleNew); each ISAKMP SA then runs
// its own event loop and reports to the Host.
type Engine struct {
	host  shared.Host
	cfg   Config
	clock shared.Clock
	log   *slog.Logger
	rt    shared.Retransmit
	drops *shared.Drops
}

// NewEngine checks cfg and returns an Engine.
func NewEngine(cfg Config) (*Engine, error) {
	if cfg.Host == nil || cfg.Send == nil || cfg.Installer == nil || cfg.Clock == nil || cfg.Logger == nil {
		return nil, errors.New("ikev1: Config needs Host, Send, Installer, Clock and Logger")
	}
	if cfg.HalfOpenTimeout <= 0 {
		cfg.HalfOpenTimeout = DefaultHalfOpenTimeout
	}
	if cfg.Drops == nil {
		cfg.Drops = shared.NewDrops(cfg.Clock)
	}
	return &Engine{host: cfg.Host, cfg: cfg, clock: cfg.Clock, log: cfg.Logger, rt: shared.WithRetransmitDefaults(cfg.Retransmit), drops: cfg.Drops}, nil
}

// Engine constants.
const (
	// NonceLen is the length of our nonces (strongSwan sends 32 bytes).
	NonceLen = 32
	// DefaultHalfOpenTimeout is strongSwan's half_open_timeout.
	DefaultHalfOpenTimeout = 30 * time.Second
	// InvalidSPIInterval is the shortest time between two INVALID-SPI
	// notifications on one ISAKMP SA.
	InvalidSPIInterval = 10 * time.Second
	// SwitchDelay is how long the initiator of a quick mode keeps sending
	// on the SA it replaces after sending message 3: the responder
	// installs its inbound SA only when it processes message 3 (strongSwan
	// does), so packets sent at once on the new SA could overtake it.
	SwitchDelay = time.Second
	// DrainDelay is how long a rekeyed IPsec SA stays after outbound
	// traffic left it, before we delete it at the peer (or retire the
	// ISAKMP SA it came from, which deletes it there too): packets sealed
	// under it a moment before the switch may still be in the dataplane's
	// queues or on the wire, and a DELETE that overtakes them makes the
	// peer drop them.
	DrainDelay = time.Second
)

// EventQueueLimit is the most events (received messages) queued for one
// ISAKMP SA; further messages are dropped (the peer retransmits them).
const EventQueueLimit = 64

// newSA creates an ISAKMP SA and registers it with the Host (which
// assigns our cookie); its loop runs when the first event is posted.
func (e *Engine) newSA(initiator bool, local, remote netip.AddrPort) (*isakmpSA, error) {
	sa := &isakmpSA{
		e:         e,
		initiator: initiator,
		local:     local,
		remote:    remote,
		conns:     map[string]bool{},
		passive:   map[uint32]*passiveEx{},
	}
	sa.loop.Init(EventQueueLimit, sa.kick)
	cky, err := e.host.Register(sa, initiator, remote.Addr().Unmap())
	if err != nil {
		return nil, err
	}
	if initiator {
		sa.ckyI = cky
	} else {
		sa.ckyR = cky
	}
	sa.log = shared.SALogger(e.log, "isakmp_cookie", cky)
	return sa, nil
}

// Initiate starts a new ISAKMP SA for conn c from local to remote (port
// 500): main mode, or aggressive mode when the conn sets aggressive=yes,
// then one quick mode per pair of the conn's subnets.
func (e *Engine) Initiate(c config.Conn, local, remote netip.AddrPort) (shared.SA, error) {
	sa, err := e.newSA(true, local, remote)
	if err != nil {
		return nil, err
	}
	e.host.ServePeer(sa, &c)
	sa.post(func() { sa.startInitiator(c, nil) })
	return sa, nil
}

// HandleNew takes the first message of a phase 1 the peer initiates
// (main or aggressive mode, responder cookie zero), after the Manager
// checked that it belongs to no half-open SA and that the half-open limit
// allows one more: a responder SA is created for it.
func (e *Engine) HandleNew(local, remote netip.AddrPort, h isakmp.Header, buf []byte) {
	sa, err := e.newSA(false, local, remote)
	if err != nil {
		return
	}
	sa.ckyI = h.CookieI
	sa.remoteInit = remote
	if !e.host.AddHalfOpen(sa, remote, h.CookieI) {
		sa.post(sa.destroy)
		return
	}
	sa.post(func() {
		sa.armHalfOpen()
		sa.handle(local, remote, buf)
		if sa.p1 == nil {
			// The message was refused or dropped: no state is kept.
			sa.destroy()
		}
	})
}

// newMessageID returns a random message ID for a new exchange: non-zero
// (zero is phase 1) and not in use on the SA.
func (sa *isakmpSA) newMessageID() uint32 {
	var b [4]byte
	for {
		rand.Read(b[:])
		id := binary.BigEndian.Uint32(b[:])
		if id == 0 || sa.passive[id] != nil || (sa.pending != nil && sa.pending.mid == id) {
			continue
		}
		return id
	}
}

func newNonce() []byte {
	n := make([]byte, NonceLen)
	rand.Read(n)
	return n
}
