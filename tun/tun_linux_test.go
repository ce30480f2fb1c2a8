package tun

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// requireRoot skips a test that needs root, unless the CI asked for the
// privileged tests to be mandatory.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	msg := "needs root to create network namespaces and TUN devices (run as root, or in CI with IPSECGW_REQUIRE_INTEROP=1)"
	if os.Getenv("IPSECGW_REQUIRE_INTEROP") == "1" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

var nsSeq atomic.Int32

// newNS creates a fresh named network namespace with lo up and deletes it
// when the test ends. Only namespaces named ipgwt-<pid>-<n> are touched.
func newNS(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("ipgwt-%d-%d", os.Getpid(), nsSeq.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	ipCmd(t, name, "link", "set", "lo", "up")
	return name
}

func ipCmd(t testing.TB, ns string, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"-n", ns}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip -n %s %s: %v: %s", ns, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// inNS runs fn on an OS thread switched into the namespace. Sockets
// created by fn stay in that namespace after the thread switches back.
func inNS(t *testing.T, ns string, fn func()) {
	t.Helper()
	if err := inNSErr(ns, fn); err != nil {
		t.Fatal(err)
	}
}

// inNSErr is inNS for goroutines other than the test's own.
func inNSErr(ns string, fn func()) error {
	target, err := netns.GetFromName(ns)
	if err != nil {
		return err
	}
	defer target.Close()
	done := make(chan error)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			done <- err
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		fn()
		if err := netns.Set(orig); err != nil {
			// Leave the thread locked: the runtime discards it.
			done <- err
			return
		}
		runtime.UnlockOSThread()
		done <- nil
	}()
	return <-done
}

var testNSOf sync.Map // *TUN -> namespace name, for helpers

func (t *TUN) nsName() string {
	v, _ := testNSOf.Load(t)
	return v.(string)
}

func createInNS(t *testing.T, ns string) *TUN {
	t.Helper()
	dev, err := Create(Config{Name: "ipgwt%d", NetNS: "/run/netns/" + ns})
	if err != nil {
		t.Fatal(err)
	}
	testNSOf.Store(dev, ns)
	t.Cleanup(func() { dev.Close(); testNSOf.Delete(dev) })
	return dev
}

// rxPackets is how many packets the kernel has received from our side of
// the TUN (what we wrote, after GRO coalescing).
func rxPackets(t *testing.T, dev *TUN) uint64 {
	t.Helper()
	link, err := dev.nl.LinkByIndex(dev.Index())
	if err != nil {
		t.Fatal(err)
	}
	return link.Attrs().Statistics.RxPackets
}

func newBufs(n, size int) ([][]byte, []int) {
	bufs := make([][]byte, n)
	for i := range bufs {
		bufs[i] = make([]byte, size)
	}
	return bufs, make([]int, n)
}

// readUntil reads batches from dev until match accepts a packet, and
// returns the number of matching packets in that batch. It gives up after
// a generous wait so that a broken kernel path fails the test instead of
// hanging it.
func readUntil(t *testing.T, dev Device, bufs [][]byte, sizes []int, match func([]byte) bool) (first []byte, inBatch int) {
	t.Helper()
	type res struct {
		pkt []byte
		n   int
		err error
	}
	out := make(chan res, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			n, err := dev.Read(bufs, sizes, Headroom)
			if err != nil {
				out <- res{err: err}
				return
			}
			clear(sizes[n:]) // callers may walk the batch up to the first 0
			var r res
			for i := range n {
				p := bufs[i][Headroom : Headroom+sizes[i]]
				if match(p) {
					if r.pkt == nil {
						r.pkt = append([]byte(nil), p...)
					}
					r.n++
				}
			}
			if r.n > 0 {
				out <- r
				return
			}
			select {
			case <-stop:
				return
			default:
			}
		}
	}()
	select {
	case r := <-out:
		if r.err != nil {
			t.Fatalf("Read: %v", r.err)
		}
		return r.pkt, r.n
	case <-time.After(10 * time.Second):
		t.Fatal("expected packet never came out of the TUN")
	}
	return nil, 0
}

