package install

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/ike"
	"github.com/ipsecgw/ipsecgw/sad"
	"github.com/ipsecgw/ipsecgw/spd"
	"github.com/ipsecgw/ipsecgw/transform"
)

// Router puts routes for remote subnets on the TUN device (tun.TUN in the
// daemon, a recorder in tests).
type Router interface {
	AddRoute(p netip.Prefix) error
	RemoveRoute(p netip.Prefix) error
}

// trapPolicyBase starts the policy IDs of trap rules. The IKE Manager's
// reqids are small numbers (config reqid= or its own counter), so trap
// policies never collide with them; a trap verdict for a policy that has no
// SA is what makes the dataplane ask IKE to negotiate.
const trapPolicyBase = 1 << 31

// Rule priorities. A conn's Protect rules get twice its priority= (lower
// first), its trap rules one more, so that once an SA is up its Protect
// rule decides over its trap; conns without priority= come after every
// explicit one (unsetPriority), as strongSwan's computed policy priorities
// are larger than any a user writes. Between two conns with identical
// selectors the lower priority decides while it has a CHILD SA: the
// preferred tunnel of two carries the traffic, and when its SA goes the
// other's rules take over.
const unsetPriority = 1 << 30

// protectPriority and trapPriority are the rule priorities of a conn with
// priority= p (0: unset).
func protectPriority(p uint32) uint32 {
	if p == 0 {
		return 2 * unsetPriority
	}
	return 2 * p
}

func trapPriority(p uint32) uint32 { return protectPriority(p) + 1 }

// Installer implements ike.ChildInstaller over the SAD, the SPD and the
// TUN routes. CHILD SAs are installed inbound first (from then on the peer
// may use them), then outbound, then the policies that steer traffic into
// them, then the routes; removal goes the other way round.
type Installer struct {
	sad    *sad.Table
	spd    *spd.Live
	router Router
	// ifaceOf gives a conn's interface ID (route-based conns; 0: the main
	// TUN and its SPD); ifSPD holds the policies of each interface's
	// device (InterfacePolicies).
	ifaceOf func(conn string) uint32
	ifSPD   map[uint32]*spd.Live
	// sets holds the rules of each interface (0: the main TUN); a change
	// updates its Set and publishes the Set's new Table into the Live.
	sets map[uint32]*spd.Set
	// priorityOf gives a conn's priority= (0: unset).
	priorityOf func(conn string) uint32
	// upSince numbers the conns in the order they got their first CHILD
	// SA after having none (the order of equal rules, childOrder).
	upSince map[string]uint64
	upCount uint64
	// connChildren and policyChildren count the installed CHILD SAs of
	// each conn and policy ID (a conn's last CHILD SA, a policy's last
	// pair), so that removing one need not look at all the others.
	connChildren   map[string]int
	policyChildren map[uint32]int
	// policyIDs gives each conn's selector set its policy ID (policyLocked),
	// connReqID names the selector set of each conn that has the conn's
	// reqid, and nextPolicy numbers the others.
	policyIDs  map[string]uint32
	connReqID  map[string]string
	nextPolicy uint32
	log        *slog.Logger
	// defaultReplay is the replay window of conns without replay_window=.
	defaultReplay int

	mu sync.Mutex
	// children by our inbound SPI.
	children map[uint32]*installedChild
	// traps by conn name.
	traps    map[string]*trap
	nextTrap uint32
	// routes counts the users of each route (CHILD SAs and traps), so a
	// route shared by two conns or a rekeyed pair stays until the last one
	// goes.
	routes map[netip.Prefix]int
	// usage accounts each conn's traffic across its CHILD SAs (usage.go).
	usage map[string]*usageRecord
	now   func() time.Time

	// onInstalled, if set, is called (without the lock held) after a CHILD
	// SA and its policies are in, with the SAs' policy ID: the daemon sends
	// the packets a trap policy held.
	onInstalled func(policyID uint32)

	// rekeys queues the SPIs whose soft byte/packet limit the dataplane
	// reported (SAEvent runs on the packet path and must not block);
	// RunRekeys hands them to IKE.
	rekeys chan rekeyRequest
	// moves queues the dataplane's reports of authenticated ESP-in-UDP
	// from a new peer endpoint (PeerSource runs on the packet path);
	// RunPeerMoves hands them to IKE.
	moves chan peerMove
}

// peerMove is one report: our inbound SPI and the packet's outer source.
type peerMove struct {
	spi uint32
	src netip.AddrPort
}

// moveQueueLen bounds the reports waiting for IKE. The dataplane reports
// each SA at most once a second (sad.SA.NewSource); a report dropped when
// the queue is full comes again a second later.
const moveQueueLen = 64

