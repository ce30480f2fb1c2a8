package ike

import (
	"math/rand/v2"
	"testing"
	"testing/synctest"
	"time"
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