func TestTUNAddressesAndRoutes(t *testing.T) {
	requireRoot(t)
	ns := newNS(t)
	dev := createInNS(t, ns)
	name := dev.Name()
	if !strings.HasPrefix(name, "ipgwt") {
		t.Fatalf("device name %q", name)
	}
	if link := ipCmd(t, ns, "link", "show", name); !strings.Contains(link, "UP") || !strings.Contains(link, "mtu 1438") {
		t.Fatalf("link not up with default MTU: %s", link)
	}
	// The device must not have leaked into our own namespace.
	if _, err := net.InterfaceByName(name); err == nil {
		if out, _ := exec.Command("ip", "-d", "link", "show", name).Output(); strings.Contains(string(out), "tun") {
			t.Fatalf("device %s appeared in the test's own namespace", name)
		}
	}

	addrs := []netip.Prefix{netip.MustParsePrefix("10.99.0.1/32"), netip.MustParsePrefix("fd00:99::1/128")}
	routes := []netip.Prefix{netip.MustParsePrefix("10.98.0.0/24"), netip.MustParsePrefix("fd00:98::/64")}
	for range 2 { // twice: both calls are idempotent
		for _, a := range addrs {
			if err := dev.AddAddress(a); err != nil {
				t.Fatal(err)
			}
		}
		for _, r := range routes {
			if err := dev.AddRoute(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	a4 := ipCmd(t, ns, "-4", "addr", "show", "dev", name)
	a6 := ipCmd(t, ns, "-6", "addr", "show", "dev", name)
	if !strings.Contains(a4, "10.99.0.1/32") || !strings.Contains(a6, "fd00:99::1/128") {
		t.Fatalf("addresses missing:\n%s\n%s", a4, a6)
	}
	r4 := ipCmd(t, ns, "-4", "route", "show", "dev", name)
	r6 := ipCmd(t, ns, "-6", "route", "show", "dev", name)
	if !strings.Contains(r4, "10.98.0.0/24") || !strings.Contains(r6, "fd00:98::/64") {
		t.Fatalf("routes missing:\n%s\n%s", r4, r6)
	}

	// A route of someone else's is refused, not stolen.
	ipCmd(t, ns, "tuntap", "add", "dev", "other0", "mode", "tun")
	ipCmd(t, ns, "link", "set", "other0", "up")
	ipCmd(t, ns, "route", "add", "10.97.0.0/24", "dev", "other0")
	if err := dev.AddRoute(netip.MustParsePrefix("10.97.0.0/24")); err == nil {
		t.Fatal("AddRoute took over a route through another device")
	}

	for range 2 {
		if err := dev.RemoveRoute(routes[0]); err != nil {
			t.Fatal(err)
		}
	}
	if r4 := ipCmd(t, ns, "-4", "route", "show", "dev", name); strings.Contains(r4, "10.98.0.0/24") {
		t.Fatalf("route still there after RemoveRoute: %s", r4)
	}
	if err := dev.AddRoute(routes[0]); err != nil {
		t.Fatal(err)
	}
	if err := dev.SetMTU(1300); err != nil {
		t.Fatal(err)
	}
	if dev.MTU() != 1300 || !strings.Contains(ipCmd(t, ns, "link", "show", name), "mtu 1300") {
		t.Fatal("SetMTU did not take")
	}

	if err := dev.Close(); err != nil {
		t.Fatal(err)
	}
	if err := dev.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if out, err := exec.Command("ip", "-n", ns, "link", "show", name).CombinedOutput(); err == nil {
		t.Fatalf("device still exists after Close: %s", out)
	}
	all := ipCmd(t, ns, "route", "show", "table", "all")
	if strings.Contains(all, "10.98.0.0") || strings.Contains(all, "fd00:98::") {
		t.Fatalf("routes left behind after Close:\n%s", all)
	}
	if err := dev.AddRoute(routes[0]); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("AddRoute after Close = %v", err)
	}
}

// setupPingable gives dev 10.99.0.1 and fd00:99::1 and routes the "remote"
// subnets 10.98.0.0/24 and fd00:98::/64 into it.
func setupPingable(t *testing.T, dev *TUN) {
	t.Helper()
	for _, a := range []string{"10.99.0.1/32", "fd00:99::1/128"} {
		if err := dev.AddAddress(netip.MustParsePrefix(a)); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range []string{"10.98.0.0/24", "fd00:98::/64"} {
		if err := dev.AddRoute(netip.MustParsePrefix(r)); err != nil {
			t.Fatal(err)
		}
	}
	// The kernel installs the local route of an IPv6 address from a work
	// queue, a moment after the address exists; until then packets to
	// it are not delivered locally. Wait for it (bounded).
	for i := 0; !strings.Contains(ipCmd(t, dev.nsName(), "-6", "route", "show", "table", "local"), "local fd00:99::1 "); i++ {
		if i == 1000 {
			t.Fatal("local route of fd00:99::1 never appeared")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func udpSocketInNS(t *testing.T, ns, network, laddr string) *net.UDPConn {
	t.Helper()
	var (
		c   *net.UDPConn
		err error
	)
	inNS(t, ns, func() {
		c, err = net.ListenUDP(network, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(laddr)))
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestTUNReadUDPFromKernel(t *testing.T) {
	requireRoot(t)
	ns := newNS(t)
	dev := createInNS(t, ns)
	setupPingable(t, dev)
	bufs, sizes := newBufs(dev.BatchSize(), Headroom+MaxPacketSize+Tailroom)

	for _, tc := range []struct{ net, src, dst string }{
		{"udp4", "10.99.0.1:0", "10.98.0.5:9999"},
		{"udp6", "[fd00:99::1]:0", "[fd00:98::5]:9999"},
	} {
		c := udpSocketInNS(t, ns, tc.net, tc.src)
		payload := []byte("hello through the tunnel " + tc.net)
		if _, err := c.WriteToUDPAddrPort(payload, netip.MustParseAddrPort(tc.dst)); err != nil {
			t.Fatal(err)
		}
		dst := netip.MustParseAddrPort(tc.dst)
		pkt, _ := readUntil(t, dev, bufs, sizes, func(p []byte) bool {
			udp := decodeUDP(p)
			return udp != nil && udp.DstPort == layers.UDPPort(dst.Port()) && bytes.Equal(udp.Payload, payload)
		})
		if pkt[0]>>4 != map[string]byte{"udp4": 4, "udp6": 6}[tc.net] {
			t.Fatalf("wrong IP version in %x", pkt[:1])
		}
	}
}

func decodeUDP(p []byte) *layers.UDP {
	var first gopacket.LayerType = layers.LayerTypeIPv4
	if len(p) > 0 && p[0]>>4 == 6 {
		first = layers.LayerTypeIPv6
	}
	pk := gopacket.NewPacket(p, first, gopacket.NoCopy)
	if l, ok := pk.Layer(layers.LayerTypeUDP).(*layers.UDP); ok {
		return l
	}
	return nil
}

func serialize(t *testing.T, ls ...gopacket.SerializableLayer) []byte {
	t.Helper()
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestTUNWriteEchoRequestGetsReply(t *testing.T) {
	requireRoot(t)
	ns := newNS(t)
	dev := createInNS(t, ns)
	setupPingable(t, dev)
	bufs, sizes := newBufs(dev.BatchSize(), Headroom+MaxPacketSize+Tailroom)

	// IPv4: 10.98.0.5 (behind the tunnel) pings 10.99.0.1 (the TUN's address).
	ip4 := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolICMPv4,
		SrcIP: net.ParseIP("10.98.0.5"), DstIP: net.ParseIP("10.99.0.1")}
	req4 := serialize(t, ip4, &layers.ICMPv4{TypeCode: layers.CreateICMPv4TypeCode(layers.ICMPv4TypeEchoRequest, 0), Id: 0x1234, Seq: 7},
		gopacket.Payload("ping4"))

	// IPv6: fd00:98::5 pings fd00:99::1.
	ip6 := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolICMPv6,
		SrcIP: net.ParseIP("fd00:98::5"), DstIP: net.ParseIP("fd00:99::1")}
	icmp6 := &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(layers.ICMPv6TypeEchoRequest, 0)}
	if err := icmp6.SetNetworkLayerForChecksum(ip6); err != nil {
		t.Fatal(err)
	}
	req6 := serialize(t, ip6, icmp6, &layers.ICMPv6Echo{Identifier: 0x4321, SeqNumber: 9}, gopacket.Payload("ping6"))

	// Write both in one batch, each at the Headroom offset.
	out := [][]byte{make([]byte, Headroom+len(req4)), make([]byte, Headroom+len(req6))}
	copy(out[0][Headroom:], req4)
	copy(out[1][Headroom:], req6)
	if _, err := dev.Write(out, Headroom); err != nil {
		t.Fatal(err)
	}
	got := map[int]bool{}
	for len(got) < 2 {
		readUntil(t, dev, bufs, sizes, func(p []byte) bool {
			t.Logf("read from TUN: %x", p) // shown only if the test fails
			pk := gopacket.NewPacket(p, map[bool]gopacket.LayerType{true: layers.LayerTypeIPv6, false: layers.LayerTypeIPv4}[p[0]>>4 == 6], gopacket.NoCopy)
			if e, ok := pk.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4); ok &&
				e.TypeCode.Type() == layers.ICMPv4TypeEchoReply && e.Id == 0x1234 && e.Seq == 7 && string(e.Payload) == "ping4" {
				got[4] = true
				return true
			}
			if e, ok := pk.Layer(layers.LayerTypeICMPv6Echo).(*layers.ICMPv6Echo); ok &&
				e.Identifier == 0x4321 && e.SeqNumber == 9 && string(e.Payload) == "ping6" &&
				pk.Layer(layers.LayerTypeICMPv6).(*layers.ICMPv6).TypeCode.Type() == layers.ICMPv6TypeEchoReply {
				got[6] = true
				return true
			}
			return false
		})
	}
}

// TestTUNUDPGSOSplit sends one UDP_SEGMENT super-datagram from the
// namespace into the TUN: with the TUN's UDP offload (Linux ≥ 6.2) the
// kernel hands it over unsegmented and our Read splits it into several
// packets in one batch.
func TestTUNUDPGSOSplit(t *testing.T) {
	requireRoot(t)
	ns := newNS(t)
	dev := createInNS(t, ns)
	setupPingable(t, dev)
	if dev.BatchSize() == 1 {
		t.Skip("TUN has no virtio-net offloads on this kernel; nothing to split")
	}
	bufs, sizes := newBufs(dev.BatchSize(), Headroom+dev.MTU()+Tailroom)
	c := udpSocketInNS(t, ns, "udp4", "10.99.0.1:0")
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	const seg, segs = 1000, 8
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT, seg)
	}); err != nil || serr != nil {
		t.Skipf("UDP_SEGMENT not available: %v %v", err, serr)
	}
	payload := bytes.Repeat([]byte("0123456789abcdef"), seg*segs/16)
	if _, err := c.WriteToUDPAddrPort(payload, netip.MustParseAddrPort("10.98.0.5:7777")); err != nil {
		t.Fatal(err)
	}
	var total, maxBatch int
	for total < segs {
		_, n := readUntil(t, dev, bufs, sizes, func(p []byte) bool {
			u := decodeUDP(p)
			return u != nil && u.DstPort == 7777 && len(u.Payload) == seg
		})
		total += n
		maxBatch = max(maxBatch, n)
	}
	t.Logf("%d segments, up to %d in one Read", total, maxBatch)
	if maxBatch < 2 {
		t.Fatalf("the super-datagram was not split by Read (max %d per batch): UDP GSO offload to the TUN is not in effect", maxBatch)
	}
}

// TestTUNWriteBatchCoalesced writes a batch of consecutive datagrams of
// one flow; the TUN coalesces them (GRO) into one super-packet, and the
// kernel must deliver every datagram intact and in order to the socket.
func TestTUNWriteBatchCoalesced(t *testing.T) {
	requireRoot(t)
	ns := newNS(t)
	dev := createInNS(t, ns)
	setupPingable(t, dev)
	c := udpSocketInNS(t, ns, "udp4", "10.99.0.1:6666")

	const count = 32
	out := make([][]byte, count)
	for i := range out {
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, Id: uint16(i),
			SrcIP: net.ParseIP("10.98.0.5"), DstIP: net.ParseIP("10.99.0.1")}
		udp := &layers.UDP{SrcPort: 5555, DstPort: 6666}
		if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		pkt := serialize(t, ip, udp, gopacket.Payload(bytes.Repeat([]byte{byte(i)}, 1200)))
		b := make([]byte, Headroom+MaxPacketSize+Tailroom)
		out[i] = b[:Headroom+copy(b[Headroom:], pkt)]
	}
	before := rxPackets(t, dev)
	if _, err := dev.Write(out, Headroom); err != nil {
		t.Fatal(err)
	}
	if got := rxPackets(t, dev) - before; got >= count {
		t.Fatalf("%d datagrams written as %d packets: GRO did not coalesce", count, got)
	} else {
		t.Logf("%d datagrams written as %d coalesced packets", count, got)
	}
	buf := make([]byte, 65536)
	for i := range count {
		if err := c.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
			t.Fatal(err)
		}
		n, _, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatalf("datagram %d: %v", i, err)
		}
		if n != 1200 || buf[0] != byte(i) || buf[n-1] != byte(i) {
			t.Fatalf("datagram %d: %d bytes starting %d", i, n, buf[0])
		}
	}
}

