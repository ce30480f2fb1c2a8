package config

import (
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/spd"
)

const connBase = "conn c\n\tleft=198.51.100.1\n\tright=203.0.113.1\n\tauthby=secret\n\tauto=add\n"
const anyPSK = ": PSK \"test\"\n"

// Each keyword of the site-to-site set, with the typed result it
// must produce.
func TestConnKeywords(t *testing.T) {
	tests := []struct {
		lines string
		check func(c Conn) bool
	}{
		{"left=%defaultroute", func(c Conn) bool { return c.Local.Host == "%defaultroute" && c.LocalIsLeft }},
		{"right=gw.example.com", func(c Conn) bool { return c.Remote.Host == "gw.example.com" && !c.Remote.Addr.IsValid() }},
		{"right=%any", func(c Conn) bool { return c.Remote.IsAny() && len(c.Remote.Subnets) == 0 }},
		{"right=2001:db8::1", func(c Conn) bool { return c.Remote.Addr == netip.MustParseAddr("2001:db8::1") }},
		{"leftsubnet=10.1.0.0/16,2001:db8:1::/48", func(c Conn) bool {
			return len(c.Local.Subnets) == 2 && c.Local.Subnets[1].String() == "2001:db8:1::/48"
		}},
		{"rightsubnet=10.2.0.0/24[tcp/80-90]", func(c Conn) bool {
			s := c.Remote.Subnets[0]
			return s.Protocol == 6 && s.Ports.From == 80 && s.Ports.To == 90
		}},
		{"leftsubnets={10.1.0.0/24 10.1.1.0/24}", func(c Conn) bool { return len(c.Local.Subnets) == 2 && c.Dialect == DialectLibreswan }},
		{"leftsubnet=%dynamic,10.9.0.0/16", func(c Conn) bool {
			return len(c.Local.Subnets) == 2 && c.Local.Subnets[0].String() == "198.51.100.1/32"
		}},
		{"leftprotoport=udp/1701", func(c Conn) bool { return c.Local.Subnets[0].Protocol == 17 && c.Local.Subnets[0].Ports.From == 1701 }},
		{"leftid=@gw.example.com", func(c Conn) bool { return c.Local.ID == Identity{Type: IDFQDN, Value: "gw.example.com"} }},
		{"rightid=@@ops@example.com", func(c Conn) bool { return c.Remote.ID == Identity{Type: IDRFC822, Value: "ops@example.com"} }},
		{"rightid=@#0A0b", func(c Conn) bool { return c.Remote.ID == Identity{Type: IDKeyID, Value: "0a0b"} }},
		{"rightid=ipv4:203.0.113.9", func(c Conn) bool { return c.Remote.ID.Addr == netip.MustParseAddr("203.0.113.9") }},
		{"leftauth=psk\n\trightauth=pubkey", func(c Conn) bool { return c.Local.Auth == AuthPSK && c.Remote.Auth == AuthPubkey }},
		{"authby=psk", func(c Conn) bool { return c.UsesPSK() }},
		{"auto=route", func(c Conn) bool { return c.Auto == AutoRoute }},
		{"auto=start", func(c Conn) bool { return c.Auto == AutoStart }},
		{"keyexchange=ikev1", func(c Conn) bool { return c.Version == IKEv1 }},
		{"keyexchange=ikev2", func(c Conn) bool { return c.Version == IKEv2 }},
		{"keyexchange=ike", func(c Conn) bool { return c.Version == IKEAny }},
		{"type=transport", func(c Conn) bool { return c.Mode == ModeTransport }},
		{"type=passthrough", func(c Conn) bool { return c.Mode == ModePassthrough }},
		{"type=drop", func(c Conn) bool { return c.Mode == ModeDrop }},
		{"ike=aes256-sha384-ecp384!", func(c Conn) bool { return c.IKEStrict && c.IKE[0].String() == "aes256-sha384-prfsha384-ecp384" }},
		{"esp=aes256gcm16-ecp384!", func(c Conn) bool { return c.ChildStrict && c.ESP[0].PFS() && c.ESP[0].AEAD() }},
		{"ah=sha256!", func(c Conn) bool { return len(c.ESP) == 0 && c.AH[0].String() == "sha256-noesn" }},
		{"ikelifetime=28800s", func(c Conn) bool { return c.IKELifetime == 8*time.Hour }},
		{"lifetime=3600", func(c Conn) bool { return c.Lifetime == time.Hour }},
		{"keylife=20m", func(c Conn) bool { return c.Lifetime == 20*time.Minute }},
		{"margintime=3m", func(c Conn) bool { return c.Margin == 3*time.Minute }},
		{"rekeymargin=2m", func(c Conn) bool { return c.Margin == 2*time.Minute }},
		{"rekeyfuzz=50%", func(c Conn) bool { return c.RekeyFuzz == 50 }},
		{"lifebytes=1g", func(c Conn) bool { return c.LifeBytes == 1<<30 }},
		{"lifepackets=1000000", func(c Conn) bool { return c.LifePackets == 1000000 }},
		{"keyingtries=%forever", func(c Conn) bool { return c.KeyingTries == 0 }},
		{"keyingtries=7", func(c Conn) bool { return c.KeyingTries == 7 }},
		{"rekey=no", func(c Conn) bool { return !c.Rekey }},
		{"reauth=no", func(c Conn) bool { return !c.Reauth }},
		{"dpdaction=restart", func(c Conn) bool { return c.DPDAction == ActionRestart }},
		{"dpdaction=hold\n\tdpddelay=8s\n\tdpdtimeout=13s", func(c Conn) bool {
			return c.DPDAction == ActionHold && c.DPDDelay == 8*time.Second && c.DPDTimeout == 13*time.Second
		}},
		{"dpddelay=30", func(c Conn) bool { return c.DPDDelay == 30*time.Second }},
		{"closeaction=clear", func(c Conn) bool { return c.CloseAction == ActionClear }},
		{"aggressive=yes\n\tkeyexchange=ikev1", func(c Conn) bool { return c.Aggressive }},
		{"forceencaps=yes", func(c Conn) bool { return c.ForceEncaps }},
		{"mobike=no", func(c Conn) bool { return !c.MOBIKE }},
		{"fragmentation=force", func(c Conn) bool { return c.Fragmentation == FragForce }},
		{"replay_window=0", func(c Conn) bool { return c.ReplayWindow == 0 }},
		{"esp=aes128-sha256-esn", func(c Conn) bool { return c.ESP[0].Of(TransformESN)[0].ID == ESNYes }},
		{"mark=42/0xff", func(c Conn) bool {
			return c.Interface.ID == 42 && c.Interface.MarkOut == Mark{42, 0xff} && len(c.Ignored) == 0
		}},
		{"reqid=7", func(c Conn) bool { return c.ReqID == 7 }},
		{"inactivity=5m", func(c Conn) bool { return c.Inactivity == 5*time.Minute }},
		{"leftupdown=/usr/lib/ipsec/_updown", func(c Conn) bool {
			return c.Local.Updown == "/usr/lib/ipsec/_updown" && len(c.Ignored) == 0
		}},
		// The peer's end's script is the peer's business: only the local
		// end's runs here (as strongSwan).
		{"rightupdown=/peer/updown", func(c Conn) bool { return c.Remote.Updown == "/peer/updown" && c.Local.Updown == "" }},
		// Libreswan dialect.
		{"ike=aes128-sha1;modp1536", func(c Conn) bool {
			return c.Dialect == DialectLibreswan && c.IKEStrict && c.IKE[0].String() == "aes128-sha1-prfsha1-modp1536" && c.Version == IKEv1
		}},
		{"phase2alg=aes128-sha1;modp1536", func(c Conn) bool { return c.ESP[0].String() == "aes128-sha1-modp1536-noesn" }},
		// Libreswan: pfs=yes is the default, so the IKE group is used for PFS.
		{"phase2=ah\n\tphase2alg=sha1", func(c Conn) bool { return c.AH[0].String() == "sha1-modp3072-noesn" }},
		{"pfs=yes\n\tike=aes128-sha1;modp1536\n\tphase2alg=aes128-sha1", func(c Conn) bool { return c.ESP[0].String() == "aes128-sha1-modp1536-noesn" }},
		{"pfs=no\n\tesp=aes128-sha1-modp1536", func(c Conn) bool { return !c.ESP[0].PFS() }},
		{"pfsgroup=modp2048\n\tesp=aes128-sha1", func(c Conn) bool { return c.ESP[0].String() == "aes128-sha1-modp2048-noesn" }},
		{"ikev2=insist", func(c Conn) bool { return c.Version == IKEv2 }},
		{"ikev2=no", func(c Conn) bool { return c.Version == IKEv1 }},
		{"ikev2=never", func(c Conn) bool { return c.Version == IKEv1 }},
		{"ikev2=permit", func(c Conn) bool {
			return c.Version == IKEv1First && c.Version.Initiates() == IKEv1 && c.Version.Accepts(2)
		}},
		{"ikev2=propose", func(c Conn) bool {
			return c.Version == IKEAny && c.Version.Initiates() == IKEv2 && c.Version.Accepts(1)
		}},
		{"ikev2=yes", func(c Conn) bool { return c.Version == IKEAny }},
		{"authby=secret\n\tikelifetime=86400s\n\tsalifetime=8h", func(c Conn) bool {
			return c.IKELifetime == 24*time.Hour && c.Lifetime == 8*time.Hour
		}},
		{"aggrmode=yes\n\tikev2=no", func(c Conn) bool { return c.Aggressive }},
		{"encapsulation=yes", func(c Conn) bool { return c.ForceEncaps }},
		{"replay-window=256", func(c Conn) bool { return c.ReplayWindow == 256 }},
		{"esn=yes\n\tesp=aes128-sha1", func(c Conn) bool { return c.ESP[0].Of(TransformESN)[0].ID == ESNYes }},
		{"sha2-truncbug=yes\n\tesp=aes128-sha2_256", func(c Conn) bool { return c.ESP[0].Of(TransformINTEG)[0].ID == IntegHMACSHA25696 }},
		{"sha2_truncbug=yes\n\tphase2alg=aes128-sha256", func(c Conn) bool { return c.ESP[0].Of(TransformINTEG)[0].ID == IntegHMACSHA25696 }},
		{"auth=ah\n\tesp=sha256", func(c Conn) bool { return len(c.AH) == 1 && c.AH[0].String() == "sha256-modp3072-noesn" }},
		{"auto=ondemand", func(c Conn) bool { return c.Auto == AutoRoute }},
		{"enable-tcp=yes\n\ttcp-remoteport=443", func(c Conn) bool {
			return c.Dialect == DialectLibreswan && c.TCP == TCPYes && c.TCPRemotePort == 443
		}},
		{"enable-tcp=fallback", func(c Conn) bool { return c.TCP == TCPFallback && c.TCPRemotePort == DefaultTCPPort }},
		// ipsecgw's strongSwan-dialect spelling (config/tcp.go).
		{"tcpencap=fallback\n\ttcpremoteport=8443", func(c Conn) bool {
			return c.Dialect == DialectStrongSwan && c.TCP == TCPFallback && c.TCPRemotePort == 8443
		}},
	}
	for _, tt := range tests {
		conf := connBase + "\t" + tt.lines + "\n"
		c := mustConn(t, conf, anyPSK, "c")
		if !tt.check(c) {
			t.Errorf("%q: unexpected result %+v", tt.lines, c)
		}
	}
}

