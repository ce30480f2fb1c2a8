package sad

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipsecgw/ipsecgw/esp/replay"
	"github.com/ipsecgw/ipsecgw/header"
	"github.com/ipsecgw/ipsecgw/spd"
	"github.com/ipsecgw/ipsecgw/transform"
)

// newCipher returns an AES-GCM-128 protector keyed with a recognisable key.
func newCipher() *transform.Protector {
	key := bytes.Repeat([]byte{0xab}, 20) // 16-byte key + 4-byte salt
	p, err := transform.NewProtector(transform.Transform{Type: transform.TypeENCR, ID: transform.EncrAESGCM16, KeyLen: 128},
		transform.Transform{Type: transform.TypeINTEG, ID: transform.IntegNone}, key, nil)
	if err != nil {
		panic(err)
	}
	return p
}

// wiped reports whether the SA's cipher has been closed: a closed Protector
// refuses to seal.
func wiped(sa *SA) bool {
	pkt := make([]byte, 8+8+16+16)
	err := sa.Cipher().Seal(pkt, 8, nil, nil)
	return errors.Is(err, transform.ErrClosed)
}

var testSel = spd.Selector{
	Local: spd.MustPrefixRange("10.1.0.0/16"), Remote: spd.MustPrefixRange("10.2.0.0/16"),
	LocalPorts: spd.AllPorts, RemotePorts: spd.AllPorts,
}

func cfg(dir Direction, spi, pol uint32) Config {
	return Config{
		SPI: spi, Dir: dir, PolicyID: pol,
		Local:     netip.MustParseAddrPort("198.51.100.1:4500"),
		Remote:    netip.MustParseAddrPort("203.0.113.1:4500"),
		UDPEncap:  true,
		Selectors: []spd.Selector{testSel},
		Cipher:    newCipher(),
	}
}

func mustSA(t testing.TB, c Config) *SA {
	t.Helper()
	sa, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return sa
}

func ipv4(src, dst string) []byte {
	b := make([]byte, 28)
	b[0] = 0x45
	binary.BigEndian.PutUint16(b[2:], 28)
	b[9] = header.ProtoUDP
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(b[12:], s[:])
	copy(b[16:], d[:])
	return b
}

