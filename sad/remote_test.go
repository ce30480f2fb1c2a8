package sad

import (
	"errors"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

func TestSetRemote(t *testing.T) {
	tab := NewTable(Options{})
	out := mustSA(t, cfg(Outbound, 0x4100, 7))
	if err := tab.InstallOutbound(out); err != nil {
		t.Fatal(err)
	}
	moved := netip.MustParseAddrPort("203.0.113.1:20017")
	if err := out.SetRemote(moved); err != nil {
		t.Fatal(err)
	}
	// The packet path finds the SA through the table: the lookup must see
	// the new endpoint, and nothing else about the SA may change.
	got := tab.Outbound(7)
	if got != out || got.Remote() != moved {
		t.Fatalf("after SetRemote the table's SA sends to %v, want %v", got.Remote(), moved)
	}
	if got.Local() != netip.MustParseAddrPort("198.51.100.1:4500") || !got.UDPEncap() || got.SPI() != 0x4100 {
		t.Errorf("SetRemote changed other fields: %v", got)
	}
	if s := got.String(); !strings.Contains(s, moved.String()) {
		t.Errorf("String() %q does not show the new remote", s)
	}

	for name, bad := range map[string]netip.AddrPort{
		"invalid":      {},
		"other family": netip.MustParseAddrPort("[2001:db8::1]:4500"),
	} {
		if err := out.SetRemote(bad); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: SetRemote(%v) = %v, want ErrBadConfig", name, bad, err)
		}
	}
	if got.Remote() != moved {
		t.Errorf("a refused SetRemote changed the remote to %v", got.Remote())
	}
}

// TestSetRemoteWhileSending moves the remote endpoint back and forth while
// packet-path goroutines read it (run with -race): every read must be one
// of the endpoints written, never a mix of two, and the readers must end
// up seeing the last one.
func TestSetRemoteWhileSending(t *testing.T) {
	tab := NewTable(Options{})
	out := mustSA(t, cfg(Outbound, 0x4200, 8))
	if err := tab.InstallOutbound(out); err != nil {
		t.Fatal(err)
	}
	endpoints := []netip.AddrPort{
		netip.MustParseAddrPort("203.0.113.1:4500"),
		netip.MustParseAddrPort("203.0.113.9:20000"),
		netip.MustParseAddrPort("203.0.113.200:31337"),
	}
	last := netip.MustParseAddrPort("203.0.113.77:40000")
	valid := map[netip.AddrPort]bool{last: true}
	for _, e := range endpoints {
		valid[e] = true
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	var torn atomic.Int64
	for range 4 {
		wg.Go(func() {
			for !stop.Load() {
				sa := tab.Outbound(8)
				if !sa.Acquire() {
					continue
				}
				if !valid[sa.Remote()] {
					torn.Add(1)
				}
				sa.NextSeq(100)
				sa.Release()
			}
		})
	}
	for i := range 20000 {
		if err := out.SetRemote(endpoints[i%len(endpoints)]); err != nil {
			t.Fatal(err)
		}
	}
	if err := out.SetRemote(last); err != nil {
		t.Fatal(err)
	}
	stop.Store(true)
	wg.Wait()
	if n := torn.Load(); n != 0 {
		t.Fatalf("%d reads saw an endpoint that was never written", n)
	}
	if got := tab.Outbound(8).Remote(); got != last {
		t.Fatalf("remote after the writes: %v, want %v", got, last)
	}
}

func TestRemoteZeroAllocs(t *testing.T) {
	out := mustSA(t, cfg(Outbound, 0x4300, 9))
	if err := out.SetRemote(netip.MustParseAddrPort("203.0.113.5:20001")); err != nil {
		t.Fatal(err)
	}
	var sink netip.AddrPort
	if allocs := testing.AllocsPerRun(1000, func() { sink = out.Remote() }); allocs != 0 {
		t.Fatalf("Remote() allocates %v times per call", allocs)
	}
	_ = sink
}