func TestConnDefaults(t *testing.T) {
	c := mustConn(t, connBase, anyPSK, "c")
	if c.IKELifetime != 3*time.Hour || c.Lifetime != time.Hour || c.Margin != 9*time.Minute || c.RekeyFuzz != 100 ||
		c.KeyingTries != 3 || c.DPDDelay != 30*time.Second || c.DPDTimeout != 150*time.Second || c.DPDAction != ActionNone ||
		!c.Rekey || !c.Reauth || !c.MOBIKE || c.ForceEncaps || c.Aggressive || c.Mode != ModeTunnel || c.Version != IKEAny ||
		c.ReplayWindow != -1 || c.Fragmentation != FragYes || c.CloseAction != ActionNone {
		t.Errorf("defaults: %+v", c)
	}
	if c.Local.Subnets[0].String() != "198.51.100.1/32" || c.Remote.ID.Addr != netip.MustParseAddr("203.0.113.1") {
		t.Errorf("host subnets / default IDs: %+v %+v", c.Local, c.Remote)
	}
}

// also= (several, nested, current section wins), %default, merging and
// empty values.
func TestAlsoDefaultMergeEmpty(t *testing.T) {
	conf := `conn %default
	ikelifetime=1h
	keyingtries=5
	dpddelay=10s

conn base
	also=timers
	left=198.51.100.1
	lifetime=20m
	dpdaction=clear

conn timers
	lifetime=10m
	margintime=2m
	rekeyfuzz=10%

conn other
	rekeyfuzz=20%

conn c
	also=base
	also=other
	right=203.0.113.1
	dpdaction=restart
	keyingtries=
	authby=secret
	auto=add

conn c
	dpddelay=45s
`
	c := mustConn(t, conf, anyPSK, "c")
	if c.Local.Host != "198.51.100.1" || c.Lifetime != 20*time.Minute || c.Margin != 2*time.Minute ||
		c.RekeyFuzz != 20 || c.DPDAction != ActionRestart || c.IKELifetime != time.Hour || c.KeyingTries != 3 ||
		c.DPDDelay != 45*time.Second {
		t.Errorf("inheritance: %+v", c)
	}
}