func TestNewValidation(t *testing.T) {
	mod := func(f func(*Config)) Config { c := cfg(Inbound, 0x1000, 1); f(&c); return c }
	for name, c := range map[string]Config{
		"spi 0":         mod(func(c *Config) { c.SPI = 0 }),
		"spi 1":         mod(func(c *Config) { c.SPI = 1 }),
		"spi 255":       mod(func(c *Config) { c.SPI = 255 }),
		"direction":     mod(func(c *Config) { c.Dir = 0 }),
		"no cipher":     mod(func(c *Config) { c.Cipher = nil }),
		"no local":      mod(func(c *Config) { c.Local = netip.AddrPort{} }),
		"mixed family":  mod(func(c *Config) { c.Remote = netip.MustParseAddrPort("[2001:db8::1]:500") }),
		"no selectors":  mod(func(c *Config) { c.Selectors = nil }),
		"bad selector":  mod(func(c *Config) { c.Selectors = []spd.Selector{{}} }),
		"replay window": mod(func(c *Config) { c.ReplayWindow = replay.MaxSize + 1 }),
	} {
		if _, err := New(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := New(mod(func(c *Config) { c.SPI = 256 })); err != nil {
		t.Errorf("SPI 256: %v", err)
	}
	out := cfg(Outbound, 0x2000, 1)
	out.Selectors = nil
	if _, err := New(out); err != nil {
		t.Errorf("outbound without selectors: %v", err)
	}
	// An outbound SA's selectors are not compiled but still validated.
	out.Selectors = []spd.Selector{testSel, {}}
	if _, err := New(out); !errors.Is(err, ErrBadConfig) {
		t.Errorf("outbound SA with a bad selector: %v", err)
	}
}

// TestOutboundSelectorsNotCompiled: only inbound SAs hold a compiled
// selector table (CheckInner is the inbound check); an outbound SA keeps
// its selectors for listings and refuses any inner packet it is asked to
// check.
func TestOutboundSelectorsNotCompiled(t *testing.T) {
	in, out := mustSA(t, cfg(Inbound, 0x3000, 3)), mustSA(t, cfg(Outbound, 0x4000, 3))
	if in.selTable == nil {
		t.Fatal("inbound SA without compiled selectors")
	}
	if out.selTable != nil {
		t.Error("outbound SA compiled its selectors")
	}
	if got := out.Selectors(); len(got) != 1 || got[0] != testSel {
		t.Errorf("outbound selectors %v", got)
	}
	inner := ipv4("10.2.0.1", "10.1.0.1")
	if r := in.CheckInner(inner); r != NotDropped {
		t.Errorf("inbound check: %v", r)
	}
	// New keeps the caller's selector slice: a pair can share one.
	c := cfg(Outbound, 0x4001, 3)
	if sa := mustSA(t, c); &sa.Selectors()[0] != &c.Selectors[0] {
		t.Error("New copied the selectors")
	}
	if r := out.CheckInner(inner); r != DropSelectorMismatch {
		t.Errorf("outbound CheckInner: %v, want %v", r, DropSelectorMismatch)
	}
}

// seqReader yields the given SPIs as random bytes, then fails.
type seqReader struct{ vals []uint32 }

func (r *seqReader) Read(p []byte) (int, error) {
	if len(r.vals) == 0 {
		return 0, errors.New("exhausted")
	}
	binary.BigEndian.PutUint32(p, r.vals[0])
	r.vals = r.vals[1:]
	return 4, nil
}

func TestAllocateSPI(t *testing.T) {
	tab := NewTable(Options{Rand: &seqReader{vals: []uint32{0, 1, 255, 0x1000, 0x2000, 0x2000, 0x3000}}})
	if err := tab.InstallInbound(mustSA(t, cfg(Inbound, 0x1000, 1))); err != nil {
		t.Fatal(err)
	}
	spi, err := tab.AllocateSPI()
	if err != nil || spi != 0x2000 {
		t.Fatalf("first: %#x %v (reserved values and the installed SPI must be skipped)", spi, err)
	}
	spi, err = tab.AllocateSPI()
	if err != nil || spi != 0x3000 {
		t.Fatalf("second: %#x %v (a reserved SPI must be skipped)", spi, err)
	}
	if _, err := tab.AllocateSPI(); err == nil {
		t.Fatal("failing random source not reported")
	}
	// Installing a reserved SPI consumes the reservation; releasing frees it.
	if err := tab.InstallInbound(mustSA(t, cfg(Inbound, 0x2000, 2))); err != nil {
		t.Fatal(err)
	}
	tab.ReleaseSPI(0x3000)
	if len(tab.reserved) != 0 {
		t.Fatalf("reservations left: %v", tab.reserved)
	}

	real := NewTable(Options{})
	seen := map[uint32]bool{}
	for i := 0; i < 5000; i++ {
		spi, err := real.AllocateSPI()
		if err != nil {
			t.Fatal(err)
		}
		if spi < 256 || seen[spi] {
			t.Fatalf("bad or repeated SPI %#x", spi)
		}
		seen[spi] = true
	}
}

func TestInstallLookupRemove(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tab := NewTable(Options{})
		in := mustSA(t, cfg(Inbound, 0x1234, 7))
		out := mustSA(t, cfg(Outbound, 0x5678, 7))
		if tab.Inbound(0x1234) != nil || tab.Outbound(7) != nil {
			t.Fatal("empty table finds SAs")
		}
		if err := tab.InstallInbound(in); err != nil {
			t.Fatal(err)
		}
		if err := tab.InstallOutbound(out); err != nil {
			t.Fatal(err)
		}
		if tab.Inbound(0x1234) != in || tab.Outbound(7) != out {
			t.Fatal("lookups do not find installed SAs")
		}
		if tab.FindOutboundSPI(0x5678) != out || tab.FindOutboundSPI(0x1234) != nil {
			t.Fatal("FindOutboundSPI")
		}
		if err := tab.InstallInbound(mustSA(t, cfg(Inbound, 0x1234, 8))); !errors.Is(err, ErrSPIInUse) {
			t.Fatalf("duplicate SPI: %v", err)
		}
		if err := tab.InstallInbound(in); !errors.Is(err, ErrSPIInUse) {
			t.Fatalf("reinstall: %v", err)
		}
		if err := tab.InstallInbound(out); !errors.Is(err, ErrBadConfig) {
			t.Fatalf("outbound as inbound: %v", err)
		}
		if n, m := tab.Len(); n != 1 || m != 1 {
			t.Fatalf("Len %d %d", n, m)
		}
		if !tab.RemoveInbound(0x1234) || tab.RemoveInbound(0x1234) {
			t.Fatal("RemoveInbound result")
		}
		if tab.Inbound(0x1234) != nil {
			t.Fatal("removed SA still found")
		}
		if _, r := in.Check(1); r != DropNoSA {
			t.Fatalf("removed SA accepts packets: %v", r)
		}
		if !wiped(in) {
			t.Fatal("keys of a removed SA nobody holds not wiped")
		}
		if in.Acquire() {
			t.Fatal("Acquire of a wiped SA succeeded")
		}
		if err := tab.InstallInbound(in); !errors.Is(err, ErrInstalled) {
			t.Fatalf("reinstall of a removed SA: %v", err)
		}
		tab.Close()
		if !wiped(out) || tab.Outbound(7) != nil {
			t.Fatal("Close did not remove and wipe the outbound SA")
		}
	})
}

