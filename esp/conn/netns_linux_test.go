package conn

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func requireRoot(t *testing.T, why string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	msg := why + " needs root (run as root, or in CI with IPSECGW_REQUIRE_INTEROP=1)"
	if os.Getenv("IPSECGW_REQUIRE_INTEROP") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

var nsSeq atomic.Int32

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// newNS creates a namespace named ipgwt-<pid>-c<n>, deleted at cleanup.
func newNS(t *testing.T) string {
	t.Helper()
	name := fmt.Sprintf("ipgwt-%d-c%d", os.Getpid(), nsSeq.Add(1))
	run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", name).Run() })
	run(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

// TestTwoGatewaysInNamespaces runs two Conns on the standard ports 500 and
// 4500 at once, each in its own namespace, joined by a veth pair:
// IKE, ESP-in-UDP and plain ESP cross between them.
func TestTwoGatewaysInNamespaces(t *testing.T) {
	requireRoot(t, "creating network namespaces")
	a, b := newNS(t), newNS(t)
	run(t, "ip", "-n", a, "link", "add", "veth0", "type", "veth", "peer", "name", "veth0", "netns", b)
	run(t, "ip", "-n", a, "addr", "add", "198.51.100.1/24", "dev", "veth0")
	run(t, "ip", "-n", b, "addr", "add", "198.51.100.2/24", "dev", "veth0")
	run(t, "ip", "-n", a, "link", "set", "veth0", "up")
	run(t, "ip", "-n", b, "link", "set", "veth0", "up")

	addrA, addrB := netip.MustParseAddr("198.51.100.1"), netip.MustParseAddr("198.51.100.2")
	open := func(ns string, addr netip.Addr, h *counter) *Conn {
		cfg := DefaultConfig()
		cfg.Addr, cfg.NetNS, cfg.RawESP, cfg.ESP = addr, "/run/netns/"+ns, true, h.handle
		c, err := Listen(cfg)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		if c.IKEPort() != 500 || c.NATTPort() != 4500 {
			t.Fatalf("ports %d/%d", c.IKEPort(), c.NATTPort())
		}
		return c
	}
	ha, hb := newCounter(), newCounter()
	ca, cb := open(a, addrA, ha), open(b, addrB, hb)

	// IKE from A:500 to B:500, then B answers from 4500 to A:4500.
	msg := bytes.Repeat([]byte{7}, 64)
	if err := ca.SendIKE(msg, netip.AddrPortFrom(addrB, 500), false); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-cb.IKE():
		if p.Src != netip.AddrPortFrom(addrA, 500) || p.LocalPort != 500 || !bytes.Equal(p.Data, msg) {
			t.Fatalf("B got IKE %+v", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("IKE A->B lost")
	}
	if err := cb.SendIKE(msg, netip.AddrPortFrom(addrA, 4500), true); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-ca.IKE():
		if p.Src != netip.AddrPortFrom(addrB, 4500) || p.LocalPort != 4500 || !bytes.Equal(p.Data, msg) {
			t.Fatalf("A got IKE %+v", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("IKE B->A lost")
	}

	// ESP both ways: A sends in UDP, B sends plain.
	var toB, toA []OutPacket
	for i := range 50 {
		toB = append(toB, OutPacket{B: espPacket(uint32(i), 200), Dst: netip.AddrPortFrom(addrB, 4500), UDP: true})
		toA = append(toA, OutPacket{B: espPacket(uint32(i), 300), Dst: netip.AddrPortFrom(addrA, 0)})
	}
	if n, err := ca.NewSender().Send(toB); n != 50 || err != nil {
		t.Fatalf("A Send = %d, %v", n, err)
	}
	if n, err := cb.NewSender().Send(toA); n != 50 || err != nil {
		t.Fatalf("B Send = %d, %v", n, err)
	}
	waitFor(t, "ESP both ways", func() bool { return ha.n.Load() >= 50 && hb.n.Load() >= 50 })
	if hb.udp.Load() != 50 || ha.udp.Load() != 0 || ha.bad.Load()+hb.bad.Load() != 0 {
		t.Fatalf("A: udp=%d bad=%d; B: udp=%d bad=%d", ha.udp.Load(), ha.bad.Load(), hb.udp.Load(), hb.bad.Load())
	}
}
