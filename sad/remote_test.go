package sad

import (
	"errors"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
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

// TestNewSource: an authenticated packet from another source than the
// SA's remote is reported once per SourceReportInterval, only for ESP in
// UDP, and no longer once IKE moved the SA there. In a synctest bubble
// time stands still while goroutines run, so the concurrent callers all
// fall in one interval: exactly one may report.
func TestNewSource(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		in := mustSA(t, cfg(Inbound, 0x4400, 10))
		known := in.Remote()
		moved := netip.MustParseAddrPort("203.0.113.1:20042")
		if in.NewSource(known) {
			t.Fatal("the known source was reported")
		}
		var reports atomic.Int64
		var wg sync.WaitGroup
		for range 8 {
			wg.Go(func() {
				for range 1000 {
					if in.NewSource(moved) {
						reports.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if n := reports.Load(); n != 1 {
			t.Fatalf("%d reports of one new source within one interval, want 1", n)
		}
		time.Sleep(SourceReportInterval)
		if !in.NewSource(moved) {
			t.Fatal("still the new source one interval later (IKE declined to move): not reported again")
		}
		time.Sleep(SourceReportInterval)
		if err := in.SetRemote(moved); err != nil {
			t.Fatal(err)
		}
		if in.NewSource(moved) {
			t.Error("the source IKE moved the SA to was reported")
		}

		plain := cfg(Inbound, 0x4500, 11)
		plain.UDPEncap = false
		raw := mustSA(t, plain)
		if raw.NewSource(netip.AddrPortFrom(netip.MustParseAddr("203.0.113.99"), 0)) {
			t.Error("plain ESP reported a new source")
		}
	})
}

func TestNewSourceZeroAllocs(t *testing.T) {
	in := mustSA(t, cfg(Inbound, 0x4600, 12))
	known, other := in.Remote(), netip.MustParseAddrPort("203.0.113.1:20043")
	if allocs := testing.AllocsPerRun(1000, func() { in.NewSource(known); in.NewSource(other) }); allocs != 0 {
		t.Fatalf("NewSource allocates %v times per call", allocs)
	}
}
