package daemon

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/ipsecgw/ipsecgw/ike"
)

func TestKeepaliveTargets(t *testing.T) {
	p1 := netip.MustParseAddrPort("203.0.113.1:4500")
	p2 := netip.MustParseAddrPort("203.0.113.2:4500")
	p3 := netip.MustParseAddrPort("203.0.113.3:4500")
	sts := []ike.ConnStatus{
		{Name: "a", State: ike.StateEstablished, IKEInfo: ike.IKEInfo{NATLocal: true, Remote: p1}},
		{Name: "b", State: ike.StateEstablished, IKEInfo: ike.IKEInfo{NATLocal: true, Remote: p1}},  // same IKE SA
		{Name: "c", State: ike.StateEstablished, IKEInfo: ike.IKEInfo{NATRemote: true, Remote: p2}}, // only the peer is NATed
		{Name: "d", State: ike.StateConnecting, IKEInfo: ike.IKEInfo{NATLocal: true, Remote: p3}},   // not up yet
		{Name: "e", State: ike.StateEstablished, IKEInfo: ike.IKEInfo{NATLocal: true, Remote: p3}},
		{Name: "f", State: ike.StateDown},
	}
	got := keepaliveTargets(sts)
	if want := []netip.AddrPort{p1, p3}; !slices.Equal(got, want) {
		t.Errorf("targets %v, want %v", got, want)
	}
}
