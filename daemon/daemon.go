package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/esp"
	"github.com/ipsecgw/ipsecgw/guard"
	"github.com/ipsecgw/ipsecgw/ike"
	"github.com/ipsecgw/ipsecgw/install"
	"github.com/ipsecgw/ipsecgw/sad"
	"github.com/ipsecgw/ipsecgw/settings"
	"github.com/ipsecgw/ipsecgw/spd"
	"github.com/ipsecgw/ipsecgw/tun"
)

// IKE is the part of the IKE manager (*ike.Manager) the daemon uses. It is
// an interface so the status and control logic can be tested without a
// peer.
type IKE interface {
	Start()
	HandlePacket(local, remote netip.AddrPort, pkt []byte)
	Up(name string) error
	Down(name string) error
	Acquire(name string)
	Status() []ike.ConnStatus
	ReloadConfig(cfg *config.Config)
	Close(ctx context.Context) error
	// Subscribe delivers IKE's events (the state log reads them).
	Subscribe() *ike.Subscription
}

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
}

// Run runs the gateway until ctx ends, then shuts it down: SAs deleted at
// the peers, routes and TUN removed, control socket removed. The leak
// guards (package guard) stay, so that the gateway fails closed.
func Run(ctx context.Context, o Options) (err error) {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	s := o.Settings
	if o.Config == nil {
		return errors.New("daemon: no configuration")
	}
	var cleanup []func()
	runCleanup := func() {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
		cleanup = nil
	}
	defer runCleanup()

	if s.MetricsListen != "" {
		// Say so rather than let a monitoring setup wait for an endpoint
		// that never comes.
		log.Warn("metrics_listen is set but this build has no metrics endpoint yet; ignoring it", "metrics_listen", s.MetricsListen)
	}
	// The leak guards come first and outlive this process: from here on
	// traffic for a remote subnet never leaves in clear when no tunnel
	// carries it, even if the daemon is killed.
	guards := guard.New(guard.Options{Logger: log})
	defer guards.Close()
	if _, err := guards.Sync(o.Config); err != nil {
		log.Error("leak guards incomplete", "err", err)
	}
	// inst is set before any SA can exist, so the events see it.
	var inst *install.Installer
	table := sad.NewTable(sad.Options{OnEvent: func(e sad.Event) {
		// Rekeying before the hard limits is the IKE Manager's job: a soft
		// (volume) expiry is queued for it, without blocking the packet.
		log.Info("SA lifetime event", "event", e.String())
		inst.SAEvent(e)
	}})
	cleanup = append(cleanup, table.Close)
	live := &spd.Live{}

	dev, err := tun.Create(tun.Config{Name: s.TUNName, MTU: s.TUNMTU})
	if err != nil {
		return fmt.Errorf("TUN device %s: %w", s.TUNName, err)
	}
	// Closing the TUN removes its routes and the device; the dataplane's
	// Close closes it too, which is safe to do twice.
	cleanup = append(cleanup, func() { dev.Close() })
	log.Info("TUN device created", "name", dev.Name(), "mtu", dev.MTU())

	inst = install.NewInstaller(table, live, dev, s.ReplayWindow, log)

	var socks *sockets
	var mgr IKE
	var mgrReady sync.WaitGroup
	mgrReady.Add(1)
	dp, err := esp.New(esp.Config{
		TUN: dev, SAD: table, SPD: live,
		NewSender: func() esp.Sender { return socks.newSender() },
		OnTrap: func(policyID uint32) {
			name, ok := inst.TrapConn(policyID)
			if !ok {
				return
			}
			// OnTrap runs on the packet path and must not block.
			go func() {
				mgrReady.Wait()
				mgr.Acquire(name)
			}()
		},
		OnNewSource: inst.PeerSource,
		Workers:     s.Workers,
		Logger:      log,
	})
	if err != nil {
		return err
	}
	cleanup = append(cleanup, func() { dp.Close() })

	// ESP for an SPI whose negotiation is still being processed waits for
	// its SA instead of being dropped (larval.go).
	larval := newLarvalHold(dp.HandleESP, func(spi uint32) bool { return table.Inbound(spi) != nil }, table.Reserved)
	larval.released = func(spi uint32, n int, installed bool) {
		// Once per negotiation at most: worth a line, it shows the hold
		// saved (or could not save) the peer's first packets.
		if installed {
			log.Info("ESP held until its CHILD SA was installed", "spi_in", control.FormatSPI(spi), "packets", n)
		} else {
			log.Warn("ESP held for a CHILD SA never installed, dropped", "spi_in", control.FormatSPI(spi), "packets", n)
		}
	}
	cleanup = append(cleanup, larval.close)
	socks, err = openSockets(o.Config, o.LocalAddrs, larval.HandleESP, log)
	if err != nil {
		return err
	}
	// Shutdown closes the sockets itself (after IKE said goodbye); the
	// cleanup covers the error paths (close runs once).
	cleanup = append(cleanup, socks.close)
	// Held packets of a trap policy go out as soon as its CHILD SA is in.
	var releaseMu sync.Mutex
	releaser := socks.newSender()
	inst.SetOnInstalled(func(policyID uint32) {
		releaseMu.Lock()
		defer releaseMu.Unlock()
		dp.ReleaseHeld(policyID, releaser)
	})

	m, err := newManager(ike.Options{
		Config: o.Config,
		Send: func(local, remote netip.AddrPort, pkt []byte) error {
			return socks.sendIKE(pkt, local, remote)
		},
		Installer:  inst,
		Logger:     log,
		Retransmit: ike.Retransmit(s.Retransmit),
		LocalAddrs: o.LocalAddrs,
		// auto=start conns keep retrying after keyingtries when set.
		KeyingRetryInterval: s.KeyingRetryInterval,
		FragmentSize:        s.FragmentSize,
		Encapsulation:       encapsulation(s.ESPEncapsulation),
		// 0 turns a threshold off in the settings, a negative value in
		// ike.Options (where 0 takes the default).
		CookieThreshold:   offIfZero(s.IKE.CookieThreshold),
		CookieThresholdIP: offIfZero(s.IKE.CookieThresholdIP),
		HalfOpenLimit:     s.IKE.HalfOpenLimit,
	})
	if err != nil {
		return fmt.Errorf("IKE: %w", err)
	}
	mgr = m
	mgrReady.Done()
	if r, ok := m.(interface{ RekeyChild(uint32, bool) bool }); ok {
		rekeyStop := make(chan struct{})
		go inst.RunRekeys(rekeyStop, r.RekeyChild)
		cleanup = append(cleanup, func() { close(rekeyStop) })
	}
	if r, ok := m.(interface {
		PeerMovedESP(uint32, netip.AddrPort) bool
	}); ok {
		moveStop := make(chan struct{})
		go inst.RunPeerMoves(moveStop, r.PeerMovedESP)
		cleanup = append(cleanup, func() { close(moveStop) })
	}

	dp.Start()
	ikeDone := make(chan struct{})
	go func() {
		defer close(ikeDone)
		socks.receiveIKE(m.HandlePacket)
	}()

	d := &Daemon{ike: m, inst: inst, now: time.Now, ikeSettings: s.IKE, ikeQueueDrops: socketQueueDrops(socks)}
	d.guards = guards
	d.cfg.Store(o.Config)
	// Subscribed before anything can happen, so that every state change
	// gets its line; the log ends when the Manager closes.
	stateLogDone := make(chan struct{})
	go func() {
		defer close(stateLogDone)
		logStates(log, m.Subscribe().Events())
	}()
	ctrl, err := control.Listen(s.ControlSocket, d, log)
	if err != nil {
		// The manager has not started anything yet; close it quietly.
		m.Close(context.Background())
		return err
	}
	m.Start()
	log.Info("ipsecgw running", "conns", len(o.Config.Names()), "control_socket", ctrl.Path(),
		"ipv6", socks.v6 != nil, "local", socks.local4)
	if o.Ready != nil {
		o.Ready()
	}

	keepaliveStop := make(chan struct{})
	if s.NATKeepalive > 0 {
		// Stopped before the sockets close.
		go runKeepalives(keepaliveStop, s.NATKeepalive, m.Status, socks.sendKeepalive, log)
	}

	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-o.Reload:
			if o.Load != nil {
				d.reload(log, o.Load)
			}
		}
	}
	log.Info("shutting down: deleting SAs at the peers")
	timeout := o.ShutdownTimeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	if err := m.Close(sctx); err != nil {
		log.Warn("IKE shutdown", "err", err)
	}
	cancel()
	close(keepaliveStop)
	<-stateLogDone
	ctrl.Close()
	inst.RemoveAll()
	socks.close()
	<-ikeDone
	runCleanup()
	log.Info("ipsecgw stopped")
	return nil
}

