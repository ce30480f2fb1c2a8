package sad

import (
	"errors"
	"fmt"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipsecgw/ipsecgw/esp/replay"
	"github.com/ipsecgw/ipsecgw/spd"
	"github.com/ipsecgw/ipsecgw/transform"
)

// Direction of an SA.
type Direction uint8

const (
	Inbound Direction = iota + 1
	Outbound
)

func (d Direction) String() string {
	switch d {
	case Inbound:
		return "in"
	case Outbound:
		return "out"
	}
	return fmt.Sprintf("direction(%d)", uint8(d))
}

// Lifetime limits an SA. Zero fields mean no limit. Time is measured from
// the SA's creation.
type Lifetime struct {
	Bytes, Packets uint64
	Time           time.Duration
}

// Protocol is the IPsec protocol of an SA.
type Protocol uint8

const (
	// ESP (RFC 4303), the zero value: encryption and integrity.
	ESP Protocol = iota
	// AH (RFC 4302): integrity of the whole packet, outer header included;
	// the Cipher is integrity-only (transform.NewAuthProtector), and AH is
	// never carried in UDP.
	AH
)

func (p Protocol) String() string {
	if p == AH {
		return "AH"
	}
	return "ESP"
}

// Config describes an SA to create.
type Config struct {
	// Proto is ESP or AH. SPIs are allocated from one space for both, so
	// an inbound SPI names one SA of either protocol.
	Proto Protocol
	SPI   uint32
	Dir   Direction
	// Local and Remote are the outer (tunnel endpoint) addresses; the ports
	// matter only with UDPEncap (RFC 3948), usually 4500.
	Local, Remote netip.AddrPort
	UDPEncap      bool
	// Transport makes an AH SA a transport-mode one (RFC 4302 §3.1.1): the
	// AH header goes between a packet's own IP header and its payload, so
	// the packet must be from Local to Remote (host-to-host); false is
	// tunnel mode. ESP SAs are tunnel mode only.
	Transport bool
	// Selectors are the traffic selectors the SA protects, from this
	// gateway's point of view (Local = our side). An inbound SA drops inner
	// packets outside them; it needs at least one. New keeps the slice
	// rather than a copy (the two SAs of a pair share one): the caller
	// must not modify it afterwards.
	Selectors []spd.Selector
	// Cipher is the SA's keyed protection for its direction. The SA owns it
	// and closes it (wiping the keys) when the SA has been removed and the
	// last reference taken with Acquire is released.
	Cipher *transform.Protector
	ESN    bool
	// ReplayWindow is the anti-replay window size for inbound SAs (0: the
	// default, 128).
	ReplayWindow int
	Soft, Hard   Lifetime
	// PolicyID is the reqid linking the SA to its SPD policy; outbound SAs
	// are found by it.
	PolicyID uint32
	// Interface is the interface ID of a route-based conn's SA (the
	// userspace counterpart of XFRM's if_id): its decrypted packets are
	// written to the device of that ID. 0 is the main TUN device.
	Interface uint32
	// Created is the creation time; zero means time.Now().
	Created time.Time
}

// Errors from New and the Table.
var (
	ErrReservedSPI  = errors.New("sad: SPI 0-255 is reserved (RFC 4303 §2.1)")
	ErrSPIInUse     = errors.New("sad: SPI already in use")
	ErrBadConfig    = errors.New("sad: invalid SA configuration")
	ErrNotInstalled = errors.New("sad: SA is not installed")
	ErrInstalled    = errors.New("sad: SA was already installed once")
)

// counters are the per-SA statistics. They end the SA and start on a cache
// line of their own (offset 256), so the hot immutable fields of the SA
// are not invalidated by counter writes; the SA's heap slot is a whole
// number of cache lines and so starts on one (TestSASlotWholeCacheLines),
// and no other object's bytes share the counters' lines: two SAs updated
// on different cores never share one. The pad fills the SA to its 384-byte
// slot (without it the SA would take a 352-byte one, which is not whole
// lines).
type counters struct {
	refs    atomic.Int64 // the Table's reference plus one per Acquire
	packets atomic.Uint64
	bytes   atomic.Uint64
	drops   [NumDropReasons]atomic.Uint64
	_       [32]byte
}

