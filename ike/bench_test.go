package ike

import (
	"strings"
	"testing"
)

// BenchmarkEstablishAndDelete measures one full tunnel setup and teardown
// between two in-memory Managers: IKE_SA_INIT, IKE_AUTH with the first
// CHILD SA installed on both sides, then the DELETE exchange. The key
// exchange dominates, so the groups are benchmarked separately.
func BenchmarkEstablishAndDelete(b *testing.B) {
	for _, g := range []string{"x25519", "ecp256", "modp2048", "modp3072"} {
		b.Run(g, func(b *testing.B) {
			extra := "ike=aes128gcm16-prfsha256-" + g + "!\nesp=aes128gcm16!"
			ca, cb := confPair("net", extra, extra)
			a, bn, _, _ := pair(b, ca, secrets, cb, secrets, testOpts{})
			a.inst.events = make(chan struct{}, 4)
			bn.inst.events = make(chan struct{}, 4)
			b.ResetTimer()
			for range b.N {
				if err := a.m.Up("net"); err != nil {
					b.Fatal(err)
				}
				<-a.inst.events
				<-bn.inst.events
				if err := a.m.Down("net"); err != nil && !strings.Contains(err.Error(), "no SA") {
					b.Fatal(err)
				}
				<-a.inst.events
				<-bn.inst.events
			}
		})
	}
}
