package tun

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"

	"github.com/ipsecgw/ipsecgw/header"
)

// mssSeg builds a checksummed IPv4 or IPv6 TCP segment with the given
// flags and options, carrying payload bytes of data. ext puts a
// Hop-by-Hop Options header in front of an IPv6 segment.
func mssSeg(t *testing.T, v6, ext bool, syn, ack bool, opts []layers.TCPOption, payload int) []byte {
	t.Helper()
	tcp := &layers.TCP{SrcPort: 40000, DstPort: 5201, Seq: 7, SYN: syn, ACK: ack, Window: 64240, Options: opts}
	var ls []gopacket.SerializableLayer
	if v6 {
		ip := &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP,
			SrcIP: net.ParseIP("fd00:1::5"), DstIP: net.ParseIP("fd00:2::5")}
		tcp.SetNetworkLayerForChecksum(ip)
		ls = append(ls, ip)
		if ext {
			ip.NextHeader = layers.IPProtocolIPv6HopByHop
			hbh := &layers.IPv6HopByHop{}
			hbh.NextHeader = layers.IPProtocolTCP
			hbh.Options = []*layers.IPv6HopByHopOption{{OptionType: 1, OptionLength: 4, OptionData: make([]byte, 4)}}
			ls = append(ls, hbh)
		}
	} else {
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, Flags: layers.IPv4DontFragment,
			SrcIP: net.IP{10, 1, 0, 5}, DstIP: net.IP{10, 2, 0, 5}}
		tcp.SetNetworkLayerForChecksum(ip)
		ls = append(ls, ip)
	}
	ls = append(ls, tcp, gopacket.Payload(bytes.Repeat([]byte{0xa5}, payload)))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func mssOpt(v uint16) layers.TCPOption {
	return layers.TCPOption{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: binary.BigEndian.AppendUint16(nil, v)}
}

var (
	optNOP  = layers.TCPOption{OptionType: layers.TCPOptionKindNop}
	optSACK = layers.TCPOption{OptionType: layers.TCPOptionKindSACKPermitted, OptionLength: 2}
	optWS   = layers.TCPOption{OptionType: layers.TCPOptionKindWindowScale, OptionLength: 3, OptionData: []byte{7}}
	optTS   = layers.TCPOption{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: make([]byte, 8)}
)

// tcpOf returns the TCP view of an IP packet through the header views,
// with its pseudo-header sum.
func tcpOf(t *testing.T, pkt []byte) (header.TCP, uint64) {
	t.Helper()
	if header.IPVersion(pkt) == 4 {
		ip := header.IPv4(pkt)
		if !ip.Valid() {
			t.Fatal("invalid IPv4 packet")
		}
		return header.TCP(ip.Payload()), ip.PseudoHeaderSum(header.ProtoTCP, len(ip.Payload()))
	}
	ip := header.IPv6(pkt)
	if !ip.Valid() {
		t.Fatal("invalid IPv6 packet")
	}
	next, rest := ip.NextHeader(), ip.Payload()
	for header.IsIPv6Extension(next) {
		var ok bool
		if next, rest, _, ok = header.IPv6Extension(rest).Next(next); !ok {
			t.Fatal("broken extension header")
		}
	}
	return header.TCP(rest), ip.PseudoHeaderSum(header.ProtoTCP, len(rest))
}

// mssIn reads the MSS option through the header views (0: none).
func mssIn(t *testing.T, pkt []byte) uint16 {
	t.Helper()
	tcp, _ := tcpOf(t, pkt)
	opts := tcp.Options()
	for i := 0; i < len(opts) && opts[i] != 0; {
		if opts[i] == 1 {
			i++
			continue
		}
		if opts[i] == 2 {
			return binary.BigEndian.Uint16(opts[i+2:])
		}
		i += int(opts[i+1])
	}
	return 0
}

// checksumOK recomputes the TCP checksum from scratch and compares it with
// the one the packet carries.
func checksumOK(t *testing.T, pkt []byte) bool {
	t.Helper()
	tcp, pseudo := tcpOf(t, pkt)
	have := tcp.Checksum()
	c := header.TCP(bytes.Clone(tcp))
	c.UpdateChecksum(pseudo)
	return c.Checksum() == have
}