func TestLocalEndSelection(t *testing.T) {
	conf := connBase + "\tleftsubnet=10.1.0.0/16\n\trightsubnet=10.2.0.0/16\n"
	files := map[string]string{"/c": conf, "/s": anyPSK}
	load := func(local []netip.Addr) (Conn, Diagnostics) {
		cfg, diags, err := Load(Options{ConfPath: "/c", SecretsPath: "/s", LocalAddrs: local, fs: memFS{files: files}})
		if err != nil {
			t.Fatal(err)
		}
		c, _ := cfg.Conn("c")
		return c, diags
	}
	c, diags := load([]netip.Addr{netip.MustParseAddr("203.0.113.1")})
	if c.LocalIsLeft || c.Local.Host != "203.0.113.1" || c.Local.Subnets[0].String() != "10.2.0.0/16" || len(diags) != 0 {
		t.Errorf("right should be local: %+v %v", c, diags)
	}
	c, diags = load([]netip.Addr{netip.MustParseAddr("198.51.100.99")})
	if !c.LocalIsLeft || len(diags) != 1 || diags[0].Severity != SeverityWarning || !strings.Contains(diags[0].Msg, "is an address of this host") {
		t.Errorf("want a warning and left local: %v", diags)
	}
	if _, diags = load(nil); len(diags) != 0 {
		t.Errorf("unknown local addresses must not warn: %v", diags)
	}
}

