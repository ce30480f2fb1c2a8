package config

import (
	"net/netip"
	"strings"
	"testing"
)

// TestRouteBasedKeywords: every spelling that makes a conn route-based,
// and the device it gets.
func TestRouteBasedKeywords(t *testing.T) {
	all := Mark{0, 0xffffffff}
	tests := []struct {
		lines string
		want  Interface
	}{
		{"mark=100", Interface{ID: 100, Name: "ipsec100", MarkIn: Mark{100, all.Mask}, MarkOut: Mark{100, all.Mask}}},
		{"mark_in=7/0xff\n\tmark_out=7", Interface{ID: 7, Name: "ipsec7", MarkIn: Mark{7, 0xff}, MarkOut: Mark{7, all.Mask}}},
		{"if_id_in=42\n\tif_id_out=42", Interface{ID: 42, Name: "ipsec42", IfIDIn: 42, IfIDOut: 42}},
		{"if_id_out=0x10", Interface{ID: 16, Name: "ipsec16", IfIDOut: 16}},
		// Libreswan.
		{"ipsec-interface=5", Interface{ID: 5, Name: "ipsec5"}},
		{"ipsec-interface=yes", Interface{ID: 1, Name: "ipsec1"}},
		{"vti-interface=vti01\n\tmark=9\n\tvti-shared=yes", Interface{ID: 9, Name: "vti01", MarkIn: Mark{9, all.Mask}, MarkOut: Mark{9, all.Mask}}},
		{"mark-in=3\n\tmark-out=3", Interface{ID: 3, Name: "ipsec3", MarkIn: Mark{3, all.Mask}, MarkOut: Mark{3, all.Mask}}},
		{"ipsec-interface=no", Interface{}},
	}
	for _, tt := range tests {
		conf := connBase + "\tleftsubnet=0.0.0.0/0\n\trightsubnet=0.0.0.0/0\n\t" + tt.lines + "\n"
		cfg, diags, err := loadMem(t, conf, anyPSK)
		if err != nil {
			t.Errorf("%q: %v\n%s", tt.lines, err, diagText(diags))
			continue
		}
		if _, w := diags.Count(); w != 0 {
			t.Errorf("%q: warnings: %s", tt.lines, diagText(diags))
		}
		c, _ := cfg.Conn("c")
		if c.Interface != tt.want || c.RouteBased() != (tt.want.ID != 0) {
			t.Errorf("%q: interface %+v, want %+v", tt.lines, c.Interface, tt.want)
		}
	}
}

func TestRouteBasedErrors(t *testing.T) {
	tests := []struct{ conf, want string }{
		{connBase + "\tmark_in=1\n\tmark_out=2\n", "a route-based conn has one device"},
		{connBase + "\tmark=100\n\tif_id_out=200\n", "a route-based conn has one device"},
		{connBase + "\tmark=%unique\n", "gives each SA its own mark"},
		{connBase + "\tmark=5/0x1\n", "the mask must be a 32-bit number covering the value"},
		{connBase + "\tmark=0\n", "is not a mark"},
		{connBase + "\tif_id_in=x\n", "is not an interface ID"},
		{connBase + "\tipsec-interface=-1\n", "is not an ipsec-interface"},
		{connBase + "\tvti-interface=vti0\n", "vti-interface= needs mark="},
		{connBase + "\tvti-interface=a-very-long-name0\n\tmark=1\n", "is not an interface name"},
		{connBase + "\tmark=1\n\ttype=transport\n", "tunnel-mode SAs only"},
		{connBase + "\tmark=1\n" + strings.Replace(connBase, "conn c", "conn d", 1) + "\tmark=1\n\tvti-interface=vti1\n", "interface ID 1 is device vti1 here but ipsec1"},
		{connBase + "\tmark=1\n\tvti-interface=vti1\n" + strings.Replace(connBase, "conn c", "conn d", 1) + "\tmark=2\n\tvti-interface=vti1\n", "device vti1 has interface ID 2 here but 1"},
	}
	for _, tt := range tests {
		_, diags, err := loadMem(t, tt.conf, anyPSK)
		if err == nil || !strings.Contains(diagText(diags), tt.want) {
			t.Errorf("%q: want an error with %q, got %v:\n%s", tt.conf, tt.want, err, diagText(diags))
		}
	}
}

func TestPriority(t *testing.T) {
	cfg, diags, err := loadMem(t, connBase+"\tpriority=10\n", anyPSK)
	if err != nil {
		t.Fatalf("%v: %s", err, diagText(diags))
	}
	if c, _ := cfg.Conn("c"); c.Priority != 10 {
		t.Errorf("priority %d", c.Priority)
	}
	for _, bad := range []string{"0", "-1", "x", "1073741824"} {
		if _, diags, err := loadMem(t, connBase+"\tpriority="+bad+"\n", anyPSK); err == nil || !strings.Contains(diagText(diags), "is not a policy priority") {
			t.Errorf("priority=%s accepted: %s", bad, diagText(diags))
		}
	}
}