func TestRekeyMakeBeforeBreak(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		tab := NewTable(Options{})
		oldIn, oldOut := mustSA(t, cfg(Inbound, 0x1000, 1)), mustSA(t, cfg(Outbound, 0x9000, 1))
		if err := tab.Rekey(oldIn, oldOut, 0, 0); err != nil {
			t.Fatal(err)
		}
		newIn, newOut := mustSA(t, cfg(Inbound, 0x1001, 1)), mustSA(t, cfg(Outbound, 0x9001, 1))
		if err := tab.Rekey(newIn, newOut, 0x1000, 3*time.Second); err != nil {
			t.Fatal(err)
		}
		if tab.Inbound(0x1000) != oldIn || tab.Inbound(0x1001) != newIn || tab.Outbound(1) != newOut {
			t.Fatal("after rekey: both inbound SAs must be live and the new outbound current")
		}
		if _, r := oldOut.NextSeq(100); r != DropNoSA {
			t.Fatalf("replaced outbound SA still protects: %v", r)
		}
		if _, r := oldIn.Check(1); r != NotDropped {
			t.Fatalf("lingering inbound SA refuses: %v", r)
		}
		time.Sleep(3*time.Second - time.Millisecond)
		synctest.Wait()
		if tab.Inbound(0x1000) != oldIn {
			t.Fatal("old inbound SA removed before its linger")
		}
		time.Sleep(time.Millisecond)
		synctest.Wait()
		if tab.Inbound(0x1000) != nil {
			t.Fatal("old inbound SA still present after its linger")
		}
		for _, sa := range []*SA{oldIn, oldOut} {
			if !wiped(sa) {
				t.Fatalf("%v not wiped", sa)
			}
		}
		for _, sa := range []*SA{newIn, newOut} {
			if wiped(sa) {
				t.Fatalf("%v wiped", sa)
			}
		}
		if err := tab.Rekey(nil, nil, 0x4444, 0); !errors.Is(err, ErrNotInstalled) {
			t.Fatalf("rekey of unknown SPI: %v", err)
		}
		// A pending linger removal is cancelled by an explicit removal and
		// by Close, and a second RemoveAfter replaces the first.
		tab.RemoveAfter(newIn, time.Minute)
		tab.RemoveAfter(newIn, 2*time.Minute)
		time.Sleep(time.Minute + time.Second)
		synctest.Wait()
		if tab.Inbound(newIn.SPI()) != newIn {
			t.Fatal("replaced RemoveAfter still fired")
		}
		tab.Close()
		if len(tab.linger) != 0 {
			t.Fatalf("%d linger timers left after Close", len(tab.linger))
		}
	})
}