// state bits.
const (
	stSoft      = 1 << iota // soft expiry event delivered
	stHard                  // hard expiry: refuse packets
	stDead                  // removed from the table
	stInstalled             // was installed (an SA is installed once)
)

// SA is one unidirectional ESP security association. Its identity and
// configuration are immutable; the packet-path methods are safe for
// concurrent use and do not allocate.
//
// A hub holds two SAs per idle tunnel, so the fields are ordered to leave
// no padding and kept to what the SA needs after New: the fields before
// the counters take 256 bytes (four cache lines), and the SA its 384-byte
// heap slot (six, TestSASlotWholeCacheLines). Its lifetimes are kept as the
// packet path compares them (Soft, Hard) and its creation time on a
// process clock (Created).
type SA struct {
	spi      uint32
	policyID uint32
	iface    uint32
	state    atomic.Uint32
	proto    Protocol
	dir      Direction
	esn      bool
	udpEncap bool
	// transport: a transport-mode AH SA (Config.Transport).
	transport bool
	closed    bool  // guarded by mu
	lifeIdx   int32 // see lifeAt
	local     netip.AddrPort
	// remote is where outbound packets go. It is the one field IKE may
	// change after creation (SetRemote: the peer's NAT mapping moved), so
	// it sits behind an atomic pointer: the packet path reads it with one
	// load and no lock, and a writer publishes a fresh value. It points at
	// remote0, the value New was given, until the first SetRemote.
	remote   atomic.Pointer[netip.AddrPort]
	sels     []spd.Selector
	selTable *spd.Table // the selectors, compiled, for the inbound check (nil outbound)
	cipher   *transform.Protector
	window   *replay.Window   // inbound only
	seq      *replay.Sequence // outbound only
	// limits with "none" as MaxUint64, so the hot path compares only; a
	// soft limit is at most the hard one.
	softPkts, softBytes, hardPkts, hardBytes uint64
	// created is the creation time in nanoseconds since clockEpoch;
	// softTime and hardTime are the time limits counted from it.
	created            int64
	softTime, hardTime time.Duration
	// reportedAt is when NewSource last told IKE about a new peer source
	// (unix nanoseconds); it limits those reports to one per
	// SourceReportInterval per SA.
	reportedAt atomic.Int64

	mu    sync.Mutex // guards table, closed
	table *Table

	// lifeAt are the pending soft and hard time limits on the table's
	// lifeQueue clock (0: none or delivered), lifeIdx the SA's index in
	// that queue (-1: not queued); both guarded by the queue's mutex.
	lifeAt [2]int64

	remote0 netip.AddrPort // see remote; never written after New

	ctr counters
}

// clockEpoch is the origin of SA.created: an int64 on the monotonic clock
// in a third of a time.Time's bytes.
var clockEpoch = time.Now()

