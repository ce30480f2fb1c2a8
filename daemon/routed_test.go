package daemon

import (
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/tun"
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

// fakeRoutedDevice records what updateInterface and applyVTI do to a
// device.
type fakeRoutedDevice struct {
	mtu, mss, setMTUs int
	addrs, routes     []string
}

func (f *fakeRoutedDevice) AddAddress(p netip.Prefix) error {
	if !slices.Contains(f.addrs, p.String()) {
		f.addrs = append(f.addrs, p.String())
	}
	return nil
}
func (f *fakeRoutedDevice) RemoveAddress(p netip.Prefix) error {
	f.addrs = slices.DeleteFunc(f.addrs, func(s string) bool { return s == p.String() })
	return nil
}
func (f *fakeRoutedDevice) AddRoute(p netip.Prefix) error {
	if !slices.Contains(f.routes, p.String()) {
		f.routes = append(f.routes, p.String())
	}
	return nil
}
func (f *fakeRoutedDevice) RemoveRoute(p netip.Prefix) error {
	f.routes = slices.DeleteFunc(f.routes, func(s string) bool { return s == p.String() })
	return nil
}

func (f *fakeRoutedDevice) Name() string { return "ipsec100" }
func (f *fakeRoutedDevice) MTU() int     { return f.mtu }
func (f *fakeRoutedDevice) SetMTU(m int) error {
	f.mtu, f.setMTUs = m, f.setMTUs+1
	return nil
}
func (f *fakeRoutedDevice) SetClampMSS(m int) error { f.mss = m; return nil }

// TestRoutedReloadMTU: a reload that changes a route-based conn's ESP
// proposals changes its device's MTU to the new proposals' figure, and its
// tcpmss= to the device's clamp; an unchanged one leaves the MTU alone.
func TestRoutedReloadMTU(t *testing.T) {
	prop := func(s string) []config.Proposal {
		t.Helper()
		p, _, err := config.ParseProposals(config.ProtoESP, s)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	g := &Gateway{log: slog.New(slog.DiscardHandler)}
	peer := netip.MustParseAddr("203.0.113.1")
	dev := &fakeRoutedDevice{mtu: 1438} // made for aes128gcm16
	gcm := []config.Conn{{ESP: prop("aes128gcm16"), Remote: config.End{Addr: peer}}}
	g.updateInterface(dev, gcm, routedMTU(gcm, 1500), 1500)
	if dev.mtu != 1438 || dev.setMTUs != 0 || dev.mss != 0 {
		t.Errorf("unchanged proposals: MTU %d after %d changes, clamp %d", dev.mtu, dev.setMTUs, dev.mss)
	}
	cbc := []config.Conn{{ESP: prop("aes256-sha512"), Remote: config.End{Addr: peer}, TCPMSS: config.TCPMSSFromMTU}}
	g.updateInterface(dev, cbc, routedMTU(cbc, 1500), 1500)
	if dev.mtu != 1406 || dev.setMTUs != 1 || dev.mss != tun.MSSFromMTU {
		t.Errorf("aes256-sha512 with tcpmss=yes: MTU %d after %d changes (want 1406 after 1), clamp %d (want %d)",
			dev.mtu, dev.setMTUs, dev.mss, tun.MSSFromMTU)
	}
	fixed := []config.Conn{{ESP: prop("aes256-sha512"), Remote: config.End{Addr: peer}, TCPMSS: 1300}}
	g.updateInterface(dev, fixed, routedMTU(fixed, 1500), 1500)
	if dev.setMTUs != 1 || dev.mss != 1300 {
		t.Errorf("tcpmss=1300: %d MTU changes, clamp %d", dev.setMTUs, dev.mss)
	}
}

// TestRoutedVTI: leftvti= puts the address on the device and vti-routing=
// yes routes the conns' remote subnets into it; a reload that drops them
// removes exactly what the earlier configuration put there.
func TestRoutedVTI(t *testing.T) {
	load := func(extra string) []config.Conn {
		t.Helper()
		conf := "conn a\n\tleft=198.51.100.1\n\tright=203.0.113.1\n\tauthby=secret\n\tauto=add\n\tmark=100\n" +
			"\trightsubnet=10.2.0.0/24,fd00:2::/64\n" + extra
		dir := t.TempDir()
		cp, sp := dir+"/ipsec.conf", dir+"/ipsec.secrets"
		if err := os.WriteFile(cp, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(sp, []byte(": PSK \"vti-test-secret-0123\"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, diags, err := config.Load(config.Options{ConfPath: cp, SecretsPath: sp})
		if err != nil {
			t.Fatalf("%v %v", err, diags)
		}
		return cfg.Conns()
	}
	g := &Gateway{log: slog.New(slog.DiscardHandler)}
	dev := &fakeRoutedDevice{}
	g.applyVTI(100, dev, load("\tleftvti=169.254.10.2/30\n\tvti-routing=yes\n"))
	if got := strings.Join(dev.addrs, " "); got != "169.254.10.2/30" {
		t.Errorf("addresses %q", got)
	}
	if got := strings.Join(dev.routes, " "); got != "10.2.0.0/24 fd00:2::/64" {
		t.Errorf("routes %q", got)
	}
	g.applyVTI(100, dev, load("\tleftvti=169.254.20.2/30\n"))
	if got := strings.Join(dev.addrs, " "); got != "169.254.20.2/30" {
		t.Errorf("after the reload: addresses %q, want only the new one", got)
	}
	if len(dev.routes) != 0 {
		t.Errorf("after the reload to vti-routing=no: routes %q", dev.routes)
	}
}
