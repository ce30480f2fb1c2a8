package ah

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"
)

// v6ExtPacket builds an IPv6/UDP packet from src6 to dst6 with, in order,
// a Hop-by-Hop Options header (Router Alert, immutable, and an
// experimental option 0x3e whose type has the "may change en route" bit),
// a Routing header (type 2, Segments Left 0) and a Destination Options
// header (option 0x1e, immutable, and PadN), then 16 bytes of UDP.
func v6ExtPacket() []byte {
	hbh := []byte{43, 1, // next: Routing; 16 bytes
		0x05, 2, 0, 0, // Router Alert (MLD)
		0x3e, 6, 1, 2, 3, 4, 5, 6, // mutable option data
		0, 0} // Pad1, Pad1
	rt := []byte{60, 2, 2, 0, 0, 0, 0, 0} // next: Destination Options; 24 bytes; type 2, Segments Left 0
	rt = append(rt, dst6.AsSlice()...)
	dst := []byte{17, 0, // next: UDP; 8 bytes
		0x1e, 2, 0xaa, 0xbb, // immutable option
		0x00, 0x00} // Pad1, Pad1
	udp := []byte{0x04, 0xd2, 0x16, 0x2e, 0, 16, 0, 0, 'p', 'a', 'y', 'l', 'o', 'a', 'd', '!'}
	payload := bytes.Join([][]byte{hbh, rt, dst, udp}, nil)
	ip := []byte{0x6a, 0xbc, 0xde, 0xf0, byte(len(payload) >> 8), byte(len(payload)), 0, 61}
	ip = append(ip, src6.AsSlice()...)
	ip = append(ip, dst6.AsSlice()...)
	return append(ip, payload...)
}

// Offsets in v6ExtPacket.
const (
	v6ExtLen       = 16 + 24 + 8 // the three extension headers
	v6MutableData  = 40 + 8      // option 0x3e's data
	v6DestOpts     = 40 + 16 + 24
	v6ImmutableOpt = v6DestOpts + 4 // option 0x1e's data
	v6SegmentsLeft = 40 + 16 + 3
)

// TestIPv6ExtensionHeadersTransport: SealTransport puts AH after the
// Hop-by-Hop, Routing and Destination Options headers (the last one's
// Next Header becomes 51), and the ICV is the one RFC 4302 §3.3.3.1.2
// prescribes, computed here with crypto/hmac: traffic class, flow label
// and hop limit zero, the data of the option marked mutable zero, the rest
// as it is. Open accepts the packet after the mutable parts changed in
// transit, refuses it when immutable option data changed, and refuses a
// Routing header with segments left; RemoveTransport gives back the
// original packet.
func TestIPv6ExtensionHeadersTransport(t *testing.T) {
	for _, a := range algs {
		t.Run(a.name, func(t *testing.T) {
			p := a.protector(t)
			orig := v6ExtPacket()
			buf, off := place(orig)
			_, pkt, err := SealTransport(p, 0x5eed, 7, true, buf, off, len(orig))
			if err != nil {
				t.Fatal(err)
			}
			al := Len(a.icv, true)
			ahOff := 40 + v6ExtLen
			if len(pkt) != len(orig)+al || pkt[6] != 0 || pkt[v6DestOpts] != 51 {
				t.Fatalf("packet of %d bytes, next header %d, destination options' next header %d", len(pkt), pkt[6], pkt[v6DestOpts])
			}
			if !bytes.Equal(pkt[:ahOff], append(withPayloadLen(orig[:40], len(orig)-40+al), withNext(orig[40:ahOff], v6DestOpts-40, 51)...)) {
				t.Fatalf("headers before AH changed:\n% x\n% x", pkt[:ahOff], orig[:ahOff])
			}
			ahh := pkt[ahOff : ahOff+al]
			if ahh[0] != 17 || int(ahh[1]) != al/4-2 || binary.BigEndian.Uint32(ahh[4:]) != 0x5eed || binary.BigEndian.Uint32(ahh[8:]) != 7 {
				t.Fatalf("AH header % x", ahh[:12])
			}
			if !bytes.Equal(pkt[ahOff+al:], orig[ahOff:]) {
				t.Fatal("payload changed")
			}
			z := bytes.Clone(pkt)
			z[0], z[1], z[2], z[3], z[7] = 0x60, 0, 0, 0, 0
			clear(z[v6MutableData : v6MutableData+6])
			clear(z[ahOff+12 : ahOff+al])
			if want := a.mac(z, []byte{0, 0, 0, 0}); !bytes.Equal(ahh[12:12+a.icv], want) {
				t.Fatalf("ICV %x, want %x", ahh[12:12+a.icv], want)
			}

			// In transit: hop limit, flow label and the mutable option's
			// data change; the ICV still holds.
			rx := bytes.Clone(pkt)
			rx[7], rx[3] = 1, 0x99
			copy(rx[v6MutableData:], "XYZXYZ")
			o, n, next, err := Open(p, 7, true, rx)
			if err != nil || next != 17 || o != ahOff+al || n != len(orig)-ahOff {
				t.Fatalf("Open: off %d n %d next %d: %v", o, n, next, err)
			}
			start := RemoveTransport(rx, o, n, next)
			want := bytes.Clone(orig)
			want[7], want[3] = 1, 0x99
			copy(want[v6MutableData:], "XYZXYZ")
			if !bytes.Equal(rx[start:o+n], want) {
				t.Fatalf("RemoveTransport:\n% x\nwant\n% x", rx[start:o+n], want)
			}

			bad := bytes.Clone(pkt)
			bad[v6ImmutableOpt] ^= 1
			if _, _, _, err := Open(p, 7, true, bad); !errors.Is(err, ErrAuth) {
				t.Errorf("immutable option changed: %v, want ErrAuth", err)
			}
			routed := bytes.Clone(pkt)
			routed[v6SegmentsLeft] = 1
			if _, _, _, err := Open(p, 7, true, routed); !errors.Is(err, ErrExtension) {
				t.Errorf("segments left 1: %v, want ErrExtension", err)
			}
			routed[v6SegmentsLeft] = 0
			if !bytes.Equal(routed, pkt) {
				t.Error("a refused packet was changed")
			}
		})
	}
}

