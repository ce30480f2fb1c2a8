package esp

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net/netip"
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

// TestAHCaptureICVAndTshark captures the AH packets two dataplanes send
// each other (every HMAC AH negotiates, IPv4 and IPv6 underlay, ESN on)
// into a pcap file, then checks them independently of package ah: the
// packets read back from the file get their ICV recomputed here with
// crypto/hmac (mutable fields zeroed by this test's own code, RFC 4302
// §3.3.3.1, and the ESN high bits appended, §3.3.3.2.1), and tshark's AH
// dissector must show the SPI, the sequence number, the ICV and the inner
// packet of each.
func TestAHCaptureICVAndTshark(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		requireInterop(t, "tshark not installed")
	}
	algs := []struct {
		id   transform.ID
		h    func() hash.Hash
		key  int
		icv  int
		name string
	}{
		{transform.IntegHMACMD5_96, md5.New, 16, 12, "md5"},
		{transform.IntegHMACSHA1_96, sha1.New, 20, 12, "sha1"},
		{transform.IntegHMACSHA2_256_128, sha256.New, 32, 16, "sha256"},
		{transform.IntegHMACSHA2_384_192, sha512.New384, 48, 24, "sha384"},
		{transform.IntegHMACSHA2_512_256, sha512.New, 64, 32, "sha512"},
	}
	type captured struct {
		alg int
		pkt []byte
	}
	var caps []captured
	for i, a := range algs {
		for _, under := range [][2]string{{"198.51.100.1", "198.51.100.2"}, {"2001:db8::1", "2001:db8::2"}} {
			l := newAHLink(t, netip.MustParseAddr(under[0]), netip.MustParseAddr(under[1]), a.id, func(b []byte) {
				caps = append(caps, captured{i, b})
			})
			l.exchange(t, 3)
			l.g1.dp.Close()
			l.g2.dp.Close()
		}
	}
	file := filepath.Join(t.TempDir(), "ah.pcap")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeRaw); err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range caps {
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(c.pkt), Length: len(c.pkt)}, c.pkt); err != nil {
			t.Fatal(err)
		}
		ts = ts.Add(time.Millisecond)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	// 1. The ICVs, recomputed from the packets as read back from the file.
	rf, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	r, err := pcapgo.NewReader(rf)
	if err != nil {
		t.Fatal(err)
	}
	type frame struct{ spi, seq, icv string }
	var frames []frame
	for i := 0; ; i++ {
		pkt, _, err := r.ReadPacketData()
		if err == io.EOF {
			if i != len(caps) {
				t.Fatalf("read %d packets back, wrote %d", i, len(caps))
			}
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		a := algs[caps[i].alg]
		z := append([]byte(nil), pkt...)
		var hl int
		switch z[0] >> 4 {
		case 4:
			hl = int(z[0]&0xf) * 4
			if z[9] != 51 {
				t.Fatalf("frame %d: IPv4 protocol %d", i+1, z[9])
			}
			z[1], z[6], z[7], z[8], z[10], z[11] = 0, 0, 0, 0, 0, 0 // TOS, flags/offset, TTL, checksum
		case 6:
			hl = 40
			if z[6] != 51 {
				t.Fatalf("frame %d: IPv6 next header %d", i+1, z[6])
			}
			z[0], z[1], z[2], z[3], z[7] = 0x60, 0, 0, 0, 0 // traffic class, flow label, hop limit
		}
		ahLen := (int(z[hl+1]) + 2) * 4
		icv := pkt[hl+12 : hl+12+a.icv]
		clear(z[hl+12 : hl+12+a.icv])
		spi, seq := binary.BigEndian.Uint32(pkt[hl+4:]), binary.BigEndian.Uint32(pkt[hl+8:])
		m := hmac.New(a.h, ahKey(spi, a.key))
		m.Write(z)
		m.Write([]byte{0, 0, 0, 0}) // ESN: the high 32 bits of the sequence number (0 here)
		if want := m.Sum(nil)[:a.icv]; !hmac.Equal(icv, want) {
			t.Errorf("frame %d (%s, spi %08x seq %d): ICV %x, recomputed %x", i+1, a.name, spi, seq, icv, want)
		}
		m = hmac.New(a.h, ahKey(spi, a.key))
		m.Write(z)
		if hmac.Equal(icv, m.Sum(nil)[:a.icv]) {
			t.Errorf("frame %d: the ICV does not cover the ESN high bits", i+1)
		}
		frames = append(frames, frame{fmt.Sprintf("0x%08x", spi), fmt.Sprint(seq), hex.EncodeToString(pkt[hl+12 : hl+ahLen])})
	}

	// 2. tshark's dissection of the same file.
	run := func(args ...string) string {
		cmd := exec.Command(tshark, append([]string{"-n", "-r", file}, args...)...)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("tshark %v: %v\n%s", args, err, stderr.String())
		}
		return string(out)
	}
	verbose := run("-V")
	for _, bad := range []string{"Malformed", "Expert Info (Error", "Expert Info (Warning"} {
		if i := strings.Index(verbose, bad); i >= 0 {
			t.Errorf("tshark reports %q: ...%s...", bad, verbose[max(0, i-1500):min(len(verbose), i+300)])
		}
	}
	out := run("-T", "fields", "-E", "separator=;", "-E", "occurrence=a", "-E", "aggregator=,",
		"-e", "ah.spi", "-e", "ah.sequence", "-e", "ah.icv", "-e", "ip.src", "-e", "ipv6.src", "-e", "udp.srcport")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != len(frames) {
		t.Fatalf("tshark shows %d frames, wrote %d", len(lines), len(frames))
	}
	for i, l := range lines {
		c := strings.Split(l, ";")
		want := frames[i]
		if c[0] != want.spi || c[1] != want.seq || strings.ReplaceAll(c[2], ":", "") != want.icv {
			t.Errorf("frame %d: tshark %s; want spi %s seq %s icv %s", i+1, l, want.spi, want.seq, want.icv)
		}
		// AH does not encrypt: tshark dissects the inner IPv4/UDP packet.
		if !strings.Contains(c[3], "10.1.0.2") && !strings.Contains(c[3], "10.2.0.2") || c[5] != "1000" {
			t.Errorf("frame %d: inner packet not dissected: %s", i+1, l)
		}
	}
	t.Logf("%d AH packets (5 algorithms × IPv4/IPv6 underlay × 3 each way): ICVs recomputed with crypto/hmac, tshark dissected SPI, sequence, ICV and the inner packet of every one", len(frames))
	if !bytes.Contains([]byte(verbose), []byte("Authentication Header")) {
		t.Error("tshark -V shows no Authentication Header")
	}
}
