package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/esp"
	"github.com/ipsecgw/ipsecgw/esp/tcpencap"
	"github.com/ipsecgw/ipsecgw/guard"
	"github.com/ipsecgw/ipsecgw/ike"
	"github.com/ipsecgw/ipsecgw/install"
	"github.com/ipsecgw/ipsecgw/sad"
	"github.com/ipsecgw/ipsecgw/sdnotify"
	"github.com/ipsecgw/ipsecgw/settings"
	"github.com/ipsecgw/ipsecgw/spd"
	"github.com/ipsecgw/ipsecgw/tun"
	"github.com/ipsecgw/ipsecgw/updown"
)

// IKE is what the gateway uses of the IKE Manager (*ike.Manager). It is an
// interface so that the status and control logic can be tested without a
// peer.
type IKE interface {
	Start()
	HandlePacket(local, remote netip.AddrPort, pkt []byte)
	// ProcessPacket is HandlePacket processing the message in the
	// caller's goroutine when its SA is idle (the UDP receive loops,
	// which keep another goroutine receiving meanwhile).
	ProcessPacket(local, remote netip.AddrPort, pkt []byte)
	Up(name string) error
	Down(name string) error
	Acquire(name string)
	Status() []ike.ConnStatus
	Counters() ike.Counters
	ReloadConfig(cfg *config.Config)
	Close(ctx context.Context) error
	// Subscribe delivers IKE's events (the state log, sd_notify, metrics
	// and the control socket's event streams read them).
	Subscribe(keep ...func(ike.Event) bool) *ike.Subscription
	// Probe proves the IKE SA loops alive (the watchdog); ExportKeys
	// hands out the IKE SAs' keys (export-keys).
	Probe(ctx context.Context) error
	ExportKeys(ctx context.Context) []ike.IKEKeys
	// What the dataplane reports, never blocking: a CHILD SA at its soft
	// volume limit, authenticated ESP from a peer's new endpoint, and
	// ESP with an SPI we do not know.
	RekeyChild(spi uint32, inbound bool) bool
	PeerMovedESP(inSPI uint32, src netip.AddrPort) bool
	ReportInvalidSPI(remote netip.Addr, spi uint32)
}

var _ IKE = (*ike.Manager)(nil)

// Options configure Run.
type Options struct {
	Config   *config.Config
	Settings settings.Settings
	Logger   *slog.Logger
	// LocalAddrs are the host's addresses (see config.Options.LocalAddrs).
	LocalAddrs []netip.Addr
	// ShutdownTimeout bounds how long shutdown waits for the peers to
	// answer our DELETEs (0: 10 s).
	ShutdownTimeout time.Duration
	// Ready, if set, is called once everything is up and the control
	// socket accepts requests.
	Ready func()
	// Reload, when it delivers, makes the daemon call Load and apply the
	// new configuration (SIGHUP in `ipsecgw run`). Both may be nil.
	Reload <-chan struct{}
	Load   func() (*config.Config, config.Diagnostics, error)
	// Stats, when it delivers, makes the daemon log its counters
	// (SIGUSR2 in `ipsecgw run`). May be nil.
	Stats <-chan struct{}
	// Notifier tells systemd about readiness, reloads, the shutdown and
	// the watchdog (nil: nothing is told).
	Notifier *sdnotify.Notifier
	// Build names the binary in the metrics (ipsecgw_build_info).
	Build BuildInfo
}

// BuildInfo is the version and commit stamped into the binary.
type BuildInfo struct {
	Version, Commit string
}

