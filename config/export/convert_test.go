package export

import (
	"slices"
	"strings"
	"testing"

	"github.com/ipsecgw/ipsecgw/config"
)

// convertFixture adds to the export fixture a conn with appended defaults,
// a trap policy, hold actions and an any-peer responder.
const convertFixture = fixture + `
conn road
  authby=secret
  left=198.51.100.1
  leftid=@gw1
  leftsubnet=10.1.0.0/24
  right=%any
  rightid=@road.example
  rightsubnet=10.50.0.0/24
  ike=aes256gcm16-prfsha384-ecp384
  dpdaction=hold
  closeaction=hold
  auto=route

conn off
  authby=secret
  left=198.51.100.1
  right=198.51.100.77
`

const convertSecrets = fixtureSecrets + `@gw1 @road.example : PSK "road-key"
`

// TestConvertRoundTrip: ipsec.conf → swanctl.conf → ipsec.conf keeps every
// conn the same for ipsecgw.
func TestConvertRoundTrip(t *testing.T) {
	orig := load(t, convertFixture, convertSecrets, "198.51.100.1")
	sw, notes, err := Convert(orig, Swanctl, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(notes) != 1 || !strings.Contains(notes[0], "conn off: auto=ignore") {
		t.Errorf("notes %q", notes)
	}
	fromSwanctl := load(t, sw[0].Text, "", "198.51.100.1")
	back, _, err := Convert(fromSwanctl, StrongSwan, true)
	if err != nil {
		t.Fatal(err)
	}
	again := load(t, back[0].Text, back[1].Text, "198.51.100.1")
	for _, step := range []struct {
		name string
		cfg  *config.Config
	}{{"swanctl", fromSwanctl}, {"ipsec.conf again", again}} {
		if got := step.cfg.Names(); !slices.Equal(got, []string{"site", "legacy", "road"}) {
			t.Fatalf("%s: conns %v", step.name, got)
		}
		for _, name := range step.cfg.Names() {
			a, _ := orig.Conn(name)
			b, _ := step.cfg.Conn(name)
			checkSame(t, step.name+" "+name, a, b)
			pa, _ := orig.PSK(a)
			pb, ok := step.cfg.PSK(b)
			if !ok || !pa.Equal(pb) {
				t.Errorf("%s %s: PSK lost", step.name, name)
			}
		}
	}
	if t.Failed() || testing.Verbose() {
		t.Logf("swanctl.conf:\n%s", sw[0].Text)
	}
}

func checkSame(t *testing.T, what string, a, b config.Conn) {
	t.Helper()
	same := func(x, y config.End) bool {
		return x.Host == y.Host && idOf(x).Equal(idOf(y)) && slices.Equal(x.Subnets, y.Subnets) && x.Auth == y.Auth
	}
	if !same(a.Local, b.Local) || !same(a.Remote, b.Remote) {
		t.Errorf("%s: ends %+v %+v, want %+v %+v", what, b.Local, b.Remote, a.Local, a.Remote)
	}
	if !slices.EqualFunc(a.IKE, b.IKE, config.Proposal.Equal) || !slices.EqualFunc(a.ChildProposals(), b.ChildProposals(), config.Proposal.Equal) {
		t.Errorf("%s: proposals %v %v, want %v %v", what, b.IKE, b.ChildProposals(), a.IKE, a.ChildProposals())
	}
	if a.Version != b.Version || a.Auto != b.Auto || a.Mode != b.Mode {
		t.Errorf("%s: version/auto/type %s %s %s, want %s %s %s", what, b.Version, b.Auto, b.Mode, a.Version, a.Auto, a.Mode)
	}
	if a.Lifetime != b.Lifetime || a.Margin != b.Margin || a.RekeyFuzz != b.RekeyFuzz || a.IKELifetime != b.IKELifetime || a.Reauth != b.Reauth {
		t.Errorf("%s: timers %v %v %d %v %v, want %v %v %d %v %v", what, b.Lifetime, b.Margin, b.RekeyFuzz, b.IKELifetime, b.Reauth,
			a.Lifetime, a.Margin, a.RekeyFuzz, a.IKELifetime, a.Reauth)
	}
	if a.DPDAction != b.DPDAction || a.CloseAction != b.CloseAction || (a.DPDAction != config.ActionNone && (a.DPDDelay != b.DPDDelay || a.DPDTimeout != b.DPDTimeout)) {
		t.Errorf("%s: dpd %s %v %v close %s, want %s %v %v close %s", what, b.DPDAction, b.DPDDelay, b.DPDTimeout, b.CloseAction, a.DPDAction, a.DPDDelay, a.DPDTimeout, a.CloseAction)
	}
}
