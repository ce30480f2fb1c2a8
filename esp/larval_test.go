package esp

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

// larvalRig is a larvalHold over fake SAD state, fed as the dataplane
// feeds it, recording what reaches the dataplane and what is dropped.
type larvalRig struct {
	mu        sync.Mutex
	installed map[uint32]bool
	reserved  map[uint32]bool
	got       []string // "spi/n" of every packet passed on, in order
	refused   []string // packets the hold did not take (dropped, reported)
	expired   int      // packets dropped at the deadline
	released  []string // the hold's reports: "spi n installed"
	h         *larvalHold
}

func newLarvalRig() *larvalRig {
	r := &larvalRig{installed: map[uint32]bool{}, reserved: map[uint32]bool{}}
	r.h = newLarvalHold(r.next,
		func(spi uint32) bool { r.mu.Lock(); defer r.mu.Unlock(); return r.installed[spi] },
		func(spi uint32) bool { r.mu.Lock(); defer r.mu.Unlock(); return r.reserved[spi] })
	r.h.expired = func(n int) { r.mu.Lock(); defer r.mu.Unlock(); r.expired += n }
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
	for i := range b {
		p := b[i].Bytes()
		r.got = append(r.got, tag(binary.BigEndian.Uint32(p), p[7]))
	}
}

// feed does what the dataplane does with a batch: packets of installed
// SAs go on, the others are offered to the hold (Dataplane.noSA), and
// what it refuses is dropped.
func (r *larvalRig) feed(b []conn.ESPPacket) {
	for i := range b {
		p := b[i].Bytes()
		spi := binary.BigEndian.Uint32(p)
		r.mu.Lock()
		in := r.installed[spi]
		r.mu.Unlock()
		switch {
		case in:
			r.next(b[i : i+1])
		case !r.h.hold(spi, p, b[i].Src, false):
			r.mu.Lock()
			r.refused = append(r.refused, tag(spi, p[7]))
			r.mu.Unlock()
		}
	}
}

func (r *larvalRig) dropped() ([]string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.refused), r.expired
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
		r.feed(espBatch(buf, [2]uint32{0x100, 1}, [2]uint32{0x200, 1}, [2]uint32{0x100, 2}, [2]uint32{0x200, 2}))
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

// Unknown SPIs that no negotiation reserved are not held (the dataplane
// drops and reports them); held packets of a negotiation that never
// installs its SA are dropped at the deadline and counted.
func TestLarvalHoldUnreservedAndDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newLarvalRig()
		r.reserved[0x300] = true
		buf := make([]byte, 256)
		r.feed(espBatch(buf, [2]uint32{0x999, 1}, [2]uint32{0x300, 1}))
		if refused, _ := r.dropped(); !slices.Equal(refused, []string{tag(0x999, 1)}) {
			t.Fatalf("refused %q, want the unreserved SPI's packet", refused)
		}
		time.Sleep(larvalWait - time.Millisecond)
		if _, expired := r.dropped(); expired != 0 {
			t.Fatalf("held packet dropped before its deadline %v", larvalWait)
		}
		time.Sleep(2 * time.Millisecond)
		if _, expired := r.dropped(); expired != 1 || len(r.passed()) != 0 {
			t.Fatalf("after the deadline: %d expired, passed %q; want 1 expired, none passed", expired, r.passed())
		}
		if got := r.reports(); !slices.Equal(got, []string{"300 1 false"}) {
			t.Errorf("reports %q, want the packet of 0x300 dropped uninstalled", got)
		}
	})
}

// The hold takes at most maxLarvalPackets per SPI and maxLarvalSPIs SPIs;
// the rest are refused (dropped at once).
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
		r.feed(espBatch(buf, pkts...))
		if refused, _ := r.dropped(); len(refused) != 1 {
			t.Fatalf("%d of %d packets of one SPI refused, want 1 over the limit", len(refused), len(pkts))
		}
		for spi := uint32(0x1001); spi < 0x1000+maxLarvalSPIs+1; spi++ {
			r.feed(espBatch(buf, [2]uint32{spi, 1}))
		}
		if refused, _ := r.dropped(); len(refused) != 2 || refused[1] != tag(0x1000+maxLarvalSPIs, 1) {
			t.Fatalf("refused %q, want the packet of SPI number %d (over the limit) second", refused, maxLarvalSPIs+1)
		}
		r.h.close()
		time.Sleep(2 * larvalWait)
		if n := len(r.passed()); n != 0 {
			t.Errorf("%d packets passed after close, want the held ones dropped", n)
		}
	})
}
