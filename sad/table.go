// Package sad is the security association database of the ESP dataplane:
// inbound SAs by SPI, outbound SAs by policy (reqid), with per-SA crypto
// state, anti-replay window, sequence counter, counters and lifetimes.
//
// # Reads and writes
//
// The packet path calls Table.Inbound(spi) and Table.Outbound(policyID).
// Each is one atomic pointer load and one map index: lock-free and
// allocation-free. The maps are copy-on-write: a writer (IKE installing,
// rekeying or deleting an SA) takes a mutex, copies the map, changes the
// copy and publishes it with an atomic store. Each map is split into
// shardCount shards by a hash of the key and a write copies only its
// shard: with one whole map, bringing up N SAs copied O(N²) entries (a
// restart of a gateway with 10,000 tunnels spent seconds of CPU on it);
// sharded, a write costs O(N/shardCount).
//
// # Rekeying, make-before-break
//
// Rekey installs the new inbound SA first (from then on packets under either
// SPI are accepted), then makes the new outbound SA current for the policy,
// and leaves the old inbound SA in place for a linger time for packets the
// peer sent before it switched; then it is removed.
//
// # Key wiping
//
// An installed SA holds one reference for the Table; the dataplane takes one
// more with SA.Acquire around its use of the Cipher and gives it back with
// Release. Removal drops the Table's reference, so the keys are wiped
// (Cipher.Close) by whoever releases last: at once if no packet is in
// flight, otherwise when the last core finishes the packet it already had.
// No packet ever sees a closed cipher, and no timing assumption is needed.
//
// # Lifetimes
//
// Soft and hard limits in bytes, packets and time raise Events through
// Options.OnEvent, exactly once each per SA (soft before hard). Byte and
// packet events are raised on the packet path goroutine that crossed the
// limit, time events on a timer goroutine: OnEvent must not block (hand the
// event to the IKE SA's event loop through a queue). After a hard expiry the
// SA refuses packets (DropExpired). Under concurrency, packets already
// admitted on other cores when the limit is crossed still complete, so the
// hard limit can be exceeded by at most one packet per core.
package sad

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipsecgw/ipsecgw/spd"
)

// Options configure a Table.
type Options struct {
	// OnEvent receives lifetime events. It must not block.
	OnEvent func(Event)
	// Linger is how long Rekey keeps the old inbound SA (0: DefaultLinger).
	Linger time.Duration
	// Rand is the source of SPIs (nil: crypto/rand).
	Rand io.Reader
}

const (
	// DefaultLinger covers packets in flight and queued at the peer when it
	// switches to the new SA; strongSwan deletes the old SA when the DELETE
	// exchange completes, typically well under a second later.
	DefaultLinger = 5 * time.Second
)

type saMap = map[uint32]*SA

// shardBits sets the number of shards of each map: 256 keep a shard at a
// few dozen SAs with 10,000 tunnels (a write copies that much) and cost
// 2 KiB of pointers per map.
const (
	shardBits  = 8
	shardCount = 1 << shardBits
)

// emptyShard is the initial value of every shard. Writers never change a
// published map (they copy it), so all shards may share it.
var emptyShard = saMap{}

// shardedMap is a copy-on-write map from uint32 keys to SAs, in shards
// that are replaced one at a time. Readers need no lock; writers hold
// Table.mu.
type shardedMap struct {
	shards [shardCount]atomic.Pointer[saMap]
}

func (m *shardedMap) init() {
	for i := range m.shards {
		m.shards[i].Store(&emptyShard)
	}
}

// shardOf spreads keys by Fibonacci hashing: SPIs are random, but policy
// IDs count up and would otherwise fill the shards in runs.
func shardOf(k uint32) uint32 { return (k * 0x9E3779B1) >> (32 - shardBits) }

// get is the packet path's lookup: one atomic load and one map index.
func (m *shardedMap) get(k uint32) *SA { return (*m.shards[shardOf(k)].Load())[k] }

