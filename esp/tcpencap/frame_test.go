package tcpencap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"testing"

	"github.com/ipsecgw/ipsecgw/esp/conn"
)

// ikeMsg is a minimal IKE message: a 28-byte header with a non-zero SPI.
func ikeMsg(fill byte) []byte {
	m := bytes.Repeat([]byte{fill}, 28)
	binary.BigEndian.PutUint32(m[24:], 28)
	return m
}

func espPkt(spi uint32, n int) []byte {
	p := make([]byte, n)
	binary.BigEndian.PutUint32(p, spi)
	for i := 4; i < n; i++ {
		p[i] = byte(i)
	}
	return p
}

func TestNextKinds(t *testing.T) {
	ike, err := AppendIKE(nil, ikeMsg(7))
	if err != nil {
		t.Fatal(err)
	}
	esp, err := AppendESP(nil, espPkt(0x1234, 40))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		in       []byte
		kind     conn.Kind
		why      conn.DropReason
		size     int
		off, len int
		err      error
	}{
		{name: "ike", in: ike, kind: conn.KindIKE, size: 2 + 4 + 28, off: 6, len: 28},
		{name: "esp", in: esp, kind: conn.KindESP, size: 42, off: 2, len: 40},
		{name: "keepalive", in: AppendKeepalive(nil), kind: conn.KindKeepalive, size: 3},
		{name: "empty frame", in: []byte{0, 2}, kind: conn.KindDrop, why: conn.DropEmpty, size: 2},
		{name: "short ike", in: append([]byte{0, 10}, make([]byte, 8)...), kind: conn.KindDrop, why: conn.DropShortIKE, size: 10},
		{name: "short esp", in: []byte{0, 7, 1, 2, 3, 4, 5}, kind: conn.KindDrop, why: conn.DropShortESP, size: 7},
		{name: "no length yet", in: []byte{0}},
		{name: "partial", in: esp[:20]},
		{name: "length 1", in: []byte{0, 1, 0xFF}, err: ErrBadLength},
		{name: "length 0", in: []byte{0, 0}, err: ErrBadLength},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, size, err := Next(tc.in)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if size != tc.size || f.Kind != tc.kind || f.Why != tc.why || f.Off != tc.off || f.Len != tc.len {
				t.Fatalf("Next = %+v size %d, want kind %v why %v off %d len %d size %d", f, size, tc.kind, tc.why, tc.off, tc.len, tc.size)
			}
		})
	}
}

func TestAppendLimits(t *testing.T) {
	if _, err := AppendESP(nil, make([]byte, MaxMessage)); err != nil {
		t.Fatalf("largest ESP packet refused: %v", err)
	}
	if _, err := AppendESP(nil, make([]byte, MaxMessage+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("ESP packet over the limit: err = %v", err)
	}
	if _, err := AppendIKE(nil, make([]byte, MaxMessage-markerLen+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("IKE message over the limit: err = %v", err)
	}
	b, err := AppendESP(nil, make([]byte, MaxMessage))
	if err != nil || binary.BigEndian.Uint16(b) != 0xFFFF || len(b) != 0xFFFF {
		t.Fatalf("largest frame: length field %#x, %d bytes, err %v", binary.BigEndian.Uint16(b), len(b), err)
	}
}