// Gateway is one running ipsecgw: the pieces below wired together. It
// owns no logic of its own beyond the wiring, the control backend
// (backend.go) and the applying of reloads.
//
//	sockets ──ESP──► larval hold ──► esp.Dataplane ◄──► tun.TUN
//	   │                                 ▲ │ SAD/SPD lookups (sad.Table, spd.Live)
//	   └──IKE──► ike.Manager ──CHILD SAs─┘ install.Installer
//	                 │ events ──► state log, sd_notify, metrics, event streams
//	control.Server ──► Gateway (control.Backend: status, up, down, reset,
//	                   reload, list-sas, stats, events, export-keys)
type Gateway struct {
	opts Options
	set  settings.Settings
	log  *slog.Logger
	now  func() time.Time

	guards *guard.Guard
	table  *sad.Table
	live   *spd.Live
	dev    *tun.TUN
	inst   *install.Installer
	dp     *esp.Dataplane
	socks  *sockets
	// tcp carries IKE and ESP over TCP for conns with enable-tcp (tcp.go).
	tcp    *tcpTransport
	ike    IKE
	ctrl   *control.Server
	notify *sdnotify.Notifier
	// updown runs the conns' leftupdown= scripts (updown.go).
	updown *updown.Runner
	// ifaces are the devices of route-based conns by interface ID, and
	// connIfaces each such conn's ID (routed.go).
	ifMu       sync.Mutex
	ifaces     map[uint32]*tun.TUN
	ifVTI      map[uint32]vtiState // leftvti=/vti-routing= state per device (routed.go)
	connIfaces atomic.Pointer[map[string]uint32]
	// connPrios are the conns' priority= values (routed.go), set with
	// connIfaces before IKE sees a configuration.
	connPrios atomic.Pointer[map[string]uint32]
	// metricsSrv serves /metrics when metrics_listen is set.
	metricsSrv *http.Server

	// invalid queues the dataplane's reports of ESP with SPIs we do not
	// know, for IKE to answer with INVALID_SPI (invalidspi.go).
	invalid invalidSPIs

	// releaser sends the packets a trap policy held once its CHILD SA is
	// in; releaseMu serializes its use (the installer may call from
	// several IKE SA loops).
	releaser  esp.Sender
	releaseMu sync.Mutex

	// health: DPD outcomes and bandwidth for the status (health.go).
	health *health

	cfg      atomic.Pointer[config.Config]
	reloadMu sync.Mutex // serializes reloads

	// Background loops (IKE receive, report queues, state log,
	// keepalives) stop when stop is closed; loops waits for them.
	stop  chan struct{}
	loops sync.WaitGroup
	// closers release what build made, in reverse order.
	closers []func()
}

var _ control.Backend = (*Gateway)(nil)

// Run runs the gateway until ctx ends, then shuts it down: SAs deleted at
// the peers, routes and TUN removed, control socket removed. The leak
// guards (package guard) stay, so that the gateway fails closed.
func Run(ctx context.Context, o Options) error {
	g, err := build(o)
	if err != nil {
		return err
	}
	if err := g.start(); err != nil {
		g.close()
		return err
	}
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-o.Reload:
			if o.Load != nil {
				_, _ = g.reload(o.Load) // logged; the running configuration stays on errors
			}
		case <-o.Stats:
			g.logStats()
		}
	}
	g.shutdown()
	return nil
}

// build makes every piece of the gateway and wires them, starting
// nothing: no packet moves and IKE initiates nothing until start. On an
// error what was made is released.
func build(o Options) (_ *Gateway, err error) {
	if o.Config == nil {
		return nil, errors.New("daemon: no configuration")
	}
	// g is not the named result: the error returns below must not set the
	// Gateway the closers and the deferred release use to nil.
	g := &Gateway{opts: o, set: o.Settings, log: o.Logger, now: time.Now, stop: make(chan struct{}), invalid: newInvalidSPIs(), notify: o.Notifier,
		ifaces: map[uint32]*tun.TUN{}, health: newHealth()}
	if g.log == nil {
		g.log = slog.Default()
	}
	defer func() {
		if err != nil {
			g.close()
		}
	}()
	g.cfg.Store(o.Config)

	// The leak guards come first and outlive this process: from here on
	// traffic for a remote subnet never leaves in clear when no tunnel
	// carries it, even if the daemon is killed.
	g.guards = guard.New(guard.Options{Logger: g.log})
	g.closers = append(g.closers, func() { g.guards.Close() })
	if _, err := g.guards.Sync(o.Config); err != nil {
		g.log.Error("leak guards incomplete", "err", err)
	}

	if err := g.buildDataplane(); err != nil {
		return nil, err
	}
	if err := g.buildTransports(); err != nil {
		return nil, err
	}
	if err := g.buildIKE(); err != nil {
		return nil, err
	}
	return g, nil
}