func TestClampMSS(t *testing.T) {
	// 1419-byte tunnel: 1379 for IPv4, 1359 for IPv6.
	max4, max6 := mssLimits(MSSFromMTU, 1419)
	if max4 != 1379 || max6 != 1359 {
		t.Fatalf("limits for MTU 1419: %d/%d, want 1379/1359", max4, max6)
	}
	for _, tc := range []struct {
		name     string
		v6, ext  bool
		syn, ack bool
		opts     []layers.TCPOption
		payload  int
		old      uint16 // MSS the packet carries (0: none)
		want     uint16 // MSS after clamping
	}{
		{"v4 SYN", false, false, true, false, []layers.TCPOption{mssOpt(1460), optSACK, optTS, optNOP, optWS}, 0, 1460, 1379},
		{"v4 SYN-ACK", false, false, true, true, []layers.TCPOption{mssOpt(1460), optNOP, optNOP, optSACK, optNOP, optWS}, 0, 1460, 1379},
		{"v4 SYN, MSS at an odd offset", false, false, true, false, []layers.TCPOption{optNOP, mssOpt(8960), optNOP, optNOP, optNOP}, 0, 8960, 1379},
		{"v4 SYN, MSS behind window scale", false, false, true, false, []layers.TCPOption{optWS, mssOpt(1460), optNOP}, 0, 1460, 1379},
		{"v4 SYN with data (TFO)", false, false, true, false, []layers.TCPOption{mssOpt(1460), optNOP, optNOP, optSACK}, 33, 1460, 1379},
		{"v4 SYN, MSS already lower", false, false, true, false, []layers.TCPOption{mssOpt(1200)}, 0, 1200, 1200},
		{"v4 SYN, MSS equal", false, false, true, false, []layers.TCPOption{mssOpt(1379)}, 0, 1379, 1379},
		{"v4 SYN without MSS", false, false, true, false, []layers.TCPOption{optSACK, optNOP, optNOP}, 0, 0, 0},
		{"v4 ACK with an MSS option", false, false, false, true, []layers.TCPOption{mssOpt(1460)}, 100, 1460, 1460},
		{"v6 SYN", true, false, true, false, []layers.TCPOption{mssOpt(1440), optSACK, optTS, optNOP, optWS}, 0, 1440, 1359},
		{"v6 SYN-ACK", true, false, true, true, []layers.TCPOption{mssOpt(1440)}, 0, 1440, 1359},
		{"v6 SYN behind Hop-by-Hop", true, true, true, false, []layers.TCPOption{optNOP, mssOpt(1440), optNOP, optNOP, optNOP}, 0, 1440, 1359},
		{"v6 SYN, MSS already lower", true, false, true, false, []layers.TCPOption{mssOpt(1220)}, 0, 1220, 1220},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pkt := mssSeg(t, tc.v6, tc.ext, tc.syn, tc.ack, tc.opts, tc.payload)
			if got := mssIn(t, pkt); got != tc.old || !checksumOK(t, pkt) {
				t.Fatalf("built packet: MSS %d (want %d), checksum ok %v", got, tc.old, checksumOK(t, pkt))
			}
			orig := bytes.Clone(pkt)
			old, clamped := ClampMSS(pkt, max4, max6)
			if got := mssIn(t, pkt); got != tc.want {
				t.Errorf("MSS %d after clamping, want %d", got, tc.want)
			}
			wantOld := tc.old // ClampMSS reports the MSS of SYNs only
			if !tc.syn {
				wantOld = 0
			}
			if clamped != (tc.want != tc.old) || old != wantOld {
				t.Errorf("ClampMSS = %d, %v; the packet had %d and should end with %d", old, clamped, tc.old, tc.want)
			}
			if !checksumOK(t, pkt) {
				t.Errorf("TCP checksum wrong after clamping")
			}
			// Nothing else changed: the MSS value and the checksum
			// are the only bytes that differ.
			diff := 0
			for i := range pkt {
				if pkt[i] != orig[i] {
					diff++
				}
			}
			if !clamped && diff != 0 || diff > 4 {
				t.Errorf("%d bytes changed:\n%x\n%x", diff, orig, pkt)
			}
		})
	}
}