// TestTCPMSS: tcpmss= on route-based conns, its values, and the errors:
// a policy-based conn, a value out of range, and two conns that share a
// device but not a clamp.
func TestTCPMSS(t *testing.T) {
	routed := connBase + "\tleftsubnet=0.0.0.0/0\n\trightsubnet=0.0.0.0/0\n\tmark=100\n"
	for _, tt := range []struct {
		line string
		want int
	}{{"", 0}, {"tcpmss=no", 0}, {"tcpmss=yes", TCPMSSFromMTU}, {"tcpmss=YES", TCPMSSFromMTU}, {"tcpmss=1360", 1360}, {"tcpmss=536", 536}} {
		cfg, diags, err := loadMem(t, routed+"\t"+tt.line+"\n", anyPSK)
		if err != nil {
			t.Errorf("%q: %v\n%s", tt.line, err, diagText(diags))
			continue
		}
		if _, w := diags.Count(); w != 0 {
			t.Errorf("%q: warnings: %s", tt.line, diagText(diags))
		}
		if c, _ := cfg.Conn("c"); c.TCPMSS != tt.want {
			t.Errorf("%q: TCPMSS %d, want %d", tt.line, c.TCPMSS, tt.want)
		}
	}
	second := strings.Replace(routed, "conn c", "conn d", 1)
	for _, tt := range []struct{ conf, want string }{
		{connBase + "\ttcpmss=yes\n", "tcpmss= clamps on a route-based conn's own device"},
		{routed + "\ttcpmss=535\n", "is not a tcpmss"},
		{routed + "\ttcpmss=65536\n", "is not a tcpmss"},
		{routed + "\ttcpmss=auto\n", "is not a tcpmss"},
		{routed + "\ttcpmss=yes\n" + second + "\ttcpmss=1300\n", `tcpmss=1300 here but tcpmss=yes in conn "c", which shares device ipsec100`},
		{routed + second + "\ttcpmss=yes\n", `tcpmss=yes here but tcpmss=no in conn "c"`},
	} {
		_, diags, err := loadMem(t, tt.conf, anyPSK)
		if err == nil || !strings.Contains(diagText(diags), tt.want) {
			t.Errorf("%q: want an error with %q, got %v:\n%s", tt.conf, tt.want, err, diagText(diags))
		}
	}
	// Conns on different devices may clamp differently.
	other := strings.Replace(strings.Replace(routed, "conn c", "conn d", 1), "mark=100", "mark=200", 1)
	if _, diags, err := loadMem(t, routed+"\ttcpmss=yes\n"+other+"\ttcpmss=1300\n", anyPSK); err != nil {
		t.Errorf("two devices, two clamps: %v\n%s", err, diagText(diags))
	}
}

// TestVTIKeywords: Libreswan's leftvti= (the local end's, rightvti= when
// right is local) and vti-routing=, and their errors.
func TestVTIKeywords(t *testing.T) {
	routed := strings.Replace(connBase, "conn c\n", "conn c\n\tmark=100\n", 1)
	for _, tt := range []struct {
		lines   string
		addr    string
		routing bool
	}{
		{"leftvti=169.254.10.2/30\n\trightsubnet=10.2.0.0/24\n\tvti-routing=yes", "169.254.10.2/30", true},
		{"leftvti=fd00:a9fe::2/126\n\trightvti=169.254.10.1/30\n\tvti-routing=no", "fd00:a9fe::2/126", false},
		{"leftsubnet=0.0.0.0/0\n\trightsubnet=0.0.0.0/0", "", false},
	} {
		cfg, diags, err := loadMem(t, routed+"\t"+tt.lines+"\n", anyPSK)
		if err != nil {
			t.Errorf("%q: %v\n%s", tt.lines, err, diagText(diags))
			continue
		}
		if _, w := diags.Count(); w != 0 {
			t.Errorf("%q: warnings: %s", tt.lines, diagText(diags))
		}
		c, _ := cfg.Conn("c")
		if got := c.VTIAddr; (tt.addr == "" && got.IsValid()) || (tt.addr != "" && got.String() != tt.addr) || c.VTIRouting != tt.routing {
			t.Errorf("%q: VTIAddr %v, VTIRouting %v; want %q, %v", tt.lines, got, c.VTIRouting, tt.addr, tt.routing)
		}
	}
	// right is the local end when it holds this host's address.
	swapped := "conn c\n\tmark=100\n\tleft=203.0.113.1\n\tright=198.51.100.1\n\tauthby=secret\n\tauto=add\n" +
		"\tleftvti=169.254.10.1/30\n\trightvti=169.254.10.2/30\n"
	if cfg, diags, err := Load(Options{ConfPath: "/c", SecretsPath: "/s", LocalAddrs: []netip.Addr{netip.MustParseAddr("198.51.100.1")},
		fs: memFS{files: map[string]string{"/c": swapped, "/s": anyPSK}}}); err != nil {
		t.Errorf("right local: %v\n%s", err, diagText(diags))
	} else if c, _ := cfg.Conn("c"); c.LocalIsLeft || c.VTIAddr.String() != "169.254.10.2/30" {
		t.Errorf("right local: LocalIsLeft %v, VTIAddr %v; want rightvti's 169.254.10.2/30", c.LocalIsLeft, c.VTIAddr)
	}
	for _, tt := range []struct{ conf, want string }{
		{routed + "\tleftvti=169.254.10.2\n", "is not an address with its prefix length"},
		{connBase + "\tleftvti=169.254.10.2/30\n", "leftvti= puts an address on a route-based conn's device"},
		{routed + "\tvti-routing=maybe\n", "vti-routing takes yes or no"},
		{connBase + "\trightsubnet=10.2.0.0/24\n\tvti-routing=yes\n", "vti-routing=yes routes into a route-based conn's device"},
		{routed + "\trightsubnet=0.0.0.0/0\n\tvti-routing=yes\n", "vti-routing=yes would route 0.0.0.0/0"},
	} {
		_, diags, err := loadMem(t, tt.conf, anyPSK)
		if err == nil || !strings.Contains(diagText(diags), tt.want) {
			t.Errorf("%q: want an error with %q, got %v:\n%s", tt.conf, tt.want, err, diagText(diags))
		}
	}
}
