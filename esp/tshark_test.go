package esp

import (
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/ipsecgw/ipsecgw/transform"
)

// requireInterop makes a missing tool a failure when
// IPSECGW_REQUIRE_INTEROP=1 (CI), a skip otherwise.
func requireInterop(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("IPSECGW_REQUIRE_INTEROP") == "1" {
		t.Fatalf("%s (IPSECGW_REQUIRE_INTEROP=1)", why)
	}
	t.Skip(why)
}

// wiresharkNames maps our transforms to the names of wireshark's esp_sa
// UAT (packet-ipsec.c value strings). ChaCha20-Poly1305 is missing from
// wireshark 4.0's ESP dissector, AES-XCBC and SHA-256-96 (ID 1026) too.
var wiresharkEncr = map[transform.ID]string{
	transform.EncrNull:     "NULL",
	transform.Encr3DES:     "TripleDES-CBC [RFC2451]",
	transform.EncrAESCBC:   "AES-CBC [RFC3602]",
	transform.EncrAESCTR:   "AES-CTR [RFC3686]",
	transform.EncrAESGCM8:  "AES-GCM with 8 octet ICV [RFC4106]",
	transform.EncrAESGCM12: "AES-GCM with 12 octet ICV [RFC4106]",
	transform.EncrAESGCM16: "AES-GCM with 16 octet ICV [RFC4106]",
}

var wiresharkInteg = map[transform.ID]string{
	transform.IntegNone:             "NULL",
	transform.IntegHMACSHA1_96:      "HMAC-SHA-1-96 [RFC2404]",
	transform.IntegHMACMD5_96:       "HMAC-MD5-96 [RFC2403]",
	transform.IntegHMACSHA2_256_128: "HMAC-SHA-256-128 [RFC4868]",
	transform.IntegHMACSHA2_384_192: "HMAC-SHA-384-192 [RFC4868]",
	transform.IntegHMACSHA2_512_256: "HMAC-SHA-512-256 [RFC4868]",
}

// TestTsharkDecryptsOurESP seals inner packets with every suite wireshark
// knows, writes them as whole IP packets (ESP-in-UDP and raw ESP, IPv4 and
// IPv6 outer) to a pcap, and has tshark's ESP dissector decrypt and
// authenticate them with the keys: the inner packets must come out intact.
func TestTsharkDecryptsOurESP(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		requireInterop(t, "tshark not installed")
	}
	dir := t.TempDir()
	f, err := os.Create(filepath.Join(dir, "esp.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeRaw); err != nil {
		t.Fatal(err)
	}
	var uat strings.Builder
	type want struct {
		spi   uint32
		inner string
	}
	var wants []want
	spi := uint32(0x1000)
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, s := range allSuites(t) {
		en, ok1 := wiresharkEncr[s.encr.ID]
		in, ok2 := wiresharkInteg[s.integ.ID]
		if !ok1 || !ok2 {
			continue
		}
		for k, outer := range []struct {
			src, dst string
			udp      bool
		}{
			{"198.51.100.1:4500", "198.51.100.2:4500", true},
			{"198.51.100.1:0", "198.51.100.2:0", false},
			{"[2001:db8::1]:4500", "[2001:db8::2]:4500", true},
		} {
			spi++
			src, dst := mustAP(outer.src), mustAP(outer.dst)
			fam := "IPv4"
			if src.Addr().Is6() {
				fam = "IPv6"
			}
			ik := "0x"
			if s.iKey != nil {
				ik += hex.EncodeToString(s.iKey)
			}
			fmt.Fprintf(&uat, "\"%s\",\"%s\",\"%s\",\"0x%08x\",\"%s\",\"0x%s\",\"%s\",\"%s\"\n",
				fam, src.Addr(), dst.Addr(), spi, en, hex.EncodeToString(s.encKey), in, ik)
			p := s.protector(t)
			for seq := uint64(1); seq <= 2; seq++ {
				var inner []byte
				if (int(seq)+k)%2 == 0 {
					inner = ipv6Packet(61+int(seq), "fd00:1::2", "fd00:2::2")
				} else {
					inner = ipv4Packet(100+int(seq)*7, "10.1.0.2", "10.2.0.2", uint16(seq))
				}
				buf, off := newBuf(inner)
				start, pkt, err := SealPacket(p, spi, seq, false, buf, off, len(inner))
				if err != nil {
					t.Fatal(err)
				}
				ipStart, err := WriteOuter(buf, start, start+len(pkt), src, dst, outer.udp)
				if err != nil {
					t.Fatal(err)
				}
				whole := buf[ipStart : start+len(pkt)]
				ci := gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(whole), Length: len(whole)}
				ts = ts.Add(time.Millisecond)
				if err := w.WritePacket(ci, whole); err != nil {
					t.Fatal(err)
				}
				wants = append(wants, want{spi, hex.EncodeToString(inner)})
			}
		}
	}
	f.Close()
	conf := filepath.Join(dir, "config")
	if err := os.MkdirAll(filepath.Join(conf, "wireshark"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(conf, "wireshark", "esp_sa"), []byte(uat.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) string {
		cmd := exec.Command(tshark, append([]string{"-n", "-r", filepath.Join(dir, "esp.pcap"),
			"-o", "esp.enable_encryption_decode:TRUE", "-o", "esp.enable_authentication_check:TRUE",
			"-o", "udp.try_heuristic_first:FALSE"}, args...)...)
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
	if p := os.Getenv("ESP_TSHARK_DUMP"); p != "" {
		_ = os.WriteFile(p, []byte(verbose), 0o600)
	}
	for _, bad := range []string{"Malformed", "Expert Info (Error", "Expert Info (Warning", "[incorrect", "Bad]"} {
		if strings.Contains(verbose, bad) {
			i := strings.Index(verbose, bad)
			t.Errorf("tshark reports %q: ...%s...", bad, verbose[max(0, i-1500):min(len(verbose), i+300)])
		}
	}
	fields := run("-T", "fields", "-E", "separator=;", "-e", "esp.spi", "-e", "esp.sequence", "-e", "esp.icv_good", "-e", "esp.pad_len", "-e", "esp.protocol", "-e", "ip.src", "-e", "ipv6.src")
	lines := strings.Split(strings.TrimSpace(fields), "\n")
	if len(lines) != len(wants) {
		t.Fatalf("tshark shows %d frames, wrote %d", len(lines), len(wants))
	}
	for i, l := range lines {
		c := strings.Split(l, ";")
		if c[0] != fmt.Sprintf("0x%08x", wants[i].spi) || c[2] != "1" {
			t.Errorf("frame %d: %s (want spi 0x%08x, ICV good)", i+1, l, wants[i].spi)
		}
		if !strings.Contains(c[5]+c[6], "10.1.0.2") && !strings.Contains(c[5]+c[6], "fd00:1::2") {
			t.Errorf("frame %d: inner source not decrypted: %s", i+1, l)
		}
	}
}