func withPayloadLen(ip []byte, n int) []byte {
	ip = bytes.Clone(ip)
	binary.BigEndian.PutUint16(ip[4:], uint16(n))
	return ip
}

func withNext(b []byte, at int, next byte) []byte {
	b = bytes.Clone(b)
	b[at] = next
	return b
}

// TestIPv6ExtensionHeadersRefused: a Fragment header before AH, a
// Hop-by-Hop header anywhere but first, an option running past its
// header, and more extension headers than Open saves are refused.
func TestIPv6ExtensionHeadersRefused(t *testing.T) {
	a := algs[2]
	p := a.protector(t)
	sealed := func(mod func([]byte)) []byte {
		orig := v6ExtPacket()
		buf, off := place(orig)
		_, pkt, err := SealTransport(p, 0x77, 1, false, buf, off, len(orig))
		if err != nil {
			t.Fatal(err)
		}
		pkt = bytes.Clone(pkt)
		mod(pkt)
		return pkt
	}
	for _, tc := range []struct {
		name string
		mod  func([]byte)
		want error
	}{
		{"fragment header", func(b []byte) { b[40+16] = 44 }, ErrHeader},
		{"hop-by-hop second", func(b []byte) { b[40] = 0 }, ErrHeader},
		{"option past its header", func(b []byte) { b[40+7] = 9 }, ErrExtension},
	} {
		pkt := sealed(tc.mod)
		if _, _, _, err := Open(p, 1, false, pkt); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	// 264 bytes of Destination Options before AH: one header of 33 units.
	long := make([]byte, 40+264+Len(a.icv, true))
	long[0], long[6] = 0x60, 60
	binary.BigEndian.PutUint16(long[4:], uint16(len(long)-40))
	long[40], long[41] = 51, 32
	long[42], long[43] = 1, 255 // PadN, then another over the rest
	long[299], long[300] = 1, 3
	long[40+264+1] = byte(Len(a.icv, true)/4 - 2) // AH Payload Len
	if _, _, _, err := Open(p, 1, false, long); !errors.Is(err, ErrExtension) {
		t.Errorf("264 bytes of extension headers: %v, want ErrExtension", err)
	}
	// A fragment is refused by SealTransport too.
	frag := v6ExtPacket()
	frag[40+16] = 44
	buf, off := place(frag)
	if _, _, err := SealTransport(p, 1, 1, false, buf, off, len(frag)); !errors.Is(err, ErrHeader) {
		t.Errorf("SealTransport of a fragment: %v", err)
	}
}

// TestIPv6ExtensionHeadersAllocs: sealing and opening with extension
// headers allocate nothing.
func TestIPv6ExtensionHeadersAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts mean nothing under the race detector")
	}
	p := algs[2].protector(t)
	orig := v6ExtPacket()
	buf, off := place(orig)
	work := make([]byte, len(buf))
	if n := testing.AllocsPerRun(100, func() {
		copy(work, buf)
		_, pkt, err := SealTransport(p, 9, 1, true, work, off, len(orig))
		if err != nil {
			t.Fatal(err)
		}
		o, n, next, err := Open(p, 1, true, pkt)
		if err != nil {
			t.Fatal(err)
		}
		RemoveTransport(pkt, o, n, next)
	}); n != 0 {
		t.Errorf("%v allocations", n)
	}
}
