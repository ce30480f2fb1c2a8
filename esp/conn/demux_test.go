package conn

import (
	"bytes"
	"testing"
)

func TestClassifyNATT(t *testing.T) {
	ike := append(make([]byte, 4), bytes.Repeat([]byte{1}, 28)...)
	esp := []byte{0, 0, 0x10, 0x01, 0, 0, 0, 1, 0xaa, 0xbb}
	tests := []struct {
		name string
		in   []byte
		kind Kind
		off  int
		why  DropReason
	}{
		{"empty", nil, KindDrop, 0, DropEmpty},
		{"keepalive", []byte{0xFF}, KindKeepalive, 0, DropNone},
		{"one byte not keepalive", []byte{0x00}, KindDrop, 0, DropShortMarker},
		{"three bytes", []byte{1, 2, 3}, KindDrop, 0, DropShortMarker},
		{"marker only", make([]byte, 4), KindDrop, 0, DropShortIKE},
		{"marker and short IKE", make([]byte, 4+27), KindDrop, 0, DropShortIKE},
		{"IKE with marker", ike, KindIKE, 4, DropNone},
		{"ESP", esp, KindESP, 0, DropNone},
		{"ESP SPI only", []byte{0, 0, 0x10, 1}, KindDrop, 0, DropShortESP},
		{"ESP 7 bytes", []byte{0xFF, 0, 0x10, 1, 0, 0, 0}, KindDrop, 0, DropShortESP},
		{"ESP header only", []byte{0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 1}, KindESP, 0, DropNone},
	}
	for _, tc := range tests {
		k, off, why := ClassifyNATT(tc.in)
		if k != tc.kind || off != tc.off || why != tc.why {
			t.Errorf("%s: got %d,%d,%q want %d,%d,%q", tc.name, k, off, why, tc.kind, tc.off, tc.why)
		}
	}
}

func TestClassifyIKEAndRaw(t *testing.T) {
	if k, _, why := ClassifyIKE(make([]byte, 27)); k != KindDrop || why != DropShortIKE {
		t.Errorf("short IKE on 500: %d %v", k, why)
	}
	if k, _, why := ClassifyIKE(nil); k != KindDrop || why != DropEmpty {
		t.Errorf("empty on 500: %d %v", k, why)
	}
	// On port 500 there is no marker: four zero bytes are simply the
	// start of an initiator SPI.
	if k, off, _ := ClassifyIKE(make([]byte, 28)); k != KindIKE || off != 0 {
		t.Errorf("IKE on 500: %d %d", k, off)
	}

	ip := func(ihl int, total int, payload int) []byte {
		b := make([]byte, ihl*4+payload)
		b[0] = 0x40 | byte(ihl)
		b[2], b[3] = byte(total>>8), byte(total)
		b[9] = 50
		return b
	}
	tests := []struct {
		name   string
		in     []byte
		kind   Kind
		off, n int
		why    DropReason
	}{
		{"plain", ip(5, 20+12, 12), KindESP, 20, 12, DropNone},
		{"options", ip(6, 24+8, 8), KindESP, 24, 8, DropNone},
		{"trailing junk beyond total length", ip(5, 20+8, 20), KindESP, 20, 8, DropNone},
		{"too short for header", make([]byte, 19), KindDrop, 0, 0, DropBadIPHeader},
		{"IPv6 version", func() []byte { b := ip(5, 28, 8); b[0] = 0x65; return b }(), KindDrop, 0, 0, DropBadIPHeader},
		{"ihl below 5", ip(4, 28, 12), KindDrop, 0, 0, DropBadIPHeader},
		{"total beyond datagram", ip(5, 100, 8), KindDrop, 0, 0, DropBadIPHeader},
		{"total below ihl", ip(5, 10, 8), KindDrop, 0, 0, DropBadIPHeader},
		{"short ESP", ip(5, 27, 7), KindDrop, 0, 0, DropShortESP},
	}
	for _, tc := range tests {
		k, off, n, why := ClassifyRawESP4(tc.in)
		if k != tc.kind || off != tc.off || n != tc.n || why != tc.why {
			t.Errorf("%s: got %d,%d,%d,%q want %d,%d,%d,%q", tc.name, k, off, n, why, tc.kind, tc.off, tc.n, tc.why)
		}
	}
	if k, _, why := ClassifyRawESP6(make([]byte, 7)); k != KindDrop || why != DropShortESP {
		t.Errorf("short raw v6: %d %v", k, why)
	}
	if k, off, _ := ClassifyRawESP6(make([]byte, 8)); k != KindESP || off != 0 {
		t.Errorf("raw v6: %d %d", k, off)
	}
}

func FuzzClassify(f *testing.F) {
	f.Add([]byte{0xFF})
	f.Add(append(make([]byte, 4), make([]byte, 28)...))
	f.Add([]byte{0x45, 0, 0, 28, 0, 0, 0, 0, 64, 50, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Fuzz(func(t *testing.T, b []byte) {
		if k, off, _ := ClassifyNATT(b); k == KindIKE && len(b[off:]) < ikeHeaderLen {
			t.Fatal("IKE shorter than its header accepted")
		}
		if k, off, n, _ := ClassifyRawESP4(b); k == KindESP && (off+n > len(b) || n < espMinLen) {
			t.Fatalf("raw ESP bounds off=%d n=%d len=%d", off, n, len(b))
		}
	})
}

// BenchmarkClassify measures the per-datagram classification of the
// receive path for each socket kind.
func BenchmarkClassify(b *testing.B) {
	esp := append([]byte{0, 0, 0x10, 0x01, 0, 0, 0, 1}, make([]byte, 1392)...)
	raw4 := append([]byte{0x45, 0, 0x05, 0x8c, 0, 0, 0x40, 0, 64, 50, 0, 0, 198, 51, 100, 1, 203, 0, 113, 7}, esp...)
	b.Run("natt-esp", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if k, _, _ := ClassifyNATT(esp); k != KindESP {
				b.Fatal(k)
			}
		}
	})
	b.Run("raw-esp4", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if k, _, _, why := ClassifyRawESP4(raw4); k != KindESP {
				b.Fatal(why)
			}
		}
	})
}