// buildDataplane makes the SA and policy tables, the TUN device (and the
// devices of route-based conns), the installer and the ESP dataplane.
func (g *Gateway) buildDataplane() (err error) {
	s, cfg := g.set, g.cfg.Load()
	g.table = sad.NewTable(sad.Options{OnEvent: g.onSAEvent})
	g.closers = append(g.closers, g.table.Close)
	g.live = &spd.Live{}

	if g.dev, err = tun.Create(tun.Config{Name: s.TUNName, MTU: s.TUNMTU}); err != nil {
		return fmt.Errorf("TUN device %s: %w", s.TUNName, err)
	}
	// Closing the TUN removes its routes and the device; the dataplane's
	// Close closes it too, which is safe to do twice.
	g.closers = append(g.closers, func() { g.dev.Close() })
	g.log.Info("TUN device created", "name", g.dev.Name(), "mtu", g.dev.MTU())

	g.inst = install.New(g.table, g.live, install.Options{
		Router: g.dev, ReplayWindow: s.ReplayWindow, OnInstalled: g.releaseHeld, Logger: g.log,
		Interface: g.connInterface, Priority: g.connPriority,
	})
	if g.dp, err = esp.New(esp.Config{
		TUN: g.dev, SAD: g.table, SPD: g.live,
		NewSender:    g.newSender,
		OnTrap:       g.onTrap,
		OnNewSource:  g.inst.PeerSource,
		OnUnknownSPI: g.invalid.report,
		OnLarval:     g.larvalReleased,
		Workers:      s.Workers,
		Logger:       g.log,
	}); err != nil {
		return err
	}
	g.closers = append(g.closers, func() { g.dp.Close() })
	// The devices of route-based conns; the dataplane closes them.
	g.addInterfaces(cfg)
	return nil
}

// buildTransports opens the UDP 500/4500 and raw ESP sockets and sets up
// the TCP transport (RFC 9329) with its proxy and TLS settings.
func (g *Gateway) buildTransports() (err error) {
	s := g.set
	if g.socks, err = openSockets(g.cfg.Load(), g.opts.LocalAddrs, g.dp.HandleESP, g.log); err != nil {
		return err
	}
	// Shutdown closes the sockets itself (after IKE said goodbye); this
	// covers the error paths (close runs once).
	g.closers = append(g.closers, g.socks.close)
	g.tcp = newTCPTransport(uint16(s.TCPPort), s.NATKeepalive, g.log,
		func(local, remote netip.AddrPort, pkt []byte) { g.ike.HandlePacket(local, remote, pkt) }, g.dp.HandleESP)
	g.closers = append(g.closers, g.tcp.close)
	if s.TCPProxy != nil {
		g.tcp.dialer = s.TCPProxy
		g.log.Info("TCP streams to peers go through a proxy", "proxy", s.TCPProxy.String())
	}
	if s.TCPTLS {
		g.tcp.dialer = &tcpencap.TLSDialer{Forward: g.tcp.dialer}
		g.tcp.tlsDial = true
	}
	g.releaser = g.newSender()
	return nil
}

// buildIKE makes the IKE manager over the installer and the transports.
func (g *Gateway) buildIKE() (err error) {
	s := g.set
	encap := encapsulation(s.ESPEncapsulation)
	if g.socks.noRawESP {
		encap = ike.EncapUDP
	}
	if g.ike, err = newManager(ike.Options{
		Config:     g.cfg.Load(),
		Send:       g.sendIKE,
		Installer:  g.inst,
		Logger:     g.log,
		Retransmit: ike.Retransmit(s.Retransmit),
		LocalAddrs: g.opts.LocalAddrs,
		// auto=start conns keep retrying after keyingtries when set.
		KeyingRetryInterval: s.KeyingRetryInterval,
		FragmentSize:        s.FragmentSize,
		Encapsulation:       encap,
		// 0 turns a threshold off in the settings, a negative value in
		// ike.Options (where 0 takes the default).
		CookieThreshold:   offIfZero(s.IKE.CookieThreshold),
		CookieThresholdIP: offIfZero(s.IKE.CookieThresholdIP),
		HalfOpenLimit:     s.IKE.HalfOpenLimit,
	}); err != nil {
		return fmt.Errorf("IKE: %w", err)
	}
	return nil
}

