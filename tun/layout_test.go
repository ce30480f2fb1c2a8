package tun

import (
	"errors"
	"os"
	"testing"

	"github.com/ipsecgw/ipsecgw/header"
)

func TestInnerMTU(t *testing.T) {
	cbcSHA1 := ESPFraming{UDPEncap: true, IVLen: 16, BlockSize: 16, ICVLen: 12}
	tests := []struct {
		name string
		path int
		f    ESPFraming
		want int
	}{
		// 1500 - (20 IP + 8 UDP + 8 ESP + 8 IV + 16 ICV) = 1440; minus 2
		// trailer bytes, already 4-aligned.
		{"gcm udp v4", 1500, DefaultFraming, 1438},
		{"gcm plain v4", 1500, ESPFraming{IVLen: 8, BlockSize: 1, ICVLen: 16}, 1446},
		{"gcm udp v6", 1500, ESPFraming{OuterIPv6: true, UDPEncap: true, IVLen: 8, BlockSize: 1, ICVLen: 16}, 1418},
		// 1500 - 64 = 1436 -> 1424 on a 16-byte boundary -> 1422.
		{"cbc sha1 udp v4", 1500, cbcSHA1, 1422},
		{"cbc sha1 udp v4 1400", 1400, cbcSHA1, 1326},
		{"chacha udp v4 9000", 9000, ESPFraming{UDPEncap: true, IVLen: 8, BlockSize: 1, ICVLen: 16}, 8938},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := InnerMTU(tc.path, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("InnerMTU = %d, want %d", got, tc.want)
			}
			// The MTU is tight: a packet of that size fits, one more
			// byte does not (or pads to the same size and still fits).
			oh, err := tc.f.Overhead(got)
			if err != nil {
				t.Fatal(err)
			}
			if got+oh > tc.path {
				t.Fatalf("inner %d + overhead %d > path %d", got, oh, tc.path)
			}
			oh1, _ := tc.f.Overhead(got + 1)
			if got+1+oh1 <= tc.path {
				t.Fatalf("inner MTU %d is not maximal: %d+%d fits in %d", got, got+1, oh1, tc.path)
			}
		})
	}
}

func TestOverheadWithinHeadroomAndTailroom(t *testing.T) {
	// The largest framing we support must fit the buffer layout.
	f := ESPFraming{OuterIPv6: true, UDPEncap: true, IVLen: 16, BlockSize: 16, ICVLen: 32}
	front := header.IPv6Len + header.UDPLen + espHeaderLen + f.IVLen
	if front > Headroom-VirtioNetHdrLen {
		t.Fatalf("front overhead %d does not fit headroom %d", front, Headroom)
	}
	for n := 0; n < 64; n++ {
		oh, err := f.Overhead(n)
		if err != nil {
			t.Fatal(err)
		}
		if back := oh - front; back > Tailroom {
			t.Fatalf("trailer %d for inner length %d exceeds tailroom %d", back, n, Tailroom)
		}
	}
}

func TestFramingErrors(t *testing.T) {
	bad := []ESPFraming{
		{IVLen: -1, BlockSize: 1},
		{IVLen: 8, BlockSize: 3},
		{IVLen: 8, BlockSize: 0},
		{IVLen: 8, BlockSize: 1, ICVLen: 64},
	}
	for _, f := range bad {
		if _, err := InnerMTU(1500, f); err == nil {
			t.Errorf("InnerMTU accepted %+v", f)
		}
		if _, err := f.Overhead(100); err == nil {
			t.Errorf("Overhead accepted %+v", f)
		}
	}
	if _, err := InnerMTU(80, DefaultFraming); err == nil {
		t.Error("InnerMTU accepted a path MTU too small for any inner packet")
	}
	if _, err := DefaultFraming.Overhead(-1); err == nil {
		t.Error("Overhead accepted a negative length")
	}
}

func TestFake(t *testing.T) {
	f := NewFake("fake0", 1400, 4, 8)
	for i := range 6 {
		if err := f.Inject([]byte{0x45, byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	bufs := make([][]byte, f.BatchSize())
	for i := range bufs {
		bufs[i] = make([]byte, Headroom+f.MTU()+Tailroom)
	}
	sizes := make([]int, len(bufs))
	n, err := f.Read(bufs, sizes, Headroom)
	if err != nil || n != 4 {
		t.Fatalf("Read = %d, %v; want 4 packets", n, err)
	}
	for i := range n {
		if sizes[i] != 2 || bufs[i][Headroom+1] != byte(i) {
			t.Fatalf("packet %d = %x", i, bufs[i][Headroom:Headroom+sizes[i]])
		}
	}
	n, err = f.Read(bufs, sizes, Headroom)
	if err != nil || n != 2 {
		t.Fatalf("second Read = %d, %v; want the 2 remaining packets", n, err)
	}

	if _, err := f.Write(bufs[:1], 4); err == nil {
		t.Fatal("Write accepted an offset smaller than VirtioNetHdrLen")
	}
	if n, err := f.Write(bufs[:2], Headroom); err != nil || n != 2 {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if got := <-f.Written(); len(got) != len(bufs[0])-Headroom {
		t.Fatalf("written packet has %d bytes", len(got))
	}

	small := [][]byte{make([]byte, Headroom+1)}
	_ = f.Inject(make([]byte, 10))
	if _, err := f.Read(small, sizes, Headroom); err == nil {
		t.Fatal("Read into a too-small buffer did not fail")
	}

	done := make(chan error)
	go func() {
		_, err := f.Read(bufs, sizes, Headroom)
		done <- err
	}()
	f.Close()
	if err := <-done; !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Read after Close = %v, want os.ErrClosed", err)
	}
	if err := f.Inject([]byte{1}); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Inject after Close = %v", err)
	}
}
