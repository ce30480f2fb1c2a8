package install

import (
	"net/netip"
	"testing"

	"github.com/ipsecgw/ipsecgw/sad"
	"github.com/ipsecgw/ipsecgw/spd"
)

// TestInstallerUpdateRemote: IKE saw the peer behind a NAT at a new port;
// both SAs of the pair take it, and the SAD entry the dataplane looks up
// per packet sends there from now on. Wrong SPIs, conns and families are
// refused without touching anything.
func TestInstallerUpdateRemote(t *testing.T) {
	table := sad.NewTable(sad.Options{})
	defer table.Close()
	inst := New(table, &spd.Live{}, Options{ReplayWindow: 1024})
	if err := inst.Install(gcmChild("net", 7, 0x1000, 0x2000)); err != nil {
		t.Fatal(err)
	}
	if err := inst.Install(gcmChild("other", 8, 0x3000, 0x4000)); err != nil {
		t.Fatal(err)
	}
	moved := netip.MustParseAddrPort("198.51.100.2:20031")
	if err := inst.UpdateRemote("net", 0x1000, 0x2000, moved); err != nil {
		t.Fatal(err)
	}
	if got := table.Outbound(7).Remote(); got != moved {
		t.Errorf("outbound SA sends to %v, want %v", got, moved)
	}
	if got := table.Inbound(0x1000).Remote(); got != moved {
		t.Errorf("inbound SA shows peer %v, want %v", got, moved)
	}
	if got := table.Outbound(8).Remote(); got != netip.MustParseAddrPort("198.51.100.2:4500") {
		t.Errorf("another CHILD SA moved too: %v", got)
	}
	// The same endpoint again is accepted.
	if err := inst.UpdateRemote("net", 0x1000, 0x2000, moved); err != nil {
		t.Errorf("repeated move: %v", err)
	}

	for name, call := range map[string]func() error{
		"unknown SPI":  func() error { return inst.UpdateRemote("net", 0x9999, 0x2000, moved) },
		"wrong conn":   func() error { return inst.UpdateRemote("other", 0x1000, 0x2000, moved) },
		"wrong outSPI": func() error { return inst.UpdateRemote("net", 0x1000, 0x4000, moved) },
		"IPv6 remote": func() error {
			return inst.UpdateRemote("net", 0x1000, 0x2000, netip.MustParseAddrPort("[2001:db8::2]:4500"))
		},
	} {
		if err := call(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if got := table.Outbound(7).Remote(); got != moved {
		t.Errorf("a refused move changed the outbound SA to %v", got)
	}
}

// TestInstallerPeerSource: the dataplane's reports of ESP from a new
// endpoint reach the IKE callback in order with our inbound SPI; outbound
// SAs are ignored; a full queue drops reports instead of blocking the
// packet path.
func TestInstallerPeerSource(t *testing.T) {
	table := sad.NewTable(sad.Options{})
	defer table.Close()
	inst := New(table, &spd.Live{}, Options{ReplayWindow: 1024})
	if err := inst.Install(gcmChild("net", 7, 0x1000, 0x2000)); err != nil {
		t.Fatal(err)
	}
	src := netip.MustParseAddrPort("198.51.100.2:20050")
	inst.PeerSource(table.Outbound(7), src) // not an inbound SA: ignored
	for range moveQueueLen + 10 {           // more than fit: the rest is dropped, nothing blocks
		inst.PeerSource(table.Inbound(0x1000), src)
	}
	type report struct {
		spi uint32
		src netip.AddrPort
	}
	got := make(chan report, 2*moveQueueLen)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		inst.RunPeerMoves(stop, func(spi uint32, src netip.AddrPort) bool {
			got <- report{spi, src}
			return true
		})
	}()
	for i := range moveQueueLen {
		if r := <-got; r.spi != 0x1000 || r.src != src {
			t.Fatalf("report %d: SPI %08x from %v, want 00001000 from %v", i, r.spi, r.src, src)
		}
	}
	close(stop)
	<-done
	if n := len(got); n != 0 {
		t.Errorf("%d reports beyond the queue's %d were delivered", n, moveQueueLen)
	}
}
