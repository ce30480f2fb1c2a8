package esp

import (
	"testing"

	"github.com/ipsecgw/ipsecgw/sad"
)

// FuzzOpen feeds arbitrary bytes to the inbound path (SPI lookup, replay
// check, ICV, padding, Next Header, selectors) for one installed SA per
// cipher family and to ParseOuter: nothing may panic, and nothing forged
// may be accepted. Seeds are real packets and their truncations.
//
//	go test -run XXX -fuzz FuzzOpen -fuzztime 30s ./esp/
func FuzzOpen(f *testing.F) {
	names := map[string]bool{"aes128gcm16": true, "aes128+sha256": true, "chacha20poly1305": true, "null+sha256": true}
	tab := sad.NewTable(sad.Options{})
	var outs []*sad.SA
	spi := uint32(0x7000)
	for _, s := range allSuites(f) {
		if !names[s.name] {
			continue
		}
		spi++
		out, in := saPair(f, s, spi, spi%2 == 0)
		if err := tab.InstallInbound(in); err != nil {
			f.Fatal(err)
		}
		outs = append(outs, out)
	}
	for i, out := range outs {
		inner := ipv4Packet(40+i*13, "10.1.0.2", "10.2.0.2", 1)
		buf, off := newBuf(inner)
		_, pkt, r := Seal(out, buf, off, len(inner))
		if r != sad.NotDropped {
			f.Fatal(r)
		}
		f.Add(append([]byte(nil), pkt...))
		f.Add(append([]byte(nil), pkt[:len(pkt)/2]...))
	}
	f.Add([]byte{0x45, 0, 0, 20})
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _, _, _ = ParseOuter(data)
		pkt := append(make([]byte, 0, len(data)+Spare), data...)
		sa, off, n, r := Open(tab, pkt)
		if r == sad.NotDropped {
			// Only a genuine packet opens: the seeds are genuine once
			// (their first delivery); anything else must fail the ICV.
			if sa == nil || off < HeaderLen || off+n > len(pkt) {
				t.Fatalf("accepted with bad bounds: off %d n %d len %d", off, n, len(pkt))
			}
		}
	})
}
