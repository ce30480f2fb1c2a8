package guard

import (
	"fmt"
	"os/exec"
	"slices"
	"testing"
)

// TestDevicesInNamespace: Sync removes a route-based conn's device that an
// earlier run left (marked DeviceAlias, nothing reading it) when no conn
// uses it any more, and keeps one a conn still uses (a restarted daemon
// attaches to it), one a running daemon reads, and devices not marked as
// ours. FlushDevices removes every detached one of ours. veth pairs stand
// in for the TUN devices: one with its peer down has no carrier, like a
// TUN nobody reads.
func TestDevicesInNamespace(t *testing.T) {
	requireNetns(t)
	ns := newNS(t)
	for i, d := range []struct {
		name     string
		ours, up bool
	}{
		{"ipsec7", true, false},   // left behind, conn removed
		{"ipsec100", true, false}, // left behind, conn still there
		{"ipsec8", true, true},    // read by a running daemon
		{"other0", false, false},  // not ours
	} {
		ipNS(t, ns, "link", "add", d.name, "type", "veth", "peer", "name", d.name+"p")
		if d.ours {
			ipNS(t, ns, "link", "set", d.name, "alias", DeviceAlias)
		}
		if d.up {
			ipNS(t, ns, "link", "set", d.name+"p", "up")
		}
		ipNS(t, ns, "link", "set", d.name, "up")
		ipNS(t, ns, "route", "add", fmt.Sprintf("10.77.%d.0/24", i), "dev", d.name)
	}
	g := New(Options{NetNS: "/run/netns/" + ns})
	defer g.Close()
	devs, err := g.Devices()
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, d := range devs {
		listed = append(listed, d.Name+map[bool]string{true: " attached", false: " detached"}[d.Attached])
	}
	if want := []string{"ipsec7 detached", "ipsec100 detached", "ipsec8 attached"}; !slices.Equal(listed, want) {
		t.Errorf("Devices: %q, want %q", listed, want)
	}

	cfg := loadConf(t, conn("tun100", "198.51.100.2", "0.0.0.0/0", "start", "leftsubnet=0.0.0.0/0", "mark=100"))
	res, err := g.Sync(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.RemovedDevices, []string{"ipsec7"}) {
		t.Errorf("Sync removed devices %q, want [ipsec7]", res.RemovedDevices)
	}
	exists := func(name string) bool { return exec.Command("ip", "-n", ns, "link", "show", name).Run() == nil }
	for name, want := range map[string]bool{"ipsec7": false, "ipsec100": true, "ipsec8": true, "other0": true} {
		if exists(name) != want {
			t.Errorf("after Sync, device %s exists: %v, want %v", name, !want, want)
		}
	}
	// ipsec100 keeps the traffic routed into it from the default route.
	if got := routeGet(t, ns, "10.77.1.5"); got != "10.77.1.5 dev ipsec100" {
		t.Errorf("route to 10.77.1.5: %q, want into ipsec100", got)
	}

	removed, err := g.FlushDevices()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(removed, []string{"ipsec100"}) {
		t.Errorf("FlushDevices removed %q, want [ipsec100]", removed)
	}
	for name, want := range map[string]bool{"ipsec100": false, "ipsec8": true, "other0": true} {
		if exists(name) != want {
			t.Errorf("after FlushDevices, device %s exists: %v, want %v", name, !want, want)
		}
	}
}