// rekeyRequest is one soft-limit report: an SA's SPI and direction.
type rekeyRequest struct {
	spi     uint32
	inbound bool
}

// rekeyQueueLen bounds the soft-limit reports waiting for IKE. Each SA
// reports once, so it only fills when hundreds of SAs cross their limits
// within the same instant; a report dropped then is not fatal (the time
// lifetime still rekeys, and the hard limit deletes the SA).
const rekeyQueueLen = 256

// installedChild is the installer's record of one CHILD SA pair. A hub
// holds thousands, so it keeps only what cannot be derived: the rules and
// routes are rebuilt at removal from the SAs' selectors (which the SAs keep
// anyway) and the few facts below.
type installedChild struct {
	conn string
	// policyID links the SAs to their SPD rules: the conn's trap policy ID
	// when it has one (so the packets the trap held leave through the new
	// SA), else the one of its conn and selectors (policyLocked);
	// policyKey is the key of the latter in policyIDs.
	policyID  uint32
	policyKey string
	// iface is the interface ID of a route-based conn's CHILD SA: its
	// rules go into that device's policies, and it has no TUN routes.
	iface uint32
	// priority is the rules' priority when they were added: a reload may
	// change the conn's priority=, and removal must name the rules as
	// they are in the Set.
	priority uint32
	in, out  *sad.SA
	// upSince is the conn's place in the order of equal rules when the
	// pair was installed (childOrder).
	upSince uint64
	// routed says the pair has TUN routes; they are those of its
	// selectors' remote ranges (selectorRoutes) unless routes holds
	// others (remote selectors that no local one pairs with, or two with
	// one range).
	routed        bool
	routes        []netip.Prefix
	encr, integ   transform.Transform
	inSPI, outSPI uint32
}

// rules returns the pair's Protect rules, in the order of its selectors.
func (ch *installedChild) rules() []spd.Rule {
	return protectRules(ch.in.Selectors(), ch.policyID, ch.priority)
}

// order is the Order of the pair's first rule.
func (ch *installedChild) order() spd.Order { return childOrder(ch.upSince, ch.inSPI) }

// routeList returns the prefixes routed into the TUN for the pair.
func (ch *installedChild) routeList() []netip.Prefix {
	if !ch.routed || ch.routes != nil {
		return ch.routes
	}
	return selectorRoutes(ch.in.Selectors())
}

// protectRules are the rules that steer the traffic of sels into policy
// id's outbound SA.
func protectRules(sels []spd.Selector, id, priority uint32) []spd.Rule {
	rules := make([]spd.Rule, len(sels))
	for i, s := range sels {
		rules[i] = spd.Rule{Selector: s, Action: spd.Protect, PolicyID: id, Priority: priority}
	}
	return rules
}

type trap struct {
	policyID uint32
	iface    uint32
	rules    []spd.Rule
	routes   []netip.Prefix
}

// Options configure an Installer.
type Options struct {
	// Router puts the routes of remote subnets on the TUN device; nil
	// manages no routes.
	Router Router
	// ReplayWindow is the anti-replay window of CHILD SAs whose conn sets
	// no replay_window=.
	ReplayWindow int
	// OnInstalled, if set, is called (without the lock held) after a CHILD
	// SA and its policies are in, with the SAs' policy ID: the dataplane
	// sends the packets a trap policy held (esp.Dataplane.ReleaseHeld).
	OnInstalled func(policyID uint32)
	// Logger receives the log; nil discards it.
	Logger *slog.Logger
	// Interface gives the interface ID of a route-based conn (0, or nil:
	// every conn is policy-based). Such a conn's policies go into the
	// policies of its device (InterfacePolicies) instead of the main SPD,
	// its SAs carry the ID (sad.Config.Interface), and no route is put on
	// the main TUN for it: the host's routes into the device decide.
	Interface func(conn string) uint32
	// Priority gives a conn's priority= (0 or nil: unset), which orders
	// its policies before identical ones of other conns (lower first).
	Priority func(conn string) uint32
}

// New returns an Installer writing into table and live.
func New(table *sad.Table, live *spd.Live, o Options) *Installer {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Installer{
		sad: table, spd: live, router: o.Router, log: log, defaultReplay: o.ReplayWindow, onInstalled: o.OnInstalled,
		ifaceOf: o.Interface, ifSPD: map[uint32]*spd.Live{}, sets: map[uint32]*spd.Set{}, priorityOf: o.Priority,
		upSince: map[string]uint64{}, connChildren: map[string]int{}, policyChildren: map[uint32]int{},
		policyIDs: map[string]uint32{}, connReqID: map[string]string{}, nextPolicy: firstExtraPolicy,
		children: map[uint32]*installedChild{}, traps: map[string]*trap{},
		routes: map[netip.Prefix]int{}, nextTrap: trapPolicyBase,
		usage: map[string]*usageRecord{}, now: time.Now,
		rekeys: make(chan rekeyRequest, rekeyQueueLen),
		moves:  make(chan peerMove, moveQueueLen),
	}
}