// set publishes a copy of k's shard with k mapped to sa (nil: removed).
// Called with Table.mu held.
func (m *shardedMap) set(k uint32, sa *SA) {
	p := &m.shards[shardOf(k)]
	old := *p.Load()
	n := make(saMap, len(old)+1)
	for key, v := range old {
		if key != k {
			n[key] = v
		}
	}
	if sa != nil {
		n[k] = sa
	}
	p.Store(&n)
}

func (m *shardedMap) len() int {
	n := 0
	for i := range m.shards {
		n += len(*m.shards[i].Load())
	}
	return n
}

// values returns a snapshot of the SAs (each shard read atomically, the
// whole not: fine for listings and metrics).
func (m *shardedMap) values() []*SA {
	out := make([]*SA, 0, m.len())
	for i := range m.shards {
		for _, sa := range *m.shards[i].Load() {
			out = append(out, sa)
		}
	}
	return out
}

// Table is the SAD. Its zero value is not usable; create one with NewTable.
type Table struct {
	in  shardedMap // SPI -> inbound SA
	out shardedMap // policy ID -> outbound SA

	mu       sync.Mutex // serialises writers
	reserved map[uint32]struct{}
	linger   map[*SA]*time.Timer // pending delayed removals
	opts     Options
	// life delivers the time lifetimes of the installed SAs.
	life lifeQueue
}

// NewTable returns an empty SAD.
func NewTable(o Options) *Table {
	if o.Linger == 0 {
		o.Linger = DefaultLinger
	}
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	t := &Table{reserved: map[uint32]struct{}{}, linger: map[*SA]*time.Timer{}, opts: o, life: lifeQueue{epoch: time.Now()}}
	t.in.init()
	t.out.init()
	return t
}

// Inbound returns the inbound SA with the given SPI, or nil: the packet is
// then dropped with DropNoSA. Lock-free, allocation-free.
func (t *Table) Inbound(spi uint32) *SA { return t.in.get(spi) }

// Outbound returns the current outbound SA of a policy, or nil: an SPD
// Protect verdict without an SA means the packet is dropped with DropNoSA
// (and, for a Trap policy, IKE is asked to negotiate). Lock-free,
// allocation-free.
func (t *Table) Outbound(policyID uint32) *SA { return t.out.get(policyID) }

// FindOutboundSPI returns the installed outbound SA with the given SPI, or
// nil. An IKE DELETE names the SPIs of the peer's inbound SAs, which are our
// outbound ones; this control-plane lookup scans the table.
func (t *Table) FindOutboundSPI(spi uint32) *SA {
	for _, sa := range t.out.values() {
		if sa.spi == spi {
			return sa
		}
	}
	return nil
}

// Len returns the numbers of installed inbound and outbound SAs.
func (t *Table) Len() (in, out int) { return t.in.len(), t.out.len() }

// InboundSAs and OutboundSAs return snapshots of the installed SAs, for
// listing and metrics.
func (t *Table) InboundSAs() []*SA  { return t.in.values() }
func (t *Table) OutboundSAs() []*SA { return t.out.values() }

// AllocateSPI picks a random, unused SPI for a new inbound SA and reserves
// it until InstallInbound or ReleaseSPI. It never returns 0-255 (reserved by
// IANA, RFC 4303 §2.1).
func (t *Table) AllocateSPI() (uint32, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var b [4]byte
	// With fewer than 2^31 SPIs in use each try succeeds with probability
	// above one half; 64 failures in a row mean a broken random source.
	for range 64 {
		if _, err := io.ReadFull(t.opts.Rand, b[:]); err != nil {
			return 0, fmt.Errorf("sad: reading random SPI: %w", err)
		}
		spi := binary.BigEndian.Uint32(b[:])
		if spi < 256 {
			continue
		}
		if t.in.get(spi) != nil {
			continue
		}
		if _, used := t.reserved[spi]; used {
			continue
		}
		t.reserved[spi] = struct{}{}
		return spi, nil
	}
	return 0, errors.New("sad: no free SPI found in 64 random draws")
}