// Limits: 20 subnets per side and hundreds of conns are fine.
func TestLimitsAccepted(t *testing.T) {
	var b strings.Builder
	for i := range 500 {
		// Each conn its own 20 subnets: tunnels to one peer must not
		// claim the same traffic (overlap.go).
		var subs []string
		for j := range 20 {
			n := i*20 + j
			subs = append(subs, netip.PrefixFrom(netip.AddrFrom4([4]byte{10, byte(n >> 8), byte(n), 0}), 24).String())
		}
		b.WriteString(connText(i))
		b.WriteString("\trightsubnet=" + strings.Join(subs, ",") + "\n")
	}
	cfg, diags, err := loadMem(t, b.String(), anyPSK)
	if err != nil {
		t.Fatalf("%v\n%s", err, diagText(diags))
	}
	if len(cfg.Names()) != 500 {
		t.Fatalf("%d conns", len(cfg.Names()))
	}
	c, _ := cfg.Conn("site499")
	if len(c.Remote.Subnets) != 20 {
		t.Errorf("%d subnets", len(c.Remote.Subnets))
	}
}

// The returned values are copies: changing them does not change the Config.
func TestConfigImmutable(t *testing.T) {
	cfg, _, err := loadMem(t, connBase+"\tleftsubnet=10.1.0.0/16\n", anyPSK)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := cfg.Conn("c")
	c.Local.Subnets[0] = spd.PrefixTS(netip.MustParsePrefix("0.0.0.0/0"))
	c.IKE[0].Transforms[0].ID = 99
	c.Name = "x"
	again, _ := cfg.Conn("c")
	if again.Local.Subnets[0].String() != "10.1.0.0/16" || again.IKE[0].Transforms[0].ID != EncrAESCBC {
		t.Error("Config changed through a returned Conn")
	}
	all := cfg.Conns()
	all[0].ESP[0].Transforms[0].KeyLen = 1
	if again, _ = cfg.Conn("c"); again.ESP[0].Transforms[0].KeyLen != 128 {
		t.Error("Config changed through Conns()")
	}
}

