package interop

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/internal/lab"
)

// TestHybridMLKEMIpsecgwPair: two ipsecgw negotiate
// aes256-sha384-x25519-ke1_mlkem768 (RFC 9370 additional key exchange in
// an IKE_INTERMEDIATE exchange, RFC 9242) and carry traffic; tshark
// dissects the IKE_INTERMEDIATE exchange on the wire, and decrypts and
// verifies IKE_AUTH with the keys ipsecgw exports, which exist only
// after ML-KEM's secret was mixed in. strongSwan 5.9 has no ML-KEM, so
// the peer is ipsecgw.
func TestHybridMLKEMIpsecgwPair(t *testing.T) {
	lab.Require(t, "tshark", "tcpdump")
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	const ike = "aes256-sha384-x25519-ke1_mlkem768"
	c1, c2 := siteConns(l, ike, "aes256gcm16")
	gw2 := startGateway(ctx, t, l.GW2, gatewayFiles{Conf: c2.IPsecConf(), Secrets: c2.IPsecSecrets(), LogLevel: "info"})
	gw1 := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: c1.IPsecConf(), Secrets: c1.IPsecSecrets(), LogLevel: "info"})
	// Whole packets: the ML-KEM key and ciphertext make ~1.2 kB messages.
	pcap := filepath.Join(t.TempDir(), "ul.pcap")
	capture, err := l.GW1.Start("tcpdump-ul", "tcpdump", "-i", "ul", "-n", "-U", "--immediate-mode", "-s", "0", "-w", pcap, "udp")
	if err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(capture.Output(), "listening on") {
		select {
		case <-capture.Done():
			t.Fatalf("tcpdump: %s", capture.Output())
		case <-time.After(20 * time.Millisecond):
		}
	}
	start := time.Now()
	if out, err := gw1.cli(ctx, "up", "s2s"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	up := time.Since(start)
	st1, err := gw1.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	st2, err := gw2.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	pingBothWays(ctx, t, l, 3)
	for _, st := range []control.ConnStatus{st1, st2} {
		if st.IKE == nil || !strings.HasSuffix(st.IKE.Proposal, "-ke1_mlkem768") {
			t.Errorf("status does not show the hybrid: %+v", st.IKE)
		}
	}
	out, err := gw1.cli(ctx, "status")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("up in %v; ipsecgw status (gw1):\n%s", up.Round(time.Millisecond), out)

	keys := t.TempDir()
	if out, err := gw1.cli(ctx, "export-keys", "--dir", keys); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if err := capture.Stop(syscall.SIGINT, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	tshark := func(filter string, fields ...string) []string {
		args := []string{"-n", "-r", pcap, "-o", "udp.try_heuristic_first:FALSE", "-Y", filter, "-T", "fields"}
		for _, f := range fields {
			args = append(args, "-e", f)
		}
		cmd := exec.CommandContext(ctx, "tshark", args...)
		cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+keys, "HOME="+keys)
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("tshark %s: %v", filter, err)
		}
		return strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	spi := "isakmp.ispi == " + colons(st1.IKE.InitiatorSPI)
	// Exchange type 43 is IKE_INTERMEDIATE (Debian 12's Wireshark 4.0
	// dissects it without knowing its name): a request and a response
	// (ML-KEM-768's key and ciphertext, over 1 kB each), each an Encrypted
	// payload (46) or fragments of one (53), with message ID 1 between
	// IKE_SA_INIT (0) and IKE_AUTH (2).
	inter := tshark(spi+" && isakmp.exchangetype == 43", "frame.number", "udp.length", "isakmp.flags", "isakmp.messageid", "isakmp.nextpayload")
	if len(inter) < 2 || inter[0] == "" {
		t.Errorf("tshark found no IKE_INTERMEDIATE request and response of IKE SA %s:\n%s", st1.IKE.InitiatorSPI, strings.Join(inter, "\n"))
	}
	// The proposal in IKE_SA_INIT carries Transform Type 6 (ADDKE1), in
	// the request and in the response.
	addke := tshark(spi+" && isakmp.exchangetype == 34 && isakmp.tf.type == 6", "frame.number", "isakmp.tf.type", "isakmp.tf.id")
	if len(addke) != 2 || addke[0] == "" {
		t.Errorf("IKE_SA_INIT without ADDKE1 in both directions: %q", addke)
	}
	// IKE_AUTH (35) decrypts and verifies only with the keys after the
	// additional key exchange: its AUTH payload (39) is visible only then.
	auth := tshark(spi+" && isakmp.exchangetype == 35 && isakmp.typepayload == 39", "frame.number")
	if len(auth) != 2 || auth[0] == "" {
		t.Errorf("tshark decrypted %d IKE_AUTH messages with the exported (post-ML-KEM) keys, want 2", len(auth))
	}
	t.Logf("tshark: IKE_INTERMEDIATE frames (number, UDP length, flags, message ID, first payload):\n%s\nIKE_SA_INIT frames with ADDKE1 (number, transform types, transform IDs):\n%s\nIKE_AUTH frames decrypted with the exported keys: %s",
		strings.Join(inter, "\n"), strings.Join(addke, " | "), strings.Join(auth, ", "))
	if t.Failed() {
		t.Log(strings.Join(tshark(spi, "frame.number", "_ws.col.Info"), "\n"))
	}
}
