package keymat

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

	"github.com/ipsecgw/ipsecgw/ike/ikev1/isakmp"
)

// The tshark tests check our encoder and key schedule against an
// independent implementation, wireshark's ISAKMP dissector: it must
// dissect every field we set, and, given only the initiator cookie and
// the encryption key (its "IKEv1 Decryption Table"), it computes the IVs
// itself from the KE payloads and the chain of ciphertext blocks, so
// decrypting main mode 5/6, quick mode and informational messages proves
// SKEYID_e, the Appendix B key extension, the IV chain and the padding.

// writePcap writes the exchanges' messages as UDP/500 datagrams between
// their addresses.
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
		for _, p := range x.packets {
			src, dst, smac, dmac := x.initAddr, x.respAddr, macI, macR
			if !p.fromInitiator {
				src, dst, smac, dmac = dst, src, macR, macI
			}
			eth := &layers.Ethernet{SrcMAC: smac, DstMAC: dmac, EthernetType: layers.EthernetTypeIPv4}
			ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: src.Addr().AsSlice(), DstIP: dst.Addr().AsSlice()}
			udp := &layers.UDP{SrcPort: layers.UDPPort(src.Port()), DstPort: layers.UDPPort(dst.Port())}
			if err := udp.SetNetworkLayerForChecksum(ip); err != nil {
				t.Fatal(err)
			}
			buf := gopacket.NewSerializeBuffer()
			opts := gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}
			if err := gopacket.SerializeLayers(buf, opts, eth, ip, udp, gopacket.Payload(p.data)); err != nil {
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

// tshark runs tshark on a pcap of the exchanges, with an empty
// configuration; with keys, wireshark gets each ISAKMP SA's initiator
// cookie and Ka in its IKEv1 decryption table.
func tshark(t *testing.T, keys bool, xs []*exchange, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed (apt-get install tshark); skipping the independent wireshark cross-check")
	}
	dir := t.TempDir()
	pcap := filepath.Join(dir, "ikev1.pcap")
	writePcap(t, pcap, xs...)
	conf := filepath.Join(dir, "config")
	if err := os.MkdirAll(filepath.Join(conf, "wireshark"), 0o700); err != nil {
		t.Fatal(err)
	}
	opts := []string{"-n", "-r", pcap}
	if keys {
		// The decryption table is a UAT, not a preference: one record
		// per ISAKMP SA, "initiator cookie,Ka" in bare hex (quoted
		// fields would be read as text). strongSwan's save-keys plugin
		// writes the same records to the UAT file ikev1_decryption_table.
		for _, x := range xs {
			opts = append(opts, "-o", fmt.Sprintf("uat:ikev1_decryption_table:%016x,%s", x.ckyI, hex.EncodeToString(x.keysI.Ka)))
		}
	}
	cmd := exec.Command(bin, append(opts, args...)...)
	cmd.Env = append(os.Environ(), "XDG_CONFIG_HOME="+conf, "HOME="+dir)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("tshark %v: %v\n%s", args, err, stderr.String())
	}
	if p := os.Getenv("ISAKMP_TSHARK_DUMP"); p != "" {
		if f, err := os.OpenFile(p, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600); err == nil {
			_, _ = f.Write(out)
			f.Close()
		}
	}
	return string(out)
}

func allExchanges(t *testing.T) []*exchange {
	return []*exchange{
		runExchange(t, suiteAES256SHA1, 0x0123456789abcdef, 0xfedcba9876543210),
		runExchange(t, suite3DESMD5, 0x1111222233334444, 0x5555666677778888),
		runExchange(t, suiteAES128SHA2, 0x99990000aaaabbbb, 0xccccddddeeeeffff),
	}
}

func excerpt(s, sub string) string {
	i := strings.Index(s, sub)
	return s[max(0, i-800):min(len(s), i+300)]
}

// fields returns, per frame, the values of the given tshark fields.
func fields(t *testing.T, out string, n int) [][]string {
	t.Helper()
	var rows [][]string
	for _, line := range strings.Split(strings.TrimRight(out, "\n"), "\n") {
		parts := strings.Split(line, "\t")
		if len(parts) != n {
			t.Fatalf("tshark line %q has %d fields, want %d", line, len(parts), n)
		}
		rows = append(rows, parts)
	}
	return rows
}