// TestRekeyConcurrentReaders: while rekeys run, a reader that sees an
// outbound SA must always find its inbound partner (the new inbound SA goes
// live first), and a policy never loses its outbound SA.
func TestRekeyConcurrentReaders(t *testing.T) {
	tab := NewTable(Options{Linger: time.Hour})
	const rounds = 300
	partner := make(map[*SA]uint32, rounds)
	ins := make([]*SA, rounds)
	outs := make([]*SA, rounds)
	for i := range rounds {
		ins[i] = mustSA(t, cfg(Inbound, uint32(0x1000+i), 1))
		outs[i] = mustSA(t, cfg(Outbound, uint32(0x9000+i), 1))
		partner[outs[i]] = ins[i].SPI()
	}
	if err := tab.Rekey(ins[0], outs[0], 0, 0); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var failures atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				o := tab.Outbound(1)
				// Its partner may be gone only if o was replaced meanwhile
				// (the test deletes inbound SAs two rekeys old).
				if o == nil || (tab.Inbound(partner[o]) == nil && tab.Outbound(1) == o) {
					failures.Add(1)
				}
			}
		}()
	}
	for i := 1; i < rounds; i++ {
		if err := tab.Rekey(ins[i], outs[i], ins[i-1].SPI(), 0); err != nil {
			t.Fatal(err)
		}
		if i > 2 {
			tab.RemoveInbound(ins[i-2].SPI()) // the peer's DELETE for an older SA
		}
	}
	stop.Store(true)
	wg.Wait()
	if f := failures.Load(); f != 0 {
		t.Fatalf("%d lookups saw an outbound SA without its inbound SA", f)
	}
}

// TestReferencesDelayWipe: a removed SA keeps its keys while a packet holds
// it, and the last Release wipes them.
func TestReferencesDelayWipe(t *testing.T) {
	tab := NewTable(Options{})
	never := mustSA(t, cfg(Outbound, 0x5001, 1))
	never.Discard()
	if !wiped(never) {
		t.Fatal("Discard of an SA never installed did not wipe")
	}
	if err := tab.InstallOutbound(never); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("install of a discarded SA: %v", err)
	}
	sa := mustSA(t, cfg(Outbound, 0x5000, 1))
	if sa.Acquire() {
		t.Fatal("Acquire of an SA never installed succeeded")
	}
	if err := tab.InstallOutbound(sa); err != nil {
		t.Fatal(err)
	}
	sa.Discard() // installed: must not wipe
	if wiped(sa) {
		t.Fatal("Discard wiped an installed SA")
	}
	for range 2 {
		if !sa.Acquire() {
			t.Fatal("Acquire failed")
		}
	}
	tab.Remove(sa)
	if wiped(sa) {
		t.Fatal("keys wiped while held")
	}
	sa.Release()
	if wiped(sa) {
		t.Fatal("keys wiped while still held once")
	}
	if !sa.Acquire() {
		t.Fatal("a held SA can no longer be acquired")
	}
	sa.Release()
	sa.Release()
	if !wiped(sa) {
		t.Fatal("last Release did not wipe")
	}
	if sa.Acquire() {
		t.Fatal("Acquire after wipe succeeded")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("unbalanced Release did not panic")
		}
	}()
	sa.Release()
}

// TestConcurrentRemoveWhileSealing: workers seal with SAs they acquired
// while the control plane rekeys and removes; no worker ever meets a closed
// cipher, every removed SA ends wiped. Meant for -race.
func TestConcurrentRemoveWhileSealing(t *testing.T) {
	tab := NewTable(Options{})
	const rounds = 200
	outs := make([]*SA, rounds)
	for i := range outs {
		outs[i] = mustSA(t, cfg(Outbound, uint32(0x9000+i), 1))
	}
	if err := tab.InstallOutbound(outs[0]); err != nil {
		t.Fatal(err)
	}
	var stop atomic.Bool
	var closedSeen, sealed atomic.Int64
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pkt := make([]byte, 8+8+64+16)
			for !stop.Load() {
				sa := tab.Outbound(1)
				if sa == nil || !sa.Acquire() {
					continue
				}
				seq, r := sa.NextSeq(len(pkt))
				if r == NotDropped {
					if err := sa.Cipher().IV(pkt[8:16], seq); err != nil {
						closedSeen.Add(1)
					} else if err := sa.Cipher().Seal(pkt, 8, nil, nil); err != nil {
						closedSeen.Add(1)
					}
					sealed.Add(1)
				}
				sa.Release()
			}
		}()
	}
	for i := 1; i < rounds; i++ {
		if err := tab.InstallOutbound(outs[i]); err != nil {
			t.Fatal(err)
		}
		for sealed.Load() < int64(i*5) {
			runtime.Gosched()
		}
	}
	stop.Store(true)
	wg.Wait()
	if n := closedSeen.Load(); n != 0 {
		t.Fatalf("%d seals met a closed cipher", n)
	}
	for i, sa := range outs[:rounds-1] {
		if !wiped(sa) {
			t.Fatalf("replaced SA %d not wiped", i)
		}
	}
	if wiped(outs[rounds-1]) {
		t.Fatal("current SA wiped")
	}
}

