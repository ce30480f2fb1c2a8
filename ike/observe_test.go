package ike

import (
	"bytes"
	"context"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipsecgw/ipsecgw/ike/shared"
)

// exchanges returns the ExchangeDone events among evs.
func exchanges(r *recorder) []shared.ExchangeDone {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []shared.ExchangeDone
	for _, ev := range r.events {
		if x, ok := ev.(shared.ExchangeDone); ok {
			out = append(out, x)
		}
	}
	r.events = nil
	return out
}

// TestExchangeDoneEvents: the initiator reports each request's end with
// its round trip (IKE_SA_INIT, IKE_AUTH, a DPD check), and a DPD check
// that goes unanswered as a timed-out DPD exchange before the IKE SA ends.
func TestExchangeDoneEvents(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPair("net", "dpdaction=clear\ndpddelay=10s", "")
		a, b, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{tries: 2})
		ra := record(a)
		a.m.Up("net")
		synctest.Wait()
		got := exchanges(ra)
		if len(got) != 2 || got[0].Exchange != "IKE_SA_INIT" || got[1].Exchange != "IKE_AUTH" {
			t.Fatalf("up: %+v", got)
		}
		for _, x := range got {
			if x.TimedOut || x.DPD || x.Retransmits != 0 || len(x.Names) != 1 || x.Names[0] != "net" || x.IKE.SPIi == 0 {
				t.Errorf("up: %+v", x)
			}
		}
		// An idle SA is checked after dpddelay; the peer answers.
		clk.advance(11*time.Second, synctest.Wait)
		got = exchanges(ra)
		if len(got) != 1 || got[0].Exchange != "INFORMATIONAL" || !got[0].DPD || got[0].TimedOut {
			t.Fatalf("answered DPD: %+v", got)
		}
		// Now the peer is gone: the next check times out.
		net.setDrop(func(packet) bool { return true })
		clk.advance(10*time.Second+24200*time.Millisecond, synctest.Wait)
		got = exchanges(ra)
		if len(got) != 1 || !got[0].DPD || !got[0].TimedOut || got[0].Retransmits != 2 || got[0].RTT != 0 {
			t.Fatalf("dead peer: %+v", got)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestProbe: every IKE SA loop answers the liveness probe; a loop that is
// stuck makes it fail when its context ends.
func TestProbe(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPair("net", "", "")
		a, b, _, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net")
		synctest.Wait()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		if err := a.m.Probe(ctx); err != nil {
			t.Fatalf("healthy loops: %v", err)
		}
		cancel()
		// Block A's only IKE SA loop.
		release := make(chan struct{})
		sas := a.m.allSAs()
		if len(sas) != 1 {
			t.Fatalf("%d IKE SAs", len(sas))
		}
		sas[0].(shared.Prober).Probe(func() { <-release })
		ctx, cancel = context.WithTimeout(context.Background(), time.Second)
		err := a.m.Probe(ctx)
		cancel()
		if err == nil {
			t.Fatal("a stuck loop passed the probe")
		}
		t.Log(err)
		close(release)
		synctest.Wait()
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestExportKeys: both ends export the same keys for their IKE SA, with
// the SPIs and transforms negotiated.
func TestExportKeys(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPair("net", "", "")
		a, b, _, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net")
		synctest.Wait()
		ka := a.m.ExportKeys(context.Background())
		kb := b.m.ExportKeys(context.Background())
		if len(ka) != 1 || len(kb) != 1 {
			t.Fatalf("exported %d and %d IKE SAs, want 1 each", len(ka), len(kb))
		}
		x, y := ka[0], kb[0]
		if x.SPIi != y.SPIi || x.SPIr != y.SPIr || x.SPIi == 0 || x.Encr != y.Encr || x.Integ != y.Integ || x.Version != 2 {
			t.Errorf("A %x/%x %v %v, B %x/%x %v %v", x.SPIi, x.SPIr, x.Encr, x.Integ, y.SPIi, y.SPIr, y.Encr, y.Integ)
		}
		for i, pair := range [][2][]byte{{x.SKei, y.SKei}, {x.SKer, y.SKer}, {x.SKai, y.SKai}, {x.SKar, y.SKar}} {
			if !bytes.Equal(pair[0], pair[1]) {
				t.Errorf("key %d differs", i)
			}
		}
		if len(x.SKei) == 0 {
			t.Error("no encryption key exported")
		}
		st := status(a, "net")
		if st.RekeyAt.IsZero() || st.Children[0].ExpireAt.IsZero() || st.Children[0].RekeyAt.IsZero() {
			t.Errorf("status without rekey/expiry times: %+v", st)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}