var _ ike.ChildInstaller = (*Installer)(nil)

// AllocateSPI implements ike.ChildInstaller.
func (in *Installer) AllocateSPI() (uint32, error) { return in.sad.AllocateSPI() }

// Install implements ike.ChildInstaller.
func (in *Installer) Install(c ike.ChildSA) (err error) {
	defer wipe(c.InEncrKey, c.InIntegKey, c.OutEncrKey, c.OutIntegKey)
	transport := c.Mode == config.ModeTransport
	switch {
	case c.Mode == config.ModeTunnel:
	case transport && c.Protocol == ike.ProtoAH:
		if err := hostToHost(c); err != nil {
			return fmt.Errorf("conn %q: %w", c.Conn, err)
		}
	case transport:
		return fmt.Errorf("conn %q: transport mode is supported by the dataplane for AH only (ah=), not ESP", c.Conn)
	default:
		return fmt.Errorf("conn %q: only tunnel mode is supported by the dataplane", c.Conn)
	}
	pairs, err := selectorPairs(c.LocalTS, c.RemoteTS)
	if err != nil {
		return fmt.Errorf("conn %q: %w", c.Conn, err)
	}
	replay := c.ReplayWindow
	if replay < 0 {
		replay = in.defaultReplay
	}
	hard := sad.Lifetime{Time: c.Lifetime, Bytes: c.LifeBytes, Packets: c.LifePackets}
	// The time lifetime is IKE's (its rekey timer); the volume limits can
	// only be seen by the dataplane, which reports them through SAEvent.
	soft := sad.Lifetime{Bytes: c.SoftBytes, Packets: c.SoftPackets}

	newCipher := func(encKey, integKey []byte) (*transform.Protector, error) {
		return transform.NewProtector(c.Encr, c.Integ, encKey, integKey)
	}
	proto := sad.ESP
	if c.Protocol == ike.ProtoAH {
		// AH: integrity only (RFC 4302), never in UDP.
		proto, c.Encap = sad.AH, false
		newCipher = func(_, integKey []byte) (*transform.Protector, error) {
			return transform.NewAuthProtector(c.Integ, integKey)
		}
	}
	inCipher, err := newCipher(c.InEncrKey, c.InIntegKey)
	if err != nil {
		return fmt.Errorf("conn %q: inbound SA: %w", c.Conn, err)
	}
	outCipher, err := newCipher(c.OutEncrKey, c.OutIntegKey)
	if err != nil {
		inCipher.Close()
		return fmt.Errorf("conn %q: outbound SA: %w", c.Conn, err)
	}
	in.mu.Lock()
	policyID, policyKey := in.policyLocked(c.Conn, c.ReqID, pairs)
	in.mu.Unlock()
	defer func() {
		if err != nil {
			in.mu.Lock()
			in.dropPolicyLocked(c.Conn, policyID, policyKey)
			in.mu.Unlock()
		}
	}()
	iface := in.interfaceOf(c.Conn)
	base := sad.Config{
		Proto: proto, Transport: transport, Local: c.Local, Remote: c.Remote, UDPEncap: c.Encap, Selectors: pairs,
		ESN: c.ESN, ReplayWindow: replay, Soft: soft, Hard: hard, PolicyID: policyID, Interface: iface,
	}
	inCfg := base
	inCfg.SPI, inCfg.Dir, inCfg.Cipher = c.InSPI, sad.Inbound, inCipher
	outCfg := base
	outCfg.SPI, outCfg.Dir, outCfg.Cipher = c.OutSPI, sad.Outbound, outCipher
	inSA, err := sad.New(inCfg)
	if err != nil {
		inCipher.Close()
		outCipher.Close()
		return fmt.Errorf("conn %q: inbound SA %08x: %w", c.Conn, c.InSPI, err)
	}
	outSA, err := sad.New(outCfg)
	if err != nil {
		// An SA never installed does not own its cipher yet in a way
		// Remove could release; close both directly.
		inCipher.Close()
		outCipher.Close()
		return fmt.Errorf("conn %q: outbound SA %08x: %w", c.Conn, c.OutSPI, err)
	}

	if err := in.installLocked(c, inSA, outSA, pairs, policyID, policyKey); err != nil {
		return err
	}
	if in.onInstalled != nil {
		in.onInstalled(policyID)
	}
	return nil
}