type eventLog struct {
	mu  sync.Mutex
	evs []Event
}

func (l *eventLog) add(e Event) { l.mu.Lock(); l.evs = append(l.evs, e); l.mu.Unlock() }
func (l *eventLog) get() []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Event(nil), l.evs...)
}

func TestPacketLifetimes(t *testing.T) {
	var log eventLog
	tab := NewTable(Options{OnEvent: log.add})
	c := cfg(Outbound, 0x2000, 3)
	c.Soft = Lifetime{Packets: 3}
	c.Hard = Lifetime{Packets: 5}
	sa := mustSA(t, c)
	if err := tab.InstallOutbound(sa); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 5; i++ {
		seq, r := sa.NextSeq(100)
		if r != NotDropped || seq != uint64(i) {
			t.Fatalf("packet %d: %d %v", i, seq, r)
		}
		evs := log.get()
		switch {
		case i < 3 && len(evs) != 0:
			t.Fatalf("packet %d: early events %v", i, evs)
		case i >= 3 && i < 5 && (len(evs) != 1 || evs[0].Kind != SoftExpired || evs[0].Cause != CausePackets || evs[0].SA != sa):
			t.Fatalf("packet %d: events %v", i, evs)
		}
	}
	for i := 0; i < 3; i++ {
		if _, r := sa.NextSeq(100); r != DropExpired {
			t.Fatalf("after hard limit: %v", r)
		}
	}
	evs := log.get()
	if len(evs) != 2 || evs[1].Kind != HardExpired || evs[1].Cause != CausePackets || !sa.Expired() {
		t.Fatalf("events %v", evs)
	}
	if st := sa.Stats(); st.Packets != 5 || st.Bytes != 500 {
		t.Fatalf("stats %+v", st)
	}
}

func TestByteLifetimesInboundConcurrent(t *testing.T) {
	var log eventLog
	tab := NewTable(Options{OnEvent: log.add})
	c := cfg(Inbound, 0x3000, 3)
	c.Hard = Lifetime{Bytes: 100 * 1000} // no soft: the hard event brings the soft one
	c.ReplayWindow = 4096
	sa := mustSA(t, c)
	if err := tab.InstallInbound(sa); err != nil {
		t.Fatal(err)
	}
	var next atomic.Uint32
	var accepted, expired atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 600; i++ {
				seq, r := sa.Check(next.Add(1))
				if r == NotDropped {
					r = sa.Accept(seq, 100)
				}
				switch r {
				case NotDropped:
					accepted.Add(1)
				case DropExpired:
					expired.Add(1)
				default:
					t.Errorf("unexpected drop %v", r)
				}
			}
		}()
	}
	wg.Wait()
	evs := log.get()
	if len(evs) != 2 || evs[0].Kind != SoftExpired || evs[1].Kind != HardExpired || evs[1].Cause != CauseBytes {
		t.Fatalf("events %v", evs)
	}
	// Up to one packet per goroutine may complete after the crossing.
	if a := accepted.Load(); a < 1000 || a > 1004 || a+expired.Load() != 2400 {
		t.Fatalf("accepted %d expired %d", a, expired.Load())
	}
}

func TestTimeLifetimes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var log eventLog
		tab := NewTable(Options{OnEvent: log.add})
		c := cfg(Outbound, 0x2000, 3)
		c.Soft = Lifetime{Time: 50 * time.Minute}
		c.Hard = Lifetime{Time: time.Hour}
		sa := mustSA(t, c)
		time.Sleep(10 * time.Minute) // created earlier than installed: time counts from creation
		if err := tab.InstallOutbound(sa); err != nil {
			t.Fatal(err)
		}
		time.Sleep(40*time.Minute - time.Second)
		synctest.Wait()
		if len(log.get()) != 0 {
			t.Fatal("early soft event")
		}
		time.Sleep(time.Second)
		synctest.Wait()
		if evs := log.get(); len(evs) != 1 || evs[0].Kind != SoftExpired || evs[0].Cause != CauseTime {
			t.Fatalf("events %v", evs)
		}
		if _, r := sa.NextSeq(1); r != NotDropped {
			t.Fatalf("soft-expired SA refuses: %v", r)
		}
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		if evs := log.get(); len(evs) != 2 || evs[1].Kind != HardExpired {
			t.Fatalf("events %v", evs)
		}
		if _, r := sa.NextSeq(1); r != DropExpired {
			t.Fatalf("hard-expired SA protects: %v", r)
		}
		// A removed SA raises nothing: its timers are stopped.
		c2 := cfg(Outbound, 0x2001, 4)
		c2.Soft = Lifetime{Time: time.Minute}
		sa2 := mustSA(t, c2)
		if err := tab.InstallOutbound(sa2); err != nil {
			t.Fatal(err)
		}
		tab.Remove(sa2)
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if evs := log.get(); len(evs) != 2 {
			t.Fatalf("removed SA raised %v", evs[2:])
		}
		tab.Close()
	})
}