func TestClampMSSFixed(t *testing.T) {
	max4, max6 := mssLimits(1300, 1419)
	if max4 != 1300 || max6 != 1300 {
		t.Fatalf("fixed 1300: limits %d/%d", max4, max6)
	}
	pkt := mssSeg(t, false, false, true, false, []layers.TCPOption{mssOpt(1460)}, 0)
	if old, ok := ClampMSS(pkt, max4, max6); !ok || old != 1460 || mssIn(t, pkt) != 1300 || !checksumOK(t, pkt) {
		t.Errorf("fixed clamp: %d %v, MSS now %d, checksum ok %v", old, ok, mssIn(t, pkt), checksumOK(t, pkt))
	}
}

// TestClampMSSLeavesOthersAlone: what is not a TCP SYN with a well-formed
// MSS option passes unchanged, truncated and hostile packets included.
func TestClampMSSLeavesOthersAlone(t *testing.T) {
	syn := mssSeg(t, false, false, true, false, []layers.TCPOption{mssOpt(1460), optNOP, optNOP, optSACK}, 0)
	frag := bytes.Clone(syn)
	binary.BigEndian.PutUint16(frag[6:], 0x2000|5) // MF, offset 40: not the first fragment
	udp := bytes.Clone(syn)
	udp[9] = header.ProtoUDP
	badLen := bytes.Clone(syn)
	badLen[20+20+1] = 9 // MSS option claims more bytes than the options hold
	zeroLen := bytes.Clone(syn)
	zeroLen[20+20+1] = 0
	endFirst := bytes.Clone(syn)
	endFirst[20+20] = 0 // end of option list before the MSS
	v6frag := mssSeg(t, true, false, true, false, []layers.TCPOption{mssOpt(1440)}, 0)
	for name, pkt := range map[string][]byte{
		"empty": {}, "v4 header only": syn[:20], "truncated TCP": syn[:30], "not the first fragment": frag, "UDP": udp,
		"option longer than the header": badLen, "option length 0": zeroLen, "end of options first": endFirst,
		"v6 truncated": v6frag[:50], "version 5": append([]byte{0x50}, syn[1:]...),
	} {
		orig := bytes.Clone(pkt)
		if _, clamped := ClampMSS(pkt, 1000, 1000); clamped || !bytes.Equal(pkt, orig) {
			t.Errorf("%s: changed (clamped %v)", name, clamped)
		}
	}
}

func TestChecksumReplaceKnown(t *testing.T) {
	// RFC 1624 §4's example: the checksum 0xdd2f over data in which a
	// word 0x5555 becomes 0x3285; eqn. 3 gives 0x0000, not eqn. 2's 0xffff.
	if got := checksumReplace(0xdd2f, 0x5555, 0x3285); got != 0x0000 {
		t.Errorf("RFC 1624 example: %#04x, want 0x0000", got)
	}
}

func TestClampMSSDoesNotAllocate(t *testing.T) {
	v4 := mssSeg(t, false, false, true, false, []layers.TCPOption{mssOpt(1460), optSACK, optTS, optNOP, optWS}, 0)
	v6 := mssSeg(t, true, true, true, true, []layers.TCPOption{optNOP, mssOpt(1440), optNOP, optNOP, optNOP}, 0)
	ack := mssSeg(t, false, false, false, true, nil, 1400)
	a := testing.AllocsPerRun(200, func() {
		binary.BigEndian.PutUint16(v4[20+22:], 1460)
		ClampMSS(v4, 1379, 1359)
		ClampMSS(v6, 1379, 1359)
		ClampMSS(ack, 1379, 1359)
	})
	if a != 0 {
		t.Errorf("%v allocations per run, want 0", a)
	}
}
