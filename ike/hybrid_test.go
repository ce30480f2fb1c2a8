package ike

import (
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
)

// countExchanges counts the IKE messages of one exchange type on the net
// (fragments of one message count once each).
func countExchanges(net *fakeNet, ex message.ExchangeType) (requests, responses int) {
	for _, p := range net.packets() {
		h, _, err := message.ParseHeader(p.data)
		if err != nil || h.Exchange != ex {
			continue
		}
		if h.IsResponse() {
			responses++
		} else {
			requests++
		}
	}
	return
}

// TestHybridKeyExchange: RFC 9370 additional key exchanges in
// IKE_INTERMEDIATE (RFC 9242) between two ipsecgw, ML-KEM alone and after
// another additional exchange, one large enough to be fragmented; both
// sides derive the same keys (the CHILD SA keys mirror), the status names
// the hybrid, and the IKE SA is renewed by reauthentication, not rekeyed.
func TestHybridKeyExchange(t *testing.T) {
	for _, tc := range []struct {
		ike       string
		exchanges int
	}{
		{"aes256-sha384-x25519-ke1_mlkem768", 1},
		{"aes128gcm16-prfsha256-ecp256-ke1_mlkem512-ke2_mlkem1024", 2},
		{"aes256-sha256-modp3072-ke1_ecp384-ke3_mlkem768", 2},
	} {
		t.Run(tc.ike, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ca, cb := confPair("net", "ike="+tc.ike+"!\nikelifetime=1h\nmargintime=5m", "ike="+tc.ike+"!")
				a, b, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{fragmentSize: 1280})
				a.m.Up("net")
				synctest.Wait()
				sa, sb := status(a, "net"), status(b, "net")
				if sa.State != StateEstablished || sb.State != StateEstablished {
					t.Fatalf("states %s (%s) / %s (%s)", sa.State, sa.Reason, sb.State, sb.Reason)
				}
				checkMatching(t, a, b)
				want := tc.ike[strings.Index(tc.ike, "-ke1_"):]
				for _, s := range []ConnStatus{sa, sb} {
					if !strings.HasSuffix(s.Algorithms, want) {
						t.Errorf("status does not show the hybrid %s: %q", want, s.Algorithms)
					}
				}
				if req, rsp := countExchanges(net, message.IKE_INTERMEDIATE); req < tc.exchanges || rsp < tc.exchanges {
					t.Errorf("%d IKE_INTERMEDIATE requests and %d responses on the wire, want at least %d each", req, rsp, tc.exchanges)
				}
				// The IKE SA is renewed with all its key exchanges.
				spi := sa.SPIi
				clk.advance(time.Hour, synctest.Wait)
				sa = status(a, "net")
				if sa.State != StateEstablished || sa.SPIi == spi || !strings.HasSuffix(sa.Algorithms, want) {
					t.Errorf("after the IKE lifetime: %s, SPI %x (was %x), %q", sa.State, sa.SPIi, spi, sa.Algorithms)
				}
				closeAll(t, synctest.Wait, a, b)
			})
		})
	}
}

// TestHybridRequiredButRefused: a conn that requires ML-KEM does not come
// up with a peer without it (as strongSwan 5.9), and says why.
func TestHybridRequiredButRefused(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPair("net", "ike=aes256-sha384-x25519-ke1_mlkem768!", "ike=aes256-sha384-x25519!")
		a, b, _, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net")
		synctest.Wait()
		sa, sb := status(a, "net"), status(b, "net")
		if sa.State != StatePhase1Failed || !strings.Contains(sa.Reason, "NO_PROPOSAL_CHOSEN") || !strings.Contains(sa.Reason, "ke1_mlkem768") {
			t.Errorf("A: %s %q", sa.State, sa.Reason)
		}
		if sb.State != StatePhase1Failed || !strings.Contains(sb.Reason, "ke1_mlkem768") {
			t.Errorf("B: %s %q", sb.State, sb.Reason)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}
