package install

import (
	"testing"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/sad"
	"github.com/ipsecgw/ipsecgw/spd"
)

// TestRouteBasedConns: two route-based conns with identical 0.0.0.0/0
// selectors and a policy-based one. Each route-based conn's policies go
// into its interface's device policies, its SAs carry the interface ID,
// and no route goes on the main TUN; the policy-based conn is as before.
func TestRouteBasedConns(t *testing.T) {
	table := sad.NewTable(sad.Options{})
	defer table.Close()
	live := &spd.Live{}
	r := &recRouter{}
	ifaces := map[string]uint32{"tun1": 100, "tun2": 200}
	inst := New(table, live, Options{Router: r, Interface: func(c string) uint32 { return ifaces[c] }})
	p100 := inst.InterfacePolicies(100)
	for i, name := range []string{"tun1", "tun2"} {
		c := gcmChild(name, uint32(10+i), uint32(0x1000+i), uint32(0x2000+i))
		c.LocalTS, c.RemoteTS = []spd.TS{ts("0.0.0.0/0")}, []spd.TS{ts("0.0.0.0/0")}
		if err := inst.Install(c); err != nil {
			t.Fatal(err)
		}
	}
	if err := inst.Install(gcmChild("site", 30, 0x3000, 0x4000)); err != nil {
		t.Fatal(err)
	}
	if inst.InterfacePolicies(100) != p100 {
		t.Error("InterfacePolicies returned another Live for the same ID")
	}
	pkt := ipv4("10.1.0.2", "8.8.8.8")
	for id, policy := range map[uint32]uint32{100: 10, 200: 11} {
		res := inst.InterfacePolicies(id).Load().Outbound(pkt)
		if res.Action != spd.Protect || res.PolicyID != policy {
			t.Errorf("interface %d: %+v, want protect by policy %d", id, res, policy)
		}
	}
	if res := live.Load().Outbound(pkt); res.Status != spd.NoMatch {
		t.Errorf("main SPD decides route-based traffic: %+v", res)
	}
	if res := live.Load().Outbound(ipv4("10.1.0.2", "10.2.0.2")); res.PolicyID != 30 {
		t.Errorf("main SPD lost the policy-based conn: %+v", res)
	}
	if sa := table.Inbound(0x1001); sa == nil || sa.Interface() != 200 {
		t.Errorf("tun2's inbound SA: %v", sa)
	}
	if sa := table.Inbound(0x3000); sa == nil || sa.Interface() != 0 {
		t.Errorf("site's inbound SA: %v", sa)
	}
	if len(r.routes) != 1 || r.routes[0].String() != "10.2.0.0/24" {
		t.Errorf("TUN routes %v: only the policy-based conn's", r.routes)
	}

	// Removing tun1 empties interface 100's policies only.
	if err := inst.Remove("tun1", 0x1000, 0x2000); err != nil {
		t.Fatal(err)
	}
	if res := p100.Load().Outbound(pkt); res.Status != spd.NoMatch {
		t.Errorf("interface 100 after its conn went: %+v", res)
	}
	if res := inst.InterfacePolicies(200).Load().Outbound(pkt); res.PolicyID != 11 {
		t.Errorf("interface 200 after tun1 went: %+v", res)
	}

	// A trap of a route-based conn goes into its device's policies too.
	c := config.Conn{Name: "tun1", Local: config.End{Subnets: []spd.TS{ts("0.0.0.0/0")}}, Remote: config.End{Subnets: []spd.TS{ts("0.0.0.0/0")}}}
	if err := inst.InstallTrap(c); err != nil {
		t.Fatal(err)
	}
	if res := p100.Load().Outbound(pkt); res.Action != spd.Trap {
		t.Errorf("trap on interface 100: %+v", res)
	}
	if len(r.routes) != 1 {
		t.Errorf("a route-based trap added TUN routes: %v", r.routes)
	}
}

