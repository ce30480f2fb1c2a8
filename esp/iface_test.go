package esp

import (
	"net/netip"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/esp/conn"
	"github.com/ipsecgw/ipsecgw/sad"
	"github.com/ipsecgw/ipsecgw/spd"
	"github.com/ipsecgw/ipsecgw/tun"
)

var everything = anyPorts(spd.Selector{Local: spd.MustPrefixRange("0.0.0.0/0"), Remote: spd.MustPrefixRange("0.0.0.0/0")})

// routedSPD is the policy of a route-based conn's device: everything the
// host routes into it goes out through the conn's SA.
func routedSPD(t testing.TB, policy uint32) *spd.Live {
	t.Helper()
	tab, err := spd.Compile([]spd.Rule{{Selector: everything, Action: spd.Protect, PolicyID: policy}})
	if err != nil {
		t.Fatal(err)
	}
	l := &spd.Live{}
	l.Store(tab)
	return l
}

func newSA(t testing.TB, s suite, spi uint32, dir sad.Direction, local, remote netip.AddrPort, policy, iface uint32, sel spd.Selector) *sad.SA {
	t.Helper()
	sa, err := sad.New(sad.Config{SPI: spi, Dir: dir, Local: local, Remote: remote, UDPEncap: true,
		Selectors: []spd.Selector{sel}, Cipher: s.protector(t), PolicyID: policy, Interface: iface})
	if err != nil {
		t.Fatal(err)
	}
	return sa
}