// New creates an SA. It does not install it; see Table. The SA takes
// ownership of c.Cipher only on success; an SA that is then never installed
// must be given up with Discard so that its keys are wiped.
func New(c Config) (*SA, error) {
	if c.SPI < 256 {
		return nil, ErrReservedSPI
	}
	if c.Dir != Inbound && c.Dir != Outbound {
		return nil, fmt.Errorf("%w: direction %d", ErrBadConfig, c.Dir)
	}
	if c.Cipher == nil {
		return nil, fmt.Errorf("%w: no cipher", ErrBadConfig)
	}
	if c.Proto != ESP && c.Proto != AH {
		return nil, fmt.Errorf("%w: protocol %d", ErrBadConfig, c.Proto)
	}
	if c.Proto == AH && c.UDPEncap {
		return nil, fmt.Errorf("%w: AH cannot be carried in UDP (it authenticates the outer addresses)", ErrBadConfig)
	}
	if c.Transport && c.Proto != AH {
		return nil, fmt.Errorf("%w: transport mode is supported for AH only", ErrBadConfig)
	}
	if !c.Local.Addr().IsValid() || !c.Remote.Addr().IsValid() || c.Local.Addr().Is4() != c.Remote.Addr().Is4() {
		return nil, fmt.Errorf("%w: outer addresses %v and %v", ErrBadConfig, c.Local, c.Remote)
	}
	if c.Dir == Inbound && len(c.Selectors) == 0 {
		return nil, fmt.Errorf("%w: inbound SA without traffic selectors", ErrBadConfig)
	}
	// Only the inbound check (CheckInner) uses the compiled selectors; an
	// outbound SA's are validated alike but not compiled, which spares a
	// hub a table per outbound SA.
	var tab *spd.Table
	if c.Dir == Inbound {
		rules := make([]spd.Rule, len(c.Selectors))
		for i, s := range c.Selectors {
			rules[i] = spd.Rule{Selector: s, Action: spd.Protect, PolicyID: c.PolicyID}
		}
		var err error
		if tab, err = spd.Compile(rules); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadConfig, err)
		}
	} else {
		for i, s := range c.Selectors {
			if err := s.Validate(); err != nil {
				return nil, fmt.Errorf("%w: rule %d: %w", ErrBadConfig, i, err)
			}
		}
	}
	sa := &SA{
		proto: c.Proto, spi: c.SPI, dir: c.Dir, esn: c.ESN, udpEncap: c.UDPEncap, transport: c.Transport, policyID: c.PolicyID, iface: c.Interface,
		local: c.Local,
		sels:  c.Selectors, selTable: tab,
		cipher: c.Cipher, softTime: c.Soft.Time, hardTime: c.Hard.Time,
		softPkts: orMax(c.Soft.Packets), softBytes: orMax(c.Soft.Bytes),
		hardPkts: orMax(c.Hard.Packets), hardBytes: orMax(c.Hard.Bytes),
		lifeIdx: -1,
	}
	// The hot path only compares against the soft limits; a hard limit below
	// (or without) a soft one must still get there.
	sa.softPkts = min(sa.softPkts, sa.hardPkts)
	sa.softBytes = min(sa.softBytes, sa.hardBytes)
	created := c.Created
	if created.IsZero() {
		created = time.Now()
	}
	sa.created = int64(created.Sub(clockEpoch))
	sa.remote0 = c.Remote
	sa.remote.Store(&sa.remote0)
	if c.Dir == Inbound {
		w, ok := replay.New(c.ReplayWindow, c.ESN)
		if !ok {
			return nil, fmt.Errorf("%w: replay window %d (max %d)", ErrBadConfig, c.ReplayWindow, replay.MaxSize)
		}
		sa.window = w
	} else {
		sa.seq = replay.NewSequence(c.ESN)
	}
	return sa, nil
}

func orMax(v uint64) uint64 {
	if v == 0 {
		return math.MaxUint64
	}
	return v
}

// orNone is orMax's inverse: 0 for "none".
func orNone(v uint64) uint64 {
	if v == math.MaxUint64 {
		return 0
	}
	return v
}

// Accessors for the immutable fields (and Remote, which SetRemote may
// change).

func (sa *SA) Proto() Protocol              { return sa.proto }
func (sa *SA) Transport() bool              { return sa.transport }
func (sa *SA) SPI() uint32                  { return sa.spi }
func (sa *SA) Dir() Direction               { return sa.dir }
func (sa *SA) ESN() bool                    { return sa.esn }
func (sa *SA) UDPEncap() bool               { return sa.udpEncap }
func (sa *SA) PolicyID() uint32             { return sa.policyID }
func (sa *SA) Interface() uint32            { return sa.iface }
func (sa *SA) Local() netip.AddrPort        { return sa.local }
func (sa *SA) Cipher() *transform.Protector { return sa.cipher }
func (sa *SA) Selectors() []spd.Selector    { return sa.sels }
func (sa *SA) ReplayWindow() *replay.Window { return sa.window }
func (sa *SA) Sequence() *replay.Sequence   { return sa.seq }