func TestSequenceExhaustion(t *testing.T) {
	var log eventLog
	tab := NewTable(Options{OnEvent: log.add})
	for _, esn := range []bool{false, true} {
		c := cfg(Outbound, 0x2000, 3)
		c.ESN = esn
		if esn {
			c.PolicyID = 4
		}
		sa := mustSA(t, c)
		limit := uint64(1<<32 - 1)
		if esn {
			limit = 1<<64 - 1
		}
		sa.seq = replay.NewSequenceAt(esn, limit-1)
		if err := tab.InstallOutbound(sa); err != nil {
			t.Fatal(err)
		}
		if seq, r := sa.NextSeq(10); r != NotDropped || seq != limit {
			t.Fatalf("esn %v: last number %#x %v", esn, seq, r)
		}
		for i := 0; i < 2; i++ {
			if seq, r := sa.NextSeq(10); r != DropExpired {
				t.Fatalf("esn %v: wrapped to %#x %v", esn, seq, r)
			}
		}
	}
	evs := log.get()
	if len(evs) != 4 || evs[1].Kind != HardExpired || evs[1].Cause != CauseSequence || evs[3].Cause != CauseSequence {
		t.Fatalf("events %v", evs)
	}
}

func TestInboundPath(t *testing.T) {
	tab := NewTable(Options{})
	c := cfg(Inbound, 0x3000, 3)
	c.ESN = true
	sa := mustSA(t, c)
	if err := tab.InstallInbound(sa); err != nil {
		t.Fatal(err)
	}
	seq, r := sa.Check(7)
	if r != NotDropped || seq != 7 {
		t.Fatalf("check: %d %v", seq, r)
	}
	if r := sa.Accept(seq, 60); r != NotDropped {
		t.Fatalf("accept: %v", r)
	}
	if r := sa.Accept(seq, 60); r != DropReplay {
		t.Fatalf("second accept: %v", r)
	}
	if _, r := sa.Check(7); r != DropReplay {
		t.Fatalf("replayed check: %v", r)
	}
	// Inner packet from remote 10.2/16 to local 10.1/16 matches.
	if r := sa.CheckInner(ipv4("10.2.0.1", "10.1.0.1")); r != NotDropped {
		t.Fatalf("inner in selectors: %v", r)
	}
	if r := sa.CheckInner(ipv4("10.1.0.1", "10.2.0.1")); r != DropSelectorMismatch {
		t.Fatalf("inner reversed: %v", r)
	}
	if r := sa.CheckInner(ipv4("10.3.0.1", "10.1.0.1")); r != DropSelectorMismatch {
		t.Fatalf("inner outside: %v", r)
	}
	if r := sa.CheckInner([]byte{0x45, 0}); r != DropMalformed {
		t.Fatalf("inner malformed: %v", r)
	}
	sa.Drop(DropReplay)
	sa.Drop(DropAuthFailed)
	sa.Drop(DropAuthFailed)
	sa.Drop(DropReason(200)) // ignored, no panic
	st := sa.Stats()
	if st.Packets != 1 || st.Bytes != 60 || st.Drops[DropReplay] != 1 || st.Drops[DropAuthFailed] != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestStringsHaveNoSecrets(t *testing.T) {
	sa := mustSA(t, cfg(Inbound, 0xc0ffee, 9))
	s := fmt.Sprintf("%v %+v", sa, Event{Kind: HardExpired, Cause: CauseTime, SA: sa})
	if !strings.Contains(s, "0x00c0ffee") || strings.Contains(strings.ToLower(s), "abab") {
		t.Fatalf("string %q", s)
	}
	for r := DropReason(0); int(r) < NumDropReasons; r++ {
		if r.String() == "" || strings.Contains(r.Label(), " ") {
			t.Errorf("reason %d: %q %q", r, r.String(), r.Label())
		}
	}
	if DropReason(99).String() != "drop(99)" {
		t.Error("unknown reason string")
	}
}

func TestZeroAllocs(t *testing.T) {
	tab := NewTable(Options{})
	in, out := mustSA(t, cfg(Inbound, 0x3000, 3)), mustSA(t, cfg(Outbound, 0x4000, 3))
	if err := tab.Rekey(in, out, 0, 0); err != nil {
		t.Fatal(err)
	}
	inner := ipv4("10.2.0.1", "10.1.0.1")
	low := uint32(0)
	allocs := testing.AllocsPerRun(1000, func() {
		low++
		sa := tab.Inbound(0x3000)
		seq, _ := sa.Check(low)
		sa.Accept(seq, 100)
		sa.CheckInner(inner)
		sa.Drop(DropAuthFailed)
		o := tab.Outbound(3)
		if o.Acquire() {
			o.NextSeq(100)
			o.Release()
		}
		_ = tab.Inbound(0x9999)
	})
	if allocs != 0 {
		t.Fatalf("%v allocations per packet", allocs)
	}
}

func fill(b testing.TB, n int) *Table {
	tab := NewTable(Options{})
	for i := 0; i < n; i++ {
		if err := tab.InstallInbound(mustSA(b, cfg(Inbound, uint32(0x10000+i*7919), uint32(i)))); err != nil {
			b.Fatal(err)
		}
	}
	return tab
}

func BenchmarkInboundLookup(b *testing.B) {
	for _, n := range []int{1, 1000} {
		tab := fill(b, n)
		spi := uint32(0x10000 + (n-1)*7919)
		b.Run(fmt.Sprintf("SAs=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if tab.Inbound(spi) == nil {
					b.Fatal("miss")
				}
			}
		})
		b.Run(fmt.Sprintf("SAs=%d/parallel", n), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if tab.Inbound(spi) == nil {
						b.Fatal("miss")
					}
				}
			})
		})
	}
}

