package esp

import (
	"bytes"
	"encoding/binary"
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

	"github.com/ipsecgw/ipsecgw/esp/ah"
	"github.com/ipsecgw/ipsecgw/header"
)

// TestAHIPv6ExtensionHeadersTshark: transport-mode AH packets whose IPv6
// header is followed by Hop-by-Hop Options, a Routing header (Segments
// Left 0) and Destination Options, as ah.SealTransport builds them, are
// dissected by tshark without complaint: the three headers in order, then
// AH with our SPI, sequence number and ICV, then the UDP datagram. The
// ICVs themselves are checked by esp/ah's TestIPv6ExtensionHeadersTransport.
func TestAHIPv6ExtensionHeadersTshark(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		requireInterop(t, "tshark not installed")
	}
	p := ahProtector(t, 3)
	src, dst := [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}, [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 2}
	const n = 4
	type sent struct {
		seq uint64
		icv []byte
	}
	var pkts [][]byte
	var want []sent
	for seq := uint64(1); seq <= n; seq++ {
		hbh := []byte{43, 0, 0x05, 2, 0, 0, 1, 0} // Router Alert (MLD), PadN
		// A Segment Routing Header (RFC 8754, type 4) at its final
		// segment: Segments Left 0, Last Entry 0, the segment list dst.
		rt := append([]byte{60, 2, 4, 0, 0, 0, 0, 0}, dst[:]...)
		do := []byte{17, 0, 0x1e, 2, 0xaa, 0xbb, 1, 0} // an experimental option (RFC 4727), PadN
		udp := make([]byte, 8+20)
		binary.BigEndian.PutUint16(udp, 1000)
		binary.BigEndian.PutUint16(udp[2:], 2000)
		binary.BigEndian.PutUint16(udp[4:], uint16(len(udp)))
		ext := bytes.Join([][]byte{hbh, rt, do}, nil)
		pkt := make([]byte, 40, 40+len(ext)+len(udp))
		header.IPv6(pkt).Encode(&header.IPv6Fields{PayloadLength: uint16(len(ext) + len(udp)), NextHeader: header.ProtoHopByHop,
			HopLimit: 64, Src: src, Dst: dst})
		pkt = append(append(pkt, ext...), udp...)
		// The UDP checksum's pseudo-header is that of the final
		// destination, which the Routing header names (here dst itself).
		header.UDP(pkt[40+len(ext):]).UpdateChecksum(header.IPv6(pkt).PseudoHeaderSum(header.ProtoUDP, len(udp)))
		buf, off := newBuf(pkt)
		_, out, err := ah.SealTransport(p, 0xabcd0001, seq, true, buf, off, len(pkt))
		if err != nil {
			t.Fatal(err)
		}
		a := out[40+len(ext):]
		want = append(want, sent{seq, bytes.Clone(a[12 : 12+p.ICVSize()])})
		pkts = append(pkts, bytes.Clone(out))
	}
	file := filepath.Join(t.TempDir(), "ah6ext.pcap")
	f, err := os.Create(file)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(f)
	if err := w.WriteFileHeader(65535, layers.LinkTypeRaw); err != nil {
		t.Fatal(err)
	}
	ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, pkt := range pkts {
		if err := w.WritePacket(gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(pkt), Length: len(pkt)}, pkt); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
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
	out := run("-T", "fields", "-E", "separator=;", "-e", "ipv6.hopopts.nxt", "-e", "ipv6.routing.segleft",
		"-e", "ipv6.dstopts.nxt", "-e", "ah.next_header", "-e", "ah.spi", "-e", "ah.sequence", "-e", "ah.icv", "-e", "udp.srcport")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != n {
		t.Fatalf("tshark shows %d packets, want %d:\n%s", len(lines), n, out)
	}
	for i, l := range lines {
		w := want[i]
		// HMAC-SHA2-256-128: 12 + 16 bytes of AH, padded with 4 zero
		// bytes to a multiple of 8 over IPv6.
		exp := fmt.Sprintf("43;0;51;17;0xabcd0001;%d;%x00000000;1000", w.seq, w.icv)
		if got := strings.ReplaceAll(l, ":", ""); got != exp {
			t.Errorf("packet %d: tshark %q, want %q", i+1, got, exp)
		}
	}
	t.Logf("%d AH packets after Hop-by-Hop, Routing and Destination Options headers: tshark dissects all without warnings:\n%s", n, out)
}
