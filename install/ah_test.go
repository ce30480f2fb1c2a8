package install

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike"
	"github.com/ipsecgw/ipsecgw/sad"
	"github.com/ipsecgw/ipsecgw/spd"
	"github.com/ipsecgw/ipsecgw/transform"
)

// TestInstallAH: an AH CHILD SA becomes a pair of AH SAs with
// integrity-only protectors, never UDP-encapsulated, and is removed like
// an ESP one.
func TestInstallAH(t *testing.T) {
	table := sad.NewTable(sad.Options{})
	defer table.Close()
	inst := New(table, &spd.Live{}, Options{Router: &recRouter{}})
	c := gcmChild("net", 7, 0x1000, 0x2000)
	c.Protocol = ike.ProtoAH
	c.Encr, c.InEncrKey, c.OutEncrKey = transform.Transform{}, nil, nil
	c.Integ = transform.Transform{Type: transform.TypeINTEG, ID: transform.IntegHMACSHA2_256_128}
	c.InIntegKey, c.OutIntegKey = bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	if err := inst.Install(c); err != nil {
		t.Fatal(err)
	}
	in, out := table.Inbound(0x1000), table.Outbound(7)
	if in == nil || out == nil {
		t.Fatal("AH SAs not installed")
	}
	for _, sa := range []*sad.SA{in, out} {
		if sa.Proto() != sad.AH || sa.UDPEncap() || sa.Cipher().ICVSize() != 16 || sa.Cipher().IVSize() != 0 {
			t.Errorf("%v: proto %v encap %v ICV %d", sa, sa.Proto(), sa.UDPEncap(), sa.Cipher().ICVSize())
		}
	}
	if err := inst.Remove("net", 0x1000, 0x2000); err != nil {
		t.Fatal(err)
	}
	if table.Inbound(0x1000) != nil || table.Outbound(7) != nil {
		t.Error("AH SAs left after Remove")
	}
}

// ahTransportChild is an AH transport-mode CHILD SA between 198.51.100.1
// and .2 with host-to-host selectors.
func ahTransportChild() ike.ChildSA {
	c := gcmChild("host", 9, 0x3000, 0x4000)
	c.Protocol, c.Mode, c.Encap = ike.ProtoAH, config.ModeTransport, false
	c.Local, c.Remote = netip.MustParseAddrPort("198.51.100.1:0"), netip.MustParseAddrPort("198.51.100.2:0")
	c.LocalTS, c.RemoteTS = []spd.TS{ts("198.51.100.1/32")}, []spd.TS{ts("198.51.100.2/32")}
	c.Encr, c.InEncrKey, c.OutEncrKey = transform.Transform{}, nil, nil
	c.Integ = transform.Transform{Type: transform.TypeINTEG, ID: transform.IntegHMACSHA1_96}
	c.InIntegKey, c.OutIntegKey = bytes.Repeat([]byte{1}, 20), bytes.Repeat([]byte{2}, 20)
	return c
}

// TestInstallAHTransport: a transport-mode AH CHILD SA between the two
// endpoints' own addresses becomes a pair of transport-mode AH SAs whose
// policy protects the traffic between the hosts, and puts no route on the
// TUN (a route to the peer would take the daemon's own IKE and AH packets
// too). Transport mode with ESP, and transport-mode selectors naming
// other addresses, are refused.
func TestInstallAHTransport(t *testing.T) {
	table := sad.NewTable(sad.Options{})
	defer table.Close()
	live := &spd.Live{}
	r := &recRouter{}
	inst := New(table, live, Options{Router: r})
	if err := inst.Install(ahTransportChild()); err != nil {
		t.Fatal(err)
	}
	in, out := table.Inbound(0x3000), table.Outbound(9)
	if in == nil || out == nil || !in.Transport() || !out.Transport() || in.Proto() != sad.AH {
		t.Fatalf("SAs %v %v: want transport-mode AH", in, out)
	}
	if res := live.Load().Outbound(ipv4("198.51.100.1", "198.51.100.2")); res.Action != spd.Protect || res.PolicyID != 9 {
		t.Errorf("host-to-host packet: %+v, want protect by policy 9", res)
	}
	if len(r.routes) != 0 {
		t.Errorf("routes %v for a transport-mode conn, want none", r.routes)
	}
	if err := inst.Remove("host", 0x3000, 0x4000); err != nil {
		t.Fatal(err)
	}

	esp := gcmChild("espt", 10, 0x5000, 0x6000)
	esp.Mode = config.ModeTransport
	if err := inst.Install(esp); err == nil || !strings.Contains(err.Error(), "AH only") {
		t.Errorf("ESP transport mode: %v, want refused", err)
	}
	wide := ahTransportChild()
	wide.RemoteTS = []spd.TS{ts("198.51.100.0/24")}
	if err := inst.Install(wide); err == nil || !strings.Contains(err.Error(), "host-to-host") {
		t.Errorf("transport mode with a subnet selector: %v, want refused", err)
	}
	other := ahTransportChild()
	other.LocalTS = []spd.TS{ts("198.51.100.7/32")}
	if err := inst.Install(other); err == nil {
		t.Error("transport mode with another host's selector: installed")
	}
	if table.Inbound(0x5000) != nil || table.Inbound(0x3000) != nil {
		t.Error("SAs left after refused installs")
	}
}
