package ike

import (
	"testing"
	"testing/synctest"
	"time"
)

// TestProcessPacketInline runs the lifecycle of a tunnel with every
// datagram handed over by ProcessPacket, which processes it in the
// caller's goroutine when the receiving SA is idle (the daemon's receive
// loops): setup, CHILD and IKE rekeys, and the delete, for IKEv2 and for
// IKEv1, end as they do through HandlePacket.
func TestProcessPacketInline(t *testing.T) {
	t.Run("ikev2", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			extra := "reauth=no\nlifetime=20m\nikelifetime=40m\nmargintime=5m\nrekeyfuzz=0%"
			ca, cb := confPair("net", extra, "")
			a, b, _, clk := pair(t, ca, secrets, cb, secrets, testOpts{inline: true})
			if err := a.m.Up("net"); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			checkMatching(t, a, b)
			child, ike := a.inst.all()[0], status(a, "net")
			clk.advance(15*time.Minute, synctest.Wait)
			if got := a.inst.all(); len(got) != 1 || got[0].InSPI == child.InSPI {
				t.Fatalf("CHILD SA not rekeyed: %d SAs", len(got))
			}
			checkMatching(t, a, b)
			clk.advance(20*time.Minute, synctest.Wait)
			sa, sb := status(a, "net"), status(b, "net")
			if sa.State != StateEstablished || sa.SPIi == ike.SPIi || sa.SPIi != sb.SPIi || sa.SPIr != sb.SPIr {
				t.Fatalf("after the IKE rekey: A %s %x/%x (before %x/%x), B %s %x/%x",
					sa.State, sa.SPIi, sa.SPIr, ike.SPIi, ike.SPIr, sb.State, sb.SPIi, sb.SPIr)
			}
			if len(a.m.sas) != 1 || len(b.m.sas) != 1 {
				t.Fatalf("IKE SAs: A %d, B %d", len(a.m.sas), len(b.m.sas))
			}
			if err := b.m.Down("net"); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			for _, n := range []*node{a, b} {
				if s := status(n, "net"); s.State != StateDown || len(n.inst.all()) != 0 || len(n.m.sas) != 0 {
					t.Errorf("after Down at %s: %s, %d CHILD SAs, %d IKE SAs", n.addr, s.State, len(n.inst.all()), len(n.m.sas))
				}
			}
			closeAll(t, synctest.Wait, a, b)
		})
	})
	t.Run("ikev1", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			ca, cb := confPairV1("net", "", "")
			a, b, _, _ := pair(t, ca, secrets, cb, secrets, testOpts{inline: true})
			upV1(t, a, b, "net")
			if err := a.m.Down("net"); err != nil {
				t.Fatal(err)
			}
			synctest.Wait()
			for _, n := range []*node{a, b} {
				if s := status(n, "net"); s.State != StateDown || len(n.inst.all()) != 0 {
					t.Errorf("after Down at %s: %s, %d CHILD SAs", n.addr, s.State, len(n.inst.all()))
				}
			}
			closeAll(t, synctest.Wait, a, b)
		})
	})
}
