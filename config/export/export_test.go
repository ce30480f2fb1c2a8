package export

import (
	"encoding/hex"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ipsecgw/ipsecgw/config"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// fixture is a gateway (gw1, 198.51.100.1) with an IKEv2 conn of two local
// subnets, two IKE proposals (one AEAD) and PFS, and an IKEv1 conn that
// only responds.
const fixture = `conn site
  keyexchange=ikev2
  authby=secret
  left=198.51.100.1
  leftid=@gw1
  leftsubnet=10.1.0.0/24,10.3.0.0/16
  right=198.51.100.2
  rightid=@gw2
  rightsubnet=10.2.0.0/24
  ike=aes256-sha256-modp2048,aes128gcm16-prfsha256-ecp256!
  esp=aes256-sha256-modp2048!
  ikelifetime=8h
  lifetime=1h
  margintime=5m
  dpdaction=restart
  dpddelay=10s
  dpdtimeout=60s
  auto=start

conn legacy
  keyexchange=ikev1
  authby=secret
  left=198.51.100.1
  leftsubnet=10.1.0.0/24
  right=203.0.113.9
  rightsubnet=10.9.0.0/24
  ike=aes128-sha1-modp2048
  esp=aes128-sha1
  auto=add
`

const fixturePSK = "Export-me-only-when-asked-42"

const fixtureSecrets = `@gw1 @gw2 : PSK "` + fixturePSK + `"
198.51.100.1 203.0.113.9 : PSK "` + fixturePSK + `"
`

// load writes conf and secrets into a temporary directory and loads them
// as the gateway with local address self would.
func load(t *testing.T, conf, secrets string, self string) *config.Config {
	t.Helper()
	dir := t.TempDir()
	cp, sp := filepath.Join(dir, "ipsec.conf"), filepath.Join(dir, "ipsec.secrets")
	if err := os.WriteFile(cp, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sp, []byte(secrets), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, diags, err := config.Load(config.Options{ConfPath: cp, SecretsPath: sp, LocalAddrs: []netip.Addr{netip.MustParseAddr(self)}})
	if err != nil {
		t.Fatalf("load: %v\n%s\n%s", err, diags, conf)
	}
	return cfg
}

// deviceInterface is the interface facing ipsecgw on the vendor devices.
var deviceInterface = map[Format]string{CiscoIOS: "GigabitEthernet1", JuniperSRX: "ge-0/0/0.0"}

// TestGolden compares every format of both conns with the golden files;
// the vendor files were checked line by line against the vendors'
// documented syntax (see the package comment of cisco.go and juniper.go).
func TestGolden(t *testing.T) {
	cfg := load(t, fixture, fixtureSecrets, "198.51.100.1")
	for _, conn := range []string{"site", "legacy"} {
		for _, f := range Formats {
			opts := Options{Format: f, WithSecrets: true, Interface: deviceInterface[f]}
			files, err := Export(cfg, conn, opts)
			if err != nil {
				t.Errorf("%s %s: %v", conn, f, err)
				continue
			}
			var got strings.Builder
			for _, fl := range files {
				got.WriteString("==> " + fl.Name + " <==\n" + fl.Text)
			}
			golden := filepath.Join("testdata", conn+"."+string(f)+".golden")
			if *update {
				if err := os.WriteFile(golden, []byte(got.String()), 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update once)", err)
			}
			if got.String() != string(want) {
				t.Errorf("%s %s differs from %s:\n%s", conn, f, golden, got.String())
			}
		}
	}
}

// TestRoundTrip loads the exports (strongswan, ipsecgw and libreswan's
// ipsec.conf, swanctl.conf) as the peer would, and checks that the peer's conn is ours
// turned around: ends swapped, the configured proposals, lifetimes, DPD,
// the same PSK, and the peer starting when we only respond.
func TestRoundTrip(t *testing.T) {
	cfg := load(t, fixture, fixtureSecrets, "198.51.100.1")
	peers := map[string]string{"site": "198.51.100.2", "legacy": "203.0.113.9"}
	for _, name := range []string{"site", "legacy"} {
		ours, _ := cfg.Conn(name)
		for _, f := range []Format{StrongSwan, IPsecGW, Libreswan, Swanctl} {
			files, err := Export(cfg, name, Options{Format: f, WithSecrets: true})
			if err != nil {
				t.Fatal(err)
			}
			secrets := ""
			if len(files) > 1 {
				secrets = files[1].Text
			}
			pc := load(t, files[0].Text, secrets, peers[name])
			theirs, ok := pc.Conn(name)
			if !ok {
				t.Fatalf("%s %s: conn missing", name, f)
			}
			checkSwapped(t, string(f), ours, theirs)
			psk, ok := pc.PSK(theirs)
			if !ok || string(psk.Bytes()) != fixturePSK {
				t.Errorf("%s %s: the peer finds no or another PSK", name, f)
			}
		}
	}
}

func checkSwapped(t *testing.T, what string, ours, theirs config.Conn) {
	t.Helper()
	if theirs.Local.Host != ours.Remote.Host || theirs.Remote.Host != ours.Local.Host {
		t.Errorf("%s: hosts %s/%s, want %s/%s", what, theirs.Local.Host, theirs.Remote.Host, ours.Remote.Host, ours.Local.Host)
	}
	if !idOf(theirs.Local).Equal(idOf(ours.Remote)) || !idOf(theirs.Remote).Equal(idOf(ours.Local)) {
		t.Errorf("%s: ids %s/%s, want %s/%s", what, idOf(theirs.Local), idOf(theirs.Remote), idOf(ours.Remote), idOf(ours.Local))
	}
	if !slices.Equal(theirs.Local.Subnets, ours.Remote.Subnets) || !slices.Equal(theirs.Remote.Subnets, ours.Local.Subnets) {
		t.Errorf("%s: subnets %v/%v, want %v/%v", what, theirs.Local.Subnets, theirs.Remote.Subnets, ours.Remote.Subnets, ours.Local.Subnets)
	}
	if !slices.EqualFunc(theirs.IKE, ours.ConfiguredIKE(), config.Proposal.Equal) {
		t.Errorf("%s: IKE proposals %v, want %v", what, theirs.IKE, ours.ConfiguredIKE())
	}
	if !slices.EqualFunc(theirs.ChildProposals(), ours.ConfiguredChild(), config.Proposal.Equal) {
		t.Errorf("%s: CHILD proposals %v, want %v", what, theirs.ChildProposals(), ours.ConfiguredChild())
	}
	if theirs.Version.Initiates() != ours.Version.Initiates() {
		t.Errorf("%s: version %s, want %s", what, theirs.Version, ours.Version)
	}
	if theirs.IKELifetime != ours.IKELifetime || theirs.Lifetime != ours.Lifetime || theirs.Margin != ours.Margin || theirs.RekeyFuzz != ours.RekeyFuzz {
		t.Errorf("%s: lifetimes %v/%v/%v/%d, want %v/%v/%v/%d", what, theirs.IKELifetime, theirs.Lifetime, theirs.Margin, theirs.RekeyFuzz,
			ours.IKELifetime, ours.Lifetime, ours.Margin, ours.RekeyFuzz)
	}
	if (ours.DPDAction == config.ActionNone) != (theirs.DPDAction == config.ActionNone) ||
		(ours.DPDAction != config.ActionNone && (theirs.DPDDelay != ours.DPDDelay || theirs.DPDTimeout != ours.DPDTimeout)) {
		t.Errorf("%s: DPD %s %v %v, ours %s %v %v", what, theirs.DPDAction, theirs.DPDDelay, theirs.DPDTimeout, ours.DPDAction, ours.DPDDelay, ours.DPDTimeout)
	}
	wantAuto := config.AutoStart
	if ours.Auto == config.AutoStart {
		wantAuto = config.AutoAdd
	}
	if theirs.Auto != wantAuto {
		t.Errorf("%s: auto=%s, want %s (exactly one end initiates)", what, theirs.Auto, wantAuto)
	}
}

// TestNoSecretsUnlessAsked: without WithSecrets no format carries the
// PSK, as text or hex.
func TestNoSecretsUnlessAsked(t *testing.T) {
	cfg := load(t, fixture, fixtureSecrets, "198.51.100.1")
	for _, f := range Formats {
		files, err := Export(cfg, "site", Options{Format: f, Interface: deviceInterface[f]})
		if err != nil {
			t.Fatal(err)
		}
		for _, fl := range files {
			if strings.Contains(fl.Text, fixturePSK) || strings.Contains(fl.Text, hex.EncodeToString([]byte(fixturePSK))) {
				t.Errorf("%s %s carries the PSK without WithSecrets", f, fl.Name)
			}
		}
	}
}

func TestExportErrors(t *testing.T) {
	conf := `conn dyn
  authby=secret
  left=%defaultroute
  leftid=@gw1
  leftsubnet=10.1.0.0/24
  right=198.51.100.2
  rightsubnet=10.2.0.0/24
  ike=chacha20poly1305-prfsha256-x25519!
  esp=chacha20poly1305!
  auto=add
`
	cfg := load(t, conf, `@gw1 198.51.100.2 : PSK "k"`+"\n", "198.51.100.1")
	cases := []struct {
		opts Options
		want string
	}{
		{Options{Format: StrongSwan}, "--address"},
		{Options{Format: CiscoIOS, Address: "198.51.100.1"}, "no equivalent of chacha20poly1305"},
		{Options{Format: JuniperSRX, Address: "198.51.100.1"}, "--interface"},
		{Options{Format: "vyos", Address: "198.51.100.1"}, "unknown format"},
	}
	for _, c := range cases {
		_, err := Export(cfg, "dyn", c.opts)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: error %v, want one mentioning %q", c.opts, err, c.want)
		}
	}
	files, err := Export(cfg, "dyn", Options{Format: Swanctl, Address: "198.51.100.1"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(files[0].Text, "remote_addrs = 198.51.100.1") {
		t.Errorf("--address not used:\n%s", files[0].Text)
	}
	if _, err := Export(cfg, "nope", Options{Format: Swanctl}); err == nil {
		t.Error("an unknown conn exported")
	}
}