// SharedConns and SharedConn hand out the Config's own conns: the same
// pointers every time, with what Conns copies.
func TestSharedConns(t *testing.T) {
	cfg, _, err := loadMem(t, connBase+"\tleftsubnet=10.1.0.0/16\n", anyPSK)
	if err != nil {
		t.Fatal(err)
	}
	shared, copies := cfg.SharedConns(), cfg.Conns()
	one, ok := cfg.SharedConn("c")
	if len(shared) != 1 || !ok || one != shared[0] || cfg.SharedConns()[0] != one {
		t.Fatalf("SharedConns %v, SharedConn %p %v: not the same conn", shared, one, ok)
	}
	if !reflect.DeepEqual(*one, copies[0]) {
		t.Errorf("shared conn %+v differs from its copy %+v", *one, copies[0])
	}
	if _, ok := cfg.SharedConn("nope"); ok {
		t.Errorf("SharedConn found a conn that does not exist")
	}
}

func TestWarningsOnlyLoad(t *testing.T) {
	conf := connBase + "\tleftupdown=/bin/true\n\tleftnexthop=%defaultroute\n\tmark=5\n\tleftcert=gw.pem\n"
	cfg, diags, err := loadMem(t, conf, anyPSK)
	if err != nil || cfg == nil {
		t.Fatalf("warnings must not fail the load: %v", err)
	}
	if errs, warns := diags.Count(); errs != 0 || warns != 2 {
		t.Errorf("want 2 warnings (leftupdown and mark are used): %s", diagText(diags))
	}
}

func TestAutoIgnoreConnNotValidated(t *testing.T) {
	// A template without addresses or PSK, never loaded by strongSwan.
	conf := "conn template\n\tauthby=secret\n\tleftsubnet=10.0.0.0/8\n\trightsubnet=10.1.0.0/16\n"
	if _, diags, err := loadMem(t, conf, ""); err != nil {
		t.Errorf("template conn rejected: %s", diagText(diags))
	}
}

func connText(i int) string {
	a := netip.AddrFrom4([4]byte{203, 0, 113, byte(i % 250)})
	return "conn site" + strconv.Itoa(i) + "\n\tleft=198.51.100.1\n\tleftsubnet=10.100.0.0/16\n\tright=" + a.String() +
		"\n\trightid=@site" + strconv.Itoa(i) + ".example.net\n\tauthby=secret\n\tike=aes256-sha256-modp2048\n\tesp=aes256gcm16-modp2048\n\tauto=start\n"
}

// also= fan-out must not explode: each section is applied once per conn.
func TestAlsoFanOutIsLinear(t *testing.T) {
	var b strings.Builder
	const n = 30
	for i := range n - 1 {
		next := "s" + strconv.Itoa(i+1)
		b.WriteString("conn s" + strconv.Itoa(i) + "\n\talso=" + strings.Repeat(next+" ", 8) + "\n")
	}
	b.WriteString("conn s" + strconv.Itoa(n-1) + "\n\tleft=198.51.100.1\n\tright=203.0.113.1\n\tauthby=secret\n")
	b.WriteString("conn top\n\talso=s0\n\tauto=add\n")
	c := mustConn(t, b.String(), anyPSK, "top")
	if c.Remote.Host != "203.0.113.1" {
		t.Errorf("inherited values lost: %+v", c)
	}
}
