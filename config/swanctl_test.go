package config

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/spd"
)

func loadSwanctlMem(t *testing.T, files map[string]string, opts Options) (*Config, Diagnostics, error) {
	t.Helper()
	opts.fs = memFS{files: files}
	return Load(opts)
}

// labSwanctl is the interop lab's strongSwan peer (internal/lab
// SwanctlConf) with the sides swapped: what ipsecgw runs against it.
const labSwanctl = `connections {
  s2s {
    version = 2
    local_addrs = 198.51.100.1
    remote_addrs = 198.51.100.2
    proposals = aes128-sha256-modp2048
    local {
      auth = psk
      id = gw1
    }
    remote {
      auth = psk
      id = gw2
    }
    children {
      net {
        local_ts = 10.1.0.0/24
        remote_ts = 10.2.0.0/24
        esp_proposals = aes128gcm16
        start_action = start
      }
    }
  }
}
secrets {
  ike-0 {
    id-1 = gw1
    id-2 = gw2
    secret = 0x696e7465726f70
  }
}
`

func TestSwanctlLabPeer(t *testing.T) {
	cfg, diags, err := loadSwanctlMem(t, map[string]string{"/etc/swanctl/swanctl.conf": labSwanctl}, Options{ConfPath: "/etc/swanctl/swanctl.conf"})
	if err != nil {
		t.Fatalf("%v\n%s", err, diags)
	}
	for _, d := range diags {
		t.Errorf("unexpected diagnostic %s", d)
	}
	c, ok := cfg.Conn("s2s")
	if !ok {
		t.Fatalf("conns %v", cfg.Names())
	}
	if c.Version != IKEv2 || c.Auto != AutoStart || c.Local.Host != "198.51.100.1" || c.Remote.Host != "198.51.100.2" {
		t.Errorf("conn %s", c)
	}
	if c.Local.ID.String() != "@gw1" || c.Remote.ID.String() != "@gw2" || c.Local.Auth != AuthPSK || c.Remote.Auth != AuthPSK {
		t.Errorf("ids %s/%s auth %s/%s", c.Local.ID, c.Remote.ID, c.Local.Auth, c.Remote.Auth)
	}
	if !c.IKEStrict || !c.ChildStrict || len(c.IKE) != 1 || c.IKE[0].String() != "aes128-sha256-prfsha256-modp2048" || c.ESP[0].String() != "aes128gcm16-noesn" {
		t.Errorf("proposals %v %v (strict %v %v)", c.IKE, c.ESP, c.IKEStrict, c.ChildStrict)
	}
	if !slices.Equal(c.Local.Subnets, []spd.TS{mustTS(t, "10.1.0.0/24")}) || !slices.Equal(c.Remote.Subnets, []spd.TS{mustTS(t, "10.2.0.0/24")}) {
		t.Errorf("subnets %v %v", c.Local.Subnets, c.Remote.Subnets)
	}
	// swanctl's defaults: CHILD rekey 1h, life 1h6m, IKE rekey 4h.
	if c.Lifetime != 66*time.Minute || c.Margin != 6*time.Minute || c.RekeyFuzz != 100 || c.IKELifetime != 4*time.Hour+6*time.Minute || c.Reauth {
		t.Errorf("timers lifetime %v margin %v fuzz %d ikelifetime %v reauth %v", c.Lifetime, c.Margin, c.RekeyFuzz, c.IKELifetime, c.Reauth)
	}
	if c.DPDAction != ActionNone {
		t.Errorf("DPD %s without dpd_delay", c.DPDAction)
	}
	psk, ok := cfg.PSK(c)
	if !ok || string(psk.Bytes()) != "interop" {
		t.Error("PSK from the secrets section not found")
	}
}

