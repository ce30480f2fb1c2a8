package install

import (
	"bytes"
	"net/netip"
	"slices"
	"testing"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike"
	"github.com/ipsecgw/ipsecgw/sad"
	"github.com/ipsecgw/ipsecgw/spd"
	"github.com/ipsecgw/ipsecgw/transform"
)

type recRouter struct{ routes []netip.Prefix }

func (r *recRouter) AddRoute(p netip.Prefix) error {
	r.routes = append(r.routes, p)
	return nil
}

func (r *recRouter) RemoveRoute(p netip.Prefix) error {
	i := slices.Index(r.routes, p)
	if i >= 0 {
		r.routes = slices.Delete(r.routes, i, i+1)
	}
	return nil
}

func ts(s string) spd.TS { return spd.PrefixTS(netip.MustParsePrefix(s)) }

func gcmChild(conn string, reqID, in, out uint32) ike.ChildSA {
	key := func(b byte) []byte { return bytes.Repeat([]byte{b}, 20) } // AES-128 key + 4-byte salt
	return ike.ChildSA{
		Conn: conn, ReqID: reqID, InSPI: in, OutSPI: out, Mode: config.ModeTunnel,
		Encr:      transform.Transform{Type: transform.TypeENCR, ID: transform.EncrAESGCM16, KeyLen: 128},
		Integ:     transform.Transform{Type: transform.TypeINTEG, ID: transform.IntegNone},
		InEncrKey: key(1), OutEncrKey: key(2),
		Local: netip.MustParseAddrPort("198.51.100.1:4500"), Remote: netip.MustParseAddrPort("198.51.100.2:4500"),
		Encap:   true,
		LocalTS: []spd.TS{ts("10.1.0.0/24")}, RemoteTS: []spd.TS{ts("10.2.0.0/24")},
		ReplayWindow: -1,
	}
}

// ipv4 builds a minimal IPv4/ICMP header from src to dst.
func ipv4(src, dst string) []byte {
	p := make([]byte, 28)
	p[0], p[3], p[8], p[9] = 0x45, 28, 64, 1
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(p[12:], s[:])
	copy(p[16:], d[:])
	return p
}

func TestInstallerInstallAndRemove(t *testing.T) {
	table := sad.NewTable(sad.Options{})
	defer table.Close()
	live := &spd.Live{}
	r := &recRouter{}
	inst := New(table, live, Options{Router: r, ReplayWindow: 1024})

	c := gcmChild("net", 7, 0x1000, 0x2000)
	inKey := c.InEncrKey
	if err := inst.Install(c); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(inKey, make([]byte, len(inKey))) {
		t.Error("installer did not wipe the key slices it owns")
	}
	if sa := table.Inbound(0x1000); sa == nil || sa.Dir() != sad.Inbound || !sa.UDPEncap() {
		t.Fatalf("inbound SA not installed: %v", sa)
	}
	if sa := table.Outbound(7); sa == nil || sa.SPI() != 0x2000 {
		t.Fatalf("outbound SA of policy 7: %v", sa)
	}
	res := live.Load().Outbound(ipv4("10.1.0.2", "10.2.0.2"))
	if res.Action != spd.Protect || res.PolicyID != 7 {
		t.Errorf("SPD verdict for 10.1.0.2 -> 10.2.0.2: %+v", res)
	}
	if res := live.Load().Outbound(ipv4("10.1.0.2", "10.3.0.2")); res.Action != spd.Drop {
		t.Errorf("traffic outside the selectors: %+v", res)
	}
	if !slices.Equal(r.routes, []netip.Prefix{netip.MustParsePrefix("10.2.0.0/24")}) {
		t.Errorf("routes %v", r.routes)
	}
	if _, _, ok := inst.ChildCounters(0x1000); !ok {
		t.Error("no counters for the installed CHILD SA")
	}

	if err := inst.Remove("net", 0x1000, 0x2000); err != nil {
		t.Fatal(err)
	}
	if table.Inbound(0x1000) != nil || table.Outbound(7) != nil {
		t.Error("SAs still installed after Remove")
	}
	if live.Load().Len() != 0 || len(r.routes) != 0 {
		t.Errorf("policies (%d) or routes (%v) left after Remove", live.Load().Len(), r.routes)
	}
	if err := inst.Remove("net", 0x1000, 0x2000); err == nil {
		t.Error("removing twice succeeded")
	}
}

// TestInstallerRekey: a second pair for the same reqid takes over the
// outbound direction at once, the policy and the route stay until the last
// pair goes, and the old inbound SA lingers rather than vanishing.
func TestInstallerRekey(t *testing.T) {
	table := sad.NewTable(sad.Options{})
	defer table.Close()
	live := &spd.Live{}
	r := &recRouter{}
	inst := New(table, live, Options{Router: r, ReplayWindow: 1024})
	if err := inst.Install(gcmChild("net", 7, 0x1000, 0x2000)); err != nil {
		t.Fatal(err)
	}
	if err := inst.Install(gcmChild("net", 7, 0x1001, 0x2001)); err != nil {
		t.Fatal(err)
	}
	if sa := table.Outbound(7); sa == nil || sa.SPI() != 0x2001 {
		t.Fatalf("outbound after rekey: %v", sa)
	}
	if err := inst.Remove("net", 0x1000, 0x2000); err != nil {
		t.Fatal(err)
	}
	if sa := table.Outbound(7); sa == nil || sa.SPI() != 0x2001 {
		t.Fatalf("removing the old pair took the new outbound SA: %v", sa)
	}
	if table.Inbound(0x1000) == nil {
		t.Error("old inbound SA removed at once instead of lingering")
	}
	if res := live.Load().Outbound(ipv4("10.1.0.2", "10.2.0.2")); res.Action != spd.Protect {
		t.Errorf("policy gone while the new pair is installed: %+v", res)
	}
	if len(r.routes) != 1 {
		t.Errorf("routes %v", r.routes)
	}
	inst.RemoveAll()
	if in, out := table.Len(); out != 0 || table.Inbound(0x1001) != nil {
		t.Errorf("after RemoveAll: %d in, %d out", in, out)
	}
	if len(r.routes) != 0 || live.Load().Len() != 0 {
		t.Errorf("after RemoveAll: routes %v, %d rules", r.routes, live.Load().Len())
	}
}

