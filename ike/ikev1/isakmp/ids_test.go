package isakmp

import (
	"errors"
	"net/netip"
	"reflect"
	"testing"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/spd"
)

func TestTSRoundTrip(t *testing.T) {
	rng := func(a, b string) spd.AddrRange {
		return spd.AddrRange{From: netip.MustParseAddr(a), To: netip.MustParseAddr(b)}
	}
	tests := []struct {
		name string
		ts   spd.TS
		typ  IDType
		data []byte
	}{
		{"host", spd.HostTS(netip.MustParseAddr("10.1.2.3")), IDIPv4Addr, []byte{10, 1, 2, 3}},
		{"subnet", spd.PrefixTS(netip.MustParsePrefix("10.1.0.0/16")), IDIPv4AddrSubnet, []byte{10, 1, 0, 0, 255, 255, 0, 0}},
		{"/0", spd.PrefixTS(netip.MustParsePrefix("0.0.0.0/0")), IDIPv4AddrSubnet, make([]byte, 8)},
		{"odd mask", spd.PrefixTS(netip.MustParsePrefix("10.1.2.0/23")), IDIPv4AddrSubnet, []byte{10, 1, 2, 0, 255, 255, 254, 0}},
		{"range, not a prefix", spd.TS{Range: rng("10.0.0.5", "10.0.0.9"), Ports: spd.AllPorts}, IDIPv4AddrRange, []byte{10, 0, 0, 5, 10, 0, 0, 9}},
		{"tcp/443 subnet", spd.TS{Range: spd.MustPrefixRange("192.168.0.0/24"), Protocol: 6, Ports: spd.Port(443)}, IDIPv4AddrSubnet,
			[]byte{192, 168, 0, 0, 255, 255, 255, 0}},
		{"udp any port", spd.TS{Range: spd.MustPrefixRange("192.168.0.0/24"), Protocol: 17, Ports: spd.AllPorts}, IDIPv4AddrSubnet,
			[]byte{192, 168, 0, 0, 255, 255, 255, 0}},
		{"ipv6 host", spd.HostTS(netip.MustParseAddr("2001:db8::1")), IDIPv6Addr, netip.MustParseAddr("2001:db8::1").AsSlice()},
		{"ipv6 subnet", spd.PrefixTS(netip.MustParsePrefix("2001:db8:1::/48")), IDIPv6AddrSubnet,
			append(netip.MustParseAddr("2001:db8:1::").AsSlice(), append([]byte{255, 255, 255, 255, 255, 255}, make([]byte, 10)...)...)},
		{"ipv6 range", spd.TS{Range: rng("2001:db8::5", "2001:db8::1:0"), Ports: spd.AllPorts}, IDIPv6AddrRange,
			append(netip.MustParseAddr("2001:db8::5").AsSlice(), netip.MustParseAddr("2001:db8::1:0").AsSlice()...)},
	}
	for _, tt := range tests {
		id, err := IDFromTS(tt.ts)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if id.Type != tt.typ || !reflect.DeepEqual(id.Data, tt.data) || id.Protocol != tt.ts.Protocol {
			t.Errorf("%s: %v %x proto %d", tt.name, id.Type, id.Data, id.Protocol)
		}
		if tt.ts.Ports.From == tt.ts.Ports.To && id.Port != tt.ts.Ports.From {
			t.Errorf("%s: port %d", tt.name, id.Port)
		}
		parsed, _, err := ParseID(id.AppendTo(nil))
		if err != nil {
			t.Fatal(err)
		}
		back, err := parsed.TS()
		if err != nil || back != tt.ts {
			t.Errorf("%s: back to %v (%v), want %v", tt.name, back, err, tt.ts)
		}
	}
}

