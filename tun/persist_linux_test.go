package tun

import (
	"os/exec"
	"strings"
	"testing"
)

// crash ends t's file descriptor the way a killed process does: without
// Close's clean-up.
func crash(t *TUN) {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
	t.shut.Store(true)
	t.dev.Close()
	<-t.eventsDone
	t.nl.Close()
}

// TestPersistOutlivesCrash: a persistent device stays with its alias and
// the routes on it when its process goes without Close, without carrier
// (nothing reads it, so what is routed into it is dropped); Create
// attaches to it again (same interface index, routes kept), and Close
// removes it.
func TestPersistOutlivesCrash(t *testing.T) {
	requireRoot(t)
	ns := newNS(t)
	cfg := Config{Name: "ipgwp100", NetNS: "/run/netns/" + ns, Persist: true, Alias: "ipsecgw test device"}
	dev, err := Create(cfg)
	if err != nil {
		t.Fatal(err)
	}
	index := dev.Index()
	ipCmd(t, ns, "route", "add", "10.77.0.0/24", "dev", "ipgwp100", "metric", "10")
	crash(dev)

	link, err := exec.Command("ip", "-n", ns, "-d", "link", "show", "ipgwp100").CombinedOutput()
	if err != nil {
		t.Fatalf("the persistent device is gone after the crash: %v %s", err, link)
	}
	for _, want := range []string{"NO-CARRIER", "alias ipsecgw test device", "tun type tun pi off vnet_hdr on persist on"} {
		if !strings.Contains(string(link), want) {
			t.Errorf("device after the crash lacks %q:\n%s", want, link)
		}
	}
	if out := ipCmd(t, ns, "route", "get", "10.77.0.1"); !strings.Contains(out, "dev ipgwp100") {
		t.Errorf("traffic for the routed prefix no longer goes into the device: %s", out)
	}

	again, err := Create(cfg)
	if err != nil {
		t.Fatalf("attaching to the persistent device: %v", err)
	}
	if again.Index() != index {
		t.Errorf("attached to index %d, the device was %d", again.Index(), index)
	}
	if out := ipCmd(t, ns, "route", "show", "10.77.0.0/24"); !strings.Contains(out, "dev ipgwp100") {
		t.Errorf("route on the device lost across the restart: %q", out)
	}
	if out, _ := exec.Command("ip", "-n", ns, "link", "show", "ipgwp100").CombinedOutput(); strings.Contains(string(out), "NO-CARRIER") {
		t.Errorf("carrier still off with a reader attached:\n%s", out)
	}
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("ip", "-n", ns, "link", "show", "ipgwp100").CombinedOutput(); err == nil {
		t.Errorf("the device stays after Close:\n%s", out)
	}
}