// ReleaseSPI gives back a reserved SPI that was not installed (a failed
// negotiation).
func (t *Table) ReleaseSPI(spi uint32) {
	t.mu.Lock()
	delete(t.reserved, spi)
	t.mu.Unlock()
}

// Reserved reports whether spi was handed out by AllocateSPI and neither
// installed nor released since: a negotiation in flight will install it.
// It takes the writers' lock, so the packet path asks only about packets no
// installed SA takes (the daemon holds those briefly instead of dropping
// them while IKE installs their SA).
func (t *Table) Reserved(spi uint32) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.reserved[spi]
	return ok
}

// InstallInbound makes sa reachable by its SPI. The SPI may have been
// reserved with AllocateSPI; it must not belong to another installed SA.
func (t *Table) InstallInbound(sa *SA) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.installInboundLocked(sa)
}

func (t *Table) installInboundLocked(sa *SA) error {
	if sa.dir != Inbound {
		return fmt.Errorf("%w: %v is not inbound", ErrBadConfig, sa)
	}
	if t.in.get(sa.spi) != nil {
		return fmt.Errorf("%w: 0x%08x", ErrSPIInUse, sa.spi)
	}
	if err := t.claim(sa); err != nil {
		return err
	}
	t.in.set(sa.spi, sa)
	delete(t.reserved, sa.spi)
	return nil
}

// claim marks sa as installed in t and arms its timers.
func (t *Table) claim(sa *SA) error {
	if sa.state.Load()&stInstalled != 0 {
		return fmt.Errorf("%w: %v", ErrInstalled, sa)
	}
	sa.mu.Lock()
	discarded := sa.closed
	sa.mu.Unlock()
	if discarded {
		return fmt.Errorf("%w: %v was discarded", ErrBadConfig, sa)
	}
	for {
		st := sa.state.Load()
		if st&stInstalled != 0 {
			return fmt.Errorf("%w: %v", ErrInstalled, sa)
		}
		if sa.state.CompareAndSwap(st, st|stInstalled) {
			break
		}
	}
	sa.ctr.refs.Store(1) // the Table's reference
	sa.mu.Lock()
	sa.table = t
	sa.mu.Unlock()
	t.life.add(sa, time.Now())
	return nil
}

// InstallOutbound makes sa the current outbound SA of its policy. A
// previous outbound SA of the policy is removed; packets that already
// picked it (and hold a reference) finish with it.
func (t *Table) InstallOutbound(sa *SA) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.installOutboundLocked(sa)
}

func (t *Table) installOutboundLocked(sa *SA) error {
	if sa.dir != Outbound {
		return fmt.Errorf("%w: %v is not outbound", ErrBadConfig, sa)
	}
	if err := t.claim(sa); err != nil {
		return err
	}
	prev := t.out.get(sa.policyID)
	t.out.set(sa.policyID, sa)
	if prev != nil {
		t.retire(prev)
	}
	return nil
}

// Rekey replaces the SAs of a policy make-before-break: newIn goes live,
// then newOut becomes the policy's outbound SA (the previous one is
// retired), then the inbound SA oldInSPI (0: none) is removed after linger
// (0: Options.Linger). Either new SA may be nil to do only half. On an
// error the steps already done stay done: a new inbound SA that is live
// without its outbound partner is harmless, and IKE deletes it on failure.
func (t *Table) Rekey(newIn, newOut *SA, oldInSPI uint32, linger time.Duration) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if newIn != nil {
		if err := t.installInboundLocked(newIn); err != nil {
			return err
		}
	}
	if newOut != nil {
		if err := t.installOutboundLocked(newOut); err != nil {
			return err
		}
	}
	if oldInSPI != 0 {
		old := t.in.get(oldInSPI)
		if old == nil {
			return fmt.Errorf("%w: old inbound SPI 0x%08x", ErrNotInstalled, oldInSPI)
		}
		t.removeAfterLocked(old, linger)
	}
	return nil
}

