package daemon

import (
	"encoding/binary"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/esp/conn"
)

// TestDualSenderSplitsByFamily: a mixed batch reaches the IPv4 and the IPv6
// peer, each through the socket of its family, in order.
func TestDualSenderSplitsByFamily(t *testing.T) {
	type got struct {
		mu   sync.Mutex
		spis []uint32
	}
	listen := func(addr netip.Addr, g *got) *conn.Conn {
		cfg := conn.Config{Addr: addr, ESP: func(batch []conn.ESPPacket) {
			g.mu.Lock()
			defer g.mu.Unlock()
			for i := range batch {
				g.spis = append(g.spis, binary.BigEndian.Uint32(batch[i].Bytes()))
			}
		}}
		c, err := conn.Listen(cfg)
		if err != nil {
			t.Skipf("cannot open sockets on %v: %v", addr, err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	var got4, got6 got
	r4 := listen(netip.MustParseAddr("127.0.0.1"), &got4)
	r6 := listen(netip.MustParseAddr("::1"), &got6)
	s := &sockets{v4: listen(netip.MustParseAddr("127.0.0.1"), &got{}), v6: listen(netip.MustParseAddr("::1"), &got{})}
	snd := s.newSender()

	dst4 := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), r4.NATTPort())
	dst6 := netip.AddrPortFrom(netip.MustParseAddr("::1"), r6.NATTPort())
	var pkts []conn.OutPacket
	for i := range 6 {
		b := make([]byte, 40)
		binary.BigEndian.PutUint32(b, uint32(0x1000+i))
		binary.BigEndian.PutUint32(b[4:], 1)
		dst := dst4
		if i%2 == 1 {
			dst = dst6
		}
		pkts = append(pkts, conn.OutPacket{B: b, Dst: dst, UDP: true})
	}
	if n, err := snd.Send(pkts); n != 6 || err != nil {
		t.Fatalf("Send = %d, %v", n, err)
	}
	// Single-family batches take the direct path.
	if n, err := snd.Send(pkts[:1]); n != 1 || err != nil {
		t.Fatalf("Send v4 only = %d, %v", n, err)
	}
	want4 := []uint32{0x1000, 0x1002, 0x1004, 0x1000}
	want6 := []uint32{0x1001, 0x1003, 0x1005}
	deadline := time.Now().Add(10 * time.Second)
	for {
		got4.mu.Lock()
		n4 := len(got4.spis)
		got4.mu.Unlock()
		got6.mu.Lock()
		n6 := len(got6.spis)
		got6.mu.Unlock()
		if n4 >= len(want4) && n6 >= len(want6) || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	got4.mu.Lock()
	got6.mu.Lock()
	defer got4.mu.Unlock()
	defer got6.mu.Unlock()
	if !slices.Equal(got4.spis, want4) || !slices.Equal(got6.spis, want6) {
		t.Errorf("IPv4 peer got %x (want %x), IPv6 peer got %x (want %x)", got4.spis, want4, got6.spis, want6)
	}
}

func TestPickLocal(t *testing.T) {
	cfg := loadTestConfig(t)
	if a := pickLocal(cfg, nil, true); a != netip.MustParseAddr("198.51.100.1") {
		t.Errorf("pickLocal v4 = %v", a)
	}
	host := []netip.Addr{netip.MustParseAddr("::1"), netip.MustParseAddr("fe80::1"), netip.MustParseAddr("2001:db8::1")}
	if a := pickLocal(cfg, host, false); a != netip.MustParseAddr("2001:db8::1") {
		t.Errorf("pickLocal v6 = %v", a)
	}
	if needsIPv6(cfg) {
		t.Error("an IPv4-only config needs IPv6 sockets")
	}
}
