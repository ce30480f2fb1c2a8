package shared

import (
	"net/netip"
	"testing"

	"github.com/ipsecgw/ipsecgw/spd"
)

func TestNarrow(t *testing.T) {
	p := func(s string) spd.TS { return spd.PrefixTS(netip.MustParsePrefix(s)) }
	got := Narrow([]spd.TS{p("10.0.0.0/8")}, []spd.TS{p("10.1.2.0/24"), p("192.168.0.0/16")})
	if spd.FormatTS(got) != "10.1.2.0/24" {
		t.Errorf("narrow: %s", spd.FormatTS(got))
	}
	if !AllInside(got, []spd.TS{p("10.0.0.0/8")}) || AllInside([]spd.TS{p("10.0.0.0/7")}, []spd.TS{p("10.0.0.0/8")}) {
		t.Error("AllInside")
	}
	peer := spd.HostTS(netip.MustParseAddr("172.16.0.9"))
	hosts := NATHosts([]spd.TS{peer, p("10.9.0.0/16")}, []spd.TS{spd.HostTS(netip.MustParseAddr("203.0.113.1"))})
	if spd.FormatTS(hosts) != "203.0.113.1/32,172.16.0.9/32" {
		t.Errorf("NATHosts: %s", spd.FormatTS(hosts))
	}
}
