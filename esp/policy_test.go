package esp

import (
	"sync"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/sad"
	"github.com/ipsecgw/ipsecgw/spd"
)

func selector(local, remote string) spd.Selector {
	return anyPorts(spd.Selector{Local: spd.MustPrefixRange(local), Remote: spd.MustPrefixRange(remote)})
}

// waitStat polls the dataplane counters until cond holds (hang guard only).
func waitStat(t *testing.T, d *Dataplane, what string, cond func(Stats) bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond(d.Stats()) {
		if time.Now().After(deadline) {
			t.Fatalf("%s: stats %+v", what, d.Stats())
		}
		time.Sleep(time.Millisecond)
	}
}

// TestPolicyActions checks every SPD verdict on the outbound path: protect
// (also for IPv6 inner packets), bypass only through the Clear hook, drop,
// no matching rule, protect without SA, trap with a bounded hold queue
// released once IKE installs the SA, and an atomic SPD swap.
func TestPolicyActions(t *testing.T) {
	s := allSuites(t)[0]
	var g1, g2 *gateway
	g1 = newGateway(t, "gw1", "10.1.0.0/16", "10.2.0.0/16", gw1Addr, gw2Addr, &g2, 2)
	g2 = newGateway(t, "gw2", "10.2.0.0/16", "10.1.0.0/16", gw2Addr, gw1Addr, &g1, 2)
	var (
		mu      sync.Mutex
		clear   [][]byte
		trapped []uint32
	)
	g1.dp.cfg.Clear = func(p [][]byte) {
		mu.Lock()
		defer mu.Unlock()
		for _, b := range p {
			clear = append(clear, append([]byte(nil), b...))
		}
	}
	g1.dp.cfg.OnTrap = func(pid uint32) {
		mu.Lock()
		defer mu.Unlock()
		trapped = append(trapped, pid)
	}
	v6 := selector("fd00:1::/64", "fd00:2::/64")
	rules := []spd.Rule{
		{Selector: g1.sel, Action: spd.Protect, PolicyID: 1},
		{Selector: v6, Action: spd.Protect, PolicyID: 1},
		{Selector: selector("10.1.0.0/16", "10.3.0.0/24"), Action: spd.Bypass},
		{Selector: selector("10.1.0.0/16", "10.4.0.0/24"), Action: spd.Drop},
		{Selector: selector("10.1.0.0/16", "10.5.0.0/24"), Action: spd.Trap, PolicyID: 5},
		{Selector: selector("10.1.0.0/16", "10.6.0.0/24"), Action: spd.Protect, PolicyID: 6},
	}
	tab, err := spd.Compile(rules)
	if err != nil {
		t.Fatal(err)
	}
	g1.spd.Store(tab)
	// The SA of policy 1 covers IPv4 and IPv6 inner traffic.
	out, err := sad.New(sad.Config{SPI: 0x1001, Dir: sad.Outbound, Local: gw1Addr, Remote: gw2Addr, UDPEncap: true,
		Selectors: []spd.Selector{g1.sel, v6}, Cipher: s.protector(t), PolicyID: 1})
	if err != nil {
		t.Fatal(err)
	}
	in, err := sad.New(sad.Config{SPI: 0x1001, Dir: sad.Inbound, Local: gw2Addr, Remote: gw1Addr, UDPEncap: true,
		Selectors: []spd.Selector{g2.sel, selector("fd00:2::/64", "fd00:1::/64")}, Cipher: s.protector(t), PolicyID: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := g1.sad.InstallOutbound(out); err != nil {
		t.Fatal(err)
	}
	if err := g2.sad.InstallInbound(in); err != nil {
		t.Fatal(err)
	}
	g1.dp.Start()
	g2.dp.Start()
	t.Cleanup(func() {
		g1.dp.Close()
		g2.dp.Close()
	})

	inject(t, g1.tun, ipv4Packet(80, "10.1.0.2", "10.2.0.2", 1))
	inject(t, g1.tun, ipv6Packet(90, "fd00:1::2", "fd00:2::2"))
	got := receive(t, g2.tun, 2)
	if got[0][0]>>4 != 4 || got[1][0]>>4 != 6 || len(got[1]) != 90 {
		t.Fatalf("protected packets: %x / %x", got[0][:1], got[1][:1])
	}

	inject(t, g1.tun, ipv4Packet(70, "10.1.0.2", "10.3.0.2", 2)) // bypass
	inject(t, g1.tun, ipv4Packet(70, "10.1.0.2", "10.4.0.2", 3)) // drop
	inject(t, g1.tun, ipv4Packet(70, "10.1.0.2", "10.9.0.2", 4)) // no rule
	inject(t, g1.tun, ipv4Packet(70, "10.1.0.2", "10.6.0.2", 5)) // protect, no SA
	inject(t, g1.tun, []byte{0x45, 0, 0})                        // malformed
	waitStat(t, g1.dp, "bypass and drops", func(s Stats) bool {
		return s.Bypassed == 1 && s.Drops[sad.DropPolicy] == 2 && s.Drops[sad.DropNoSA] == 1 && s.Drops[sad.DropMalformed] == 1
	})
	mu.Lock()
	if len(clear) != 1 || clear[0][19] != 2 {
		t.Fatalf("bypassed: %d packets", len(clear))
	}
	mu.Unlock()

	// Trap: 6 packets, 4 held (HoldPackets default), 2 dropped; one OnTrap.
	for i := range 6 {
		inject(t, g1.tun, ipv4Packet(70, "10.1.0.2", "10.5.0.2", uint16(100+i)))
	}
	waitStat(t, g1.dp, "trap hold", func(s Stats) bool { return s.Held == 4 && s.Drops[sad.DropQueueFull] == 2 })
	mu.Lock()
	if len(trapped) != 1 || trapped[0] != 5 {
		t.Fatalf("OnTrap calls: %v", trapped)
	}
	mu.Unlock()
	// IKE installs the SA of policy 5 and releases the held packets.
	sel5 := selector("10.1.0.0/16", "10.5.0.0/24")
	out5, err := sad.New(sad.Config{SPI: 0x5005, Dir: sad.Outbound, Local: gw1Addr, Remote: gw2Addr, UDPEncap: true,
		Selectors: []spd.Selector{sel5}, Cipher: s.protector(t), PolicyID: 5})
	if err != nil {
		t.Fatal(err)
	}
	in5, err := sad.New(sad.Config{SPI: 0x5005, Dir: sad.Inbound, Local: gw2Addr, Remote: gw1Addr, UDPEncap: true,
		Selectors: []spd.Selector{selector("10.5.0.0/24", "10.1.0.0/16")}, Cipher: s.protector(t), PolicyID: 5})
	if err != nil {
		t.Fatal(err)
	}
	if err := g2.sad.InstallInbound(in5); err != nil {
		t.Fatal(err)
	}
	if err := g1.sad.InstallOutbound(out5); err != nil {
		t.Fatal(err)
	}
	g1.dp.ReleaseHeld(5, newMemSender(func() *Dataplane { return g2.dp }, gw1Addr, 8))
	held := receive(t, g2.tun, 4)
	for i, p := range held {
		if id := int(p[4])<<8 | int(p[5]); id != 100+i {
			t.Fatalf("held packet %d has id %d", i, id)
		}
	}

	// Swap the SPD: without the protect rule, 10.2/16 traffic is dropped.
	tab2, err := spd.Compile(rules[2:])
	if err != nil {
		t.Fatal(err)
	}
	g1.spd.Store(tab2)
	before := g1.dp.Stats().Drops[sad.DropPolicy]
	inject(t, g1.tun, ipv4Packet(80, "10.1.0.2", "10.2.0.2", 9))
	waitStat(t, g1.dp, "after SPD swap", func(s Stats) bool { return s.Drops[sad.DropPolicy] == before+1 })
	if st := g2.dp.Stats(); st.RxPackets != 6 {
		t.Fatalf("gw2 received %d packets, want 6", st.RxPackets)
	}
}

// TestTrapHoldExpires: held packets are dropped as "no SA" when IKE does
// not deliver an SA within HoldTime.
func TestTrapHoldExpires(t *testing.T) {
	var g1, g2 *gateway
	g1 = newGateway(t, "gw1", "10.1.0.0/16", "10.2.0.0/16", gw1Addr, gw2Addr, &g2, 1)
	g2 = newGateway(t, "gw2", "10.2.0.0/16", "10.1.0.0/16", gw2Addr, gw1Addr, &g1, 1)
	tab, err := spd.Compile([]spd.Rule{{Selector: g1.sel, Action: spd.Trap, PolicyID: 1}})
	if err != nil {
		t.Fatal(err)
	}
	g1.spd.Store(tab)
	g1.dp.cfg.HoldTime = 20 * time.Millisecond
	g1.dp.Start()
	g2.dp.Start()
	t.Cleanup(func() {
		g1.dp.Close()
		g2.dp.Close()
	})
	inject(t, g1.tun, ipv4Packet(80, "10.1.0.2", "10.2.0.2", 1))
	inject(t, g1.tun, ipv4Packet(80, "10.1.0.2", "10.2.0.2", 2))
	waitStat(t, g1.dp, "hold expiry", func(s Stats) bool { return s.Held == 2 && s.Drops[sad.DropNoSA] == 2 })
}