func mustTS(t *testing.T, s string) spd.TS {
	t.Helper()
	ts, err := parseSubnet(s)
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

// TestSwanctlKeys: the timers, DPD, modes and volumes, two children, an
// include, and a quoted PSK.
func TestSwanctlKeys(t *testing.T) {
	files := map[string]string{
		"/etc/swanctl/swanctl.conf": `# site config
connections {
  include conf.d/*.conf
}
secrets {
  ike-site {
    id = @hq.example
    secret = "two words"   # quoted
  }
}
`,
		"/etc/swanctl/conf.d/site.conf": `site {
  version = 1
  local_addrs = 203.0.113.1
  remote_addrs = 203.0.113.2
  proposals = aes256-sha256-ecp256, aes128gcm16-prfsha256-x25519
  aggressive = yes
  encap = yes
  mobike = no
  dpd_delay = 15s
  dpd_timeout = 45s
  rekey_time = 2h
  local {
    auth = psk
    id = @hq.example
  }
  remote {
    auth = psk
    id = @branch.example
  }
  children {
    lan {
      local_ts = 10.10.0.0/16
      remote_ts = 10.20.0.0/24, 10.21.0.0/24
      esp_proposals = aes256-sha256-modp2048
      rekey_time = 50m
      life_time = 1h
      rand_time = 5m
      life_bytes = 2000000000
      rekey_bytes = 1800000000
      dpd_action = restart
      close_action = trap
      start_action = trap
      replay_window = 128
      mode = tunnel
    }
    voice {
      local_ts = 10.10.5.0/24
      remote_ts = 10.20.5.0/24
      ah_proposals = sha256
      mode = transport
    }
  }
}
`,
	}
	cfg, diags, err := loadSwanctlMem(t, files, Options{SwanctlPath: "/etc/swanctl/swanctl.conf"})
	if err != nil {
		t.Fatalf("%v\n%s", err, diags)
	}
	if got := cfg.Names(); !slices.Equal(got, []string{"site-lan", "site-voice"}) {
		t.Fatalf("conns %v", got)
	}
	lan, _ := cfg.Conn("site-lan")
	if lan.Version != IKEv1 || !lan.Aggressive || !lan.ForceEncaps || lan.MOBIKE || lan.Auto != AutoRoute {
		t.Errorf("lan %+v", lan)
	}
	if len(lan.IKE) != 2 || len(lan.Remote.Subnets) != 2 || lan.ReplayWindow != 128 {
		t.Errorf("lan IKE %v remote %v replay %d", lan.IKE, lan.Remote.Subnets, lan.ReplayWindow)
	}
	if lan.DPDAction != ActionRestart || lan.DPDDelay != 15*time.Second || lan.DPDTimeout != 45*time.Second || lan.CloseAction != ActionHold {
		t.Errorf("lan DPD %s %v %v close %s", lan.DPDAction, lan.DPDDelay, lan.DPDTimeout, lan.CloseAction)
	}
	if lan.Lifetime != time.Hour || lan.Margin != 10*time.Minute || lan.RekeyFuzz != 50 || lan.IKELifetime != 2*time.Hour+10*time.Minute {
		t.Errorf("lan timers %v %v %d %v", lan.Lifetime, lan.Margin, lan.RekeyFuzz, lan.IKELifetime)
	}
	if lan.LifeBytes != 2000000000 || lan.MarginBytes != 200000000 {
		t.Errorf("lan volume %d %d", lan.LifeBytes, lan.MarginBytes)
	}
	voice, _ := cfg.Conn("site-voice")
	if voice.Mode != ModeTransport || len(voice.AH) != 1 || voice.Auto != AutoAdd || voice.DPDAction != ActionClear {
		t.Errorf("voice mode %s AH %v auto %s dpd %s", voice.Mode, voice.AH, voice.Auto, voice.DPDAction)
	}
	psk, ok := cfg.PSK(lan)
	if !ok || string(psk.Bytes()) != "two words" {
		t.Error("quoted PSK not found")
	}
}

// TestSwanctlDiagnostics: errors and warnings name the swanctl.conf file,
// line and key.
func TestSwanctlDiagnostics(t *testing.T) {
	conf := `connections {
  bad {
    local_addrs = 198.51.100.1
    remote_addrs = 198.51.100.2
    proposals = aes128-sha256-modp1234
    unique = replace
    frobnicate = 1
    local {
      auth = psk
    }
    local2 {
      auth = eap
    }
    remote {
      auth = psk
      id = peer.example
    }
    children {
      net {
        local_ts = 10.1.0.0/33
        esp_proposals = aes128gcm16
        start_action = sometimes
        hw_offload = yes
      }
    }
  }
  tpl : other {
  }
pools {
}
`
	_, diags, err := loadSwanctlMem(t, map[string]string{"s.conf": conf}, Options{SwanctlPath: "s.conf"})
	if err == nil {
		t.Fatal("loaded")
	}
	var lines []string
	for _, d := range diags {
		lines = append(lines, d.String())
	}
	text := strings.Join(lines, "\n")
	for _, want := range []string{
		"s.conf:5: error: conn \"bad\": connections.bad.proposals: ",
		"s.conf:6: warning: connections.bad.unique: accepted but not supported",
		"s.conf:7: warning: connections.bad.frobnicate: unknown connection key",
		"s.conf:11: error: connections.bad.local2: a second local authentication round",
		"s.conf:20: error: conn \"bad\": connections.bad.children.net.local_ts: ",
		"s.conf:22: error: connections.bad.children.net.start_action: \"sometimes\"",
		"s.conf:23: warning: connections.bad.children.net.hw_offload: accepted but not supported",
		"s.conf:27: error: section connections.tpl: references to other sections",
		"s.conf:1: error: section connections is not closed",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("diagnostics lack %q:\n%s", want, text)
		}
	}
}

