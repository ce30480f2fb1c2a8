package ah

import "testing"

// BenchmarkAH seals and opens 1400-byte inner packets in tunnel mode over
// IPv4 with ESN, per integrity algorithm (bytes/s of inner packet).
func BenchmarkAH(b *testing.B) {
	for _, a := range algs {
		b.Run(a.name, func(b *testing.B) {
			p := a.protector(b)
			inner := inner4(1372)
			buf, off := place(inner)
			b.SetBytes(int64(len(inner)))
			b.ReportAllocs()
			for i := range b.N {
				seq := uint64(i + 1)
				_, pkt, err := SealTunnel(p, 0x100, seq, true, src4, dst4, buf, off, len(inner))
				if err != nil {
					b.Fatal(err)
				}
				if _, _, err := OpenTunnel(p, seq, true, pkt); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