// SAEvent takes a lifetime event of the SAD (sad.Options.OnEvent): a soft
// expiry is queued for RunRekeys. It runs on the packet path, so it never
// blocks: when the queue is full the report is dropped and logged.
func (in *Installer) SAEvent(e sad.Event) {
	if e.Kind != sad.SoftExpired || e.SA == nil {
		return
	}
	select {
	case in.rekeys <- rekeyRequest{spi: e.SA.SPI(), inbound: e.SA.Dir() == sad.Inbound}:
	default:
		in.log.Warn("soft lifetime report dropped: rekey queue full", "spi", fmt.Sprintf("%08x", e.SA.SPI()))
	}
}

// RunRekeys hands every queued soft-limit report to rekey (the IKE
// Manager's RekeyChild) until stop is closed.
func (in *Installer) RunRekeys(stop <-chan struct{}, rekey func(spi uint32, inbound bool) bool) {
	for {
		select {
		case <-stop:
			return
		case r := <-in.rekeys:
			if !rekey(r.spi, r.inbound) {
				in.log.Debug("soft lifetime report: no IKE SA took it", "spi", fmt.Sprintf("%08x", r.spi))
			}
		}
	}
}

// PeerSource takes the dataplane's report that an authenticated ESP-in-UDP
// packet of the inbound SA sa came from src, not from the SA's Remote
// (sad.SA.NewSource decided to report it): the NAT in front of the peer
// may have changed its mapping. It queues the report for RunPeerMoves and
// never blocks; a report that finds the queue full is dropped (the next
// comes a second later).
func (in *Installer) PeerSource(sa *sad.SA, src netip.AddrPort) {
	if sa == nil || sa.Dir() != sad.Inbound {
		return
	}
	select {
	case in.moves <- peerMove{spi: sa.SPI(), src: src}:
	default:
	}
}

// RunPeerMoves hands every queued PeerSource report to move (the IKE
// Manager's PeerMovedESP, which decides whether to follow and then calls
// UpdateRemote) until stop is closed.
func (in *Installer) RunPeerMoves(stop <-chan struct{}, move func(inSPI uint32, src netip.AddrPort) bool) {
	for {
		select {
		case <-stop:
			return
		case m := <-in.moves:
			if !move(m.spi, m.src) {
				in.log.Debug("ESP from a new peer endpoint: no IKE SA took the report", "spi", control.FormatSPI(m.spi), "src", m.src)
			}
		}
	}
}

// firstExtraPolicy starts the policy IDs policyLocked gives the second and
// further selector sets of a conn: above the IKE Manager's reqids and
// below the trap policies' (trapPolicyBase).
const firstExtraPolicy = 1 << 30

// policyLocked returns the policy ID of a new CHILD SA of conn with the
// given selectors, and its key in policyIDs ("" for a trap's policy). A
// conn's CHILD SAs with the same selectors share one policy: a rekeyed
// pair and its successor, where the newer outbound SA takes over. CHILD SAs
// with different selectors get different policies, each with its own
// outbound SA: a right=%any conn answering many peers (each with its own
// subnet) has one CHILD SA per peer, and traffic to each peer must leave
// through that peer's SA, not the one installed last. The conn's first
// selector set gets the conn's reqid, as every CHILD SA did before (and as
// conns sharing a reqid= expect); the others get numbers of their own. A
// conn with a trap policy keeps using the trap's ID, so that the packets
// the trap held leave through the new SA.
func (in *Installer) policyLocked(conn string, reqID uint32, pairs []spd.Selector) (uint32, string) {
	if t, ok := in.traps[conn]; ok {
		return t.policyID, ""
	}
	var b strings.Builder
	b.WriteString(conn)
	for _, p := range pairs {
		b.WriteString("\x00" + p.String())
	}
	key := b.String()
	if id, ok := in.policyIDs[key]; ok {
		return id, key
	}
	id := reqID
	if owner, ok := in.connReqID[conn]; ok && owner != key {
		id = in.nextPolicy
		in.nextPolicy++
	} else {
		in.connReqID[conn] = key
	}
	in.policyIDs[key] = id
	return id, key
}

