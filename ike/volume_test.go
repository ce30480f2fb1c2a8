package ike

import (
	"testing"
	"testing/synctest"
)

// TestRekeyChildOnVolume: the installer is told the soft byte and packet
// limits, and a soft-limit report from the dataplane (RekeyChild, by
// inbound or outbound SPI) rekeys exactly that CHILD SA, once.
func TestRekeyChildOnVolume(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPair("net", "lifebytes=1000000\nmarginbytes=100000\nlifepackets=5000\nrekeyfuzz=0%", "")
		a, b, net, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net")
		synctest.Wait()
		old := a.inst.all()
		if len(old) != 1 {
			t.Fatalf("A installed %d CHILD SAs", len(old))
		}
		if old[0].SoftBytes != 900000 || old[0].SoftPackets != 4500 || old[0].LifeBytes != 1000000 {
			t.Errorf("limits handed to the installer: soft %d bytes %d packets, hard %d bytes", old[0].SoftBytes, old[0].SoftPackets, old[0].LifeBytes)
		}
		a.m.RekeyChild(0x12345678, true)
		synctest.Wait()
		if got := a.inst.all(); len(got) != 1 || got[0].InSPI != old[0].InSPI {
			t.Fatalf("an unknown SPI caused a rekey")
		}
		n := len(net.packets())
		// Both directions report (as both SAs of the pair may cross their
		// soft limit): one rekey only.
		if !a.m.RekeyChild(old[0].OutSPI, false) {
			t.Fatalf("no IKE SA took the request")
		}
		a.m.RekeyChild(old[0].InSPI, true)
		synctest.Wait()
		as, bs := a.inst.all(), b.inst.all()
		if len(as) != 1 || len(bs) != 1 || as[0].InSPI == old[0].InSPI {
			t.Fatalf("after the volume rekey: A %d SAs, B %d SAs", len(as), len(bs))
		}
		creates := 0
		for _, p := range net.packets()[n:] {
			if p.data[18] == 36 { // CREATE_CHILD_SA
				creates++
			}
		}
		if creates != 2 {
			t.Errorf("%d CREATE_CHILD_SA messages, want one exchange", creates)
		}
		checkMatching(t, a, b)
		closeAll(t, synctest.Wait, a, b)
	})
}
