package interop

import (
	"context"
	"fmt"
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

// TestFollowupKEIpsecgwPair: two ipsecgw with an ML-KEM hybrid IKE SA
// (aes256-sha384-x25519-ke1_mlkem768) and CHILD SA
// (aes256gcm16-x25519-ke1_mlkem768) rekey both with CREATE_CHILD_SA and
// an IKE_FOLLOWUP_KE exchange (RFC 9370 §2.2.4) while host1 pings host2
// every 2 ms: gw1 rekeys the CHILD SA every 3 s (lifetime 10 s, the
// least ipsecgw takes, margintime 7 s, no fuzz) and the IKE SA every 7 s
// (ikelifetime 14 s, reauth=no) for ~15 s, and no echo request or reply
// is lost. tshark
// sees exchange type 44 (IKE_FOLLOWUP_KE; Debian 12's Wireshark 4.0 does
// not name it) once per rekey in each direction, and decrypts the
// exchanges of the first and the last IKE SA with the keys ipsecgw
// exports: the KE payload and the ADDITIONAL_KEY_EXCHANGE notify (16441)
// that links it to its CREATE_CHILD_SA.
func TestFollowupKEIpsecgwPair(t *testing.T) {
	if testing.Short() {
		t.Skip("rekey waits for lifetimes to pass")
	}
	lab.Require(t, "tshark", "tcpdump")
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const ike, esp = "aes256-sha384-x25519-ke1_mlkem768", "aes256gcm16-x25519-ke1_mlkem768"
	c1, c2 := siteConns(l, ike, esp)
	conf1 := c1.IPsecConf() + "  lifetime=10s\n  ikelifetime=14s\n  margintime=7s\n  rekeyfuzz=0%\n  reauth=no\n"
	conf2 := c2.IPsecConf() + "  lifetime=1h\n  ikelifetime=2h\n  reauth=no\n"
	gw2 := startGateway(ctx, t, l.GW2, gatewayFiles{Conf: conf2, Secrets: c2.IPsecSecrets(), LogLevel: "info"})
	gw1 := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: conf1, Secrets: c1.IPsecSecrets(), LogLevel: "info"})
	// IKE only (port 500, and 4500 with the non-ESP marker), whole
	// packets: ML-KEM keys and ciphertexts make ~1.2 kB messages.
	pcap := filepath.Join(t.TempDir(), "ul.pcap")
	capture, err := l.GW1.Start("tcpdump-ul", "tcpdump", "-i", "ul", "-n", "-U", "--immediate-mode", "-s", "0", "-w", pcap,
		"udp port 500 or (udp port 4500 and udp[8:4] == 0)")
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
	if out, err := gw1.cli(ctx, "up", "s2s"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	before, err := gw1.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gw2.waitState(ctx, "s2s", control.StateEstablished); err != nil {
		t.Fatal(err)
	}
	// The first IKE SA's keys, before its rekey (7 s from now).
	keysFirst := t.TempDir()
	if out, err := gw1.cli(ctx, "export-keys", "--dir", keysFirst); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}

	start := time.Now()
	const count = 7500 // 2 ms apart: ~15 s, 4 CHILD rekeys and 2 IKE rekeys
	sent, received, out, err := floodPing(ctx, l.Host1, l.Host2.Addr, count, "0.002")
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	log1 := gw1.Log()
	childRekeys := strings.Count(log1, "rekeying CHILD SA")
	ikeRekeys := strings.Count(log1, "IKE SA rekeyed")
	t.Logf("flood ping over %v: %d sent, %d received, %d lost, across %d CHILD rekeys and %d IKE rekeys",
		took.Round(time.Second), sent, received, sent-received, childRekeys, ikeRekeys)
	if sent != count || received != sent {
		t.Errorf("lost %d of %d echo requests/replies across the rekeys:\n%s", sent-received, sent, out)
	}
	if childRekeys < 3 || ikeRekeys < 1 {
		t.Errorf("%d CHILD rekeys and %d IKE rekeys, want at least 3 and 1", childRekeys, ikeRekeys)
	}
	for _, s := range []string{"CHILD SA rekeying failed", "IKE SA rekeying failed", "reauthenticating", "reached its hard lifetime"} {
		if n := strings.Count(log1, s); n > 0 {
			t.Errorf("gw1 log: %d × %q", n, s)
		}
	}
	after, err := gw1.waitState(ctx, "s2s", control.StateEstablished)
	if err != nil {
		t.Fatal(err)
	}
	st2, err := gw2.status(ctx, "s2s")
	if err != nil {
		t.Fatal(err)
	}
	if after.IKE == nil || after.IKE.InitiatorSPI == before.IKE.InitiatorSPI || len(after.Children) != 1 {
		t.Fatalf("after the rekeys: %+v", after)
	}
	for _, st := range []control.ConnStatus{after, st2} {
		if st.IKE == nil || !strings.HasSuffix(st.IKE.Proposal, "-ke1_mlkem768") {
			t.Errorf("IKE SA status without the hybrid: %+v", st.IKE)
		}
		for _, c := range st.Children {
			if !strings.HasSuffix(c.Proposal, "x25519-ke1_mlkem768") {
				t.Errorf("CHILD SA status without the hybrid: %q", c.Proposal)
			}
		}
	}
	status, err := gw1.cli(ctx, "status")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ipsecgw status (gw1) after the rekeys:\n%s", status)

	keysLast := t.TempDir()
	if out, err := gw1.cli(ctx, "export-keys", "--dir", keysLast); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if err := capture.Stop(syscall.SIGINT, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	rekeys := childRekeys + ikeRekeys // by the end of the ping (more may follow before the capture stops)
	// One Wireshark profile with the keys of both IKE SAs.
	keys := t.TempDir()
	var table []byte
	for _, d := range []string{keysFirst, keysLast} {
		b, err := os.ReadFile(filepath.Join(d, "wireshark", "ikev2_decryption_table"))
		if err != nil {
			t.Fatal(err)
		}
		table = append(table, b...)
	}
	if err := os.MkdirAll(filepath.Join(keys, "wireshark"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(keys, "wireshark", "ikev2_decryption_table"), table, 0o600); err != nil {
		t.Fatal(err)
	}
	tshark := func(filter string, fields ...string) []string {
		args := []string{"-n", "-r", pcap, "-o", "udp.try_heuristic_first:FALSE", "-Y", filter, "-T", "fields", "-E", "separator=/s"}
		for _, f := range fields {
			args = append(args, "-e", f)
		}
		cmd := exec.CommandContext(ctx, "tshark", args...)
		cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+keys, "HOME="+keys)
		b, err := cmd.Output()
		if err != nil {
			t.Fatalf("tshark %s: %v", filter, err)
		}
		if s := strings.TrimSpace(string(b)); s != "" {
			return strings.Split(s, "\n")
		}
		return nil
	}
	// Messages, not datagrams: an ML-KEM-768 request goes out as two
	// fragments (IKE SA SPI, message ID and flags tell them apart).
	messages := func(rows []string) (req, rsp int) {
		seen := map[string]bool{}
		for _, r := range rows {
			f := strings.Fields(r)
			if len(f) < 3 || seen[r] {
				continue
			}
			seen[r] = true
			var flags int
			fmt.Sscanf(f[2], "0x%x", &flags)
			if flags&0x20 != 0 {
				rsp++
			} else {
				req++
			}
		}
		return
	}
	followups := tshark("isakmp.exchangetype == 44", "isakmp.ispi", "isakmp.messageid", "isakmp.flags")
	creates := tshark("isakmp.exchangetype == 36", "isakmp.ispi", "isakmp.messageid", "isakmp.flags")
	fReq, fRsp := messages(followups)
	cReq, cRsp := messages(creates)
	t.Logf("tshark: %d CREATE_CHILD_SA requests / %d responses, %d IKE_FOLLOWUP_KE (type 44) requests / %d responses (%d datagrams)",
		cReq, cRsp, fReq, fRsp, len(followups))
	// Every CREATE_CHILD_SA is followed by one IKE_FOLLOWUP_KE, answered;
	// only the last rekey may be cut by the end of the capture.
	if fReq < rekeys || cReq < fReq || cReq > fReq+1 || fRsp < fReq-1 || fRsp > fReq {
		t.Errorf("want one answered IKE_FOLLOWUP_KE exchange per CREATE_CHILD_SA, one per rekey (%d by the end of the ping)", rekeys)
	}
	// Decrypted with the exported keys (the first and the last IKE SA):
	// the follow-ups' KE payloads (34) and the link notify in them and in
	// the CREATE_CHILD_SA responses.
	ke := tshark("isakmp.exchangetype == 44 && isakmp.typepayload == 34", "frame.number", "isakmp.messageid", "isakmp.flags", "isakmp.key_exchange.dh_group")
	link := tshark("isakmp.notify.msgtype == 16441", "frame.number", "isakmp.exchangetype", "isakmp.flags")
	t.Logf("decrypted IKE_FOLLOWUP_KE with a KE payload (frame, message ID, flags, method):\n%s\nADDITIONAL_KEY_EXCHANGE notifies (frame, exchange, flags):\n%s",
		strings.Join(ke, "\n"), strings.Join(link, "\n"))
	if len(ke) < 2 || len(link) < 2 {
		t.Errorf("tshark decrypted %d IKE_FOLLOWUP_KE messages with a KE payload and %d ADDITIONAL_KEY_EXCHANGE notifies, want at least 2 each", len(ke), len(link))
	}
	if t.Failed() {
		t.Log(strings.Join(tshark("isakmp", "frame.number", "_ws.col.Info"), "\n"))
	}
}
