package daemon

import (
	"net/netip"
	"testing"

	"github.com/ipsecgw/ipsecgw/config"
)

// TestRoutedMTU: the device MTU is the underlay MTU minus the largest
// ESP overhead of the conns' proposals, with UDP encapsulation and the
// peer's address family.
func TestRoutedMTU(t *testing.T) {
	prop := func(s string) []config.Proposal {
		t.Helper()
		p, _, err := config.ParseProposals(config.ProtoESP, s)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	v4, v6 := netip.MustParseAddr("203.0.113.1"), netip.MustParseAddr("2001:db8::1")
	tests := []struct {
		esp      string
		peer     netip.Addr
		underlay int
		want     int
	}{
		{"aes128gcm16", v4, 1500, 1438},
		{"aes128-sha1", v4, 1500, 1422},   // the AWS shape
		{"aes256-sha512", v4, 1500, 1406}, // the worst ICV
		{"aes128gcm16", v6, 1500, 1418},   // 20 more bytes of outer header
		{"aes128gcm16,aes256-sha512", v4, 9000, 8910},
	}
	for _, tt := range tests {
		c := config.Conn{ESP: prop(tt.esp), Remote: config.End{Addr: tt.peer}}
		if got := routedMTU([]config.Conn{c}, tt.underlay); got != tt.want {
			t.Errorf("%s to %v over %d: MTU %d, want %d", tt.esp, tt.peer, tt.underlay, got, tt.want)
		}
	}
	// Conns sharing a device: the smallest.
	a := config.Conn{ESP: prop("aes128gcm16"), Remote: config.End{Addr: v4}}
	b := config.Conn{ESP: prop("aes128-sha1"), Remote: config.End{Addr: v4}}
	if got := routedMTU([]config.Conn{a, b}, 1500); got != 1422 {
		t.Errorf("shared device: MTU %d, want 1422", got)
	}
	// No known proposal: the worst ipsecgw supports.
	if got := routedMTU([]config.Conn{{Remote: config.End{Addr: v4}}}, 1500); got != 1406 {
		t.Errorf("no proposal: MTU %d, want 1406", got)
	}
}
