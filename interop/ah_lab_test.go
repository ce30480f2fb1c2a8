package interop

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	be "encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"

	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/internal/lab"
)

// TestAHLabCapturedICV: two ipsecgw daemons in the lab negotiate AH
// (IKEv2), in tunnel mode between the LANs (HMAC-SHA2-256-128 over IPv4,
// AES-XCBC-MAC-96 over IPv6) and in transport mode host to host between
// the gateways' own addresses (IPv4 with ESN, IPv6), and carry pings both
// ways. tcpdump captures gw2's underlay; the keys
// come from `ipsecgw export-keys` (its ah_sa table), and every captured AH
// packet has its ICV recomputed here with crypto/hmac, or this test's own
// AES-XCBC-MAC (RFC 4302 §3.3.3:
// mutable IP header fields, ICV field zeroed; ESN high bits appended),
// independently of package ah. tshark's AH dissector must see the same
// packets, and the Next Header tells the mode: 4/41 (an IP packet) in
// tunnel mode, ICMP in transport mode.
//
// Transport-mode traffic is steered into the TUN by a policy rule for
// ICMP to the peer (the daemon puts no route to the peer on the TUN: its
// own IKE and AH packets go there too), as README's "AH transport mode"
// describes.
func TestAHLabCapturedICV(t *testing.T) {
	for _, tc := range []struct {
		name               string
		transport, v6, esn bool
		ah                 string
	}{
		{"tunnel-ipv4", false, false, false, "sha256"},
		{"tunnel-ipv6-aesxcbc", false, true, false, "aesxcbc"},
		{"transport-ipv4-esn", true, false, true, "sha256-esn"},
		{"transport-ipv6", true, true, false, "sha256"},
	} {
		t.Run(tc.name, func(t *testing.T) { testAHLabCapture(t, tc.transport, tc.v6, tc.esn, tc.ah) })
	}
}