// Remove takes sa out of the table at once: it refuses further packets,
// raises no more events, and its keys are wiped once no packet holds it
// (see Acquire). It reports
// whether sa was installed.
func (t *Table) Remove(sa *SA) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.removeLocked(sa)
}

// RemoveInbound removes the inbound SA with the given SPI.
func (t *Table) RemoveInbound(spi uint32) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	sa := t.in.get(spi)
	return sa != nil && t.removeLocked(sa)
}

// RemoveAfter removes sa after d (0: Options.Linger); until then it keeps
// working. Used for the old inbound SA after a rekey. A later RemoveAfter or
// Remove of the same SA replaces the pending one.
func (t *Table) RemoveAfter(sa *SA, d time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.removeAfterLocked(sa, d)
}

func (t *Table) removeAfterLocked(sa *SA, d time.Duration) {
	if d == 0 {
		d = t.opts.Linger
	}
	if old := t.linger[sa]; old != nil {
		old.Stop()
	}
	t.linger[sa] = time.AfterFunc(d, func() { t.Remove(sa) })
}

func (t *Table) removeLocked(sa *SA) bool {
	if tm := t.linger[sa]; tm != nil {
		tm.Stop()
		delete(t.linger, sa)
	}
	cur, key := &t.in, sa.spi
	if sa.dir != Inbound {
		cur, key = &t.out, sa.policyID
	}
	if cur.get(key) != sa {
		return false
	}
	cur.set(key, nil)
	t.retire(sa)
	return true
}

// retire finishes an SA that is no longer reachable: no more packets or
// events, keys wiped when the last reference goes.
func (t *Table) retire(sa *SA) {
	for {
		st := sa.state.Load()
		if sa.state.CompareAndSwap(st, st|stDead) {
			break
		}
	}
	t.life.remove(sa)
	sa.mu.Lock()
	sa.table = nil
	sa.mu.Unlock()
	sa.Release() // the Table's reference
}

// Close removes every SA.
func (t *Table) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, cur := range []*shardedMap{&t.in, &t.out} {
		for i := range cur.shards {
			old := cur.shards[i].Swap(&emptyShard)
			for _, sa := range *old {
				t.retire(sa)
			}
		}
	}
	clear(t.reserved)
	for _, tm := range t.linger {
		tm.Stop()
	}
	clear(t.linger)
}

// Route is what to do with an outbound packet, from its SPD verdict.
type Route struct {
	// SA protects the packet; nil unless the packet is to be protected.
	// The caller takes a reference (SA.Acquire) before using its cipher.
	SA *SA
	// Bypass: send the packet in clear.
	Bypass bool
	// Drop is the reason to drop the packet when neither SA nor Bypass is
	// set.
	Drop DropReason
	// Acquire: the policy is a Trap without an SA; ask IKE to negotiate.
	Acquire bool
}

// Egress resolves an SPD verdict for an outbound packet against the
// installed SAs. A Protect or Trap verdict whose policy has no usable
// outbound SA yields Drop DropNoSA (DropExpired for an SA past its hard
// lifetime): protected traffic is never sent in clear. Malformed packets
// and Drop/no-match verdicts are dropped with DropMalformed and DropPolicy.
// Lock-free and allocation-free.
func (t *Table) Egress(r spd.Result) Route {
	switch {
	case r.Status == spd.Malformed:
		return Route{Drop: DropMalformed}
	case r.Status != spd.Matched:
		return Route{Drop: DropPolicy}
	}
	switch r.Action {
	case spd.Bypass:
		return Route{Bypass: true}
	case spd.Protect, spd.Trap:
		sa := t.Outbound(r.PolicyID)
		if sa == nil {
			return Route{Drop: DropNoSA, Acquire: r.Action == spd.Trap}
		}
		if sa.Expired() {
			return Route{Drop: DropExpired}
		}
		return Route{SA: sa}
	}
	return Route{Drop: DropPolicy}
}