func TestInstallerTrap(t *testing.T) {
	table := sad.NewTable(sad.Options{})
	defer table.Close()
	live := &spd.Live{}
	r := &recRouter{}
	var released []uint32
	inst := New(table, live, Options{Router: r, ReplayWindow: 1024, OnInstalled: func(p uint32) { released = append(released, p) }})
	conn := config.Conn{Name: "trap", Local: config.End{Subnets: []spd.TS{ts("10.1.0.0/24")}},
		Remote: config.End{Subnets: []spd.TS{ts("10.2.0.0/24")}}}
	if err := inst.InstallTrap(conn); err != nil {
		t.Fatal(err)
	}
	res := live.Load().Outbound(ipv4("10.1.0.2", "10.2.0.2"))
	if res.Action != spd.Trap {
		t.Fatalf("verdict before the SA: %+v", res)
	}
	if name, ok := inst.TrapConn(res.PolicyID); !ok || name != "trap" {
		t.Errorf("TrapConn(%d) = %q, %v", res.PolicyID, name, ok)
	}
	if rt := table.Egress(res); rt.SA != nil || rt.Drop != sad.DropNoSA {
		t.Errorf("egress before the SA: %+v", rt)
	}
	if err := inst.Install(gcmChild("trap", 3, 0x1000, 0x2000)); err != nil {
		t.Fatal(err)
	}
	res = live.Load().Outbound(ipv4("10.1.0.2", "10.2.0.2"))
	if rt := table.Egress(res); rt.SA == nil || rt.SA.SPI() != 0x2000 {
		t.Errorf("egress after the SA: %+v (verdict %+v)", rt, res)
	}
	if !slices.Equal(released, []uint32{res.PolicyID}) {
		t.Errorf("held packets released for %v, want [%d]", released, res.PolicyID)
	}
	if err := inst.Remove("trap", 0x1000, 0x2000); err != nil {
		t.Fatal(err)
	}
	if res := live.Load().Outbound(ipv4("10.1.0.2", "10.2.0.2")); res.Action != spd.Trap {
		t.Errorf("trap gone after the SA was removed: %+v", res)
	}
	if len(r.routes) != 1 {
		t.Errorf("route of the trap: %v", r.routes)
	}
	if err := inst.RemoveTrap("trap"); err != nil {
		t.Fatal(err)
	}
	if len(r.routes) != 0 || live.Load().Len() != 0 {
		t.Errorf("after RemoveTrap: routes %v, %d rules", r.routes, live.Load().Len())
	}
}

// TestChildRoutesFollowRemoteSelectors checks that a CHILD SA routes every
// remote selector's prefixes into the TUN and takes exactly those away
// again, also where its record cannot rebuild them from its SAs'
// selectors: a remote selector no local one pairs with, and two remote
// selectors with one range.
func TestChildRoutesFollowRemoteSelectors(t *testing.T) {
	tcp := ts("10.2.0.0/24")
	tcp.Protocol = 6
	udp := ts("10.2.0.0/24")
	udp.Protocol = 17
	odd := spd.TS{Range: spd.AddrRange{From: netip.MustParseAddr("10.4.0.0"), To: netip.MustParseAddr("10.4.0.2")}, Ports: spd.AllPorts}
	for _, tc := range []struct {
		name          string
		local, remote []spd.TS
		want          []string
	}{
		{"paired", []spd.TS{ts("10.1.0.0/24"), ts("10.3.0.0/24")}, []spd.TS{ts("10.2.0.0/24"), odd}, []string{"10.2.0.0/24", "10.4.0.0/31", "10.4.0.2/32"}},
		{"unpaired family", []spd.TS{ts("10.1.0.0/24")}, []spd.TS{ts("10.2.0.0/24"), ts("fd00:2::/64")}, []string{"10.2.0.0/24", "fd00:2::/64"}},
		{"one range twice", []spd.TS{ts("10.1.0.0/24")}, []spd.TS{tcp, udp}, []string{"10.2.0.0/24", "10.2.0.0/24"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			table := sad.NewTable(sad.Options{})
			defer table.Close()
			r := &recRouter{}
			inst := New(table, &spd.Live{}, Options{Router: r, ReplayWindow: 1024})
			c := gcmChild("net", 7, 0x1000, 0x2000)
			c.LocalTS, c.RemoteTS = tc.local, tc.remote
			if err := inst.Install(c); err != nil {
				t.Fatal(err)
			}
			var want []netip.Prefix
			for _, p := range tc.want {
				want = append(want, netip.MustParsePrefix(p))
			}
			// The router sees a prefix once, however many users it has.
			if got, w := r.routes, slices.Compact(slices.Clone(want)); !slices.Equal(got, w) {
				t.Errorf("routes %v, want %v", got, w)
			}
			if got := inst.children[0x1000].routeList(); !slices.Equal(got, want) {
				t.Errorf("the record's routes %v, want %v", got, want)
			}
			if err := inst.Remove("net", 0x1000, 0x2000); err != nil {
				t.Fatal(err)
			}
			if len(r.routes) != 0 || len(inst.routes) != 0 {
				t.Errorf("routes %v (counted %v) left after Remove", r.routes, inst.routes)
			}
		})
	}
}
