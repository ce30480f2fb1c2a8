package daemon

import (
	"net/netip"
	"testing"
	"time"
)

// TestInvalidSPIReports: one report per source and second reaches IKE, a
// full queue drops instead of blocking the packet path, and run hands the
// reports over in order.
func TestInvalidSPIReports(t *testing.T) {
	v := newInvalidSPIs()
	peer := netip.MustParseAddrPort("198.51.100.2:4500")
	other := netip.MustParseAddrPort("[::ffff:203.0.113.9]:4500")
	for i := range 100 {
		v.report(0x1000+uint32(i), peer)
	}
	v.report(0x2000, other)
	if n := len(v.q); n != 2 {
		t.Fatalf("%d reports queued from a burst of one source and one of another, want 2", n)
	}
	// A full queue drops rather than blocks.
	for i := range 2 * invalidSPIQueue {
		v.report(7, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}), 4500))
	}
	if n := len(v.q); n != invalidSPIQueue {
		t.Fatalf("%d reports queued, want the queue's %d", n, invalidSPIQueue)
	}

	stop := make(chan struct{})
	got := make(chan invalidSPI, 2*invalidSPIQueue)
	done := make(chan struct{})
	go func() {
		defer close(done)
		v.run(stop, func(remote netip.Addr, spi uint32) { got <- invalidSPI{spi, remote} })
	}()
	first, second := <-got, <-got
	if first != (invalidSPI{0x1000, peer.Addr()}) || second != (invalidSPI{0x2000, netip.MustParseAddr("203.0.113.9")}) {
		t.Errorf("first reports %+v, %+v; want the burst's first SPI, then the other source (unmapped)", first, second)
	}
	close(stop)
	<-done

	// A second later the same source may report again.
	v.last[peer.Addr()] = time.Now().Add(-invalidSPIEvery)
	for len(v.q) > 0 {
		<-v.q
	}
	v.report(0x3000, peer)
	if len(v.q) != 1 {
		t.Error("a source one second later was not reported")
	}
}