func (in *Installer) installLocked(c ike.ChildSA, inSA, outSA *sad.SA, pairs []spd.Selector, policyID uint32, policyKey string) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	inCipher, outCipher := inSA.Cipher(), outSA.Cipher()
	if err := in.sad.InstallInbound(inSA); err != nil {
		inCipher.Close()
		outCipher.Close()
		return fmt.Errorf("conn %q: installing inbound SA %08x: %w", c.Conn, c.InSPI, err)
	}
	// The redundant SA of a rekey collision does not take over the
	// outbound direction: it is deleted right away, and the winner must
	// keep carrying traffic. Its outbound SA is never installed (Remove
	// discards it).
	keep := c.KeepOutbound && in.sad.Outbound(policyID) != nil
	if !keep {
		if err := in.sad.InstallOutbound(outSA); err != nil {
			in.sad.Remove(inSA)
			outCipher.Close()
			return fmt.Errorf("conn %q: installing outbound SA %08x: %w", c.Conn, c.OutSPI, err)
		}
	}
	ch := &installedChild{
		conn: c.Conn, policyID: policyID, policyKey: policyKey, iface: inSA.Interface(),
		priority: protectPriority(in.priority(c.Conn)), in: inSA, out: outSA,
		encr: c.Encr, integ: c.Integ, inSPI: c.InSPI, outSPI: c.OutSPI,
	}
	if ch.iface == 0 && c.Mode != config.ModeTransport {
		ch.routed = true
		if routes := routesOf(c.RemoteTS); !slices.Equal(routes, selectorRoutes(pairs)) {
			ch.routes = routes
		}
	}
	up, ok := in.upSince[c.Conn]
	if !ok {
		in.upCount++
		up = in.upCount
	}
	ch.upSince = up
	if err := in.addRulesLocked(ch.iface, ch.rules(), ch.order()); err != nil {
		in.sad.Remove(inSA)
		in.sad.Remove(outSA)
		return fmt.Errorf("conn %q: policies: %w", c.Conn, err)
	}
	in.upSince[c.Conn] = up
	in.children[c.InSPI] = ch
	in.connChildren[c.Conn]++
	in.policyChildren[policyID]++
	in.trackLocked(c.Conn)
	if err := in.addRoutesLocked(ch.routeList()); err != nil {
		// The SAs and policies work for traffic the host routes here by
		// other means; report the route problem without undoing them.
		in.log.Warn("adding routes to the TUN failed", "conn", c.Conn, "err", err)
	}
	// Debug: the IKE engines log each CHILD SA they establish at info
	// level with the same facts; a second line per SA doubled the log
	// (and its cost) in a burst of setups. The check spares formatting
	// the attributes when debug is off.
	if in.log.Enabled(context.Background(), slog.LevelDebug) {
		in.log.Debug("CHILD SA installed", "conn", c.Conn, "spi_in", control.FormatSPI(c.InSPI), "spi_out", control.FormatSPI(c.OutSPI),
			"local_ts", TSStrings(c.LocalTS), "remote_ts", TSStrings(c.RemoteTS), "encap", c.Encap)
	}
	return nil
}

// Remove implements ike.ChildInstaller.
func (in *Installer) Remove(conn string, inSPI, outSPI uint32) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	ch, ok := in.children[inSPI]
	if !ok || ch.conn != conn {
		return fmt.Errorf("conn %q: no CHILD SA with inbound SPI %08x", conn, inSPI)
	}
	in.forgetChildLocked(inSPI, ch)
	in.untrackLocked(conn, ch.in, ch.out, in.now())
	// Policies first. The rules of another CHILD SA (a rekeyed one) of the
	// same policy stay and keep steering traffic into the newer SA.
	in.removeRulesLocked(ch.iface, ch.rules(), ch.order())
	in.removeRoutesLocked(ch.routeList())
	// Remove only the outbound SA that is ours: after a rekey the policy's
	// current outbound SA is the new one and must stay. One never
	// installed (KeepOutbound) has its keys wiped here.
	if !in.sad.Remove(ch.out) {
		ch.out.Discard()
	}
	if in.policyChildren[ch.policyID] > 0 {
		// A rekey replaced this pair: the peer may still send a few
		// packets under the old SPI, so the old inbound SA lingers.
		in.sad.RemoveAfter(ch.in, 0)
	} else {
		in.sad.Remove(ch.in)
	}
	in.log.Info("CHILD SA removed", "conn", conn, "spi_in", control.FormatSPI(inSPI), "spi_out", control.FormatSPI(outSPI))
	return nil
}

// forgetChildLocked drops a CHILD SA from the bookkeeping: the children
// map, its conn's and policy's counts and, with the conn's last one, the
// conn's place in the order of equal rules.
func (in *Installer) forgetChildLocked(inSPI uint32, ch *installedChild) {
	delete(in.children, inSPI)
	if in.connChildren[ch.conn]--; in.connChildren[ch.conn] == 0 {
		delete(in.connChildren, ch.conn)
		delete(in.upSince, ch.conn)
	}
	if in.policyChildren[ch.policyID]--; in.policyChildren[ch.policyID] == 0 {
		delete(in.policyChildren, ch.policyID)
	}
	in.dropPolicyLocked(ch.conn, ch.policyID, ch.policyKey)
}

