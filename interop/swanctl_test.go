package interop

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/internal/lab"
)

// TestSwanctlInput: ipsecgw runs from the swanctl.conf the interop suite
// renders for its strongSwan peers (lab.SwanctlConf, connections and
// secrets), with the sides swapped, recognised by its content. IKEv2 with
// ipsecgw starting the tunnel (start_action = start), IKEv1 with
// strongSwan starting it.
func TestSwanctlInput(t *testing.T) {
	cases := []struct {
		name       string
		version    int
		ike, esp   string
		gwStarts   bool
		wantCharon string
	}{
		{"ikev2", 2, "aes256-sha256-ecp256", "aes128gcm16", true, "AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/ECP_256"},
		{"ikev1", 1, "aes128-sha1-modp2048", "aes128-sha1", false, "AES_CBC-128/HMAC_SHA1_96/PRF_HMAC_SHA1/MODP_2048"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := lab.New(t, lab.Options{})
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			c1 := lab.SiteToSite(l.GW1, l.GW2, tc.version, testPSK, tc.ike, tc.esp)
			c2 := lab.SiteToSite(l.GW2, l.GW1, tc.version, testPSK, tc.ike, tc.esp)
			if tc.gwStarts {
				c1.StartAction = "start"
			} else {
				c2.StartAction = "start"
			}
			charon, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf(c2)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("charon log excerpt:\n%s", strings.Join(charon.LogExcerpt(), "\n"))
				}
			})
			// The swanctl.conf goes where ipsec.conf would; its PSK is in its
			// secrets section, ipsec.secrets stays empty.
			gw := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: lab.SwanctlConf(c1)})
			st, err := gw.waitState(ctx, "s2s", control.StateEstablished)
			if err != nil {
				t.Fatal(err)
			}
			if st.IKE == nil || st.IKE.Initiator != tc.gwStarts || st.Version != map[int]string{1: "ikev1", 2: "ikev2"}[tc.version] {
				t.Errorf("ipsecgw: version %s, IKE SA %+v; want initiator=%v", st.Version, st.IKE, tc.gwStarts)
			}
			sa, err := charon.WaitEstablished(ctx, "s2s", "net")
			if err != nil {
				t.Fatal(err)
			}
			if sa.Proposal() != tc.wantCharon {
				t.Errorf("strongSwan IKE proposal %s, want %s", sa.Proposal(), tc.wantCharon)
			}
			pingBothWays(ctx, t, l, 3)
		})
	}
}
