package config

import (
	"strings"
	"testing"
)

func TestTCPDefaultsAndErrors(t *testing.T) {
	c := mustConn(t, connBase, anyPSK, "c")
	if c.TCP != TCPNo || c.TCPRemotePort != DefaultTCPPort {
		t.Fatalf("defaults: enable-tcp=%v tcp-remoteport=%d", c.TCP, c.TCPRemotePort)
	}
	for _, tc := range []struct{ line, want string }{
		{"enable-tcp=always", `invalid value "always"; expected one of fallback, no, yes`},
		{"tcp-remoteport=0", `"0" is not a TCP port`},
		{"tcpremoteport=70000", `"70000" is not a TCP port`},
	} {
		_, diags, _ := loadMem(t, connBase+"\t"+tc.line+"\n", anyPSK)
		if !strings.Contains(diagText(diags), tc.want) {
			t.Errorf("%s: diagnostics %q do not say %q", tc.line, diagText(diags), tc.want)
		}
	}
}

func TestTCPShow(t *testing.T) {
	cfg, _, err := loadMem(t, connBase+"\tenable-tcp=yes\n\ttcp-remoteport=443\n", anyPSK)
	if err != nil {
		t.Fatal(err)
	}
	v, _ := cfg.View("c")
	if v.TCP == nil || v.TCP.Mode != "yes" || v.TCP.RemotePort != 443 {
		t.Fatalf("view %+v", v.TCP)
	}
	plain, _, _ := loadMem(t, connBase, anyPSK)
	if v, _ := plain.View("c"); v.TCP != nil {
		t.Fatalf("a conn without enable-tcp shows %+v", v.TCP)
	}
}

func TestTCPChangeNeedsNewIKESA(t *testing.T) {
	imp, fields := compareConns(Conn{TCPRemotePort: 4500}, Conn{TCP: TCPYes, TCPRemotePort: 4500})
	if imp != ImpactNewIKE || len(fields) != 1 || fields[0] != "enable-tcp" {
		t.Fatalf("compareConns = %v %v", imp, fields)
	}
}

// TestTCPNeedsIKEv2: RFC 9329 frames IKEv2 only. A Libreswan-dialect conn
// that names no version (Libreswan 3's IKEv1 default here) takes IKEv2
// with enable-tcp, a Libreswan 4 keyword; one that asks for IKEv1 is
// refused with the file and line.
func TestTCPNeedsIKEv2(t *testing.T) {
	c := mustConn(t, connBase+"\tenable-tcp=yes\n", anyPSK, "c")
	if c.Version == IKEv1 || c.Version == IKEv1First {
		t.Errorf("enable-tcp=yes without a version: %v, want IKEv2", c.Version)
	}
	for _, line := range []string{"keyexchange=ikev1", "ikev2=no", "ikev2=permit"} {
		_, diags, _ := loadMem(t, connBase+"\tenable-tcp=fallback\n\t"+line+"\n", anyPSK)
		if txt := diagText(diags); !strings.Contains(txt, "IKE over TCP (RFC 9329) is IKEv2 only") || !strings.Contains(txt, ":") {
			t.Errorf("%s with enable-tcp: diagnostics %q", line, txt)
		}
	}
	if _, diags, err := loadMem(t, connBase+"\ttcpencap=yes\n\tkeyexchange=ikev2\n", anyPSK); err != nil || strings.Contains(diagText(diags), "IKEv2 only") {
		t.Errorf("tcpencap=yes with keyexchange=ikev2: %v %q", err, diagText(diags))
	}
}
