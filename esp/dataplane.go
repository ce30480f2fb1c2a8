package esp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipsecgw/ipsecgw/esp/conn"
	"github.com/ipsecgw/ipsecgw/sad"
	"github.com/ipsecgw/ipsecgw/spd"
	"github.com/ipsecgw/ipsecgw/transform"
	"github.com/ipsecgw/ipsecgw/tun"
)

// Sender sends a batch of ESP packets; *conn.Sender implements it. A
// Sender is used by one goroutine at a time.
type Sender interface {
	Send(pkts []conn.OutPacket) (int, error)
}

// Config wires a Dataplane.
type Config struct {
	// TUN is the inner device: packets read from it are looked up in the
	// SPD, and decrypted packets are written to it.
	TUN tun.Device
	// SAD holds the SAs; SPD the current policy (swap it with Store at any
	// time: each batch reads one snapshot).
	SAD *sad.Table
	SPD *spd.Live
	// NewSender returns a Sender for ESP; it is called once per sending
	// goroutine at Start (with esp/conn: conn.Conn.NewSender).
	NewSender func() Sender
	// Clear sends packets the SPD says to bypass, in clear, in order. It
	// is called from one goroutine at a time. Nil: bypassed packets are
	// dropped (counted under DropPolicy), so nothing ever leaves in clear
	// unless the caller provided a way for it.
	Clear func(pkts [][]byte)
	// OnTrap is called (from the packet path; it must not block) when a
	// packet hits a Trap policy that has no outbound SA, at most once per
	// hold period and policy: the IKE layer should negotiate an SA, install
	// it and call Dataplane.ReleaseHeld.
	OnTrap func(policyID uint32)
	// OnNewSource is called (from the packet path; it must not block) when
	// an authenticated ESP-in-UDP packet of the inbound SA came from src,
	// not from the SA's Remote, at most once a second per SA
	// (sad.SA.NewSource): the peer's NAT mapping may have changed.
	OnNewSource func(sa *sad.SA, src netip.AddrPort)
	// OnUnknownSPI is called (from the packet path; it must not block)
	// for ESP from src whose SPI has no inbound SA and no negotiation in
	// flight: the peer is sending on an SA we do not have, and IKE may
	// tell it so (INVALID_SPI, RFC 7296 §2.21.4). It is called for every
	// such packet; rate-limiting is the receiver's job.
	OnUnknownSPI func(spi uint32, src netip.AddrPort)
	// OnLarval, if set, learns of every queue of ESP held for an SPI whose
	// negotiation was in flight (larval.go) once it is passed on (n
	// packets of spi, installed) or dropped at the deadline (installed
	// false).
	OnLarval func(spi uint32, n int, installed bool)
	// Workers is the number of crypto goroutines (0: GOMAXPROCS).
	Workers int
	// HoldPackets is how many packets a Trap policy holds while IKE
	// negotiates (0: 4); HoldTime how long (0: 2s). More, or longer, is
	// dropped as "queue full" or "no SA".
	HoldPackets int
	HoldTime    time.Duration
	// InBatch is the largest number of ESP packets per inbound element
	// (0: conn.ESPBatchSize); bigger batches are split.
	InBatch int
	// Logger receives rare events (start/stop, I/O errors). Nil: discard.
	Logger *slog.Logger
}

// Stats are the dataplane's global counters. Per-SA counters are on the
// SAs themselves (sad.SA.Stats).
type Stats struct {
	// TxPackets/TxBytes: ESP packets handed to the socket (bytes of ESP).
	TxPackets, TxBytes uint64
	// RxPackets/RxBytes: inner packets written to the TUN (inner bytes).
	RxPackets, RxBytes uint64
	// Bypassed counts packets passed in clear by policy.
	Bypassed uint64
	// Held counts packets held for a Trap policy.
	Held uint64
	// SendErrors and WriteErrors count failed socket sends and TUN writes.
	SendErrors, WriteErrors, ReadErrors uint64
	// Drops counts dropped packets by reason (index sad.DropReason).
	Drops [sad.NumDropReasons]uint64
}

type counters struct {
	tx, txBytes, rx, rxBytes, bypassed, held atomic.Uint64
	sendErrs, writeErrs, readErrs            atomic.Uint64
	drops                                    [sad.NumDropReasons]atomic.Uint64
}