// dropPolicyLocked forgets the policy of a conn's selector set (key, from
// policyLocked) once no CHILD SA uses it.
func (in *Installer) dropPolicyLocked(conn string, id uint32, key string) {
	if key == "" || in.policyChildren[id] > 0 {
		return
	}
	delete(in.policyIDs, key)
	if in.connReqID[conn] == key {
		delete(in.connReqID, conn)
	}
}

// UpdateRemote implements ike.ChildInstaller: both SAs of the pair take
// the peer's new endpoint. The outbound one is what matters (the dataplane
// reads its Remote per batch, so the next packets go to the new port); the
// inbound one follows so that listings show one endpoint per pair. An
// outbound SA never installed (KeepOutbound) is moved too, harmlessly.
func (in *Installer) UpdateRemote(conn string, inSPI, outSPI uint32, remote netip.AddrPort) error {
	in.mu.Lock()
	ch, ok := in.children[inSPI]
	in.mu.Unlock()
	if !ok || ch.conn != conn || ch.outSPI != outSPI {
		return fmt.Errorf("conn %q: no CHILD SA with SPIs %08x/%08x to move", conn, inSPI, outSPI)
	}
	old := ch.out.Remote()
	if err := ch.out.SetRemote(remote); err != nil {
		return fmt.Errorf("conn %q: outbound SA %08x: %w", conn, outSPI, err)
	}
	if err := ch.in.SetRemote(remote); err != nil {
		return fmt.Errorf("conn %q: inbound SA %08x: %w", conn, inSPI, err)
	}
	if old != remote {
		in.log.Info("CHILD SA moved to the peer's new endpoint", "conn", conn, "spi_in", control.FormatSPI(inSPI),
			"spi_out", control.FormatSPI(outSPI), "from", old, "to", remote)
	}
	return nil
}

// SwitchOutbound implements ike.OutboundSwitcher: the outbound SA of a
// CHILD SA installed with KeepOutbound (the responder's side of a rekey)
// becomes the current one of its policy once the peer is known to have
// installed its inbound partner; the previous outbound SA is retired.
func (in *Installer) SwitchOutbound(conn string, inSPI uint32) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	ch, ok := in.children[inSPI]
	if !ok || ch.conn != conn {
		return fmt.Errorf("conn %q: no CHILD SA with inbound SPI %08x", conn, inSPI)
	}
	if in.sad.Outbound(ch.policyID) == ch.out {
		return nil // KeepOutbound found no outbound SA to keep
	}
	if err := in.sad.InstallOutbound(ch.out); err != nil {
		return fmt.Errorf("conn %q: installing outbound SA %08x: %w", conn, ch.outSPI, err)
	}
	in.log.Info("CHILD SA outbound switched", "conn", conn, "spi_in", control.FormatSPI(inSPI), "spi_out", control.FormatSPI(ch.outSPI))
	return nil
}

// InstallTrap implements ike.ChildInstaller.
func (in *Installer) InstallTrap(conn config.Conn) error {
	pairs, err := selectorPairs(conn.Local.Subnets, conn.Remote.Subnets)
	if err != nil {
		return fmt.Errorf("conn %q: %w", conn.Name, err)
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if _, ok := in.traps[conn.Name]; ok {
		return nil
	}
	t := &trap{policyID: in.nextTrap, iface: in.interfaceOf(conn.Name)}
	in.nextTrap++
	for _, s := range pairs {
		t.rules = append(t.rules, spd.Rule{Selector: s, Action: spd.Trap, PolicyID: t.policyID, Priority: trapPriority(in.priority(conn.Name))})
	}
	if t.iface == 0 && conn.Mode != config.ModeTransport {
		t.routes = routesOf(conn.Remote.Subnets)
	}
	if err := in.addRulesLocked(t.iface, t.rules, trapOrder(conn.Name)); err != nil {
		return fmt.Errorf("conn %q: trap policies: %w", conn.Name, err)
	}
	in.traps[conn.Name] = t
	if err := in.addRoutesLocked(t.routes); err != nil {
		in.log.Warn("adding routes to the TUN failed", "conn", conn.Name, "err", err)
	}
	in.log.Info("trap policy installed", "conn", conn.Name, "local_ts", TSStrings(conn.Local.Subnets), "remote_ts", TSStrings(conn.Remote.Subnets))
	return nil
}

// RemoveTrap implements ike.ChildInstaller.
func (in *Installer) RemoveTrap(conn string) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	t, ok := in.traps[conn]
	if !ok {
		return nil
	}
	delete(in.traps, conn)
	in.removeRulesLocked(t.iface, t.rules, trapOrder(conn))
	in.removeRoutesLocked(t.routes)
	in.log.Info("trap policy removed", "conn", conn)
	return nil
}