// newManager builds the IKE manager.
var newManager = func(o ike.Options) (IKE, error) { return ike.NewManager(o) }

// Daemon is the control.Backend of a running gateway: it builds the status
// values the control protocol carries from the IKE manager and the SAD.
type Daemon struct {
	cfg  atomic.Pointer[config.Config]
	ike  IKE
	inst *install.Installer
	now  func() time.Time
	// reloadMu serializes reloads.
	reloadMu sync.Mutex
	// For the global status (global.go): the DoS settings, and the
	// sockets' count of IKE datagrams dropped on a full queue (nil in
	// tests).
	ikeSettings   settings.IKESettings
	ikeQueueDrops func() uint64
	// guards follow every reloaded configuration (nil in tests).
	guards *guard.Guard
}

var _ control.Backend = (*Daemon)(nil)

// reload loads the configuration again and applies the difference: a file
// with errors is refused (the running configuration stays), unchanged
// conns are not touched, conns whose CHILD or IKE parameters changed are
// taken down and, if auto=start, brought up again with the new settings.
func (d *Daemon) reload(log *slog.Logger, load func() (*config.Config, config.Diagnostics, error)) {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	newCfg, diags, err := load()
	for _, dg := range diags {
		if dg.Severity == config.SeverityWarning {
			log.Warn("config", "diagnostic", dg.String())
		} else {
			log.Error("config", "diagnostic", dg.String())
		}
	}
	if newCfg == nil {
		if err == nil {
			err = diags.Err()
		}
		log.Error("reload refused; the running configuration stays", "err", err)
		return
	}
	oldCfg := d.cfg.Load()
	changes := config.Diff(oldCfg, newCfg)
	var restart []string
	for _, ch := range changes {
		log.Info("config change", "change", ch.String())
		if ch.Kind == config.ConnChanged && ch.Impact >= config.ImpactNewChild {
			// The Manager leaves established SAs of remaining conns alone;
			// these need new ones.
			if err := d.ike.Down(ch.Name); err != nil {
				log.Debug("reload: down", "conn", ch.Name, "err", err)
			}
			oc, _ := oldCfg.Conn(ch.Name)
			if oc.Auto == config.AutoRoute && d.inst != nil {
				_ = d.inst.RemoveTrap(ch.Name)
			}
			restart = append(restart, ch.Name)
		}
	}
	d.ike.ReloadConfig(newCfg)
	d.cfg.Store(newCfg)
	if d.guards != nil {
		// Guards of removed or auto=ignore conns go, new conns get theirs.
		if _, err := d.guards.Sync(newCfg); err != nil {
			log.Error("leak guards incomplete", "err", err)
		}
	}
	for _, name := range restart {
		c, ok := newCfg.Conn(name)
		if !ok {
			continue
		}
		switch c.Auto {
		case config.AutoStart:
			if err := d.ike.Up(name); err != nil {
				log.Warn("reload: cannot initiate", "conn", name, "err", err)
			}
		case config.AutoRoute:
			if d.inst != nil && c.Version != config.IKEv1 {
				if err := d.inst.InstallTrap(c); err != nil {
					log.Warn("reload: cannot install trap policy", "conn", name, "err", err)
				}
			}
		}
	}
	log.Info("configuration reloaded", "conns", len(newCfg.Names()), "changes", len(changes))
}