// TestTsharkDissects: the unencrypted fields we set, as wireshark reads
// them.
func TestTsharkDissects(t *testing.T) {
	xs := allExchanges(t)
	out := tshark(t, false, xs, "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,",
		"-e", "isakmp.ispi", "-e", "isakmp.rspi", "-e", "isakmp.exchangetype", "-e", "isakmp.flags", "-e", "isakmp.messageid",
		"-e", "isakmp.ike.attr.encryption_algorithm", "-e", "isakmp.ike.attr.hash_algorithm", "-e", "isakmp.ike.attr.authentication_method",
		"-e", "isakmp.ike.attr.group_description", "-e", "isakmp.ike.attr.key_length", "-e", "isakmp.ike.attr.life_duration",
		"-e", "isakmp.vid_bytes", "-e", "isakmp.ike.nat_hash", "-e", "isakmp.nonce", "-e", "isakmp.key_exchange.data")
	rows := fields(t, out, 15)
	var want []string
	for _, x := range xs {
		for range x.packets {
			want = append(want, fmt.Sprintf("%016x", x.ckyI))
		}
	}
	if len(rows) != len(want) {
		t.Fatalf("tshark shows %d frames, want %d", len(rows), len(want))
	}
	attrs := map[string][5]string{ // encr, hash, auth, group, key length of main mode 1/2
		suiteAES256SHA1.name: {"7", "2", "1", "14", "256"},
		suite3DESMD5.name:    {"5", "1", "1", "2", ""},
		suiteAES128SHA2.name: {"7", "4", "1", "19", "128"},
	}
	i := 0
	for _, x := range xs {
		for j, p := range x.packets {
			r := rows[i]
			i++
			if r[0] != want[i-1] {
				t.Errorf("%s frame %d: initiator cookie %s", x.s.name, j+1, r[0])
			}
			if strconv.Itoa(int(p.exchange)) != r[2] {
				t.Errorf("%s frame %d: exchange type %s, want %d", x.s.name, j+1, r[2], p.exchange)
			}
			enc := r[3] == "0x01"
			if enc != p.enc {
				t.Errorf("%s frame %d: flags %s, encrypted %v", x.s.name, j+1, r[3], p.enc)
			}
			switch j {
			case 0, 1:
				a := attrs[x.s.name]
				if r[5] != a[0] || r[6] != a[1] || r[7] != a[2] || r[8] != a[3] || r[9] != a[4] || r[10] != "28800" {
					t.Errorf("%s frame %d: SA attributes %v, want %v and life 28800", x.s.name, j+1, r[5:11], a)
				}
				if r[11] != hex.EncodeToString([]byte(isakmp.VendorDPD))+","+hex.EncodeToString([]byte(isakmp.VendorNATT)) {
					t.Errorf("%s frame %d: vendor IDs %s", x.s.name, j+1, r[11])
				}
			case 2, 3:
				s := x.keysI.Suite
				a, b := x.respAddr, x.initAddr
				if j == 3 {
					a, b = b, a
				}
				if r[12] != hex.EncodeToString(s.NATDHash(x.ckyI, x.ckyR, a))+","+hex.EncodeToString(s.NATDHash(x.ckyI, x.ckyR, b)) {
					t.Errorf("%s frame %d: NAT-D %s", x.s.name, j+1, r[12])
				}
				if r[13] == "" || r[14] == "" {
					t.Errorf("%s frame %d: no nonce or KE", x.s.name, j+1)
				}
			}
		}
	}
	verbose := tshark(t, false, xs, "-V")
	for _, bad := range []string{"Malformed", "Expert Info (Error", "Expert Info (Warning"} {
		if strings.Contains(verbose, bad) {
			t.Errorf("tshark reports %q:\n%s", bad, excerpt(verbose, bad))
		}
	}
}

// TestTsharkDecrypts: wireshark decrypts every encrypted message with
// the key we give it and the IVs it derives itself, and finds the
// payloads we put in, down to the quick mode IDs and the DPD sequence.
func TestTsharkDecrypts(t *testing.T) {
	xs := allExchanges(t)
	verbose := tshark(t, true, xs, "-V")
	for _, bad := range []string{"Malformed", "Expert Info (Error", "Expert Info (Warning"} {
		if strings.Contains(verbose, bad) {
			t.Errorf("tshark reports %q:\n%s", bad, excerpt(verbose, bad))
		}
	}
	out := tshark(t, true, xs, "-T", "fields", "-E", "separator=/t", "-E", "occurrence=a", "-E", "aggregator=,",
		"-e", "isakmp.typepayload", "-e", "isakmp.id.data.fqdn", "-e", "isakmp.id.data.ipv4_addr", "-e", "isakmp.id.data.ipv4_subnet",
		"-e", "isakmp.id.data.ipv4_range_start", "-e", "isakmp.id.data.ipv4_range_end", "-e", "isakmp.id.port",
		"-e", "isakmp.notify.msgtype", "-e", "isakmp.notify.data.dpd.are_you_there", "-e", "isakmp.delete.spi", "-e", "isakmp.hash")
	rows := fields(t, out, 11)
	i := 0
	decrypted := 0
	for _, x := range xs {
		for j, p := range x.packets {
			r := rows[i]
			i++
			var got []string
			for _, s := range strings.Split(r[0], ",") {
				// Proposal and transform substructures are listed
				// as payload types too; they are not payloads.
				if s != "2" && s != "3" && s != "" {
					got = append(got, s)
				}
			}
			var want []string
			for _, pt := range p.payloads {
				want = append(want, strconv.Itoa(int(pt)))
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("%s frame %d: wireshark sees payloads %v, we sent %v", x.s.name, j+1, got, want)
				continue
			}
			if p.enc {
				decrypted++
			}
			switch j {
			case 4: // main mode 5
				if r[1] != "initiator.example" || r[7] != "24578" {
					t.Errorf("%s main mode 5: ID %q, notify %q", x.s.name, r[1], r[7])
				}
			case 5: // main mode 6
				if r[2] != x.respAddr.Addr().String() {
					t.Errorf("%s main mode 6: ID %q", x.s.name, r[2])
				}
			case 6, 7: // quick mode 1 and 2
				// IDci 10.1.0.0/16 (wireshark shows the subnet's
				// address as ID_IPV4_ADDR), IDcr 10.2.0.5-10.2.0.9
				// tcp/443.
				if r[2] != "10.1.0.0" || r[3] != "255.255.0.0" || r[4] != "10.2.0.5" || r[5] != "10.2.0.9" || r[6] != "0,443" {
					t.Errorf("%s quick mode %d: IDs %v", x.s.name, j-5, r[2:7])
				}
			case 9:
				if r[7] != "36136" || r[8] != "1" {
					t.Errorf("%s R-U-THERE: %v", x.s.name, r[7:9])
				}
			case 11:
				if r[9] != fmt.Sprintf("%08x", x.spiI) {
					t.Errorf("%s delete: SPI %q", x.s.name, r[9])
				}
			}
		}
	}
	// 3 exchanges x (main mode 5, 6, quick mode 1-3, 4 informational).
	if decrypted != 27 {
		t.Errorf("wireshark decrypted %d messages, want 27", decrypted)
	}
}