// TestRoutedInterfaces: gw1 has two route-based conns with identical
// 0.0.0.0/0 selectors, each on its own device (interface IDs 100 and
// 200) and SA; which device a packet is routed into decides the SA, and
// what the peer sends back on an SA comes out of that SA's device, not
// the main TUN. A removed device's packets are dropped and counted.
func TestRoutedInterfaces(t *testing.T) {
	s := allSuites(t)[0]
	var g1, g2 *gateway
	g1 = newGateway(t, "gw1", "10.1.0.0/16", "10.2.0.0/16", gw1Addr, gw2Addr, &g2, 1)
	g2 = newGateway(t, "gw2", "10.2.0.0/16", "10.1.0.0/16", gw2Addr, gw1Addr, &g1, 1)
	g1.spd.Store(nil) // gw1's main TUN protects nothing: the devices do
	devA, devB := tun.NewFake("ipsec100", 1400, 32, 64), tun.NewFake("ipsec200", 1400, 32, 64)
	if err := g1.dp.AddInterface(100, devA, routedSPD(t, 100)); err != nil {
		t.Fatal(err)
	}
	if err := g1.dp.AddInterface(200, devB, routedSPD(t, 200)); err != nil {
		t.Fatal(err)
	}
	if err := g1.dp.AddInterface(200, tun.NewFake("dup", 1400, 32, 1), routedSPD(t, 200)); err == nil {
		t.Error("a second device for interface ID 200 was accepted")
	}
	// gw1 → gw2 on 0x100 (policy 100) and 0x200 (policy 200); gw2 → gw1
	// on 0x300, whose inbound SA at gw1 belongs to interface 200.
	for _, sa := range []*sad.SA{
		newSA(t, s, 0x100, sad.Outbound, gw1Addr, gw2Addr, 100, 100, everything),
		newSA(t, s, 0x200, sad.Outbound, gw1Addr, gw2Addr, 200, 200, everything),
	} {
		if err := g1.sad.InstallOutbound(sa); err != nil {
			t.Fatal(err)
		}
	}
	for _, sa := range []*sad.SA{
		newSA(t, s, 0x100, sad.Inbound, gw2Addr, gw1Addr, 1, 0, everything),
		newSA(t, s, 0x200, sad.Inbound, gw2Addr, gw1Addr, 1, 0, everything),
	} {
		if err := g2.sad.InstallInbound(sa); err != nil {
			t.Fatal(err)
		}
	}
	if err := g2.sad.InstallOutbound(newSA(t, s, 0x300, sad.Outbound, gw2Addr, gw1Addr, 1, 0, g2.sel)); err != nil {
		t.Fatal(err)
	}
	if err := g1.sad.InstallInbound(newSA(t, s, 0x300, sad.Inbound, gw1Addr, gw2Addr, 200, 200, everything)); err != nil {
		t.Fatal(err)
	}
	g1.dp.Start()
	g2.dp.Start()
	defer g2.dp.Close()

	counted := func(spi uint32) uint64 {
		return g2.sad.Inbound(spi).Stats().Packets
	}
	inject(t, devA, ipv4Packet(100, "10.1.0.2", "10.2.0.2", 1))
	receive(t, g2.tun, 1)
	inject(t, devB, ipv4Packet(100, "10.1.0.2", "10.2.0.2", 2))
	receive(t, g2.tun, 1)
	if a, b := counted(0x100), counted(0x200); a != 1 || b != 1 {
		t.Errorf("SA 0x100 carried %d packets, 0x200 %d: want one each", a, b)
	}

	inject(t, g2.tun, ipv4Packet(100, "10.2.0.2", "10.1.0.2", 3))
	receive(t, devB, 1)
	select {
	case p := <-g1.tun.Written():
		t.Errorf("a route-based SA's packet came out of the main TUN: % x", p[:20])
	case p := <-devA.Written():
		t.Errorf("interface 200's packet came out of interface 100: % x", p[:20])
	case <-time.After(50 * time.Millisecond):
	}

	if err := g1.dp.RemoveInterface(200); err != nil {
		t.Fatal(err)
	}
	before := g1.dp.Stats().Drops[sad.DropPolicy]
	inject(t, g2.tun, ipv4Packet(100, "10.2.0.2", "10.1.0.2", 4))
	deadline := time.Now().Add(20 * time.Second) // a hang guard, as receive's
	for g1.dp.Stats().Drops[sad.DropPolicy] == before {
		if time.Now().After(deadline) {
			t.Fatal("a packet for a removed interface was not counted as dropped")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, ok := g1.dp.Interface(200); ok {
		t.Error("interface 200 still listed")
	}
	if err := g1.dp.Close(); err != nil {
		t.Fatal(err)
	}
	// Close closed the remaining device too.
	if _, err := devA.Read(make([][]byte, 1), make([]int, 1), 0); err == nil {
		t.Error("interface 100's device still open after Close")
	}
}

// TestRoutedInboundAllocs: writing a route-based SA's packets to its
// device allocates nothing either.
func TestRoutedInboundAllocs(t *testing.T) {
	skipUnderRace(t)
	s := allSuites(t)[0]
	const batch, runs = 32, 20
	out := newSA(t, s, 0x5353, sad.Outbound, gw1Addr, gw2Addr, 1, 0, everything)
	in := newSA(t, s, 0x5353, sad.Inbound, gw2Addr, gw1Addr, 7, 7, everything)
	rt := sad.NewTable(sad.Options{})
	if err := rt.InstallInbound(in); err != nil {
		t.Fatal(err)
	}
	main := &nullTUN{Device: tun.NewFake("main", 1400, batch, 1)}
	routed := &nullTUN{Device: tun.NewFake("ipsec7", 1400, batch, 1)}
	rd, err := New(Config{TUN: main, SAD: rt, SPD: &spd.Live{}, Workers: 1, InBatch: batch, NewSender: func() Sender { return &countSender{} }})
	if err != nil {
		t.Fatal(err)
	}
	if err := rd.AddInterface(7, routed, routedSPD(t, 7)); err != nil {
		t.Fatal(err)
	}
	rd.started.Store(true) // drive it by hand, no goroutines
	pkts := make([]conn.ESPPacket, batch)
	for i := range pkts {
		pkts[i].Buf = make([]byte, conn.ReadOffset+2048)
	}
	work := make([]byte, tun.Headroom+2048)
	if a := testing.AllocsPerRun(runs, func() {
		for i := range pkts {
			copy(work[tun.Headroom:], ipv4HeaderOnly[:])
			_, p, r := Seal(out, work, tun.Headroom, len(ipv4HeaderOnly))
			if r != sad.NotDropped {
				t.Fatal(r)
			}
			pkts[i].Off, pkts[i].Len = conn.ReadOffset, copy(pkts[i].Buf[conn.ReadOffset:], p)
		}
		rd.HandleESP(pkts)
		runQueuedOpen(rd)
		ie := <-rd.inQ
		rd.writeBatch(ie)
		rd.inFree <- ie
	}); a != 0 {
		t.Fatalf("routed inbound: %v allocations per batch of %d", a, batch)
	}
	if routed.written != batch*(runs+1) || main.written != 0 {
		t.Fatalf("written: routed device %d, main TUN %d packets; drops %v", routed.written, main.written, rd.Stats().Drops)
	}
}
