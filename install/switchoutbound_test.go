package install

import (
	"testing"

	"github.com/ipsecgw/ipsecgw/sad"
	"github.com/ipsecgw/ipsecgw/spd"
)

// TestInstallerSwitchOutbound: the responder of a CHILD rekey installs the
// new SA with KeepOutbound (inbound only) and switches to it when the peer
// deletes the old SA: SwitchOutbound makes the held outbound SA current,
// and removing the old SA afterwards leaves it in place.
func TestInstallerSwitchOutbound(t *testing.T) {
	table := sad.NewTable(sad.Options{})
	defer table.Close()
	inst := New(table, &spd.Live{}, Options{ReplayWindow: 64})
	if err := inst.Install(gcmChild("net", 7, 0x1000, 0x2000)); err != nil {
		t.Fatal(err)
	}
	next := gcmChild("net", 7, 0x1001, 0x2001)
	next.KeepOutbound = true
	if err := inst.Install(next); err != nil {
		t.Fatal(err)
	}
	if table.Inbound(0x1001) == nil {
		t.Fatal("the new SA's inbound SA is not installed")
	}
	if out := table.Outbound(7); out == nil || out.SPI() != 0x2000 {
		t.Fatalf("outbound SA %v before the switch, want the old 00002000", out)
	}
	if err := inst.SwitchOutbound("net", 0x1001); err != nil {
		t.Fatal(err)
	}
	if out := table.Outbound(7); out == nil || out.SPI() != 0x2001 {
		t.Fatalf("outbound SA %v after the switch, want 00002001", out)
	}
	// Switching again changes nothing; the old SA goes without taking the
	// outbound direction with it.
	if err := inst.SwitchOutbound("net", 0x1001); err != nil {
		t.Fatal(err)
	}
	if err := inst.Remove("net", 0x1000, 0x2000); err != nil {
		t.Fatal(err)
	}
	if out := table.Outbound(7); out == nil || out.SPI() != 0x2001 {
		t.Fatalf("outbound SA %v after removing the old SA, want 00002001", out)
	}
	if err := inst.SwitchOutbound("net", 0x1000); err == nil {
		t.Error("switching to a removed CHILD SA succeeded")
	}
	if err := inst.SwitchOutbound("other", 0x1001); err == nil {
		t.Error("switching with the wrong conn name succeeded")
	}
}