// TrapConn returns the conn whose trap policy has the given policy ID: the
// dataplane calls it when a packet hits a trap, to ask IKE for that conn.
func (in *Installer) TrapConn(policyID uint32) (string, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	for name, t := range in.traps {
		if t.policyID == policyID {
			return name, true
		}
	}
	return "", false
}

// ChildCounters returns the SAD counters of the CHILD SA with our inbound
// SPI inSPI: inbound and outbound packets and bytes.
func (in *Installer) ChildCounters(inSPI uint32) (inStats, outStats sad.Stats, ok bool) {
	in.mu.Lock()
	ch, ok := in.children[inSPI]
	in.mu.Unlock()
	if !ok {
		return sad.Stats{}, sad.Stats{}, false
	}
	return ch.in.Stats(), ch.out.Stats(), true
}

// RemoveAll removes every CHILD SA, trap policy and route (shutdown, after
// IKE has deleted what it could at the peers).
func (in *Installer) RemoveAll() {
	in.mu.Lock()
	defer in.mu.Unlock()
	for spi, ch := range in.children {
		in.forgetChildLocked(spi, ch)
		in.untrackLocked(ch.conn, ch.in, ch.out, in.now())
		in.removeRoutesLocked(ch.routeList())
		if !in.sad.Remove(ch.out) {
			ch.out.Discard()
		}
		in.sad.Remove(ch.in)
	}
	for name, t := range in.traps {
		delete(in.traps, name)
		in.removeRoutesLocked(t.routes)
	}
	for id := range in.sets {
		in.sets[id] = spd.NewSet()
		in.publishLocked(id)
	}
}

// The order of equal rules (same priority and specificity): a conn's
// CHILD SAs in the order their conns came up (the one carrying the traffic
// keeps it when another with identical selectors and priority comes back:
// "stay" rather than fail back), then by inbound SPI, then trap policies by
// conn name; within a CHILD SA or trap, the order of its selector pairs.
// Identical rules of two CHILD SAs (a rekeyed pair and its successor) are
// both in the Set; the first in this order decides, and decides the same.

// childOrder is the Order of a CHILD SA's first rule.
func childOrder(upSince uint64, inSPI uint32) spd.Order {
	return spd.Order{Major: upSince, Minor: uint64(inSPI) << 32}
}

// trapOrder is the Order of a trap's first rule: after every CHILD SA's.
func trapOrder(conn string) spd.Order { return spd.Order{Major: math.MaxUint64, Name: conn} }

// addRulesLocked adds rules to interface iface's policies, rule j with
// order's Minor plus j, and publishes them; on an error it adds none.
func (in *Installer) addRulesLocked(iface uint32, rules []spd.Rule, order spd.Order) error {
	set := in.setLocked(iface)
	for j, r := range rules {
		o := order
		o.Minor += uint64(j)
		if err := set.Add(r, o); err != nil {
			in.removeRulesLocked(iface, rules[:j], order)
			return err
		}
	}
	in.publishLocked(iface)
	return nil
}

// removeRulesLocked removes what addRulesLocked added and publishes.
func (in *Installer) removeRulesLocked(iface uint32, rules []spd.Rule, order spd.Order) {
	set := in.setLocked(iface)
	for j, r := range rules {
		o := order
		o.Minor += uint64(j)
		set.Remove(r, o)
	}
	in.publishLocked(iface)
}

func (in *Installer) setLocked(iface uint32) *spd.Set {
	s, ok := in.sets[iface]
	if !ok {
		s = spd.NewSet()
		in.sets[iface] = s
	}
	return s
}

// publishLocked makes interface iface's current rules live.
func (in *Installer) publishLocked(iface uint32) {
	t := in.setLocked(iface).Table()
	if iface == 0 {
		in.spd.Store(t)
	} else {
		in.policiesLocked(iface).Store(t)
	}
}

// InterfacePolicies returns the policies of interface ID id's device (the
// daemon hands them to esp.Dataplane.AddInterface); the Installer keeps
// them up to date as that interface's conns' CHILD SAs come and go.
func (in *Installer) InterfacePolicies(id uint32) *spd.Live {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.policiesLocked(id)
}