// BenchmarkRWMutexMapLookup is the alternative design (a map behind a
// sync.RWMutex) measured for comparison with the copy-on-write map.
func BenchmarkRWMutexMapLookup(b *testing.B) {
	for _, n := range []int{1, 1000} {
		var mu sync.RWMutex
		m := map[uint32]*SA{}
		for i := 0; i < n; i++ {
			m[uint32(0x10000+i*7919)] = &SA{}
		}
		spi := uint32(0x10000 + (n-1)*7919)
		b.Run(fmt.Sprintf("SAs=%d/parallel", n), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					mu.RLock()
					sa := m[spi]
					mu.RUnlock()
					if sa == nil {
						b.Fatal("miss")
					}
				}
			})
		})
	}
}

func BenchmarkInboundPacket(b *testing.B) {
	tab := fill(b, 1)
	sa := tab.InboundSAs()[0]
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		seq, r := sa.Check(uint32(i + 1))
		if r == NotDropped {
			sa.Accept(seq, 1400)
		}
	}
}

func BenchmarkOutboundPacket(b *testing.B) {
	tab := NewTable(Options{})
	sa := mustSA(b, cfg(Outbound, 0x4000, 3))
	if err := tab.InstallOutbound(sa); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		o := tab.Outbound(3)
		if o.Acquire() {
			o.NextSeq(1400)
			o.Release()
		}
	}
}

func BenchmarkInstallInbound1000(b *testing.B) {
	tab := fill(b, 1000)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		sa := mustSA(b, cfg(Inbound, 0x100, 1))
		if err := tab.InstallInbound(sa); err != nil {
			b.Fatal(err)
		}
		tab.Remove(sa)
	}
}