// Dataplane moves packets between the TUN and the ESP sockets.
//
// Outbound, one goroutine reads batches from the TUN, looks each packet up
// in the SPD and the SAD and reserves its sequence number (so numbers are
// assigned in the order packets arrived); crypto workers then seal whole
// batches in parallel, and one sending goroutine takes the batches in the
// order they were read, waits for each to be sealed, and sends it. Inbound,
// HandleESP (called by the socket receivers) copies a batch into a pooled
// element, workers open it, and one writing goroutine writes the batches to
// the TUN in arrival order. So packets of an SA leave in order in both
// directions while encryption runs on every core; the pools bound the
// memory and block the reader (backpressure) when the workers fall behind.
type Dataplane struct {
	cfg     Config
	outFree chan *outElem
	outQ    chan *outElem // in read order, to the sender
	inFree  chan *inElem
	inQ     chan *inElem // in arrival order, to the TUN writer
	work    chan func()  // crypto jobs
	c       counters
	hold    holds
	larval  *larvalHold
	log     *slog.Logger

	started atomic.Bool
	closing atomic.Bool
	wg      sync.WaitGroup
	once    sync.Once
	// inMu orders HandleESP's queueing against Close closing the queues;
	// outMu orders Probe's queueing of an outbound element against the
	// closing of outQ (Close, once every reader ended).
	inMu        sync.Mutex
	outMu       sync.Mutex
	outClosed   bool
	readersDone sync.WaitGroup

	// ifaces are the devices of route-based conns by interface ID
	// (AddInterface); the TUN writer reads the map without a lock, and
	// ifMu serializes the changes, which publish a new map.
	ifaces atomic.Pointer[map[uint32]tun.Device]
	ifMu   sync.Mutex
	// pending are the devices added before Start (under ifMu).
	pending []pendingReader
}

// Buffer layout of inbound elements: the ESP packet is copied to inOff; the
// inner packet then starts at inOff+8+IV (IV ≤ 16) and is written to the TUN
// from inWriteOff bytes before it.
const (
	inOff      = 64
	inWriteOff = 32 // ≥ tun.VirtioNetHdrLen, ≤ inOff+8
)

