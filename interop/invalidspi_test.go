package interop

import (
	"context"
	be "encoding/binary"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/internal/lab"
)

// TestInvalidSPIToStrongSwan: ESP for an SPI ipsecgw does not know, from the
// address of a peer it has an IKE SA with, is answered with an INVALID_SPI
// notification inside that IKE SA (RFC 7296 §2.21.4, §1.5): strongSwan
// receives and authenticates it ("parsed INFORMATIONAL request … N(INVAL_SPI)"
// in its log). A burst of stray packets costs one notification per interval
// (10 s), not one per packet, and the tunnel carries traffic throughout.
//
// strongSwan 5.9 itself does not act on a received INVALID_SPI (its
// task_manager_v2 has no handler for it in INFORMATIONAL requests), so what
// a peer does with the notification is tested between two ipsecgw Managers
// (ike TestInvalidSPI).
func TestInvalidSPIToStrongSwan(t *testing.T) {
	l := lab.New(t, lab.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	c1, c2 := siteConns(l, "aes128-sha256-modp2048", "aes128gcm16")
	c1.StartAction = "start"
	charon, err := l.GW2.StartCharon(ctx, lab.CharonConfig{Swanctl: lab.SwanctlConf(c2)})
	if err != nil {
		t.Fatal(err)
	}
	gw := startGateway(ctx, t, l.GW1, gatewayFiles{Conf: c1.IPsecConf(), Secrets: c1.IPsecSecrets()})
	if _, err := gw.waitState(ctx, "s2s", control.StateEstablished); err != nil {
		t.Fatal(err)
	}
	if _, err := charon.WaitEstablished(ctx, "s2s", "net"); err != nil {
		t.Fatal(err)
	}

	// Stray ESP in UDP from the peer's address (another port than
	// charon's: what counts is the peer's address) to ipsecgw's NAT-T port.
	u, err := l.GW2.ListenUDP(netip.AddrPortFrom(l.GW2.Addr, 0))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	const spi = 0x0badf00d
	to := netip.AddrPortFrom(l.GW1.PublicAddr, 4500)
	burst := func(n int) {
		t.Helper()
		pkt := make([]byte, 64)
		be.BigEndian.PutUint32(pkt, spi)
		for i := range n {
			be.BigEndian.PutUint32(pkt[4:], uint32(i+1))
			if _, err := u.WriteToUDPAddrPort(pkt, to); err != nil {
				t.Fatal(err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	notified := func() int {
		n := 0
		for _, line := range charon.LogLines() {
			if strings.Contains(line, "parsed INFORMATIONAL request") && strings.Contains(line, "N(INVAL_SPI)") {
				n++
			}
		}
		return n
	}
	waitNotified := func(want int) {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for notified() < want && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
		}
	}

	burst(100) // one second of stray packets
	waitNotified(1)
	if n := notified(); n != 1 {
		t.Fatalf("strongSwan parsed %d INFORMATIONAL requests with INVALID_SPI after 100 stray packets, want 1", n)
	}
	if !strings.Contains(gw.Log(), "sending INVALID_SPI") || !strings.Contains(gw.Log(), "0badf00d") {
		t.Errorf("ipsecgw's log does not say it answered SPI 0badf00d with INVALID_SPI")
	}
	pingBothWays(ctx, t, l, 3)

	// The next notification waits for the interval, however many packets come.
	time.Sleep(10 * time.Second)
	burst(50)
	waitNotified(2)
	if n := notified(); n != 2 {
		t.Errorf("strongSwan parsed %d INFORMATIONAL requests with INVALID_SPI after a second burst 10 s later, want 2", n)
	}
	if st, err := gw.status(ctx, "s2s"); err != nil || st.State != control.StateEstablished {
		t.Errorf("tunnel after the stray packets: %+v, %v", st, err)
	}
	pingBothWays(ctx, t, l, 3)
}
