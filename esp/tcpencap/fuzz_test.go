package tcpencap

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"

	"github.com/ipsecgw/ipsecgw/esp/conn"
)

// chunkConn reads its input in chunks of a fixed size, as TCP may
// deliver a stream in any pieces.
type chunkConn struct {
	net.Conn
	r     io.Reader
	chunk int
}

func (c *chunkConn) Read(b []byte) (int, error) {
	if len(b) > c.chunk {
		b = b[:c.chunk]
	}
	return c.r.Read(b)
}

func (c *chunkConn) Close() error { return nil }

// FuzzStream feeds arbitrary bytes, cut into reads of arbitrary size, to
// the stream decoder: nothing may panic, and what it delivers must be
// exactly what parsing the whole input at once yields, up to the first
// framing error, which must end the stream.
//
//	go test -run XXX -fuzz FuzzStream -fuzztime 30s ./esp/tcpencap/
func FuzzStream(f *testing.F) {
	var seed []byte
	seed, _ = AppendIKE(seed, ikeMsg(3))
	seed, _ = AppendESP(seed, espPkt(0x42, 60))
	seed = AppendKeepalive(seed)
	f.Add(seed, uint8(1))
	f.Add(seed, uint8(200))
	f.Add(append(seed[:len(seed):len(seed)], 0, 1), uint8(7))
	f.Add([]byte{0, 2, 0, 3, 0xFF}, uint8(0))
	// ESP before IKE in one read: the order must be kept.
	espFirst, _ := AppendESP(nil, espPkt(0x44, 30))
	espFirst, _ = AppendIKE(espFirst, ikeMsg(4))
	f.Add(espFirst, uint8(255))
	big, _ := AppendESP(nil, espPkt(0x43, MaxMessage))
	f.Add(big, uint8(255))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		// The reference: every frame of the whole input, in order.
		type msg struct {
			ike bool
			b   []byte
		}
		var want []msg
		var wantErr error
		for b := data; ; {
			fr, size, err := Next(b)
			if err != nil {
				wantErr = err
				break
			}
			if size == 0 {
				break
			}
			if fr.Kind == conn.KindIKE || fr.Kind == conn.KindESP {
				want = append(want, msg{fr.Kind == conn.KindIKE, b[fr.Off : fr.Off+fr.Len]})
			}
			b = b[size:]
		}
		var got []msg
		s := newStream(&chunkConn{r: bytes.NewReader(data), chunk: int(chunk) + 1})
		err := s.Serve(Handler{
			IKE: func(m []byte) { got = append(got, msg{true, bytes.Clone(m)}) },
			ESP: func(batch []conn.ESPPacket) {
				for _, p := range batch {
					got = append(got, msg{false, bytes.Clone(p.Bytes())})
				}
			},
		})
		if wantErr != nil && !errors.Is(err, wantErr) {
			t.Fatalf("Serve = %v, want %v", err, wantErr)
		}
		if wantErr == nil && !errors.Is(err, io.EOF) {
			t.Fatalf("Serve = %v, want EOF", err)
		}
		if len(got) != len(want) {
			t.Fatalf("%d messages delivered, want %d", len(got), len(want))
		}
		for i := range want {
			if got[i].ike != want[i].ike || !bytes.Equal(got[i].b, want[i].b) {
				t.Fatalf("message %d differs", i)
			}
		}
	})
}