func testAHLabCapture(t *testing.T, transport, v6, esn bool, proposal string) {
	start := time.Now()
	l := lab.New(t, lab.Options{Tools: []string{"tshark", "tcpdump"}})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c1, c2 := siteConns(l, "aes128gcm16-prfsha256-ecp256", "")
	if v6 {
		a1, a2 := enableIPv6Underlay(ctx, t, l)
		c1.LocalAddr, c1.RemoteAddr, c1.LocalID, c1.RemoteID = a1, a2, a1, a2
		c2.LocalAddr, c2.RemoteAddr, c2.LocalID, c2.RemoteID = a2, a1, a2, a1
	}
	extra := "  ah=" + proposal + "!\n"
	if transport {
		host := func(a string) string {
			return netip.PrefixFrom(netip.MustParseAddr(a), netip.MustParseAddr(a).BitLen()).String()
		}
		c1.LocalTS, c1.RemoteTS = host(c1.LocalAddr), host(c1.RemoteAddr)
		c2.LocalTS, c2.RemoteTS = host(c2.LocalAddr), host(c2.RemoteAddr)
		extra += "  type=transport\n"
	}
	c1.StartAction = "start"
	gw2 := startGateway(ctx, t, l.GW2, gatewayFiles{Conf: c2.IPsecConf() + extra, Secrets: c2.IPsecSecrets()})
	gw1 := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: c1.IPsecConf() + extra, Secrets: c1.IPsecSecrets()})
	for _, g := range []*gateway{gw1, gw2} {
		if _, err := g.waitState(ctx, "s2s", control.StateEstablished); err != nil {
			t.Fatal(err)
		}
	}
	if transport {
		steerICMP(ctx, t, l.GW1, c1.RemoteAddr)
		steerICMP(ctx, t, l.GW2, c2.RemoteAddr)
	}

	capt, err := l.GW2.StartCapture(ctx, lab.IfUnderlay, "")
	if err != nil {
		t.Fatal(err)
	}
	const pings = 5
	if transport {
		for _, p := range []struct {
			from *lab.Node
			to   string
		}{{l.GW1, c1.RemoteAddr}, {l.GW2, c2.RemoteAddr}} {
			if _, err := p.from.Ping(ctx, netip.MustParseAddr(p.to), pings); err != nil {
				t.Fatal(err)
			}
		}
	} else {
		pingBothWays(ctx, t, l, pings)
	}
	if err := capt.Stop(); err != nil {
		t.Fatal(err)
	}

	keys := filepath.Join(t.TempDir(), "keys")
	if out, err := gw1.cli(ctx, "export-keys", "--dir", keys); err != nil || !strings.Contains(out, "ah_sa") {
		t.Fatalf("export-keys: %v\n%s", err, out)
	}
	ahKeys := readAHKeys(t, filepath.Join(keys, "ah_sa"))
	if len(ahKeys) != 2 {
		t.Fatalf("ah_sa has %d SAs, want the CHILD SA's two: %v", len(ahKeys), ahKeys)
	}

	pkts := readAHCapture(t, capt.File)
	if len(pkts) != 4*pings {
		t.Fatalf("%d AH packets on gw2's uplink, want %d", len(pkts), 4*pings)
	}
	seqs := map[uint32]uint32{}
	for i, p := range pkts {
		k, ok := ahKeys[p.spi]
		if !ok {
			t.Fatalf("packet %d: SPI %08x not in export-keys' ah_sa", i+1, p.spi)
		}
		want := icvOf(t, k, p.zeroed, esn)
		if len(want) > len(p.icvField) || !hmac.Equal(p.icvField[:len(want)], want) || !allZero(p.icvField[len(want):]) {
			t.Errorf("packet %d (SPI %08x seq %d): ICV field %x, recomputed ICV %x (then zero padding)", i+1, p.spi, p.seq, p.icvField, want)
		}
		seqs[p.spi]++
		if p.seq != seqs[p.spi] {
			t.Errorf("packet %d: SPI %08x sequence %d, want %d", i+1, p.spi, p.seq, seqs[p.spi])
		}
		if p.src != k.src || p.dst != k.dst {
			t.Errorf("packet %d: %v -> %v, export-keys says SPI %08x goes %v -> %v", i+1, p.src, p.dst, p.spi, k.src, k.dst)
		}
		var wantNext []byte
		switch {
		case !transport:
			wantNext = []byte{4, 41}
		case v6:
			wantNext = []byte{58}
		default:
			wantNext = []byte{1}
		}
		if !bytes.Contains(wantNext, []byte{p.next}) {
			t.Errorf("packet %d: AH Next Header %d, want one of %v (transport mode %v)", i+1, p.next, wantNext, transport)
		}
	}

	proto := "ip.proto == 51"
	if v6 {
		proto = "ipv6.nxt == 51"
	}
	lines, err := capt.Fields(ctx, "ah && "+proto, "ah.spi", "ah.sequence", "ah.icv")
	if err != nil {
		t.Fatal(err)
	}
	if len(lines) != len(pkts) {
		t.Fatalf("tshark shows %d AH packets, the pcap has %d", len(lines), len(pkts))
	}
	for i, line := range lines {
		f := strings.Split(line, "\t")
		want := []string{fmt.Sprintf("0x%08x", pkts[i].spi), strconv.FormatUint(uint64(pkts[i].seq), 10), hex.EncodeToString(pkts[i].icvField)}
		if len(f) != 3 || f[0] != want[0] || f[1] != want[1] || strings.ReplaceAll(f[2], ":", "") != want[2] {
			t.Errorf("tshark line %d %q, want %q", i+1, line, strings.Join(want, "\t"))
		}
	}
	if n, err := capt.Count(ctx, "esp"); err != nil || n != 0 {
		t.Errorf("%d ESP packets (%v), want none", n, err)
	}
	// Every echo request and reply went inside AH, none in clear.
	if n, err := capt.Count(ctx, "(icmp.type == 8 || icmp.type == 0 || icmpv6.type == 128 || icmpv6.type == 129) && !ah"); err != nil || n != 0 {
		t.Errorf("%d ICMP echo packets in clear (%v), want none", n, err)
	}
	t.Logf("%d AH packets captured on gw2's underlay (transport mode %v, IPv6 %v, ESN %v): every ICV recomputed with crypto/hmac from export-keys' keys, %d tshark lines agree on SPI, sequence and ICV; %.1fs",
		len(pkts), transport, v6, esn, len(lines), time.Since(start).Seconds())
}

