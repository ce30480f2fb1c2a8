package install

import (
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/sad"
	"github.com/ipsecgw/ipsecgw/spd"
)

// TestInstallerSoftLimitRekey: the soft byte and packet limits IKE hands
// over reach the SAD, and the soft expiry the packet path raises arrives,
// once per SA and with its direction, at the rekey function RunRekeys
// calls (IKE's RekeyChild).
func TestInstallerSoftLimitRekey(t *testing.T) {
	var inst *Installer
	table := sad.NewTable(sad.Options{OnEvent: func(e sad.Event) { inst.SAEvent(e) }})
	defer table.Close()
	inst = New(table, &spd.Live{}, Options{ReplayWindow: 64})

	type req struct {
		spi     uint32
		inbound bool
	}
	got := make(chan req, 8)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		inst.RunRekeys(stop, func(spi uint32, inbound bool) bool {
			got <- req{spi, inbound}
			return true
		})
	}()
	defer func() { close(stop); <-done }()

	c := gcmChild("net", 7, 0x1000, 0x2000)
	c.SoftPackets, c.SoftBytes = 3, 1<<20
	c.LifePackets, c.LifeBytes = 10, 2<<20
	if err := inst.Install(c); err != nil {
		t.Fatal(err)
	}
	out := table.Outbound(7)
	if out == nil || out.Soft().Packets != 3 || out.Soft().Bytes != 1<<20 || out.Hard().Packets != 10 {
		t.Fatalf("outbound SA limits: %+v", out)
	}
	// Two packets: below the soft limit, nothing is reported.
	for range 2 {
		if _, r := out.NextSeq(100); r != sad.NotDropped {
			t.Fatalf("NextSeq: %v", r)
		}
	}
	select {
	case r := <-got:
		t.Fatalf("rekey requested below the soft limit: %+v", r)
	default:
	}
	// The third packet crosses it; more packets do not report again.
	for range 4 {
		if _, r := out.NextSeq(100); r != sad.NotDropped {
			t.Fatalf("NextSeq past the soft limit: %v (a soft limit must not drop)", r)
		}
	}
	select {
	case r := <-got:
		if r != (req{0x2000, false}) {
			t.Errorf("rekey request %+v, want outbound SPI 00002000", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no rekey request after the soft packet limit")
	}
	// Inbound: the byte limit, reported with our SPI.
	in := table.Inbound(0x1000)
	seq, r := in.Check(1)
	if r != sad.NotDropped {
		t.Fatal(r)
	}
	if r := in.Accept(seq, 1<<20); r != sad.NotDropped {
		t.Fatal(r)
	}
	select {
	case r := <-got:
		if r != (req{0x1000, true}) {
			t.Errorf("rekey request %+v, want inbound SPI 00001000", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no rekey request after the soft byte limit")
	}
	select {
	case r := <-got:
		t.Errorf("extra rekey request %+v", r)
	default:
	}
}

// TestInstallerSAEventNeverBlocks: with nobody draining the queue, soft
// expiries beyond its length are dropped instead of blocking the packet
// path, and hard expiries are not queued at all.
func TestInstallerSAEventNeverBlocks(t *testing.T) {
	table := sad.NewTable(sad.Options{})
	defer table.Close()
	inst := New(table, &spd.Live{}, Options{ReplayWindow: 64})
	if err := inst.Install(gcmChild("net", 7, 0x1000, 0x2000)); err != nil {
		t.Fatal(err)
	}
	sa := table.Outbound(7)
	for range rekeyQueueLen + 10 {
		inst.SAEvent(sad.Event{Kind: sad.SoftExpired, SA: sa})
		inst.SAEvent(sad.Event{Kind: sad.HardExpired, SA: sa})
	}
	if n := len(inst.rekeys); n != rekeyQueueLen {
		t.Errorf("queue holds %d requests, want %d (full, hard expiries not queued)", n, rekeyQueueLen)
	}
}

// TestInstallerKeepOutbound: the redundant SA of a rekey collision
// (KeepOutbound) is installed inbound only; traffic keeps leaving through
// the winner, also after the redundant SA is removed.
func TestInstallerKeepOutbound(t *testing.T) {
	table := sad.NewTable(sad.Options{})
	defer table.Close()
	inst := New(table, &spd.Live{}, Options{ReplayWindow: 64})
	for _, c := range []struct{ in, out uint32 }{{0x1000, 0x2000}, {0x1001, 0x2001}} {
		if err := inst.Install(gcmChild("net", 7, c.in, c.out)); err != nil {
			t.Fatal(err)
		}
	}
	loser := gcmChild("net", 7, 0x1002, 0x2002)
	loser.KeepOutbound = true
	if err := inst.Install(loser); err != nil {
		t.Fatal(err)
	}
	if table.Inbound(0x1002) == nil {
		t.Fatal("the redundant SA's inbound SA is not installed (the peer may use it until it is deleted)")
	}
	if out := table.Outbound(7); out == nil || out.SPI() != 0x2001 {
		t.Fatalf("outbound SA %v, want the winner 00002001", out)
	}
	// The rekey initiator deletes the old SA and the redundant one.
	for _, c := range []struct{ in, out uint32 }{{0x1000, 0x2000}, {0x1002, 0x2002}} {
		if err := inst.Remove("net", c.in, c.out); err != nil {
			t.Fatal(err)
		}
	}
	if out := table.Outbound(7); out == nil || out.SPI() != 0x2001 {
		t.Fatalf("after the deletes the outbound SA is %v, want the winner 00002001", out)
	}
	// Without a current outbound SA, KeepOutbound cannot keep anything:
	// the SA is installed normally.
	if err := inst.Remove("net", 0x1001, 0x2001); err != nil {
		t.Fatal(err)
	}
	lone := gcmChild("net", 7, 0x1003, 0x2003)
	lone.KeepOutbound = true
	if err := inst.Install(lone); err != nil {
		t.Fatal(err)
	}
	if out := table.Outbound(7); out == nil || out.SPI() != 0x2003 {
		t.Fatalf("outbound SA %v, want 00002003", out)
	}
}
