package daemon

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipsecgw/ipsecgw/esp/conn"
)

// larvalRig is a larvalHold over fake SAD state, recording what reaches
// the dataplane.
type larvalRig struct {
	mu        sync.Mutex
	installed map[uint32]bool
	reserved  map[uint32]bool
	got       []string // "spi/n" of every packet passed on, in order
	batches   int
	released  []string // the hold's reports: "spi n installed"
	h         *larvalHold
}

func newLarvalRig() *larvalRig {
	r := &larvalRig{installed: map[uint32]bool{}, reserved: map[uint32]bool{}}
	r.h = newLarvalHold(r.next,
		func(spi uint32) bool { r.mu.Lock(); defer r.mu.Unlock(); return r.installed[spi] },
		func(spi uint32) bool { r.mu.Lock(); defer r.mu.Unlock(); return r.reserved[spi] })
	r.h.released = func(spi uint32, n int, installed bool) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.released = append(r.released, fmt.Sprintf("%x %d %v", spi, n, installed))
	}
	return r
}

func (r *larvalRig) next(b []conn.ESPPacket) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.batches++
	for i := range b {
		p := b[i].Bytes()
		r.got = append(r.got, tag(binary.BigEndian.Uint32(p), p[7]))
	}
}

// install moves spi from reserved to installed, as sad.Table.InstallInbound.
func (r *larvalRig) install(spi uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.reserved, spi)
	r.installed[spi] = true
}

func (r *larvalRig) reports() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.released)
}

func (r *larvalRig) passed() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.got)
}

func tag(spi uint32, n byte) string {
	return string(binary.BigEndian.AppendUint32(nil, spi)) + string([]byte{'/', n})
}

// espBatch builds packets "SPI, sequence number" whose last sequence byte
// numbers them; the receive buffer is shared and reused, as the sockets do.
func espBatch(buf []byte, pkts ...[2]uint32) []conn.ESPPacket {
	out := make([]conn.ESPPacket, len(pkts))
	for i, p := range pkts {
		off := i * 16
		binary.BigEndian.PutUint32(buf[off:], p[0])
		binary.BigEndian.PutUint32(buf[off+4:], p[1])
		out[i] = conn.ESPPacket{Buf: buf, Off: off, Len: 16, Src: netip.MustParseAddrPort("192.0.2.1:4500"), UDP: true}
	}
	return out
}

// A packet for an SPI whose negotiation is still in flight waits until the
// SA is installed, then reaches the dataplane in arrival order; packets of
// installed SAs pass at once, around it.
func TestLarvalHoldReleasesOnInstall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newLarvalRig()
		r.installed[0x100] = true
		r.reserved[0x200] = true
		buf := make([]byte, 256)
		r.h.HandleESP(espBatch(buf, [2]uint32{0x100, 1}, [2]uint32{0x200, 1}, [2]uint32{0x100, 2}, [2]uint32{0x200, 2}))
		// The caller reuses its buffer: the held packets must be copies.
		clear(buf)
		want := []string{tag(0x100, 1), tag(0x100, 2)}
		if got := r.passed(); !slices.Equal(got, want) {
			t.Fatalf("passed before the install: %q, want %q", got, want)
		}
		time.Sleep(10 * time.Millisecond)
		if got := r.passed(); !slices.Equal(got, want) {
			t.Fatalf("held packets went on before their SA was installed: %q", got)
		}
		r.install(0x200)
		time.Sleep(time.Millisecond)
		want = append(want, tag(0x200, 1), tag(0x200, 2))
		if got := r.passed(); !slices.Equal(got, want) {
			t.Fatalf("after the install: %q, want %q", got, want)
		}
		if got := r.reports(); !slices.Equal(got, []string{"200 2 true"}) {
			t.Errorf("reports %q, want the two packets of 0x200 released on install", got)
		}
		// Nothing held: the poller stopped.
		synctest.Wait()
		r.h.mu.Lock()
		armed := r.h.timer != nil
		r.h.mu.Unlock()
		if armed {
			t.Errorf("poll timer still armed with nothing held")
		}
	})
}

// Unknown SPIs that no negotiation reserved go straight on (to be dropped
// as "no SA" by the dataplane); held packets of a negotiation that never
// installs its SA go on at the deadline, so that the dataplane counts them.
func TestLarvalHoldUnreservedAndDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newLarvalRig()
		r.reserved[0x300] = true
		buf := make([]byte, 256)
		r.h.HandleESP(espBatch(buf, [2]uint32{0x999, 1}, [2]uint32{0x300, 1}))
		if got, want := r.passed(), []string{tag(0x999, 1)}; !slices.Equal(got, want) {
			t.Fatalf("passed: %q, want %q", got, want)
		}
		time.Sleep(larvalWait - time.Millisecond)
		if n := len(r.passed()); n != 1 {
			t.Fatalf("held packet went on %v before its deadline", larvalWait)
		}
		time.Sleep(2 * time.Millisecond)
		if got, want := r.passed(), []string{tag(0x999, 1), tag(0x300, 1)}; !slices.Equal(got, want) {
			t.Fatalf("after the deadline: %q, want %q", got, want)
		}
		if got := r.reports(); !slices.Equal(got, []string{"300 1 false"}) {
			t.Errorf("reports %q, want the packet of 0x300 passed on uninstalled", got)
		}
	})
}

// The hold takes at most maxLarvalPackets per SPI and maxLarvalSPIs SPIs;
// the rest go on at once.
func TestLarvalHoldLimits(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newLarvalRig()
		for spi := uint32(0x1000); spi < 0x1000+maxLarvalSPIs+1; spi++ {
			r.reserved[spi] = true
		}
		buf := make([]byte, 16*(maxLarvalPackets+1))
		pkts := make([][2]uint32, maxLarvalPackets+1)
		for i := range pkts {
			pkts[i] = [2]uint32{0x1000, uint32(i)}
		}
		r.h.HandleESP(espBatch(buf, pkts...))
		if n := len(r.passed()); n != 1 {
			t.Fatalf("%d of %d packets of one SPI passed, want 1 over the limit", n, len(pkts))
		}
		for spi := uint32(0x1001); spi < 0x1000+maxLarvalSPIs+1; spi++ {
			r.h.HandleESP(espBatch(buf, [2]uint32{spi, 1}))
		}
		if got := r.passed(); len(got) != 2 || got[1] != tag(0x1000+maxLarvalSPIs, 1) {
			t.Fatalf("passed %q, want the packet of SPI number %d (over the limit) second", got, maxLarvalSPIs+1)
		}
		r.h.close()
		time.Sleep(2 * larvalWait)
		if n := len(r.passed()); n != 2 {
			t.Errorf("%d packets passed after close, want the held ones dropped", n-2)
		}
	})
}

// The common case, every SPI installed, costs no allocation and passes the
// caller's batch on whole.
func TestLarvalHoldFastPathAllocs(t *testing.T) {
	calls := 0
	h := newLarvalHold(func(b []conn.ESPPacket) { calls += len(b) },
		func(uint32) bool { return true }, func(uint32) bool { return false })
	buf := make([]byte, 16*64)
	pkts := make([][2]uint32, 64)
	for i := range pkts {
		pkts[i] = [2]uint32{uint32(0x100 + i), 1}
	}
	batch := espBatch(buf, pkts...)
	if a := testing.AllocsPerRun(100, func() { h.HandleESP(batch) }); a != 0 {
		t.Errorf("%v allocations per batch", a)
	}
	if calls != 101*64 {
		t.Errorf("%d packets passed, want %d", calls, 101*64)
	}
}