// New builds a Dataplane. Start it after the sockets that call HandleESP
// exist.
func New(cfg Config) (*Dataplane, error) {
	if cfg.TUN == nil || cfg.SAD == nil || cfg.SPD == nil || cfg.NewSender == nil {
		return nil, errors.New("esp: Config needs TUN, SAD, SPD and NewSender")
	}
	if cfg.Workers <= 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.HoldPackets <= 0 {
		cfg.HoldPackets = 4
	}
	if cfg.HoldTime <= 0 {
		cfg.HoldTime = 2 * time.Second
	}
	if cfg.InBatch <= 0 {
		cfg.InBatch = conn.ESPBatchSize
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	nOut := 2*cfg.Workers + 2
	nIn := 2*cfg.Workers + 2
	d := &Dataplane{
		cfg:     cfg,
		outFree: make(chan *outElem, nOut),
		outQ:    make(chan *outElem, nOut),
		inFree:  make(chan *inElem, nIn),
		inQ:     make(chan *inElem, nIn),
		work:    make(chan func(), nOut+nIn),
		log:     log,
	}
	d.hold.init(d)
	d.larval = newLarvalHold(d.HandleESP, func(spi uint32) bool { return cfg.SAD.Inbound(spi) != nil }, cfg.SAD.Reserved)
	d.larval.expired = func(n int) { d.c.drops[sad.DropNoSA].Add(uint64(n)) }
	d.larval.released = func(spi uint32, n int, installed bool) {
		if d.cfg.OnLarval != nil {
			d.cfg.OnLarval(spi, n, installed)
		}
	}
	batch := max(cfg.TUN.BatchSize(), 1)
	// Packets read from the TUN are at most one MTU (offloaded
	// super-packets are split into MTU-sized segments by the device).
	outSize := tun.Headroom + max(cfg.TUN.MTU(), 1500) + tun.Tailroom + Spare
	for range nOut {
		d.outFree <- newOutElem(d, batch, outSize)
	}
	for range nIn {
		d.inFree <- newInElem(d, cfg.InBatch)
	}
	return d, nil
}

// Start launches the goroutines.
func (d *Dataplane) Start() {
	if d.started.Swap(true) {
		return
	}
	for range d.cfg.Workers {
		d.wg.Go(func() {
			for job := range d.work {
				job()
			}
		})
	}
	d.readersDone.Add(1)
	d.wg.Go(func() { d.readFrom(d.cfg.TUN, d.cfg.SPD) })
	d.ifMu.Lock()
	for _, p := range d.pending {
		d.startReader(p.dev, p.pol)
	}
	d.pending = nil
	d.ifMu.Unlock()
	snd := d.cfg.NewSender()
	d.wg.Go(func() { d.sendLoop(snd) })
	d.wg.Go(d.writeLoop)
	d.log.Info("esp dataplane started", "tun", d.cfg.TUN.Name(), "workers", d.cfg.Workers)
}

// Close stops the dataplane: it closes the TUN (ending the reader), drains
// the queues and waits for every goroutine. The sockets are the caller's;
// close them first so HandleESP is no longer called.
func (d *Dataplane) Close() error {
	var err error
	d.once.Do(func() {
		d.ifMu.Lock()
		d.closing.Store(true)
		d.ifMu.Unlock()
		err = d.cfg.TUN.Close()
		if m := d.ifaces.Load(); m != nil {
			for _, dev := range *m {
				dev.Close()
			}
		}
		if !d.started.Load() {
			return
		}
		// The readers end on their closed devices; then nothing sends to
		// outQ any more. HandleESP refuses new work once closing is set,
		// so inQ can be closed under inMu.
		d.readersDone.Wait()
		d.outMu.Lock()
		d.outClosed = true
		close(d.outQ)
		d.outMu.Unlock()
		d.inMu.Lock()
		close(d.inQ)
		close(d.work)
		d.inMu.Unlock()
		d.wg.Wait()
		d.hold.close()
		d.larval.close()
		d.log.Info("esp dataplane stopped", "tun", d.cfg.TUN.Name())
	})
	return err
}

// Stats returns a snapshot of the counters.
func (d *Dataplane) Stats() Stats {
	s := Stats{
		TxPackets: d.c.tx.Load(), TxBytes: d.c.txBytes.Load(),
		RxPackets: d.c.rx.Load(), RxBytes: d.c.rxBytes.Load(),
		Bypassed: d.c.bypassed.Load(), Held: d.c.held.Load(),
		SendErrors: d.c.sendErrs.Load(), WriteErrors: d.c.writeErrs.Load(), ReadErrors: d.c.readErrs.Load(),
	}
	for i := range s.Drops {
		s.Drops[i] = d.c.drops[i].Load()
	}
	return s
}

func (d *Dataplane) drop(r sad.DropReason) { d.c.drops[r].Add(1) }

// --- outbound -----------------------------------------------------------------

type outKind uint8

const (
	outDrop outKind = iota
	outESP
	outClear
)

type outItem struct {
	kind  outKind
	sa    *sad.SA
	seq   uint64
	n     int // inner length (read) / ESP start (after seal)
	start int
	end   int
}

// outElem is one batch read from the TUN.
type outElem struct {
	d     *Dataplane
	bufs  [][]byte
	sizes []int
	items []outItem
	cnt   int
	bytes int // inner bytes of the packets to seal (classify)
	done  chan struct{}
	pkts  []conn.OutPacket
	clear [][]byte
	seal  func() // the crypto job, bound once so queuing it does not allocate
	// sealer seals the element's ESP packets as one batch (AES-CBC
	// encrypts several packets at once).
	sealer transform.SealBatch
	// probe, when set, is a liveness probe (Dataplane.Probe) riding an
	// empty element; the sender calls it once the element got through.
	probe func()
}

func newOutElem(d *Dataplane, batch, size int) *outElem {
	e := &outElem{
		d: d, bufs: make([][]byte, batch), sizes: make([]int, batch),
		items: make([]outItem, batch), done: make(chan struct{}, 1),
		pkts: make([]conn.OutPacket, 0, batch), clear: make([][]byte, 0, batch),
	}
	for i := range e.bufs {
		e.bufs[i] = make([]byte, size)
	}
	e.seal = e.sealAll
	e.sealer.Reserve(batch)
	return e
}

// readFrom reads batches from dev (the main TUN, or the device of a
// route-based conn) and classifies them with pol, until dev is closed.
// Every reader feeds the same queue, so each device's packets stay in
// their order.
func (d *Dataplane) readFrom(dev tun.Device, pol *spd.Live) {
	defer d.readersDone.Done()
	for {
		e := <-d.outFree
		n, err := dev.Read(e.bufs, e.sizes, tun.Headroom)
		if n > 0 {
			d.classify(e, n, pol)
			// A small batch is sealed here: handing it to a worker would
			// cost more (a wake-up, another thread's cache) than the
			// encryption itself, and the reader then takes a bigger
			// batch next time.
			inline := e.bytes <= inlineCryptoBytes
			if inline {
				e.sealAll()
			}
			// outQ holds every element there is, so this never blocks
			// with the lock held.
			d.outMu.Lock()
			d.outQ <- e
			if !inline {
				d.work <- e.seal
			}
			d.outMu.Unlock()
		} else {
			d.outFree <- e
		}
		if err != nil {
			if d.closing.Load() || errors.Is(err, os.ErrClosed) || errors.Is(err, net.ErrClosed) {
				return
			}
			if dev != d.cfg.TUN && !d.hasInterface(dev) {
				return // removed (RemoveInterface closed it)
			}
			// A packet that does not fit a buffer and similar per-read
			// failures: the rest of the batch was returned; go on.
			d.c.readErrs.Add(1)
			d.log.Debug("esp: TUN read", "err", err)
		}
	}
}

// inlineCryptoBytes is the largest batch (in packet bytes) that the
// goroutine which has it encrypts or decrypts itself rather than handing it
// to a crypto worker. A hand-off costs a few microseconds (channel, wake-up,
// cache misses on another core); AES-GCM and ChaCha20-Poly1305 do a few
// kilobytes in that time, and batches of small packets (VoIP, DNS, ACKs)
// are all well below this, while bulk traffic's batches of full-sized
// packets are well above it and keep the parallel workers.
const inlineCryptoBytes = 4096

// classify decides each packet's fate in read order: SPD lookup (in the
// policies of the device it was read from), SA lookup, sequence number
// reservation. It also sums the bytes to encrypt into e.bytes.
func (d *Dataplane) classify(e *outElem, n int, live *spd.Live) {
	pol := live.Load()
	e.cnt = n
	e.bytes = 0
	for i := range n {
		it := &e.items[i]
		*it = outItem{n: e.sizes[i]}
		pkt := e.bufs[i][tun.Headroom : tun.Headroom+it.n]
		res := pol.Outbound(pkt)
		switch {
		case res.Status == spd.Malformed:
			d.drop(sad.DropMalformed)
			continue
		case res.Action == spd.Bypass:
			if d.cfg.Clear == nil {
				d.drop(sad.DropPolicy)
				continue
			}
			it.kind = outClear
			continue
		case res.Action == spd.Protect || res.Action == spd.Trap:
		default:
			d.drop(sad.DropPolicy)
			continue
		}
		sa, seq, r := d.reserve(res.PolicyID, it.n, len(e.bufs[i]))
		if sa == nil {
			if r == sad.DropNoSA && res.Action == spd.Trap {
				d.hold.add(res.PolicyID, pkt)
			} else {
				d.drop(r)
			}
			continue
		}
		it.kind, it.sa, it.seq = outESP, sa, seq
		e.bytes += it.n
	}
}

// reserve finds the outbound SA of a policy, takes a reference and
// reserves a sequence number for an n-byte packet in a buffer of bufLen
// bytes. A rekey can retire the SA between the lookup and the reservation
// (it then refuses with "no SA"); the new SA is already installed at that
// point, so one more lookup finds it: make-before-break loses no packet.
func (d *Dataplane) reserve(pid uint32, n, bufLen int) (*sad.SA, uint64, sad.DropReason) {
	r := sad.DropNoSA
	for range 2 {
		sa := d.cfg.SAD.Outbound(pid)
		if sa == nil || !sa.Acquire() {
			continue
		}
		if tun.Headroom < headLen(sa) || tun.Headroom+n+tailLen(sa, n)+Spare > bufLen {
			sa.Drop(sad.DropMalformed)
			sa.Release()
			return nil, 0, sad.DropMalformed
		}
		var seq uint64
		seq, r = sa.NextSeq(n)
		if r == sad.NotDropped {
			return sa, seq, r
		}
		sa.Release()
		if r != sad.DropNoSA {
			// Expired or out of sequence numbers: the SA's own fault.
			sa.Drop(r)
			break
		}
	}
	return nil, 0, r
}

// sealAll is the crypto job of a batch.
func (e *outElem) sealAll() {
	for i := range e.cnt {
		it := &e.items[i]
		if it.kind != outESP {
			continue
		}
		start, pkt, err := sealAnyBatch(&e.sealer, it.sa, it.seq, e.bufs[i], tun.Headroom, it.n)
		if err != nil {
			it.sa.Drop(sad.DropMalformed)
			e.d.drop(sad.DropMalformed)
			it.sa.Release()
			it.kind, it.sa = outDrop, nil
			continue
		}
		it.start, it.end = start, start+len(pkt)
	}
	// The SAs stay acquired until sendBatch, so no Protector is closed
	// before its packets are sealed here.
	e.sealer.Flush()
	e.done <- struct{}{}
}

func (d *Dataplane) sendLoop(s Sender) {
	for e := range d.outQ {
		d.sendBatch(e, s)
		if p := e.probe; p != nil {
			e.probe = nil
			p()
		}
		d.outFree <- e
	}
}

// sendBatch waits until e is sealed, sends it, and releases its SAs.
func (d *Dataplane) sendBatch(e *outElem, s Sender) {
	<-e.done
	e.pkts = e.pkts[:0]
	e.clear = e.clear[:0]
	for i := range e.cnt {
		it := &e.items[i]
		switch it.kind {
		case outESP:
			e.pkts = append(e.pkts, outPacket(it.sa, e.bufs[i][it.start:it.end]))
		case outClear:
			e.clear = append(e.clear, e.bufs[i][tun.Headroom:tun.Headroom+it.n])
		}
	}
	if len(e.pkts) > 0 {
		sent, err := s.Send(e.pkts)
		d.c.tx.Add(uint64(sent))
		for _, p := range e.pkts {
			d.c.txBytes.Add(uint64(len(p.B)))
		}
		if err != nil || sent < len(e.pkts) {
			d.c.sendErrs.Add(uint64(len(e.pkts) - sent))
		}
	}
	if len(e.clear) > 0 {
		d.cfg.Clear(e.clear)
		d.c.bypassed.Add(uint64(len(e.clear)))
	}
	for i := range e.cnt {
		if it := &e.items[i]; it.sa != nil {
			it.sa.Release()
			it.sa = nil
		}
	}
	clear(e.pkts)
	clear(e.clear)
}

// --- inbound ------------------------------------------------------------------

type inItem struct {
	src   netip.AddrPort // outer source (port 0 for plain ESP and AH)
	ah    bool           // AH from the raw AH socket (conn.ESPPacket.AH)
	n     int            // ESP length (copied) / inner length (opened)
	start int            // inner start in the buffer
	sa    *sad.SA
	seq   uint64
	r     sad.DropReason
	// queued: in the element's OpenBatch as index idx, opened by Flush.
	queued bool
	idx    int
}

// inElem is one batch of received ESP packets. The packets are copied
// back to back into one arena rather than into a buffer each: a batch then
// touches a few contiguous pages instead of one page per packet, and
// packets at the same offset of page-aligned buffers would also compete
// for the same cache sets.
type inElem struct {
	d *Dataplane
	// opener verifies the batch's ESP packets together (HMAC-SHA1 in
	// lanes, several packets at a time).
	opener transform.OpenBatch
	arena  []byte
	used   int      // bytes of arena taken by this batch
	bytes  int      // bytes of the ESP packets in it
	bufs   [][]byte // per packet: its slot in arena, ESP packet at inOff
	items  []inItem
	cnt    int
	done   chan struct{}
	out    [][]byte
	// ifs[i] is the interface ID of packet i when it goes to a
	// route-based conn's device (routed: some packet does), else 0.
	ifs    []uint32
	routed bool
	open   func()
	// probe, when set, is a liveness probe (Dataplane.Probe) riding an
	// empty element: the writer calls it once the element got through.
	probe func()
}

// inSlotAlign keeps every packet's slot on its own cache lines.
const inSlotAlign = 64

// inArenaSize holds a full batch of MTU-sized packets and always one
// packet of the largest size a datagram can have.
func inArenaSize(batch int) int {
	return max(batch*inSlot(1500), inSlot(tun.MaxPacketSize))
}

// inSlot is the arena space a packet of n bytes takes: room in front for
// the TUN's virtio header (inOff) and behind for the cipher (Spare).
func inSlot(n int) int {
	return (inOff + n + Spare + inSlotAlign - 1) &^ (inSlotAlign - 1)
}

func newInElem(d *Dataplane, batch int) *inElem {
	e := &inElem{
		d: d, arena: make([]byte, inArenaSize(batch)), bufs: make([][]byte, batch), items: make([]inItem, batch),
		done: make(chan struct{}, 1), out: make([][]byte, 0, batch), ifs: make([]uint32, batch),
	}
	e.open = e.openAll
	e.opener.Reserve(batch)
	return e
}

// HandleESP takes a batch of received ESP packets; pass it as
// conn.Config.ESP. It copies the packets into the dataplane's buffers and
// returns; decryption happens on the workers. It blocks while every
// inbound element is busy (backpressure onto the socket buffer).
func (d *Dataplane) HandleESP(batch []conn.ESPPacket) {
	for len(batch) > 0 {
		if !d.started.Load() || d.closing.Load() {
			d.c.drops[sad.DropQueueFull].Add(uint64(len(batch)))
			return
		}
		e := <-d.inFree
		e.cnt, e.used, e.bytes = 0, 0, 0
		k := 0
		for _, p := range batch {
			if e.cnt == len(e.bufs) {
				break
			}
			b := p.Bytes()
			slot := inSlot(len(b))
			if slot > len(e.arena) {
				d.drop(sad.DropMalformed) // larger than any datagram
				k++
				continue
			}
			if e.used+slot > len(e.arena) {
				break // the rest goes into the next element
			}
			buf := e.arena[e.used : e.used+slot : e.used+slot]
			e.used += slot
			copy(buf[inOff:], b)
			e.bytes += len(b)
			e.bufs[e.cnt] = buf
			e.items[e.cnt] = inItem{n: len(b), src: p.Src, ah: p.AH}
			e.cnt++
			k++
		}
		batch = batch[k:]
		// A small batch is opened here, as a small outbound one is
		// sealed by the reader (inlineCryptoBytes); the order of the
		// replay-window updates is the TUN writer's either way.
		inline := e.bytes <= inlineCryptoBytes
		if inline {
			e.openAll()
		}
		d.inMu.Lock()
		if d.closing.Load() {
			d.inMu.Unlock()
			d.c.drops[sad.DropQueueFull].Add(uint64(e.cnt))
			d.inFree <- e
			return
		}
		// Both channels have room for every element, so this never blocks
		// while holding the lock.
		d.inQ <- e
		if !inline {
			d.work <- e.open
		}
		d.inMu.Unlock()
	}
}

func (e *inElem) openAll() {
	d := e.d
	// ESP packets are verified as one batch: a first pass queues them
	// (AH is opened at once), Flush opens them, a second pass finishes.
	queued := false
	for i := range e.cnt {
		it := &e.items[i]
		buf := e.bufs[i]
		pkt := buf[inOff : inOff+it.n : len(buf)]
		base := inOff
		var (
			sa     *sad.SA
			seq    uint64
			off, n int
			r      sad.DropReason
		)
		switch {
		case it.ah && it.src.Addr().Unmap().Is4():
			sa, seq, off, n, r = openAHPending(d.cfg.SAD, pkt)
		case it.ah:
			sa, seq, base, off, n, r = openAH6(d.cfg.SAD, buf, inOff, it.n, it.src.Addr())
		default:
			var q bool
			sa, seq, it.idx, q, r = openBegin(&e.opener, d.cfg.SAD, pkt)
			if q {
				it.sa, it.seq, it.queued = sa, seq, true
				queued = true
				continue
			}
		}
		it.settle(sa, seq, base, off, n, r)
	}
	if queued {
		e.opener.Flush()
		for i := range e.cnt {
			it := &e.items[i]
			if !it.queued {
				continue
			}
			it.queued = false
			buf := e.bufs[i]
			seq, off, n, r := openFinish(&e.opener, it.sa, it.seq, it.idx, buf[inOff:inOff+it.n:len(buf)])
			it.settle(it.sa, seq, inOff, off, n, r)
		}
		e.opener.Reset()
	}
	e.done <- struct{}{}
}

// settle records the outcome of opening the item's packet.
func (it *inItem) settle(sa *sad.SA, seq uint64, base, off, n int, r sad.DropReason) {
	it.sa, it.seq, it.r = sa, seq, r
	if sa != nil {
		it.start, it.n = base+off, n
	} else {
		// it.n stays the ESP packet's length: the "no SA" path may
		// hold it or report its SPI.
		it.start = inOff
	}
}

func (d *Dataplane) writeLoop() {
	for e := range d.inQ {
		d.writeBatch(e)
		if p := e.probe; p != nil {
			e.probe = nil
			p()
		}
		d.inFree <- e
	}
}

// Probe proves both pipelines alive for the daemon's watchdog (see
// probeInbound and probeOutbound). It returns nil once an empty element got
// through each, an error when ctx ends first. A stuck pipeline keeps the
// element; call Probe again only after the previous one returned.
func (d *Dataplane) Probe(ctx context.Context) error {
	if !d.started.Load() {
		return errors.New("esp: dataplane not started")
	}
	if err := d.probeInbound(ctx); err != nil {
		return err
	}
	return d.probeOutbound(ctx)
}

// probeOutbound sends an empty element the way every batch read from the
// TUN goes after the reader: taken from the pool (so the sender returns
// elements), through the crypto workers and the sender, in order behind
// the batches already queued. The reader itself is not probed: blocking in
// the TUN read is what it does when no packet comes.
func (d *Dataplane) probeOutbound(ctx context.Context) error {
	var e *outElem
	select {
	case e = <-d.outFree:
	case <-ctx.Done():
		return fmt.Errorf("esp: no outbound element came free (the sender is stuck): %w", ctx.Err())
	}
	through := make(chan struct{})
	e.cnt, e.probe = 0, func() { close(through) }
	d.outMu.Lock()
	if d.outClosed || d.closing.Load() {
		d.outMu.Unlock()
		e.probe = nil
		d.outFree <- e
		return errors.New("esp: dataplane closing")
	}
	d.outQ <- e
	d.work <- e.seal
	d.outMu.Unlock()
	select {
	case <-through:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("esp: the workers and the sender did not pass a probe: %w", ctx.Err())
	}
}

// probeInbound sends an empty element the way every received batch goes:
// taken from the pool (so elements are being returned), through the crypto
// workers and the TUN writer, in order behind the batches already queued.
func (d *Dataplane) probeInbound(ctx context.Context) error {
	var e *inElem
	select {
	case e = <-d.inFree:
	case <-ctx.Done():
		return fmt.Errorf("esp: no inbound element came free: %w", ctx.Err())
	}
	through := make(chan struct{})
	e.cnt, e.used, e.probe = 0, 0, func() { close(through) }
	d.inMu.Lock()
	if d.closing.Load() {
		d.inMu.Unlock()
		e.probe = nil
		d.inFree <- e
		return errors.New("esp: dataplane closing")
	}
	d.inQ <- e
	d.work <- e.open
	d.inMu.Unlock()
	select {
	case <-through:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("esp: the workers and the TUN writer did not pass a probe: %w", ctx.Err())
	}
}

// writeBatch waits until e is opened, records its packets in the replay
// windows in order, and writes the deliverable ones to the TUN.
func (d *Dataplane) writeBatch(e *inElem) {
	<-e.done
	e.out = e.out[:0]
	var bytes uint64
	for i := range e.cnt {
		it := &e.items[i]
		r := it.r
		switch {
		case it.sa == nil:
			if r == sad.DropNoSA && d.noSA(e.bufs[i][it.start:it.start+it.n], it.src, it.ah) {
				continue // held until its SA is installed
			}
		case r == sad.NotDropped || r == sad.DropMalformed || r == sad.DropSelectorMismatch:
			// Authentic: record it in the window, in packet order.
			r = accept(it.sa, it.seq, it.n, r)
			if r == sad.NotDropped && d.cfg.OnNewSource != nil && it.sa.NewSource(it.src) {
				d.cfg.OnNewSource(it.sa, it.src)
			}
		}
		var iface uint32
		if it.sa != nil {
			iface = it.sa.Interface()
		}
		it.sa = nil
		if r != sad.NotDropped {
			d.drop(r)
			continue
		}
		if iface != 0 {
			// A route-based conn's packet: written to its device below.
			e.ifs[i], e.routed = iface, true
			continue
		}
		e.out = append(e.out, e.bufs[i][it.start-inWriteOff:it.start+it.n])
		bytes += uint64(it.n)
	}
	if len(e.out) > 0 {
		d.write(d.cfg.TUN, e.out, bytes)
	}
	clear(e.out)
	if e.routed {
		d.writeRouted(e)
	}
}

// writeRouted writes the packets of route-based conns' SAs in e (marked
// in e.ifs) to their devices, one write per device in packet order.
func (d *Dataplane) writeRouted(e *inElem) {
	e.routed = false
	m := d.ifaces.Load()
	for i := range e.cnt {
		iface := e.ifs[i]
		if iface == 0 {
			continue
		}
		var bytes uint64
		for j := i; j < e.cnt; j++ {
			if e.ifs[j] != iface {
				continue
			}
			e.ifs[j] = 0
			it := &e.items[j]
			e.out = append(e.out, e.bufs[j][it.start-inWriteOff:it.start+it.n])
			bytes += uint64(it.n)
		}
		var dev tun.Device
		if m != nil {
			dev = (*m)[iface]
		}
		if dev == nil {
			// The conn's device is gone (removed while the batch was in
			// flight): nowhere to deliver.
			d.c.drops[sad.DropPolicy].Add(uint64(len(e.out)))
		} else {
			d.write(dev, e.out, bytes)
		}
		clear(e.out)
		e.out = e.out[:0]
	}
}

// write writes decrypted packets to a device and counts them.
func (d *Dataplane) write(dev tun.Device, pkts [][]byte, bytes uint64) {
	n, err := dev.Write(pkts, inWriteOff)
	switch {
	case err != nil:
		// The TUN joins the errors of the packets the kernel refused
		// and counts the ones it took.
		d.c.writeErrs.Add(1)
		d.c.rx.Add(uint64(n))
	case n < len(pkts):
		// The in-memory fake drops what does not fit its queue.
		d.c.drops[sad.DropQueueFull].Add(uint64(len(pkts) - n))
		d.c.rx.Add(uint64(n))
	default:
		d.c.rx.Add(uint64(len(pkts)))
		d.c.rxBytes.Add(bytes)
	}
}

// noSA handles an ESP packet (from src) whose SPI has no inbound SA: it
// is held when a negotiation reserved the SPI (larval.go), and reported
// otherwise (Config.OnUnknownSPI). It reports whether the packet was held.
// An AH packet (ah: as the raw AH socket delivered it) is held the same
// way but not reported: IKE's INVALID_SPI report is about ESP here.
func (d *Dataplane) noSA(pkt []byte, src netip.AddrPort, ah bool) bool {
	var spi uint32
	var ok bool
	if ah {
		spi, ok = ahSPI(pkt, !src.Addr().Unmap().Is4())
	} else {
		spi, _, ok = ParseHeader(pkt)
	}
	if !ok {
		return false
	}
	if d.larval.hold(spi, pkt, src, ah) {
		return true
	}
	if !ah && d.cfg.OnUnknownSPI != nil {
		d.cfg.OnUnknownSPI(spi, src)
	}
	return false
}

// --- trap hold queues -------------------------------------------------------

// holds keeps a few packets per Trap policy while IKE negotiates. It is
// the slow path (no SA yet), so it may lock and allocate.
type holds struct {
	d    *Dataplane
	mu   sync.Mutex
	m    map[uint32]*holdQ
	done bool
}

type holdQ struct {
	pkts  [][]byte
	timer *time.Timer
}

func (h *holds) init(d *Dataplane) { h.d, h.m = d, map[uint32]*holdQ{} }

// maxHeldPolicies bounds the memory a flood of trapped flows can take.
const maxHeldPolicies = 1024

func (h *holds) add(pid uint32, pkt []byte) {
	d := h.d
	h.mu.Lock()
	q := h.m[pid]
	first := q == nil
	switch {
	case h.done:
		h.mu.Unlock()
		d.drop(sad.DropNoSA)
		return
	case first && len(h.m) >= maxHeldPolicies:
		h.mu.Unlock()
		d.drop(sad.DropQueueFull)
		return
	case first:
		q = &holdQ{}
		h.m[pid] = q
		q.timer = time.AfterFunc(d.cfg.HoldTime, func() { h.expire(pid, q) })
	}
	if len(q.pkts) >= d.cfg.HoldPackets {
		h.mu.Unlock()
		d.drop(sad.DropQueueFull)
		return
	}
	q.pkts = append(q.pkts, append([]byte(nil), pkt...))
	d.c.held.Add(1)
	h.mu.Unlock()
	if first && d.cfg.OnTrap != nil {
		d.cfg.OnTrap(pid)
	}
}

func (h *holds) expire(pid uint32, q *holdQ) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m[pid] == q {
		delete(h.m, pid)
		h.d.c.drops[sad.DropNoSA].Add(uint64(len(q.pkts)))
	}
}