// Created returns the SA's creation time (Config.Created), on the
// monotonic clock.
func (sa *SA) Created() time.Time { return clockEpoch.Add(time.Duration(sa.created)) }

// Soft returns the soft lifetime as the SA applies it: a volume limit the
// hard one undercuts, or that only the hard one sets, is the hard one's
// (the SA reports a soft expiry before each hard one).
func (sa *SA) Soft() Lifetime {
	return Lifetime{Bytes: orNone(sa.softBytes), Packets: orNone(sa.softPkts), Time: sa.softTime}
}

// Hard returns the hard lifetime.
func (sa *SA) Hard() Lifetime {
	return Lifetime{Bytes: orNone(sa.hardBytes), Packets: orNone(sa.hardPkts), Time: sa.hardTime}
}

// Remote returns where the SA's packets go (outbound) or come from
// (inbound): the peer's outer address and, with UDPEncap, its port. The
// packet path calls it per batch: one atomic load, no lock, no allocation.
func (sa *SA) Remote() netip.AddrPort { return *sa.remote.Load() }

// SetRemote moves the SA's peer endpoint to ap, for a peer whose NAT
// mapping changed (RFC 7296 §2.23: IKE saw an authenticated message from
// the new address or port). Safe while the dataplane uses the SA: packets
// already built keep the old destination, later ones take the new one. It
// refuses an invalid address or one of the other family than Local, as New
// does; the address family of an SA never changes.
func (sa *SA) SetRemote(ap netip.AddrPort) error {
	if !ap.Addr().IsValid() || ap.Addr().Is4() != sa.local.Addr().Is4() {
		return fmt.Errorf("%w: new remote %v for local %v", ErrBadConfig, ap, sa.local)
	}
	sa.remote.Store(&ap)
	return nil
}

// SourceReportInterval is the shortest time between two NewSource
// reports of one SA: IKE may decline to follow (we are behind a NAT
// ourselves), and the packets keep coming from the other source.
const SourceReportInterval = time.Second

// NewSource is the inbound packet path's test for a peer whose NAT mapping
// changed: call it for a packet that authenticated and passed the replay
// window, with the packet's outer source. It reports true when the SA runs
// ESP in UDP, src is not the SA's Remote, and no report was made for the
// SA in the last SourceReportInterval: then tell IKE (without blocking),
// which decides whether to move the SA pair (SetRemote). A packet from
// the known source costs one atomic load and a compare, and nothing
// allocates. Plain ESP (no ports) never reports; its peer address is
// fixed by IKE.
func (sa *SA) NewSource(src netip.AddrPort) bool {
	if !sa.udpEncap || src == *sa.remote.Load() {
		return false
	}
	now := time.Now().UnixNano()
	last := sa.reportedAt.Load()
	if last != 0 && now-last < int64(SourceReportInterval) {
		return false
	}
	return sa.reportedAt.CompareAndSwap(last, now)
}

// Expired reports whether the SA reached a hard limit.
func (sa *SA) Expired() bool { return sa.state.Load()&stHard != 0 }

// Removed reports whether the SA has been taken out of its table.
func (sa *SA) Removed() bool { return sa.state.Load()&stDead != 0 }

// String identifies the SA for logs; it never shows key material.
func (sa *SA) String() string {
	encap := ""
	if sa.udpEncap {
		encap = " udp-encap"
	}
	return fmt.Sprintf("%v-%v spi=0x%08x %v->%v%s reqid=%d", sa.proto, sa.dir, sa.spi, sa.local, sa.Remote(), encap, sa.policyID)
}

// --- packet path -------------------------------------------------------------

// refuse returns why a packet may not use the SA at all, or NotDropped.
func (sa *SA) refuse() DropReason {
	st := sa.state.Load()
	switch {
	case st&stDead != 0:
		return DropNoSA
	case st&stHard != 0:
		return DropExpired
	}
	return NotDropped
}

