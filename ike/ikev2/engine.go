package ikev2

import (
	"errors"
	"log/slog"
	"net/netip"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
	"github.com/ipsecgw/ipsecgw/ike/shared"
	"github.com/ipsecgw/ipsecgw/ike/shared/pki"
)

// Config configures an Engine. The Manager (package ike) builds it.
type Config struct {
	// Host is the Manager that owns the IKE SAs. Required.
	Host shared.Host
	// Send transmits one IKE message. local is the address and port it must
	// leave from (port 500, or 4500 once NAT-T is in use: the caller then
	// prepends the non-ESP marker), remote where it goes. It must not keep
	// pkt after returning and must not block for long. Required.
	Send func(local, remote netip.AddrPort, pkt []byte) error
	// Installer receives negotiated CHILD SAs and trap policies. Required.
	Installer shared.ChildInstaller
	Clock     shared.Clock // required
	Logger    *slog.Logger // required
	// Drops counts received messages dropped, by reason; nil gives the
	// engine counters of its own.
	Drops *shared.Drops
	// Retransmit sets retransmission timing (defaults filled in).
	Retransmit shared.Retransmit
	// Encapsulation chooses between raw ESP and ESP in UDP when no NAT
	// forces UDP.
	Encapsulation shared.Encapsulation
	// FragmentSize is the largest IP datagram of an IKE message we send to
	// a peer that supports IKE fragmentation (RFC 7383); larger messages go
	// out as fragments. 0 means DefaultFragmentSize.
	FragmentSize int
	// HalfOpenTimeout is how long a responder keeps an IKE SA that never
	// completed IKE_AUTH.
	HalfOpenTimeout time.Duration
}

// Engine negotiates IKEv2 SAs for a Manager: it creates IKE SAs as
// initiator (Initiate) and responder (HandleInitRequest); each IKE SA then
// runs its own event loop and reports to the Host.
type Engine struct {
	host    shared.Host
	cfg     Config
	clock   shared.Clock
	log     *slog.Logger
	rt      shared.Retransmit
	drops   *shared.Drops
	cookies cookieJar
	crls    *pki.CRLFetcher // shared by the SAs, so that each CRL is fetched once
	epoch   time.Time       // of the SAs' instants (instant.go)
}

// NewEngine checks cfg and returns an Engine.
func NewEngine(cfg Config) (*Engine, error) {
	if cfg.Host == nil || cfg.Send == nil || cfg.Installer == nil || cfg.Clock == nil || cfg.Logger == nil {
		return nil, errors.New("ikev2: Config needs Host, Send, Installer, Clock and Logger")
	}
	if cfg.Drops == nil {
		cfg.Drops = shared.NewDrops(cfg.Clock)
	}
	return &Engine{host: cfg.Host, cfg: cfg, clock: cfg.Clock, log: cfg.Logger, rt: shared.WithRetransmitDefaults(cfg.Retransmit), drops: cfg.Drops,
		crls: &pki.CRLFetcher{Timeout: CRLFetchTimeout, MaxAge: time.Hour, Logger: cfg.Logger}, epoch: cfg.Clock.Now().Add(-epochLead)}, nil
}

// NonceLen is the length of our nonces (32 bytes, as strongSwan).
const NonceLen = 32

// InvalidSPIInterval is the shortest time between two INVALID_SPI
// notifications on one IKE SA.
const InvalidSPIInterval = 10 * time.Second

// CookieSecretLifetime is how long one cookie secret is used before it is
// replaced; cookies made with the previous secret stay valid.
const CookieSecretLifetime = 2 * time.Minute

// CookiesSent is the number of COOKIE notifies sent in answer to
// IKE_SA_INIT requests (RFC 7296 §2.6).
func (e *Engine) CookiesSent() uint64 { return e.cookies.issued.Load() }

// EventQueueLimit is the most events (received messages) queued for one
// IKE SA; further messages are dropped (the peer retransmits them).
const EventQueueLimit = 64