func (in *Installer) policiesLocked(id uint32) *spd.Live {
	l, ok := in.ifSPD[id]
	if !ok {
		l = &spd.Live{}
		in.ifSPD[id] = l
	}
	return l
}

// priority is a conn's priority= (0: unset).
func (in *Installer) priority(conn string) uint32 {
	if in.priorityOf == nil {
		return 0
	}
	return in.priorityOf(conn)
}

// interfaceOf is a conn's interface ID (0: policy-based).
func (in *Installer) interfaceOf(conn string) uint32 {
	if in.ifaceOf == nil {
		return 0
	}
	return in.ifaceOf(conn)
}

func (in *Installer) addRoutesLocked(ps []netip.Prefix) error {
	var errs []error
	for _, p := range ps {
		if in.routes[p] == 0 && in.router != nil {
			if err := in.router.AddRoute(p); err != nil {
				errs = append(errs, fmt.Errorf("route %s: %w", p, err))
				continue
			}
		}
		in.routes[p]++
	}
	return errors.Join(errs...)
}

func (in *Installer) removeRoutesLocked(ps []netip.Prefix) {
	for _, p := range ps {
		n, ok := in.routes[p]
		if !ok {
			continue
		}
		if n > 1 {
			in.routes[p] = n - 1
			continue
		}
		delete(in.routes, p)
		if in.router != nil {
			if err := in.router.RemoveRoute(p); err != nil {
				in.log.Warn("removing route from the TUN failed", "route", p, "err", err)
			}
		}
	}
}

// selectorPairs turns traffic selector lists into the SPD selectors they
// protect (spd.Pairs), and refuses lists that give none or an invalid one.
func selectorPairs(local, remote []spd.TS) ([]spd.Selector, error) {
	out := spd.Pairs(local, remote)
	for _, s := range out {
		if err := s.Validate(); err != nil {
			return nil, fmt.Errorf("traffic selectors %s: %w", s, err)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("traffic selectors %v === %v have no pair of the same address family and protocol", TSStrings(local), TSStrings(remote))
	}
	return out, nil
}

// hostToHost checks that a transport-mode CHILD SA protects only traffic
// between its own two endpoints: in transport mode the packet's IP header
// is the AH packet's (RFC 4302 §3.1.1), so a selector for any other
// address would send AH packets to hosts that have no SA.
func hostToHost(c ike.ChildSA) error {
	for _, side := range []struct {
		ts   []spd.TS
		addr netip.Addr
		name string
	}{{c.LocalTS, c.Local.Addr().Unmap(), "local"}, {c.RemoteTS, c.Remote.Addr().Unmap(), "remote"}} {
		for _, ts := range side.ts {
			p := ts.Range.Prefixes()
			if len(p) != 1 || !p[0].IsSingleIP() || p[0].Addr().Unmap() != side.addr {
				return fmt.Errorf("transport mode: %s traffic selector %s is not the %s address %s (transport mode is host-to-host)",
					side.name, strings.Join(TSStrings([]spd.TS{ts}), ","), side.name, side.addr)
			}
		}
	}
	return nil
}

// Routes into the TUN are never added for transport-mode conns: their
// remote selector is the peer's own address, and a route for it would
// send the daemon's IKE and AH packets to that peer into the TUN too.
// Traffic reaches a transport-mode SA through policy routing that leaves
// those out (README, "AH transport mode").

// routesOf are the prefixes to route into the TUN for remote selectors.
func routesOf(remote []spd.TS) []netip.Prefix {
	var out []netip.Prefix
	for _, ts := range remote {
		out = append(out, ts.Range.Prefixes()...)
	}
	return out
}

// selectorRoutes are the prefixes of the distinct remote ranges of sels, in
// the order they first appear: routesOf the remote selectors that Pairs
// made sels of, when each of them paired with a local one and no two share
// a range (the usual case, in which a CHILD SA need not keep its routes).
func selectorRoutes(sels []spd.Selector) []netip.Prefix {
	var ranges []spd.AddrRange
	var out []netip.Prefix
	for _, s := range sels {
		if !slices.Contains(ranges, s.Remote) {
			ranges = append(ranges, s.Remote)
			out = append(out, s.Remote.Prefixes()...)
		}
	}
	return out
}

// TSStrings renders selectors for logs and the status, one CIDR string per
// prefix (a range that is not a prefix becomes several).
func TSStrings(ts []spd.TS) []string {
	out := []string{}
	for _, t := range ts {
		for _, p := range t.Split() {
			out = append(out, p.String())
		}
	}
	return out
}

func wipe(keys ...[]byte) {
	for _, k := range keys {
		clear(k)
	}
}
