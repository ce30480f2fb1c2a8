package ike

import (
	"bytes"
	"net/netip"
	"testing"
	"testing/synctest"
	"time"

	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
	"github.com/ipsecgw/ipsecgw/ike/shared"
)

// TestDeletedSAAnswersRetransmittedDelete: B deletes the IKE SA and A's
// answer is lost (as strongSwan loses it when the redundant SA of a rekey
// collision it lost sends its DELETE before it can take the answer). A's SA
// is gone once it answered, yet B's retransmission is answered with the same
// bytes, so B ends its SA at its first retransmission instead of retrying for
// its whole schedule. A tampered copy, or one from elsewhere, gets nothing,
// and neither does a retransmission after the cache's linger.
func TestDeletedSAAnswersRetransmittedDelete(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPair("net", "", "")
		a, b, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{})
		a.m.Up("net")
		synctest.Wait()
		if st := status(b, "net"); st.State != StateEstablished {
			t.Fatalf("B: %s (%s)", st.State, st.Reason)
		}
		isDelete := func(p packet, fromA, response bool) bool {
			h, _, err := message.ParseHeader(p.data)
			return err == nil && (p.from.Addr() == addrA) == fromA && h.Exchange == message.INFORMATIONAL && h.IsResponse() == response
		}
		lost := 0
		net.setDrop(func(p packet) bool {
			if isDelete(p, true, true) && lost == 0 {
				lost++
				return true
			}
			return false
		})
		if err := b.m.Down("net"); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if n := len(a.m.sas); n != 0 {
			t.Fatalf("A holds %d IKE SAs after answering B's DELETE", n)
		}
		if n := len(b.m.sas); n != 1 {
			t.Fatalf("B holds %d IKE SAs before its retransmission, want the one it deletes", n)
		}
		before := a.m.Counters().Drops[shared.DropRetransmission]
		clk.advance(5*time.Second, synctest.Wait) // B's first retransmission (4 s)
		if n := len(b.m.sas); n != 0 {
			t.Fatalf("B still holds %d IKE SAs after retransmitting its DELETE: the retransmission went unanswered", n)
		}
		if got := a.m.Counters().Drops[shared.DropRetransmission] - before; got != 1 {
			t.Errorf("A counted %d retransmissions answered from the cache, want 1", got)
		}
		var reqs, rsps [][]byte
		for _, p := range net.packets() {
			switch {
			case isDelete(p, false, false):
				reqs = append(reqs, p.data)
			case isDelete(p, true, true):
				rsps = append(rsps, p.data)
			}
		}
		if len(reqs) != 2 || len(rsps) != 2 || !bytes.Equal(reqs[0], reqs[1]) || !bytes.Equal(rsps[0], rsps[1]) {
			t.Fatalf("DELETE requests %d, answers %d; want 2 identical of each", len(reqs), len(rsps))
		}

		// Only a byte-identical copy from the same peer is answered, and
		// only while the cache keeps it.
		answers := func() int {
			n := 0
			for _, p := range net.packets() {
				if isDelete(p, true, true) {
					n++
				}
			}
			return n
		}
		req := reqs[0]
		tampered := bytes.Clone(req)
		tampered[len(tampered)-1] ^= 1
		to, from := netip4500(addrA), netip4500(addrB)
		a.m.HandlePacket(to, from, tampered)
		a.m.HandlePacket(to, netip4500(netip.MustParseAddr("198.51.100.9")), req)
		synctest.Wait()
		if n := answers(); n != 2 {
			t.Errorf("a tampered or misdirected copy was answered: %d answers", n)
		}
		// Another genuine copy (the last answer went out a second ago) is
		// answered; a copy right after that, within the answer gap, is
		// counted and not answered.
		a.m.HandlePacket(to, from, req)
		synctest.Wait()
		if n := answers(); n != 3 {
			t.Errorf("%d answers after another genuine copy, want 3", n)
		}
		a.m.HandlePacket(to, from, req)
		synctest.Wait()
		if n, lim := answers(), a.m.Counters().Drops[shared.DropRetransmitLimited]; n != 3 || lim != 1 {
			t.Errorf("a copy within the answer gap: %d answers, %d counted as limited; want 3 and 1", n, lim)
		}
		clk.advance(deletedAnswerLinger, synctest.Wait)
		a.m.HandlePacket(to, from, req)
		synctest.Wait()
		if n := answers(); n != 3 {
			t.Errorf("a copy after the linger was answered: %d answers", n)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestDeletedAnswersBounded: the cache of answered DELETEs holds at most
// maxDeletedAnswers, dropping the oldest first, and forgets expired ones.
func TestDeletedAnswersBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ca, cb := confPair("net", "", "")
		a, b, _, clk := pair(t, ca, secrets, cb, secrets, testOpts{})
		h := (*host)(a.m)
		from, to := netip4500(addrA), netip4500(addrB)
		for spi := uint64(1); spi <= maxDeletedAnswers+10; spi++ {
			h.AnsweredDelete(spi, from, to, []byte{byte(spi)}, []byte{1})
		}
		if n, o := len(a.m.deleted), len(a.m.deletedOrder); n != maxDeletedAnswers || o != n {
			t.Fatalf("cache holds %d (order %d), want %d", n, o, maxDeletedAnswers)
		}
		if a.m.deleted[10] != nil || a.m.deleted[11] == nil {
			t.Errorf("the oldest entries were not the ones dropped")
		}
		clk.advance(deletedAnswerLinger, synctest.Wait)
		h.AnsweredDelete(1<<40, from, to, []byte{1}, []byte{1})
		if n := len(a.m.deleted); n != 1 {
			t.Errorf("cache holds %d after the others expired, want 1", n)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}