// TestTUNNonRootWithCapNetAdmin runs the create/address/route/close cycle
// as user nobody holding only CAP_NET_ADMIN (ambient), inside a namespace.
func TestTUNNonRootWithCapNetAdmin(t *testing.T) {
	if os.Getenv("IPSECGW_TUN_CHILD") == "1" {
		nonRootChild(t)
		return
	}
	requireRoot(t)
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("setpriv (util-linux) not installed")
	}
	ns := newNS(t)
	// The test binary lives in a root-only build directory; copy it where
	// nobody can execute it.
	dir, err := os.MkdirTemp("", "ipgwt-bin")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	bin := filepath.Join(dir, "tun.test")
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns,
		"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
		"--inh-caps=-all,+net_admin", "--ambient-caps=-all,+net_admin", "--bounding-set=-all,+net_admin",
		bin, "-test.run=^TestTUNNonRootWithCapNetAdmin$", "-test.v")
	cmd.Env = append(os.Environ(), "IPSECGW_TUN_CHILD=1", "IPSECGW_REQUIRE_INTEROP=")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "nonroot-child-ok") {
		t.Fatalf("child as nobody+CAP_NET_ADMIN failed: %v\n%s", err, out)
	}
}

func nonRootChild(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Fatal("child is still root; setpriv did not drop privileges")
	}
	dev, err := Create(Config{Name: "ipgwt%d"})
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.AddAddress(netip.MustParsePrefix("10.99.0.1/32")); err != nil {
		t.Fatal(err)
	}
	if err := dev.AddRoute(netip.MustParsePrefix("fd00:98::/64")); err != nil {
		t.Fatal(err)
	}
	if err := dev.AddRoute(netip.MustParsePrefix("10.98.0.0/24")); err != nil {
		t.Fatal(err)
	}
	if err := dev.Close(); err != nil {
		t.Fatal(err)
	}
	t.Logf("nonroot-child-ok uid=%d", os.Geteuid())
}

