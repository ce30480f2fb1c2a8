package esp

import (
	"encoding/binary"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/esp/conn"
	"github.com/ipsecgw/ipsecgw/sad"
	"github.com/ipsecgw/ipsecgw/spd"
)

// TestNoSAPath: ESP that finds no inbound SA is held when its SPI is
// reserved for a negotiation in flight and written to the TUN once the SA
// is installed; ESP for an SPI nobody reserved is dropped as "no SA" and
// reported with its SPI and source (Config.OnUnknownSPI), so that IKE can
// answer with INVALID_SPI.
func TestNoSAPath(t *testing.T) {
	s := allSuites(t)[0]
	var g1, g2 *gateway
	g1 = newGateway(t, "gw1", "10.1.0.0/16", "10.2.0.0/16", gw1Addr, gw2Addr, &g2, 1)
	g2 = newGateway(t, "gw2", "10.2.0.0/16", "10.1.0.0/16", gw2Addr, gw1Addr, &g1, 1)
	var mu sync.Mutex
	type report struct {
		spi uint32
		src netip.AddrPort
	}
	var unknown []report
	var larval []string
	g2.dp.cfg.OnUnknownSPI = func(spi uint32, src netip.AddrPort) {
		mu.Lock()
		defer mu.Unlock()
		unknown = append(unknown, report{spi, src})
	}
	g2.dp.cfg.OnLarval = func(spi uint32, n int, installed bool) {
		mu.Lock()
		defer mu.Unlock()
		if installed {
			larval = append(larval, "installed")
		}
	}
	g1.dp.Start()
	g2.dp.Start()
	t.Cleanup(func() { g1.dp.Close(); g2.dp.Close() })

	// g2 reserves the SPI (IKE allocated it) but installs the SA late.
	spi, err := g2.sad.AllocateSPI()
	if err != nil {
		t.Fatal(err)
	}
	out, err := sad.New(sad.Config{SPI: spi, Dir: sad.Outbound, Local: g1.addr, Remote: g1.peer, UDPEncap: true,
		Selectors: []spd.Selector{g1.sel}, Cipher: s.protector(t), PolicyID: 1, ESN: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := g1.sad.InstallOutbound(out); err != nil {
		t.Fatal(err)
	}
	inject(t, g1.tun, ipv4Packet(100, "10.1.0.5", "10.2.0.5", 1))
	time.Sleep(50 * time.Millisecond)
	select {
	case <-g2.tun.Written():
		t.Fatal("a packet went through before its SA was installed")
	default:
	}
	in, err := sad.New(sad.Config{SPI: spi, Dir: sad.Inbound, Local: g2.addr, Remote: g2.peer, UDPEncap: true,
		Selectors: []spd.Selector{g2.sel}, Cipher: s.protector(t), PolicyID: 1, ESN: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := g2.sad.InstallInbound(in); err != nil {
		t.Fatal(err)
	}
	receive(t, g2.tun, 1)
	// The hold reports the release after handing the packet on, so the
	// packet may reach the TUN first.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		mu.Lock()
		n := len(larval)
		mu.Unlock()
		if n > 0 {
			break
		}
	}
	mu.Lock()
	if len(larval) != 1 || len(unknown) != 0 {
		t.Errorf("held packet: larval reports %v, unknown-SPI reports %v; want one release, no unknown SPI", larval, unknown)
	}
	mu.Unlock()

	// An SPI nobody reserved: dropped and reported.
	before := g2.dp.Stats().Drops[sad.DropNoSA]
	buf := make([]byte, conn.ReadOffset+64)
	binary.BigEndian.PutUint32(buf[conn.ReadOffset:], 0x0badf00d)
	binary.BigEndian.PutUint32(buf[conn.ReadOffset+4:], 1)
	stray := netip.MustParseAddrPort("198.51.100.1:33333")
	g2.dp.HandleESP([]conn.ESPPacket{{Buf: buf, Off: conn.ReadOffset, Len: 64, Src: stray, UDP: true}})
	deadline := time.Now().Add(5 * time.Second)
	for g2.dp.Stats().Drops[sad.DropNoSA] == before && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(unknown) != 1 || unknown[0] != (report{0x0badf00d, stray}) {
		t.Errorf("unknown-SPI reports %v, want SPI 0badf00d from %v", unknown, stray)
	}
	if g2.dp.Stats().Drops[sad.DropNoSA] != before+1 {
		t.Errorf("stray packet not counted as a no-SA drop")
	}
}