func (h *holds) take(pid uint32) [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	q := h.m[pid]
	if q == nil {
		return nil
	}
	q.timer.Stop()
	delete(h.m, pid)
	return q.pkts
}

func (h *holds) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.done = true
	for pid, q := range h.m {
		q.timer.Stop()
		h.d.c.drops[sad.DropNoSA].Add(uint64(len(q.pkts)))
		delete(h.m, pid)
	}
}

// ReleaseHeld sends the packets held for a Trap policy now that its
// outbound SA is installed (or drops them with "no SA" if it is not). The
// IKE layer calls it after installing the CHILD SA. It uses its own sender,
// so it may run concurrently with the packet path.
func (d *Dataplane) ReleaseHeld(policyID uint32, s Sender) {
	pkts := d.hold.take(policyID)
	if len(pkts) == 0 {
		return
	}
	sa := d.cfg.SAD.Outbound(policyID)
	if sa == nil || !sa.Acquire() {
		d.c.drops[sad.DropNoSA].Add(uint64(len(pkts)))
		return
	}
	defer sa.Release()
	out := make([]conn.OutPacket, 0, len(pkts))
	for _, p := range pkts {
		buf := make([]byte, tun.Headroom+len(p)+tun.Tailroom+Spare)
		copy(buf[tun.Headroom:], p)
		_, esp, r := Seal(sa, buf, tun.Headroom, len(p))
		if r != sad.NotDropped {
			d.drop(r)
			continue
		}
		out = append(out, outPacket(sa, esp))
	}
	sent, err := s.Send(out)
	d.c.tx.Add(uint64(sent))
	if err != nil || sent < len(out) {
		d.c.sendErrs.Add(uint64(len(out) - sent))
	}
}

// outPacket is how the sockets send a packet pkt sealed with SA sa: ESP
// in UDP or raw, or a whole IP packet with AH on the raw AH socket.
func outPacket(sa *sad.SA, pkt []byte) conn.OutPacket {
	return conn.OutPacket{B: pkt, Dst: sa.Remote(), UDP: sa.UDPEncap(), AH: sa.Proto() == sad.AH}
}