// TestTUNReadDrainsQueue sends small datagrams one by one, so each is
// its own packet in the TUN's queue, and expects one Read to return
// them all: a flood of small packets must cross the dataplane in
// batches, not one packet per batch.
func TestTUNReadDrainsQueue(t *testing.T) {
	requireRoot(t)
	ns := newNS(t)
	dev := createInNS(t, ns)
	setupPingable(t, dev)
	if dev.BatchSize() == 1 {
		t.Skip("TUN has no virtio-net offloads on this kernel: Read returns one packet")
	}
	bufs, sizes := newBufs(dev.BatchSize(), Headroom+dev.MTU()+Tailroom)
	c := udpSocketInNS(t, ns, "udp4", "10.99.0.1:0")
	const count = 20
	dst := netip.MustParseAddrPort("10.98.0.5:7778")
	for i := range count {
		if _, err := c.WriteToUDPAddrPort([]byte{byte(i), 'x'}, dst); err != nil {
			t.Fatal(err)
		}
	}
	// The datagrams are in the TUN's queue once the sends returned; the
	// reader may still see ones that were there before (IPv6 router
	// solicitations and the like), which readUntil skips.
	var got []byte
	for len(got) < count {
		_, n := readUntil(t, dev, bufs, sizes, func(p []byte) bool {
			u := decodeUDP(p)
			if u != nil && u.DstPort == 7778 && len(u.Payload) == 2 {
				got = append(got, u.Payload[0])
				return true
			}
			return false
		})
		if len(got) < count && n < 2 {
			t.Fatalf("Read returned %d of the %d queued datagrams in one batch", n, count)
		}
	}
	for i, b := range got {
		if int(b) != i {
			t.Fatalf("datagrams out of order: %v", got)
		}
	}
}