func TestEgress(t *testing.T) {
	tab := NewTable(Options{})
	rules := []spd.Rule{
		{Selector: testSel, Action: spd.Protect, PolicyID: 1},
		{Selector: spd.Selector{Local: spd.MustPrefixRange("10.1.0.0/16"), Remote: spd.MustPrefixRange("10.3.0.0/16"),
			LocalPorts: spd.AllPorts, RemotePorts: spd.AllPorts}, Action: spd.Trap, PolicyID: 2},
		{Selector: spd.Selector{Local: spd.MustPrefixRange("10.1.0.0/16"), Remote: spd.MustPrefixRange("10.4.0.0/16"),
			LocalPorts: spd.AllPorts, RemotePorts: spd.AllPorts}, Action: spd.Bypass},
		{Selector: spd.Selector{Local: spd.MustPrefixRange("10.1.0.0/16"), Remote: spd.MustPrefixRange("10.5.0.0/16"),
			LocalPorts: spd.AllPorts, RemotePorts: spd.AllPorts}, Action: spd.Drop},
	}
	pol, err := spd.Compile(rules)
	if err != nil {
		t.Fatal(err)
	}
	route := func(dst string) Route { return tab.Egress(pol.Outbound(ipv4("10.1.0.1", dst))) }
	if r := route("10.2.0.1"); r.SA != nil || r.Bypass || r.Drop != DropNoSA || r.Acquire {
		t.Fatalf("protect without SA: %+v", r)
	}
	if r := route("10.3.0.1"); r.SA != nil || r.Drop != DropNoSA || !r.Acquire {
		t.Fatalf("trap without SA: %+v", r)
	}
	if r := route("10.4.0.1"); !r.Bypass || r.SA != nil {
		t.Fatalf("bypass: %+v", r)
	}
	if r := route("10.5.0.1"); r.Drop != DropPolicy || r.Bypass || r.SA != nil {
		t.Fatalf("drop: %+v", r)
	}
	if r := route("10.6.0.1"); r.Drop != DropPolicy || r.Bypass || r.SA != nil {
		t.Fatalf("no match: %+v", r)
	}
	if r := tab.Egress(pol.Outbound([]byte{0x45})); r.Drop != DropMalformed || r.Bypass || r.SA != nil {
		t.Fatalf("malformed: %+v", r)
	}
	c := cfg(Outbound, 0x7000, 1)
	c.Hard = Lifetime{Packets: 1}
	sa := mustSA(t, c)
	if err := tab.InstallOutbound(sa); err != nil {
		t.Fatal(err)
	}
	trapSA := mustSA(t, cfg(Outbound, 0x7001, 2))
	if err := tab.InstallOutbound(trapSA); err != nil {
		t.Fatal(err)
	}
	if r := route("10.2.0.1"); r.SA != sa || r.Drop != NotDropped {
		t.Fatalf("protect with SA: %+v", r)
	}
	if r := route("10.3.0.1"); r.SA != trapSA || r.Acquire {
		t.Fatalf("trap with SA: %+v", r)
	}
	sa.NextSeq(10) // reaches the hard limit
	if r := route("10.2.0.1"); r.SA != nil || r.Drop != DropExpired {
		t.Fatalf("expired SA: %+v", r)
	}
	p1, p2 := ipv4("10.1.0.1", "10.2.0.1"), ipv4("10.1.0.1", "10.4.0.1")
	if n := testing.AllocsPerRun(100, func() { tab.Egress(pol.Outbound(p1)); tab.Egress(pol.Outbound(p2)) }); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}

// TestAHConfig: an AH SA names its protocol, and AH in UDP is refused (it
// authenticates the outer addresses a NAT rewrites).
func TestAHConfig(t *testing.T) {
	c := cfg(Inbound, 0x1000, 1)
	c.Proto = AH
	if _, err := New(c); !errors.Is(err, ErrBadConfig) {
		t.Errorf("AH with UDPEncap: %v, want ErrBadConfig", err)
	}
	c.UDPEncap = false
	sa := mustSA(t, c)
	if sa.Proto() != AH || !strings.HasPrefix(sa.String(), "AH-in spi=0x00001000") {
		t.Errorf("AH SA: Proto %v, String %q", sa.Proto(), sa)
	}
	if esp := mustSA(t, cfg(Outbound, 0x1001, 1)); esp.Proto() != ESP || !strings.HasPrefix(esp.String(), "ESP-out") {
		t.Errorf("default protocol: %v, %q", esp.Proto(), esp)
	}
	c.Proto = 7
	if _, err := New(c); !errors.Is(err, ErrBadConfig) {
		t.Errorf("protocol 7: %v, want ErrBadConfig", err)
	}
	sa.Discard()
}