// newManager builds the IKE manager.
var newManager = func(o ike.Options) (IKE, error) { return ike.NewManager(o) }

// start sets the gateway going: the dataplane, the receive and report
// loops, the state log, the control socket, then IKE's auto=start and
// auto=route conns.
func (g *Gateway) start() error {
	s := g.set
	g.dp.Start()
	g.background(func() { g.socks.receiveIKE(g.handleUDPIKE) })
	// The TCP listener opens, and TCP peers are known, before IKE sends
	// anything.
	if err := g.tcp.configure(g.cfg.Load()); err != nil {
		return err
	}
	g.background(func() { g.inst.RunRekeys(g.stop, g.ike.RekeyChild) })
	g.background(func() { g.inst.RunPeerMoves(g.stop, g.ike.PeerMovedESP) })
	g.background(func() { g.invalid.run(g.stop, g.ike.ReportInvalidSPI) })
	// Subscribed before anything can happen, so that every state change
	// gets its line; the log ends when the Manager closes.
	events := g.ike.Subscribe(isStateChange).Events()
	g.background(func() { logStates(g.log, events) })
	healthEvents := g.ike.Subscribe(isDPDDone).Events()
	g.background(func() { g.health.run(healthEvents, g.now) })
	// sd_notify follows the first tries of the auto=start conns from the
	// same events; subscribed before IKE starts so none is missed.
	tries := sdnotify.NewFirstTries(firstTryConns(g.cfg.Load()))
	notifyEvents := g.ike.Subscribe(isNotifyEvent).Events()
	g.startUpdown()
	if s.MetricsListen != "" {
		if err := g.startMetrics(s.MetricsListen); err != nil {
			return err
		}
	}
	g.background(g.runUsageSampler)
	ctrl, err := control.Listen(s.ControlSocket, g, g.log)
	if err != nil {
		return err
	}
	g.ctrl = ctrl
	g.ike.Start()
	g.background(func() { g.runNotify(notifyEvents, tries) })
	if g.notify.WatchdogInterval() > 0 {
		g.log.Info("systemd watchdog: WATCHDOG=1 while the IKE and dataplane loops answer", "interval", g.notify.WatchdogInterval())
		g.background(func() { g.notify.RunWatchdog(g.stop, g.probe) })
	}
	g.log.Info("ipsecgw running", "conns", len(g.cfg.Load().Names()), "control_socket", ctrl.Path(),
		"ipv6", g.socks.v6 != nil, "local", g.socks.local4)
	if s.NATKeepalive > 0 {
		g.background(func() { runKeepalives(g.stop, s.NATKeepalive, g.ike.Status, g.sendKeepalive, g.log) })
	}
	if g.opts.Ready != nil {
		g.opts.Ready()
	}
	return nil
}

// background runs f in a goroutine that shutdown waits for.
func (g *Gateway) background(f func()) {
	g.loops.Add(1)
	go func() {
		defer g.loops.Done()
		f()
	}()
}

// shutdown deletes the SAs at the peers (bounded by ShutdownTimeout),
// stops every loop and releases everything build made.
func (g *Gateway) shutdown() {
	g.notify.Stopping()
	g.log.Info("shutting down: deleting SAs at the peers")
	timeout := g.opts.ShutdownTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	if err := g.ike.Close(ctx); err != nil {
		g.log.Warn("IKE shutdown", "err", err)
	}
	cancel()
	close(g.stop)
	g.stopMetrics()
	if g.ctrl != nil {
		g.ctrl.Close()
	}
	g.inst.RemoveAll()
	// Closing the sockets ends the IKE receive loop; the state log ended
	// with the Manager. The TCP streams close after IKE said goodbye over
	// them.
	g.tcp.close()
	g.socks.close()
	g.loops.Wait()
	g.close()
	g.log.Info("ipsecgw stopped")
}