// Up implements control.Backend.
func (d *Daemon) Up(name string) error {
	c, ok := d.cfg.Load().Conn(name)
	if !ok {
		return fmt.Errorf("no connection named %q", name)
	}
	if c.Version == config.IKEv1 {
		return fmt.Errorf("connection %q uses IKEv1 (keyexchange=ikev1), which this build does not negotiate yet", name)
	}
	return d.ike.Up(name)
}

// Down implements control.Backend.
func (d *Daemon) Down(name string) error {
	if _, ok := d.cfg.Load().Conn(name); !ok {
		return fmt.Errorf("no connection named %q", name)
	}
	return d.ike.Down(name)
}

// Status implements control.Backend: every configured conn in file order, with
// what IKE knows about it and the SAD's counters for its CHILD SAs.
func (d *Daemon) Status() []control.ConnStatus {
	byName := map[string]ike.ConnStatus{}
	for _, st := range d.ike.Status() {
		byName[st.Name] = st
	}
	now := d.now()
	conns := d.cfg.Load().Conns()
	out := make([]control.ConnStatus, 0, len(conns))
	for _, c := range conns {
		cs := control.ConnStatus{
			Name: c.Name, State: control.StateDown, Auto: c.Auto.String(), Version: c.Version.String(),
			Local: endString(c.Local), Remote: endString(c.Remote), Children: []control.ChildStatus{},
		}
		if st, ok := byName[c.Name]; ok {
			d.fill(&cs, st, now)
		} else if c.Version == config.IKEv1 && c.Auto != config.AutoIgnore {
			cs.LastError = "IKEv1 (keyexchange=ikev1) is not negotiated by this build yet; the conn is loaded but stays down"
		}
		out = append(out, cs)
	}
	return out
}