// TestPriorityFailover: two policy-based conns with identical selectors
// to two peers. The one with the lower priority= carries the traffic
// while it has a CHILD SA; when its SA goes the other's policy decides,
// and it takes over again when it is back. A conn without priority=
// comes after both.
func TestPriorityFailover(t *testing.T) {
	table := sad.NewTable(sad.Options{})
	defer table.Close()
	live := &spd.Live{}
	prio := map[string]uint32{"primary": 1, "secondary": 2}
	inst := New(table, live, Options{Priority: func(c string) uint32 { return prio[c] }})
	pkt := ipv4("10.1.0.2", "10.2.0.2")
	verdict := func() uint32 { return live.Load().Outbound(pkt).PolicyID }
	install := func(conn string, reqID, spi uint32) {
		t.Helper()
		if err := inst.Install(gcmChild(conn, reqID, spi, spi+0x100)); err != nil {
			t.Fatal(err)
		}
	}
	install("unset", 30, 0x3000)
	install("secondary", 20, 0x2000)
	if p := verdict(); p != 20 {
		t.Errorf("secondary vs unset: policy %d decides", p)
	}
	install("primary", 10, 0x1000)
	if p := verdict(); p != 10 {
		t.Errorf("all three up: policy %d decides, want the primary's 10", p)
	}
	if err := inst.Remove("primary", 0x1000, 0x1100); err != nil {
		t.Fatal(err)
	}
	if p := verdict(); p != 20 {
		t.Errorf("primary gone: policy %d decides, want the secondary's 20", p)
	}
	install("primary", 10, 0x1001)
	if p := verdict(); p != 10 {
		t.Errorf("primary back: policy %d decides, want 10 (fail-back)", p)
	}
	// A trap of the preferred conn (auto=route, dpdaction=hold) sorts
	// right after its own Protect rules, so before the secondary's SA:
	// traffic then waits for the preferred tunnel. Failover wants
	// dpdaction=restart, which installs no trap.
	if err := inst.Remove("primary", 0x1001, 0x1101); err != nil {
		t.Fatal(err)
	}
	c := config.Conn{Name: "primary", Local: config.End{Subnets: []spd.TS{ts("10.1.0.0/24")}}, Remote: config.End{Subnets: []spd.TS{ts("10.2.0.0/24")}}}
	if err := inst.InstallTrap(c); err != nil {
		t.Fatal(err)
	}
	if res := live.Load().Outbound(pkt); res.Action != spd.Trap {
		t.Errorf("primary's trap with priority 1 vs secondary's SA with 2: %+v", res)
	}
}

// TestEqualPriorityStays: with the same priority (or none), of two conns
// with identical selectors the one up the longest carries the traffic,
// also after the other comes back: failover without fail-back. A rekey
// of the active conn does not move the traffic.
func TestEqualPriorityStays(t *testing.T) {
	table := sad.NewTable(sad.Options{})
	defer table.Close()
	live := &spd.Live{}
	inst := New(table, live, Options{})
	verdict := func() uint32 { return live.Load().Outbound(ipv4("10.1.0.2", "10.2.0.2")).PolicyID }
	install := func(conn string, reqID, spi uint32) {
		t.Helper()
		if err := inst.Install(gcmChild(conn, reqID, spi, spi+0x100)); err != nil {
			t.Fatal(err)
		}
	}
	// b's SPI sorts first, yet a came up first.
	install("a", 10, 0x9000)
	install("b", 20, 0x1000)
	if p := verdict(); p != 10 {
		t.Fatalf("both up: policy %d, want a's 10 (up first)", p)
	}
	if err := inst.Remove("a", 0x9000, 0x9100); err != nil {
		t.Fatal(err)
	}
	if p := verdict(); p != 20 {
		t.Fatalf("a gone: policy %d, want b's 20", p)
	}
	install("a", 10, 0x0500)
	if p := verdict(); p != 20 {
		t.Errorf("a back: policy %d, want b's 20 (stay)", p)
	}
	// b rekeys (new SA first, then the old one goes): b stays in front.
	install("b", 20, 0x1001)
	if err := inst.Remove("b", 0x1000, 0x1100); err != nil {
		t.Fatal(err)
	}
	if p := verdict(); p != 20 {
		t.Errorf("after b's rekey: policy %d, want b's 20", p)
	}
}