// TestSwanctlDetect: a swanctl.conf given as ConfPath is recognised by its
// name or by its sections; an ipsec.conf is not.
func TestSwanctlDetect(t *testing.T) {
	files := map[string]string{
		"/x/peer.conf":  labSwanctl,
		"/x/ipsec.conf": "conn a\n  left=1.2.3.4\n  leftsubnets={10.1.0.0/24 10.2.0.0/24}\n",
	}
	fs := memFS{files: files}
	if !looksLikeSwanctl(fs, "/x/peer.conf") || looksLikeSwanctl(fs, "/x/ipsec.conf") || !looksLikeSwanctl(fs, "/etc/swanctl/swanctl.conf") {
		t.Error("detection")
	}
	cfg, diags, err := loadSwanctlMem(t, files, Options{ConfPath: "/x/peer.conf"})
	if err != nil || len(cfg.Names()) != 1 {
		t.Fatalf("%v %s", err, diags)
	}
}

// FuzzSwanctl feeds arbitrary swanctl.conf text to Load: it must never
// panic, every diagnostic about the file must carry a line within it, a
// failed load must say why, and the secret of its secrets section must
// never appear in a diagnostic or a printed conn.
func FuzzSwanctl(f *testing.F) {
	f.Add(labSwanctl)
	f.Add("connections {\n a {\n  children {\n   b {\n    mode = beet\n   }\n  }\n }\n x : y {\n}\n")
	f.Add("secrets {\n ike {\n  secret = \"unterminated\n }\n}\nconnections { include *.conf\n")
	f.Fuzz(func(t *testing.T, conf string) {
		const marker = "FUZZ-SECRET-MARKER"
		conf += "\nsecrets {\n  ike-fuzz {\n    secret = " + marker + "\n  }\n}\n"
		files := map[string]string{"/etc/swanctl/swanctl.conf": conf}
		cfg, diags, err := Load(Options{ConfPath: "/etc/swanctl/swanctl.conf", fs: memFS{files: files}})
		if (err != nil) != diags.HasErrors() || (err == nil) != (cfg != nil) {
			t.Fatalf("error %v, config %v, diagnostics %v disagree", err, cfg != nil, diags)
		}
		lines := strings.Count(conf, "\n") + 1
		for _, d := range diags {
			if strings.Contains(d.String(), marker) {
				t.Fatalf("diagnostic leaks the secret: %s", d)
			}
			if d.File == "/etc/swanctl/swanctl.conf" && (d.Line <= 0 || d.Line > lines) {
				t.Fatalf("diagnostic outside the file: %s", d)
			}
		}
		if cfg == nil {
			return
		}
		for _, name := range cfg.Names() {
			v, _ := cfg.View(name)
			if strings.Contains(v.Text(), marker) {
				t.Fatal("view leaks the secret")
			}
		}
	})
}