func (d *Daemon) fill(cs *control.ConnStatus, st ike.ConnStatus, now time.Time) {
	if st.State != "" {
		cs.State = string(st.State)
	}
	cs.LastError = st.Reason
	if st.SPIi != 0 {
		if st.Local.IsValid() {
			cs.Local = st.Local.String()
		}
		if st.Remote.IsValid() {
			cs.Remote = st.Remote.String()
		}
		cs.IKE = &control.IKEStatus{
			Initiator: st.Initiator, InitiatorSPI: control.FormatIKESPI(st.SPIi), ResponderSPI: control.FormatIKESPI(st.SPIr),
			Proposal: st.Algorithms, LocalID: st.LocalID, RemoteID: st.RemoteID,
			NATDetected: st.NATDetected(), UptimeSeconds: control.Uptime(st.Established, now),
		}
	}
	for _, ch := range st.Children {
		c := control.ChildStatus{
			Proposal: ch.Algorithms, Protocol: "esp",
			SPIIn: control.FormatSPI(ch.InSPI), SPIOut: control.FormatSPI(ch.OutSPI), UDPEncap: ch.Encap,
			LocalTS: install.TSStrings(ch.LocalTS), RemoteTS: install.TSStrings(ch.RemoteTS),
			UptimeSeconds: control.Uptime(ch.Established, now),
		}
		if d.inst != nil {
			if in, outS, ok := d.inst.ChildCounters(ch.InSPI); ok {
				c.BytesIn, c.PacketsIn = in.Bytes, in.Packets
				c.BytesOut, c.PacketsOut = outS.Bytes, outS.Packets
			}
		}
		cs.Children = append(cs.Children, c)
	}
}

// logStates logs one line per connection state change, from IKE's
// StateChanged events, until events is closed (the Manager closed).
func logStates(log *slog.Logger, events <-chan ike.Event) {
	for ev := range events {
		sc, ok := ev.(ike.StateChanged)
		if !ok {
			continue
		}
		attrs := []any{"conn", sc.Conn, "state", sc.To, "from", sc.From}
		if sc.Reason != "" && sc.To != ike.StateEstablished {
			attrs = append(attrs, "reason", sc.Reason)
		}
		if sc.To == ike.StateEstablished {
			attrs = append(attrs, "ike", sc.Status.Algorithms)
			for _, ch := range sc.Status.Children {
				attrs = append(attrs, "esp", ch.Algorithms, "spi_in", control.FormatSPI(ch.InSPI), "spi_out", control.FormatSPI(ch.OutSPI))
			}
		}
		log.Info("connection state", attrs...)
	}
}

func endString(e config.End) string {
	if e.Addr.IsValid() {
		return e.Addr.String()
	}
	return e.Host
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
