package message

import (
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// writePcap writes the messages of the exchanges as UDP/500 datagrams
// between their addresses.
func writePcap(t *testing.T, path string, xs ...*exchange) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	macI := net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	macR := net.HardwareAddr{0x02, 0, 0, 0, 0, 2}
	for _, x := range xs {
		for i, msg := range x.msgs {
			src, dst, smac, dmac := x.initAddr, x.respAddr, macI, macR
			if !x.fromInitiator[i] {
				src, dst, smac, dmac = dst, src, macR, macI
			}
			eth := &layers.Ethernet{SrcMAC: smac, DstMAC: dmac, EthernetType: layers.EthernetTypeIPv4}
			ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP,
				SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
			udp := &layers.UDP{SrcPort: layers.UDPPort(src.Port()), DstPort: layers.UDPPort(dst.Port())}
			if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
				t.Fatal(err)
			}
			buf := gopacket.NewSerializeBuffer()
			opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
			if err := gopacket.SerializeLayers(buf, opts, eth, ip, udp, gopacket.Payload(msg)); err != nil {
				t.Fatal(err)
			}
			ts = ts.Add(10 * time.Millisecond)
			data := buf.Bytes()
			if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(data), Length: len(data)}, data); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// decryptionTable renders wireshark's ikev2_decryption_table UAT: one line
// per IKE SA, "SPIi,SPIr,SK_ei,SK_er,encr name,SK_ai,SK_ar,integ name" (the
// format strongSwan's save-keys plugin writes).
func decryptionTable(xs ...*exchange) string {
	var sb strings.Builder
	for _, x := range xs {
		fmt.Fprintf(&sb, "%016x,%016x,%s,%s,\"%s\",%s,%s,\"%s\"\n", x.spii, x.spir,
			hex.EncodeToString(x.keys.SKei), hex.EncodeToString(x.keys.SKer), x.s.wsEncr,
			hex.EncodeToString(x.keys.SKai), hex.EncodeToString(x.keys.SKar), x.s.wsInteg)
	}
	return sb.String()
}

// TestTsharkDissects checks our encoder and key schedule against an
// independent implementation: wireshark's IKEv2 dissector must parse every
// message without expert warnings and, given our derived keys, must verify
// the integrity checksums, decrypt the SK payloads and find the payload
// types we put in.
func TestTsharkDissects(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed (apt-get install tshark); skipping the independent wireshark cross-check")
	}
	dir := t.TempDir()
	xs := []*exchange{
		runExchange(t, suiteCBC, 0x0123456789abcdef, 0xfedcba9876543210),
		runExchange(t, suiteGCM, 0x1111222233334444, 0x5555666677778888),
	}
	pcap := filepath.Join(dir, "ike.pcap")
	writePcap(t, pcap, xs...)
	conf := filepath.Join(dir, "config")
	if err := os.MkdirAll(filepath.Join(conf, "wireshark"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(conf, "wireshark", "ikev2_decryption_table"), []byte(decryptionTable(xs...)), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		cmd := exec.Command(tshark, append([]string{"-n", "-r", pcap}, args...)...)
		cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+conf, "HOME="+dir)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tshark %v: %v\n%s", args, err, stderr.String())
		}
		return string(out)
	}

	verbose := run("-V")
	if p := os.Getenv("IKE_TSHARK_DUMP"); p != "" {
		_ = os.WriteFile(p, []byte(verbose), 0o600)
	}
	for _, bad := range []string{"Malformed", "Expert Info (Error", "Expert Info (Warning", "incorrect", "Not decrypted"} {
		if strings.Contains(verbose, bad) {
			t.Errorf("tshark reports %q:\n%s", bad, excerpt(verbose, bad))
		}
	}

	// One line per frame: the payload types tshark found, in order. Its
	// isakmp.typepayload lists the outer payloads and, after the SK
	// payload, the decrypted inner ones.
	fields := run("-T", "fields", "-E", "separator=;", "-e", "isakmp.exchangetype", "-e", "isakmp.typepayload")
	lines := strings.Split(strings.TrimSpace(fields), "\n")
	var want [][]PayloadType
	for _, x := range xs {
		for i := range x.msgs {
			want = append(want, append(append([]PayloadType(nil), x.outerTypes[i]...), x.innerTypes[i]...))
		}
	}
	if len(lines) != len(want) {
		t.Fatalf("tshark shows %d frames, want %d:\n%s", len(lines), len(want), fields)
	}
	for i, line := range lines {
		parts := strings.Split(line, ";")
		if len(parts) != 2 {
			t.Fatalf("frame %d: %q", i+1, line)
		}
		var got []PayloadType
		for _, s := range strings.Split(parts[1], ",") {
			n, err := strconv.Atoi(s)
			if err != nil {
				t.Fatalf("frame %d: %q", i+1, line)
			}
			// Proposal (2) and transform (3) substructures are
			// listed as payload types too; they are not payloads.
			if n != 2 && n != 3 {
				got = append(got, PayloadType(n))
			}
		}
		if fmt.Sprint(got) != fmt.Sprint(want[i]) {
			t.Errorf("frame %d: tshark payloads %v, ours %v", i+1, got, want[i])
		}
	}
	// 2 IKE SAs x (2 IKE_AUTH + 3 INFORMATIONAL SK payloads + 3 SKF
	// fragments), each decrypted and with its ICV (HMAC or GCM tag)
	// checked by wireshark; the fragments are reassembled by wireshark.
	if n := strings.Count(verbose, "Decrypted Data"); n != 16 {
		t.Errorf("tshark decrypted %d SK/SKF payloads, want 16", n)
	}
	if n := strings.Count(verbose, "[correct]"); n != 16 {
		t.Errorf("tshark verified %d integrity checksums, want 16", n)
	}
}

func excerpt(s, sub string) string {
	i := strings.Index(s, sub)
	return s[max(0, i-600):min(len(s), i+200)]
}