func TestTSErrors(t *testing.T) {
	sub := spd.MustPrefixRange("10.0.0.0/8")
	for _, ts := range []spd.TS{
		{Range: sub, Protocol: 6, Ports: spd.PortRange{From: 1024, To: 65535}},
		{Range: sub, Protocol: 6, Ports: spd.Port(0)},
		{},
		{Range: spd.AddrRange{From: netip.MustParseAddr("10.0.0.9"), To: netip.MustParseAddr("10.0.0.1")}, Ports: spd.AllPorts},
	} {
		if _, err := IDFromTS(ts); !errors.Is(err, ErrInvalidIDInformation) {
			t.Errorf("%v: %v", ts, err)
		}
	}
	for _, id := range []ID{
		{Type: IDIPv4AddrSubnet, Data: []byte{10, 0, 0, 0, 255, 0, 255, 0}},
		{Type: IDIPv4AddrRange, Data: []byte{10, 0, 0, 9, 10, 0, 0, 1}},
		{Type: IDFQDN, Data: []byte("example.com")},
		{Type: IDIPv4Addr, Data: []byte{1, 2, 3}},
	} {
		if _, err := id.TS(); !errors.Is(err, ErrInvalidIDInformation) {
			t.Errorf("%v %x: %v", id.Type, id.Data, err)
		}
	}
	// A sloppy subnet with host bits is masked.
	ts, err := ID{Type: IDIPv4AddrSubnet, Data: []byte{10, 1, 2, 3, 255, 255, 0, 0}}.TS()
	if err != nil || ts.Range != spd.MustPrefixRange("10.1.0.0/16") {
		t.Errorf("sloppy subnet: %v %v", ts, err)
	}
}

func TestIdentityRoundTrip(t *testing.T) {
	for _, s := range []string{"198.51.100.1", "2001:db8::7", "@gw.example.com", "user@example.com", "@#0a0b0c"} {
		id, err := config.ParseIdentity(s)
		if err != nil {
			t.Fatal(err)
		}
		x, err := IDFromIdentity(id)
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if x.Protocol != 0 || x.Port != 0 {
			t.Errorf("%s: phase 1 ID with protocol %d port %d", s, x.Protocol, x.Port)
		}
		parsed, _, err := ParseID(x.AppendTo(nil))
		if err != nil {
			t.Fatal(err)
		}
		back, err := parsed.Identity()
		if err != nil || !back.Equal(id) {
			t.Errorf("%s: back to %v (%v)", s, back, err)
		}
	}
	wantTypes := map[string]IDType{"198.51.100.1": IDIPv4Addr, "@gw": IDFQDN, "a@b.c": IDUserFQDN, "@#01": IDKeyID}
	for s, typ := range wantTypes {
		id, _ := config.ParseIdentity(s)
		if x, _ := IDFromIdentity(id); x.Type != typ {
			t.Errorf("%s: %v, want %v", s, x.Type, typ)
		}
	}
	// Cisco sends its address with UDP/500; the identity is the address.
	cisco := ID{Type: IDIPv4Addr, Protocol: 17, Port: 500, Data: []byte{192, 168, 3, 101}}
	if got, err := cisco.Identity(); err != nil || got.Addr != netip.MustParseAddr("192.168.3.101") {
		t.Errorf("Cisco's ID: %v %v", got, err)
	}
	for _, bad := range []config.Identity{{Type: config.IDIPv4}, {Type: config.IDIPv6}, {Type: config.IDIPv4, Addr: netip.MustParseAddr("::1")}} {
		if _, err := IDFromIdentity(bad); !errors.Is(err, ErrInvalidIDInformation) {
			t.Errorf("%+v: %v", bad, err)
		}
	}
	dn, _ := config.ParseIdentity("C=CH, O=Example, CN=gw")
	if _, err := IDFromIdentity(dn); !errors.Is(err, ErrInvalidIDInformation) {
		t.Errorf("DN: %v", err)
	}
	for _, x := range []ID{{Type: IDDERASN1DN, Data: []byte{0x30, 0}}, {Type: IDFQDN}, {Type: IDIPv4AddrSubnet, Data: make([]byte, 8)}} {
		if _, err := x.Identity(); !errors.Is(err, ErrInvalidIDInformation) {
			t.Errorf("%v: %v", x.Type, err)
		}
	}
}
