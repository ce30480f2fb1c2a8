package ike

import (
	"math/rand/v2"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
)

// TestCorruptedPackets corrupts bytes of the exchanged datagrams (one
// random byte of every packet, chosen by a seeded generator) and checks
// that nothing panics and the state machines keep working: corrupted
// protected messages fail their integrity check and are retransmitted,
// corrupted cleartext IKE_SA_INIT messages are rejected or fail later.
func TestCorruptedPackets(t *testing.T) {
	for seed := uint64(1); seed <= 60; seed++ {
		synctest.Test(t, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, seed*7919))
			extra := "ike=aes128-sha256-ecp256!\nesp=aes128gcm16-ecp256!\nkeyingtries=1\ndpdaction=clear\ndpddelay=5s"
			ca, cb := confPair("net", extra, extra)
			a, b, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{tries: 2})
			n := 0
			net.mu.Lock()
			net.drop = func(p packet) bool {
				n++
				if n%2 == 0 && len(p.data) > 0 {
					p.data[rng.IntN(len(p.data))] ^= byte(1 + rng.IntN(255))
				}
				return false
			}
			net.mu.Unlock()
			a.m.Up("net")
			synctest.Wait()
			clk.advance(2*time.Minute, synctest.Wait)
			// Whatever happened, both sides stay consistent: nothing is
			// installed on one side only once the dust settles, and Close
			// ends every loop.
			closeAll(t, synctest.Wait, a, b)
			if len(a.inst.all())+len(b.inst.all()) != 0 {
				t.Errorf("seed %d: CHILD SAs left after Close", seed)
			}
		})
	}
}

func TestUnsupportedCriticalPayload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPair("net", "", "")
		a, b, net, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
		h := message.Header{SPIi: 0x1122334455667788, MajorVersion: 2, Exchange: message.IKE_SA_INIT, Flags: message.FlagInitiator}
		pkt := message.AppendMessage(nil, h, message.RawPayload{Type: 120, Critical: true, Body: []byte{1, 2, 3}})
		from := netip.AddrPortFrom(addrA, 500)
		b.m.HandlePacket(netip.AddrPortFrom(addrB, 500), from, pkt)
		// Garbage after a valid header creates no state either.
		b.m.HandlePacket(netip.AddrPortFrom(addrB, 500), netip.AddrPortFrom(addrA, 501), append(pkt[:28:28], 0xff))
		synctest.Wait()
		ps := net.packets()
		if len(ps) != 1 {
			t.Fatalf("%d answers, want 1", len(ps))
		}
		m, _, err := message.ParseMessage(ps[0].data)
		if err != nil {
			t.Fatal(err)
		}
		ns := notifiesOf(m.Payloads)
		if len(ns) != 1 || ns[0].Type != message.UNSUPPORTED_CRITICAL_PAYLOAD || len(ns[0].Data) != 1 || ns[0].Data[0] != 120 || !m.Header.IsResponse() {
			t.Errorf("answer: %+v", ns)
		}
		if b.m.Counters().HalfOpen != 0 || len(b.m.sas) != 0 {
			t.Errorf("state kept for rejected requests: %d half-open, %d SAs", b.m.Counters().HalfOpen, len(b.m.sas))
		}
		closeAll(t, synctest.Wait, a, b)
	})
}