// NextSeq reserves the sequence number for an outbound packet of n bytes
// and accounts it. It refuses (DropExpired) once the SA hit a hard lifetime
// or ran out of sequence numbers, and DropNoSA once it was removed. The
// dataplane drops the packet on any reason other than NotDropped, calling
// sa.Drop with it.
func (sa *SA) NextSeq(n int) (uint64, DropReason) {
	if r := sa.refuse(); r != NotDropped {
		return 0, r
	}
	seq, ok := sa.seq.Next()
	if !ok {
		sa.expire(true, CauseSequence)
		return 0, DropExpired
	}
	sa.account(n)
	return seq, NotDropped
}

// Check runs the cheap pre-authentication test on an inbound packet with
// the 32-bit sequence number low: the SA must be usable and the number not
// a replay. It returns the full sequence number (with ESN, the inferred high
// bits enter the ICV), to be passed to Accept after the ICV verified.
func (sa *SA) Check(low uint32) (uint64, DropReason) {
	if r := sa.refuse(); r != NotDropped {
		return 0, r
	}
	seq, res := sa.window.Check(low)
	if res != replay.OK {
		return 0, DropReplay
	}
	return seq, NotDropped
}

// Accept records an authenticated inbound packet of n bytes with the full
// sequence number seq (from Check): it updates the replay window, which may
// still refuse it (a copy accepted meanwhile), and the counters and
// lifetimes.
func (sa *SA) Accept(seq uint64, n int) DropReason {
	if sa.window.Accept(seq) != replay.OK {
		return DropReplay
	}
	sa.account(n)
	return NotDropped
}

// CheckInner tests a decrypted inner packet against the SA's traffic
// selectors: DropSelectorMismatch when it lies outside them, DropMalformed
// when its header cannot be parsed. Only inbound SAs check inner packets;
// an outbound SA refuses every one (DropSelectorMismatch).
func (sa *SA) CheckInner(pkt []byte) DropReason {
	if sa.selTable == nil {
		return DropSelectorMismatch
	}
	switch r := sa.selTable.Inbound(pkt); r.Status {
	case spd.Matched:
		return NotDropped
	case spd.Malformed:
		return DropMalformed
	}
	return DropSelectorMismatch
}

// Drop counts a dropped packet against the SA.
func (sa *SA) Drop(r DropReason) {
	if int(r) < NumDropReasons {
		sa.ctr.drops[r].Add(1)
	}
}

func (sa *SA) account(n int) {
	p := sa.ctr.packets.Add(1)
	b := sa.ctr.bytes.Add(uint64(n))
	if p >= sa.softPkts || b >= sa.softBytes {
		sa.limits(p, b)
	}
}

// limits is the slow path once a soft limit is reached.
func (sa *SA) limits(p, b uint64) {
	switch {
	case p >= sa.hardPkts:
		sa.expire(true, CausePackets)
	case b >= sa.hardBytes:
		sa.expire(true, CauseBytes)
	case p >= sa.softPkts:
		sa.expire(false, CausePackets)
	default:
		sa.expire(false, CauseBytes)
	}
}

// expire marks a soft or hard expiry and delivers its event, each exactly
// once; a hard expiry delivers the soft event first if it has not been.
func (sa *SA) expire(hard bool, cause Cause) {
	for {
		st := sa.state.Load()
		want := st | stSoft
		if hard {
			want |= stHard
		}
		if want == st {
			return // already delivered
		}
		if !sa.state.CompareAndSwap(st, want) {
			continue
		}
		if st&stSoft == 0 {
			sa.emit(Event{Kind: SoftExpired, Cause: cause, SA: sa})
		}
		if hard {
			sa.emit(Event{Kind: HardExpired, Cause: cause, SA: sa})
		}
		return
	}
}