// steerICMP sends the node's ICMP to peer into ipsecgw's TUN through a
// policy rule and a table of its own: a transport-mode conn protects the
// traffic to the peer's own address, to which the daemon's IKE and AH
// packets go too, so no route in the main table may send it to the TUN.
func steerICMP(ctx context.Context, t *testing.T, n *lab.Node, peer string) {
	t.Helper()
	fam, proto := "-4", "icmp"
	if netip.MustParseAddr(peer).Is6() {
		fam, proto = "-6", "ipv6-icmp"
	}
	for _, argv := range [][]string{
		{"ip", fam, "route", "add", peer, "dev", tunName, "table", "51"},
		{"ip", fam, "rule", "add", "to", peer, "ipproto", proto, "lookup", "51", "priority", "51"},
	} {
		if out, err := n.Run(ctx, argv...); err != nil {
			t.Fatalf("%v: %v\n%s", argv, err, out)
		}
	}
}

// ahSAKey is one line of export-keys' ah_sa table.
type ahSAKey struct {
	src, dst netip.Addr
	alg      string
	key      []byte
}

// readAHKeys parses ah_sa: "IPv4","src","dst","0xSPI","alg","0xkey" per
// line, by SPI.
func readAHKeys(t *testing.T, file string) map[uint32]ahSAKey {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	out := map[uint32]ahSAKey{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Split(line, ",")
		if len(f) != 6 {
			t.Fatalf("ah_sa line %q", line)
		}
		for i := range f {
			f[i] = strings.Trim(f[i], `"`)
		}
		spi, err1 := strconv.ParseUint(strings.TrimPrefix(f[3], "0x"), 16, 32)
		key, err2 := hex.DecodeString(strings.TrimPrefix(f[5], "0x"))
		src, err3 := netip.ParseAddr(f[1])
		dst, err4 := netip.ParseAddr(f[2])
		if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
			t.Fatalf("ah_sa line %q", line)
		}
		out[uint32(spi)] = ahSAKey{src: src, dst: dst, alg: f[4], key: key}
	}
	return out
}

// icvOf is the ICV of the zeroed packet under the SA's algorithm; with ESN
// the high 32 bits of the sequence number (0 this early) are appended.
func icvOf(t *testing.T, k ahSAKey, zeroed []byte, esn bool) []byte {
	t.Helper()
	var h func() hash.Hash
	var n int
	switch k.alg {
	case "HMAC-MD5-96 [RFC2403]":
		h, n = md5.New, 12
	case "HMAC-SHA-1-96 [RFC2404]":
		h, n = sha1.New, 12
	case "HMAC-SHA-256-128 [RFC4868]":
		h, n = sha256.New, 16
	case "HMAC-SHA-384-192 [RFC4868]":
		h, n = sha512.New384, 24
	case "HMAC-SHA-512-256 [RFC4868]":
		h, n = sha512.New, 32
	case "AES-XCBC-MAC-96 [RFC3566]":
		msg := zeroed
		if esn {
			msg = append(bytes.Clone(zeroed), 0, 0, 0, 0)
		}
		return aesXCBC(t, k.key, msg)[:12]
	default:
		t.Fatalf("algorithm %q", k.alg)
	}
	m := hmac.New(h, k.key)
	m.Write(zeroed)
	if esn {
		m.Write([]byte{0, 0, 0, 0})
	}
	return m.Sum(nil)[:n]
}

// capturedAH is one AH packet from the capture.
type capturedAH struct {
	src, dst netip.Addr
	spi, seq uint32
	next     byte
	icvField []byte // the whole ICV field, padding included (tshark's ah.icv)
	zeroed   []byte // the IP packet with mutable fields and the ICV field zeroed
}

