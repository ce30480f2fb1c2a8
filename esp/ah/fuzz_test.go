package ah

import (
	"testing"

	"github.com/ipsecgw/ipsecgw/transform"
)

// FuzzOpen feeds arbitrary packets to the inbound path: it must never
// panic, never accept a packet whose ICV it did not compute, and leave the
// packet as it came.
func FuzzOpen(f *testing.F) {
	key := make([]byte, 32)
	p, err := transform.NewAuthProtector(transform.Transform{Type: transform.TypeINTEG, ID: transform.IntegHMACSHA2_256_128}, key)
	if err != nil {
		f.Fatal(err)
	}
	for _, inner := range [][]byte{inner4(0), inner6(3)} {
		for _, v6 := range []bool{false, true} {
			src, dst := src4, dst4
			if v6 {
				src, dst = src6, dst6
			}
			buf, off := place(inner)
			_, pkt, err := SealTunnel(p, 0x100, 1, false, src, dst, buf, off, len(inner))
			if err != nil {
				f.Fatal(err)
			}
			f.Add(append([]byte(nil), pkt...), uint64(1), false)
			if len(pkt) > 30 {
				f.Add(append([]byte(nil), pkt[:30]...), uint64(1), true)
			}
		}
	}
	f.Add([]byte{0x46, 0, 0, 40, 0, 0, 0, 0, 64, 51, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 131, 3, 0, 0}, uint64(0), false)
	// IPv6 with extension headers before AH (transport mode: OpenTunnel
	// refuses its Next Header, but only after walking and zeroing them).
	ext := v6ExtPacket()
	buf, off := place(ext)
	if _, pkt, err := SealTransport(p, 0x100, 1, false, buf, off, len(ext)); err == nil {
		f.Add(append([]byte(nil), pkt...), uint64(1), false)
	} else {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, pkt []byte, seq uint64, esn bool) {
		orig := string(pkt)
		off, n, err := OpenTunnel(p, seq, esn, pkt)
		if string(pkt) != orig {
			t.Fatalf("Open changed the packet")
		}
		if err != nil {
			return
		}
		if off < HeaderLen || off+n > len(pkt) {
			t.Fatalf("inner packet [%d:%d] outside the %d-byte packet", off, off+n, len(pkt))
		}
		// Accepted: opening is deterministic and leaves the packet as it
		// was, so a second Open accepts it again with the same result.
		off2, n2, err := OpenTunnel(p, seq, esn, pkt)
		if err != nil || off2 != off || n2 != n {
			t.Fatalf("second Open: %v (%d,%d) vs (%d,%d)", err, off2, n2, off, n)
		}
	})
}