func (sa *SA) emit(ev Event) {
	sa.mu.Lock()
	t := sa.table
	sa.mu.Unlock()
	if t != nil && t.opts.OnEvent != nil {
		t.opts.OnEvent(ev)
	}
}

// Stats is a snapshot of an SA's counters. Packets and Bytes count packets
// that passed (protected outbound, accepted inbound); Drops counts drops
// charged to the SA by reason.
type Stats struct {
	Packets, Bytes uint64
	Drops          [NumDropReasons]uint64
}

// Stats returns the SA's counters.
func (sa *SA) Stats() Stats {
	s := Stats{Packets: sa.ctr.packets.Load(), Bytes: sa.ctr.bytes.Load()}
	for i := range s.Drops {
		s.Drops[i] = sa.ctr.drops[i].Load()
	}
	return s
}

// --- events ------------------------------------------------------------------

// EventKind is the kind of a lifetime event.
type EventKind uint8

const (
	// SoftExpired: time to rekey (IKE starts a CREATE_CHILD_SA).
	SoftExpired EventKind = iota + 1
	// HardExpired: the SA refuses packets from now on; IKE deletes it.
	HardExpired
)

func (k EventKind) String() string {
	switch k {
	case SoftExpired:
		return "soft expired"
	case HardExpired:
		return "hard expired"
	}
	return fmt.Sprintf("event(%d)", uint8(k))
}

// Cause says which limit was reached.
type Cause uint8

const (
	CauseBytes Cause = iota + 1
	CausePackets
	CauseTime
	// CauseSequence: the outbound sequence counter is used up (hard only).
	CauseSequence
)

func (c Cause) String() string {
	switch c {
	case CauseBytes:
		return "bytes"
	case CausePackets:
		return "packets"
	case CauseTime:
		return "time"
	case CauseSequence:
		return "sequence numbers"
	}
	return fmt.Sprintf("cause(%d)", uint8(c))
}

// Event reports a lifetime expiry of an installed SA. Each SA produces at
// most one SoftExpired and one HardExpired event, SoftExpired first.
type Event struct {
	Kind  EventKind
	Cause Cause
	SA    *SA
}

func (e Event) String() string { return fmt.Sprintf("%v: %v (%v)", e.SA, e.Kind, e.Cause) }

// Acquire takes a reference that keeps the SA's Cipher keyed until Release.
// The dataplane takes one around its use of Cipher() for a packet or a
// batch, right after the lookup. It returns false, and takes nothing, when
// the SA has been removed and its keys wiped (or it was never installed):
// drop the packet with DropNoSA. Cost: one uncontended CAS.
func (sa *SA) Acquire() bool {
	for {
		n := sa.ctr.refs.Load()
		if n <= 0 {
			return false
		}
		if sa.ctr.refs.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

// Release gives back a reference from Acquire. The last release of a
// removed SA wipes its keys.
func (sa *SA) Release() {
	switch n := sa.ctr.refs.Add(-1); {
	case n == 0:
		sa.wipe()
	case n < 0:
		panic("sad: SA released more often than acquired")
	}
}

// Discard wipes the keys of an SA that was never installed (a failed
// installation or negotiation). For an installed SA it does nothing: the
// Table wipes the keys when the SA is removed and released.
func (sa *SA) Discard() {
	if sa.state.Load()&stInstalled == 0 {
		sa.wipe()
	}
}

// Keys returns copies of the SA's encryption and integrity key material
// (transform.Protector.Keys), for debugging exports; nil once the keys
// have been wiped. Safe at any time: wipe closes the cipher under the same
// lock.
func (sa *SA) Keys() (encKey, integKey []byte) {
	sa.mu.Lock()
	defer sa.mu.Unlock()
	if sa.closed {
		return nil, nil
	}
	return sa.cipher.Keys()
}

// wipe closes the cipher (wiping its keys) once.
func (sa *SA) wipe() {
	sa.mu.Lock()
	defer sa.mu.Unlock()
	if !sa.closed {
		sa.closed = true
		sa.cipher.Close()
	}
}
