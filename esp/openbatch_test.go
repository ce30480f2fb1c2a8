package esp

import (
	"encoding/binary"
	"testing"

	"github.com/ipsecgw/ipsecgw/esp/conn"
	"github.com/ipsecgw/ipsecgw/sad"
	"github.com/ipsecgw/ipsecgw/spd"
	"github.com/ipsecgw/ipsecgw/tun"
)

// TestOpenAllMatchesOpenPending feeds one inbound batch of good, forged,
// truncated, replayed (twice in the batch), unknown-SPI and undeliverable
// (wrong selectors) packets through the batched open of a worker and checks
// each verdict, offset and length against openPending, the packet-at-a-time
// path, on a copy.
func TestOpenAllMatchesOpenPending(t *testing.T) {
	for _, s := range allSuites(t) {
		if s.name != "aes128+sha1" && s.name != "aes128+sha256" && s.name != "aes128gcm16" {
			continue
		}
		t.Run(s.name, func(t *testing.T) {
			out, in := saPair(t, s, 0x7171, true)
			rt := sad.NewTable(sad.Options{})
			if err := rt.InstallInbound(in); err != nil {
				t.Fatal(err)
			}
			nt := &nullTUN{Device: tun.NewFake("in", 1400, 32, 1)}
			rd, err := New(Config{TUN: nt, SAD: rt, SPD: &spd.Live{}, Workers: 1, InBatch: 32, NewSender: func() Sender { return &countSender{} }})
			if err != nil {
				t.Fatal(err)
			}
			rd.started.Store(true) // driven by hand
			var pkts []conn.ESPPacket
			add := func(p []byte) {
				b := make([]byte, conn.ReadOffset+2048)
				pkts = append(pkts, conn.ESPPacket{Buf: b, Off: conn.ReadOffset, Len: copy(b[conn.ReadOffset:], p)})
			}
			work := make([]byte, tun.Headroom+2048)
			seal := func(inner []byte) []byte {
				copy(work[tun.Headroom:], inner)
				_, p, r := Seal(out, work, tun.Headroom, len(inner))
				if r != sad.NotDropped {
					t.Fatal(r)
				}
				return append([]byte(nil), p...)
			}
			good := seal(ipv4Packet(300, "10.1.0.2", "10.2.0.2", 1))
			add(good)
			add(good) // replayed within the batch: both pass the window check
			forged := seal(ipv4Packet(500, "10.1.0.2", "10.2.0.2", 2))
			forged[len(forged)-1] ^= 1
			add(forged)
			add(seal(ipv4Packet(200, "10.1.0.2", "10.2.0.2", 3))[:20]) // truncated
			other := seal(ipv4Packet(100, "10.1.0.2", "10.2.0.2", 4))
			binary.BigEndian.PutUint32(other, 0x9999) // unknown SPI
			add(other)
			add(seal(ipv4Packet(100, "10.9.0.2", "10.2.0.2", 5))) // outside the selectors
			for i := range 10 {
				add(seal(ipv4Packet(64+i*130, "10.1.0.2", "10.2.0.2", uint16(10+i))))
			}
			copies := make([][]byte, len(pkts))
			for i, p := range pkts {
				copies[i] = append([]byte(nil), p.Buf[p.Off:p.Off+p.Len]...)
			}
			rd.HandleESP(pkts)
			runQueuedOpen(rd)
			ie := <-rd.inQ
			<-ie.done
			if ie.cnt != len(pkts) {
				t.Fatalf("element holds %d packets, sent %d", ie.cnt, len(pkts))
			}
			for i := range ie.cnt {
				it := &ie.items[i]
				pkt := append(make([]byte, 0, len(copies[i])+Spare), copies[i]...)
				sa, seq, off, n, r := openPending(rt, pkt)
				if it.sa != sa || it.seq != seq || it.r != r {
					t.Errorf("packet %d: batch gave SA %p seq %d %v, openPending SA %p seq %d %v", i, it.sa, it.seq, it.r, sa, seq, r)
				}
				if sa != nil && (it.start != inOff+off || it.n != n) {
					t.Errorf("packet %d: inner at %d+%d, openPending %d+%d", i, it.start-inOff, it.n, off, n)
				}
				if r == sad.NotDropped && string(ie.bufs[i][it.start:it.start+it.n]) != string(pkt[off:off+n]) {
					t.Errorf("packet %d: inner packet differs", i)
				}
			}
			ie.done <- struct{}{}
			rd.writeBatch(ie)
			rd.inFree <- ie
		})
	}
}
