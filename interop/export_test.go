package interop

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/internal/lab"
)

// exportConf is gw1's ipsecgw conn for the export tests: it only
// responds, so the exported peer configuration is the one that starts the
// tunnel; FQDN IDs, non-default lifetimes and DPD, so that all of them
// must survive the export for the peer to match.
func exportConf(l *lab.Lab) string {
	return fmt.Sprintf(`conn s2s
  keyexchange=ikev2
  authby=secret
  left=%s
  leftid=@gw1.example
  leftsubnet=%s
  right=%s
  rightid=@gw2.example
  rightsubnet=%s
  ike=aes256-sha384-ecp384!
  esp=aes128gcm16-modp2048!
  ikelifetime=2h
  lifetime=40m
  margintime=4m
  dpdaction=clear
  dpddelay=20s
  dpdtimeout=90s
  auto=add
`, l.GW1.Addr, l.GW1.LAN, l.GW2.PublicAddr, l.GW2.LAN)
}

const exportSecrets = "@gw1.example @gw2.example : PSK \"" + testPSK + "\"\n"

// exportFor runs `ipsecgw export s2s --format FORMAT --with-secrets --dir`
// inside gw1's namespace against the gateway's own files and returns the
// files it wrote.
func exportFor(ctx context.Context, t *testing.T, l *lab.Lab, gw *gateway, format string) map[string]string {
	t.Helper()
	dir := filepath.Join(gw.Dir, "export-"+format)
	out, err := l.GW1.Run(ctx, binary, "export", "s2s", "--format", format, "--with-secrets", "--dir", dir,
		"--config", gw.ConfPath, "--secrets", filepath.Join(gw.Dir, "ipsec.secrets"), "--settings", "")
	if err != nil {
		t.Fatalf("export: %v\n%s", err, out)
	}
	files := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		files[e.Name()] = string(b)
	}
	t.Logf("export --format %s:\n%s", format, strings.Join(func() []string {
		var s []string
		for n, text := range files {
			s = append(s, "==> "+n+" <==\n"+strings.ReplaceAll(text, testPSK, "<psk>"))
		}
		return s
	}(), "\n"))
	return files
}

// waitUpAndPing waits until gw1's conn is established and the LAN hosts
// reach each other through it.
func waitUpAndPing(ctx context.Context, t *testing.T, l *lab.Lab, gw *gateway) control.ConnStatus {
	t.Helper()
	st, err := gw.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	if st.IKE == nil || st.IKE.Initiator {
		t.Errorf("gw1 (auto=add) should be the responder: %+v", st.IKE)
	}
	if st.IKE != nil && (st.IKE.LocalID != "@gw1.example" || st.IKE.RemoteID != "@gw2.example") {
		t.Errorf("IDs %s/%s, want @gw1.example/@gw2.example", st.IKE.LocalID, st.IKE.RemoteID)
	}
	pingBothWays(ctx, t, l, 3)
	return st
}

// TestExportToStrongSwan: the swanctl and strongswan (ipsec.conf) exports
// of an ipsecgw conn, loaded unchanged into strongSwan on gw2, start the
// tunnel to ipsecgw with the conn's proposals, and traffic flows.
func TestExportToStrongSwan(t *testing.T) {
	for _, format := range []string{"swanctl", "strongswan"} {
		t.Run(format, func(t *testing.T) {
			l := lab.New(t, lab.Options{})
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			gw := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: exportConf(l), Secrets: exportSecrets})
			files := exportFor(ctx, t, l, gw, format)
			var charon *lab.Charon
			var err error
			if format == "swanctl" {
				charon, err = l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: files["swanctl.conf"]})
			} else {
				charon, err = l.GW2.StartStarter(ctx, lab.StarterConfig{IPsec: files["ipsec.conf"], Secrets: files["ipsec.secrets"]})
			}
			if charon != nil {
				t.Cleanup(func() {
					if t.Failed() {
						t.Logf("charon log excerpt:\n%s", strings.Join(charon.LogExcerpt(), "\n"))
					}
				})
			}
			if err != nil {
				t.Fatal(err)
			}
			st := waitUpAndPing(ctx, t, l, gw)
			// The CHILD SA is named after the conn in both exports.
			sa, err := charon.WaitEstablished(ctx, "s2s", "s2s")
			if err != nil {
				t.Fatal(err)
			}
			if got := sa.Proposal(); got != "AES_CBC-256/HMAC_SHA2_384_192/PRF_HMAC_SHA2_384/ECP_384" {
				t.Errorf("strongSwan IKE proposal %s", got)
			}
			// The CHILD SA of IKE_AUTH has no key exchange of its own; the
			// PFS group (modp2048) is used from its first rekey on.
			if ch, ok := sa.Child("s2s"); !ok || ch.Proposal() != "AES_GCM_16-128" {
				t.Errorf("strongSwan CHILD SA %+v", ch)
			}
			if len(st.Children) != 1 || st.Children[0].Proposal != "aes128gcm16" {
				t.Errorf("ipsecgw CHILD SA %+v", st.Children)
			}
		})
	}
}

// TestExportToIpsecgw: the ipsecgw export runs the peer as a second
// ipsecgw daemon on gw2, which starts the tunnel.
func TestExportToIpsecgw(t *testing.T) {
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	gw := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: exportConf(l), Secrets: exportSecrets})
	files := exportFor(ctx, t, l, gw, "ipsecgw")
	peer := startGateway(ctx, t, l.GW2, gatewayFiles{Conf: files["ipsec.conf"], Secrets: files["ipsec.secrets"]})
	waitUpAndPing(ctx, t, l, gw)
	st, err := peer.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	if st.IKE == nil || !st.IKE.Initiator || st.IKE.Proposal != "aes256-sha384-prfsha384-ecp384" {
		t.Errorf("gw2 (the export, auto=start) IKE SA %+v", st.IKE)
	}
}