// newSA creates an IKE SA and registers it with the Host; its loop runs
// when the first event is posted.
func (e *Engine) newSA(initiator bool, local, remote netip.AddrPort) (*ikeSA, error) {
	sa := &ikeSA{
		e:         e,
		initiator: initiator,
		local:     local,
		remote:    remote,
		conn:      &noConn,
	}
	sa.loop.Init(EventQueueLimit, nil)
	spi, err := e.host.Register(sa, initiator, remote.Addr().Unmap())
	if err != nil {
		return nil, err
	}
	if initiator {
		sa.spiI = spi
	} else {
		sa.spiR = spi
	}
	sa.log = sa.logs.Init(e.log, "ike_spi", spi)
	return sa, nil
}

// Initiate starts a new IKE SA for conn c from local to remote (port 500):
// IKE_SA_INIT, then IKE_AUTH with the conn's first CHILD SA. The SA keeps c
// (shared with the Manager; never written).
func (e *Engine) Initiate(c *config.Conn, local, remote netip.AddrPort) (shared.SA, error) {
	sa, err := e.newSA(true, local, remote)
	if err != nil {
		return nil, err
	}
	e.host.ServePeer(sa, c)
	sa.post(func() { sa.startInitiator(c) })
	return sa, nil
}

// HandleInitRequest takes an IKE_SA_INIT request that starts a new IKE SA
// (SPIr zero, message ID 0), after the Manager checked that it belongs to
// no half-open SA and that the half-open limit allows one more. With
// needCookie, a request without a valid COOKIE is answered statelessly
// with one (RFC 7296 §2.6); otherwise a responder SA is created. With
// inline, the caller lends its goroutine to the new SA's loop for the
// request (Loop.TryRun).
func (e *Engine) HandleInitRequest(local, remote netip.AddrPort, h message.Header, buf []byte, needCookie, inline bool) {
	if needCookie {
		msg, _, err := message.ParseMessage(buf)
		if err != nil {
			e.drops.Drop(e.log, parseDropReason(err), "malformed IKE_SA_INIT request dropped", "remote", remote, "err", err)
			return
		}
		ns := notifies(msg.Payloads)
		np, ok := payload(msg.Payloads, message.PayloadNonce)
		if !ok {
			e.drops.Drop(e.log, shared.DropMalformed, "IKE_SA_INIT request without a nonce dropped", "remote", remote)
			return
		}
		c, has := findNotify(ns, message.COOKIE)
		if !has || !e.cookies.valid(e.clock.Now(), c.Data, np.Body, remote.Addr(), h.SPIi) {
			cookie := e.cookies.make(e.clock.Now(), np.Body, remote.Addr(), h.SPIi)
			rh := message.Header{SPIi: h.SPIi, MajorVersion: 2, Exchange: message.IKE_SA_INIT, Flags: message.FlagResponse}
			rsp := message.AppendMessage(nil, rh, message.Notify{Type: message.COOKIE, Data: cookie})
			e.drops.Drop(e.log, shared.DropCookieRequired, "half-open SAs above threshold: asking for a cookie", "remote", remote)
			e.cookies.issued.Add(1)
			if err := e.cfg.Send(local, remote, rsp); err != nil {
				e.log.Debug("send failed", "err", err)
			}
			return
		}
	}
	sa, err := e.newSA(false, local, remote)
	if err != nil {
		return
	}
	sa.spiI = h.SPIi
	if !e.host.AddHalfOpen(sa, remote, h.SPIi) {
		sa.post(func() { sa.destroy() })
		return
	}
	ev := func() {
		sa.armHalfOpen()
		sa.handle(local, remote, buf)
		if sa.state == saInit {
			// The request was dropped without an answer: no state kept.
			sa.destroy()
		}
	}
	// The loop is new and empty: TryRun does not refuse it.
	if !inline || !sa.loop.TryRun(ev) {
		sa.post(ev)
	}
}
