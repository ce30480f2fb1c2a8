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
