package conn

import (
	"net/netip"
	"os"
	"sync"
	"testing"

	"github.com/ipsecgw/ipsecgw/esp/ah"
	"github.com/ipsecgw/ipsecgw/transform"
)

// TestRawAH sends AH packets built by package ah through the raw AH socket
// to loopback and verifies what comes back: the kernel must send our outer
// header as it is (IP_HDRINCL/IPV6_HDRINCL; the ICV covers it), and the
// receiver must hand over the whole IPv4 packet, or the IPv6 payload from
// which the fixed header is rebuilt.
func TestRawAH(t *testing.T) {
	if os.Geteuid() != 0 {
		msg := "raw IP protocol 51 socket needs root or CAP_NET_RAW"
		if os.Getenv("IPSECGW_REQUIRE_INTEROP") == "1" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	p, err := transform.NewAuthProtector(transform.Transform{Type: transform.TypeINTEG, ID: transform.IntegHMACSHA2_256_128}, make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, addr := range []netip.Addr{loopback, netip.IPv6Loopback()} {
		t.Run(addr.String(), func(t *testing.T) {
			var mu sync.Mutex
			var got []ESPPacket
			var data [][]byte
			c := listen(t, Config{Addr: addr, RawAH: true, ESP: func(batch []ESPPacket) {
				mu.Lock()
				defer mu.Unlock()
				for _, b := range batch {
					got = append(got, b)
					data = append(data, append([]byte(nil), b.Bytes()...))
				}
			}})
			s := c.NewSender()
			const n = 5
			var out []OutPacket
			for i := range n {
				inner := make([]byte, 40+i)
				inner[0] = 0x45
				buf := make([]byte, 128+len(inner))
				copy(buf[128:], inner)
				_, pkt, err := ah.SealTunnel(p, 0x2000, uint64(i+1), false, addr, addr, buf, 128, len(inner))
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, OutPacket{B: pkt, Dst: netip.AddrPortFrom(addr, 0), AH: true})
			}
			if k, err := s.Send(out); k != n || err != nil {
				t.Fatalf("Send = %d, %v", k, err)
			}
			waitFor(t, "raw AH", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) >= n })
			mu.Lock()
			defer mu.Unlock()
			for i, b := range data {
				if !got[i].AH || got[i].UDP {
					t.Fatalf("packet %d: AH=%v UDP=%v", i, got[i].AH, got[i].UDP)
				}
				pkt := b
				if addr.Is6() {
					buf := make([]byte, 40+len(b))
					copy(buf[40:], b)
					s, err := ah.BuildIPv6(buf, 40, len(b), got[i].Src.Addr(), addr)
					if err != nil {
						t.Fatal(err)
					}
					pkt = buf[s:]
				}
				_, spi, seq, err := ah.Parse(pkt)
				if err != nil || spi != 0x2000 {
					t.Fatalf("packet %d: Parse: spi %#x, %v", i, spi, err)
				}
				if _, _, err := ah.OpenTunnel(p, uint64(seq), false, pkt); err != nil {
					t.Fatalf("packet %d (seq %d) as received does not verify: %v\n%x", i, seq, err, pkt)
				}
			}
		})
	}
}

// TestAHWithoutSocket: AH to a Conn without the AH socket is an error,
// not a packet sent on the ESP socket.
func TestAHWithoutSocket(t *testing.T) {
	c := listen(t, Config{})
	n, err := c.NewSender().Send([]OutPacket{{B: make([]byte, 40), Dst: netip.AddrPortFrom(loopback, 0), AH: true}})
	if n != 0 || err != errNoAH {
		t.Fatalf("Send = %d, %v; want 0, errNoAH", n, err)
	}
}