// close releases what build made, in reverse order.
func (g *Gateway) close() {
	for i := len(g.closers) - 1; i >= 0; i-- {
		g.closers[i]()
	}
	g.closers = nil
}

// newSender gives a dataplane worker its own way out through the sockets
// and the TCP streams.
func (g *Gateway) newSender() esp.Sender {
	return &tcpSender{t: g.tcp, udp: g.socks.newSender()}
}

// sendIKE sends an IKE message for the Manager (ike.Options.Send): over
// the peer's TCP stream when it has one, else over UDP.
func (g *Gateway) sendIKE(local, remote netip.AddrPort, pkt []byte) error {
	if tcp, err := g.tcp.sendIKE(remote, pkt); tcp {
		return err
	}
	return g.socks.sendIKE(pkt, local, remote)
}

// handleUDPIKE passes an IKE message received over UDP to the Manager,
// telling the TCP transport that the peer answers over UDP
// (enable-tcp=fallback stays on UDP then). With inline the Manager may
// process it in the caller's goroutine (receiveIKE).
func (g *Gateway) handleUDPIKE(local, remote netip.AddrPort, pkt []byte, inline bool) {
	g.tcp.heardUDP(remote)
	if inline {
		g.ike.ProcessPacket(local, remote, pkt)
		return
	}
	g.ike.HandlePacket(local, remote, pkt)
}

// sendKeepalive sends a NAT keepalive over UDP, except to peers reached
// over TCP (RFC 9329 §4: no NAT-keepalives for a TCP path; the stream has
// its own, tcp.go).
func (g *Gateway) sendKeepalive(dst netip.AddrPort) error {
	if _, tcp := g.tcp.routes.Load().stream(dst); tcp {
		return nil
	}
	return g.socks.sendKeepalive(dst)
}

// onSAEvent takes the SAD's lifetime events (on the packet path): a soft
// (volume) expiry is queued for IKE, which rekeys before the hard limit.
func (g *Gateway) onSAEvent(e sad.Event) {
	g.log.Info("SA lifetime event", "event", e.String())
	g.inst.SAEvent(e)
}

// onTrap runs on the packet path when traffic hits the trap policy of an
// auto=route conn: IKE negotiates the conn, without the packet path
// waiting for it.
func (g *Gateway) onTrap(policyID uint32) {
	name, ok := g.inst.TrapConn(policyID)
	if !ok {
		return
	}
	go g.ike.Acquire(name)
}

// releaseHeld sends the packets a trap policy held once its CHILD SA is
// installed (install.Options.OnInstalled).
func (g *Gateway) releaseHeld(policyID uint32) {
	g.releaseMu.Lock()
	defer g.releaseMu.Unlock()
	g.dp.ReleaseHeld(policyID, g.releaser)
}

// larvalReleased logs, once per negotiation at most, that the dataplane's
// larval hold saved (or could not save) a peer's first packets on a new
// SA.
func (g *Gateway) larvalReleased(spi uint32, n int, installed bool) {
	if installed {
		g.log.Info("ESP held until its CHILD SA was installed", "spi_in", control.FormatSPI(spi), "packets", n)
	} else {
		g.log.Warn("ESP held for a CHILD SA never installed, dropped", "spi_in", control.FormatSPI(spi), "packets", n)
	}
}

// encapsulation maps the esp.encapsulation setting (validated by
// settings.Parse) to the IKE option.
func encapsulation(setting string) ike.Encapsulation {
	switch setting {
	case "nat":
		return ike.EncapNAT
	case "udp":
		return ike.EncapUDP
	default:
		return ike.EncapAuto
	}
}

// offIfZero maps a threshold setting (0: off) to ike.Options (negative:
// off, 0: default).
func offIfZero(n int) int {
	if n == 0 {
		return -1
	}
	return n
}