// readAHCapture reads the AH packets of a tcpdump capture on an Ethernet
// (veth) interface, with this test's own parsing: IPv4 with AH after its
// header, or IPv6 with AH right after the fixed header.
func readAHCapture(t *testing.T, file string) []capturedAH {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []capturedAH
	for {
		frame, ci, err := r.ReadPacketData()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(frame) < 14 {
			continue
		}
		ip := frame[14:]
		var hl int
		var p capturedAH
		switch be.BigEndian.Uint16(frame[12:]) {
		case 0x0800:
			if ip[9] != 51 {
				continue
			}
			hl = int(ip[0]&0xf) * 4
			ip = ip[:be.BigEndian.Uint16(ip[2:])]
			p.src, p.dst = netip.AddrFrom4([4]byte(ip[12:16])), netip.AddrFrom4([4]byte(ip[16:20]))
			p.zeroed = bytes.Clone(ip)
			z := p.zeroed
			z[1], z[6], z[7], z[8], z[10], z[11] = 0, 0, 0, 0, 0, 0 // TOS, flags/offset, TTL, checksum
		case 0x86dd:
			if ip[6] != 51 {
				continue
			}
			hl = 40
			ip = ip[:40+int(be.BigEndian.Uint16(ip[4:]))]
			p.src, p.dst = netip.AddrFrom16([16]byte(ip[8:24])), netip.AddrFrom16([16]byte(ip[24:40]))
			p.zeroed = bytes.Clone(ip)
			z := p.zeroed
			z[0], z[1], z[2], z[3], z[7] = 0x60, 0, 0, 0, 0 // traffic class, flow label, hop limit
		default:
			continue
		}
		if ci.CaptureLength != ci.Length {
			t.Fatalf("AH packet of %d bytes cut to %d by the capture", ci.Length, ci.CaptureLength)
		}
		a := ip[hl:]
		ahLen := (int(a[1]) + 2) * 4
		p.next, p.spi, p.seq = a[0], be.BigEndian.Uint32(a[4:]), be.BigEndian.Uint32(a[8:])
		p.icvField = bytes.Clone(a[12:ahLen])
		clear(p.zeroed[hl+12 : hl+ahLen])
		out = append(out, p)
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// aesXCBC is AES-XCBC-MAC (RFC 3566 §4), written here from the RFC:
// K1, K2, K3 are AES(K, 0x01…), AES(K, 0x02…), AES(K, 0x03…); the blocks
// are chained through AES under K1, and the last one is XORed with K2 when
// complete or, padded with 0x80 00…, with K3. It is checked against RFC
// 3566 §4.6 test case 4 before use.
func aesXCBC(t *testing.T, key, msg []byte) []byte {
	t.Helper()
	xcbc := func(key, msg []byte) []byte {
		k, err := aes.NewCipher(key)
		if err != nil {
			t.Fatal(err)
		}
		sub := func(b byte) []byte {
			s := bytes.Repeat([]byte{b}, 16)
			k.Encrypt(s, s)
			return s
		}
		k1, k2, k3 := sub(1), sub(2), sub(3)
		c, err := aes.NewCipher(k1)
		if err != nil {
			t.Fatal(err)
		}
		e := make([]byte, 16)
		for len(msg) > 16 {
			subtle.XORBytes(e, e, msg[:16])
			c.Encrypt(e, e)
			msg = msg[16:]
		}
		last := make([]byte, 16)
		copy(last, msg)
		if len(msg) == 16 {
			subtle.XORBytes(last, last, k2)
		} else {
			last[len(msg)] = 0x80
			subtle.XORBytes(last, last, k3)
		}
		subtle.XORBytes(e, e, last)
		c.Encrypt(e, e)
		return e
	}
	tk, _ := hex.DecodeString("000102030405060708090a0b0c0d0e0f")
	tm, _ := hex.DecodeString("000102030405060708090a0b0c0d0e0f10111213")
	if got := hex.EncodeToString(xcbc(tk, tm)); got != "47f51b4564966215b8985c63055ed308" {
		t.Fatalf("AES-XCBC-MAC of RFC 3566 test case 4: %s", got)
	}
	return xcbc(key, msg)
}
