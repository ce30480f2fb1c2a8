package ike

import (
	"context"
	"net/netip"
	"sync"
	"testing"
	"testing/synctest"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
	"github.com/ipsecgw/ipsecgw/ike/shared"
	"github.com/ipsecgw/ipsecgw/transform"
)

// initRequest builds a genuine IKE_SA_INIT request (aes128-sha256-ecp256)
// with initiator SPI spi.
func initRequest(t testing.TB, spi uint64) []byte {
	t.Helper()
	ps, _, err := config.ParseProposals(config.ProtoIKE, "aes128-sha256-ecp256")
	if err != nil {
		t.Fatal(err)
	}
	ke, err := transform.NewKeyExchange(transform.KEECP256)
	if err != nil {
		t.Fatal(err)
	}
	defer ke.Close()
	h := message.Header{SPIi: spi, MajorVersion: 2, Exchange: message.IKE_SA_INIT, Flags: message.FlagInitiator}
	return message.AppendMessage(nil, h,
		message.SA{Proposals: wireOffer(ps)},
		message.KE{Group: transform.KEECP256, Data: ke.PublicKey()},
		message.Nonce{Data: testNonce()})
}

// responder is a Manager for B's side of confPair whose answers are
// collected instead of sent.
type responder struct {
	m       *Manager
	clk     *fakeClock
	mu      sync.Mutex
	answers [][]byte
}

func newResponder(t testing.TB, o Options) *responder {
	t.Helper()
	_, cb := confPair("net", "", "ike=aes128-sha256-ecp256!")
	r := &responder{}
	o.Config = loadConfig(t, cb, secrets, addrB)
	o.Send = func(_, _ netip.AddrPort, pkt []byte) error {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.answers = append(r.answers, append([]byte(nil), pkt...))
		return nil
	}
	r.clk = newFakeClock()
	o.Installer, o.Clock, o.LocalAddrs, o.Logger = newFakeInstaller(0), r.clk, []netip.Addr{addrB}, discardLogger
	m, err := NewManager(o)
	if err != nil {
		t.Fatal(err)
	}
	r.m = m
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		m.Close(ctx)
	})
	return r
}

func (r *responder) sent() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.answers)
}

// TestHalfOpenLimit: with HalfOpenLimit 3 (and cookies off), three
// IKE_SA_INIT requests create half-open SAs and are answered, the fourth is
// dropped without an answer and counted, and a retransmission of an
// admitted request still reaches its SA.
func TestHalfOpenLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newResponder(t, Options{HalfOpenLimit: 3, CookieThreshold: -1})
		to := netip.AddrPortFrom(addrB, 500)
		first := initRequest(t, 0x1001)
		for i, pkt := range [][]byte{first, initRequest(t, 0x1002), initRequest(t, 0x1003)} {
			r.m.HandlePacket(to, netip.AddrPortFrom(addrA, uint16(500+i)), pkt)
			synctest.Wait()
		}
		if n := r.sent(); n != 3 {
			t.Fatalf("%d answers to 3 requests below the limit", n)
		}
		r.m.HandlePacket(to, netip.AddrPortFrom(addrA, 600), initRequest(t, 0x1004))
		synctest.Wait()
		c := r.m.Counters()
		if n := r.sent(); n != 3 || c.HalfOpen != 3 || c.HalfOpenRefused != 1 || c.HalfOpenLimit != 3 {
			t.Fatalf("after the 4th request: %d answers, counters %+v; want 3 answers, 3 half-open, 1 refused", n, c)
		}
		// A retransmission is answered from the existing SA, not refused.
		r.clk.advance(shared.AnswerGap, synctest.Wait)
		r.m.HandlePacket(to, netip.AddrPortFrom(addrA, 500), first)
		synctest.Wait()
		if n, c := r.sent(), r.m.Counters(); n != 4 || c.HalfOpenRefused != 1 {
			t.Fatalf("retransmission: %d answers, counters %+v; want 4 answers, 1 refused", n, c)
		}
	})
}

// TestHalfOpenLimitDefault: without the option the limit is MaxHalfOpen.
func TestHalfOpenLimitDefault(t *testing.T) {
	r := newResponder(t, Options{})
	if c := r.m.Counters(); c.HalfOpenLimit != MaxHalfOpen || c.HalfOpenRefused != 0 || c.CookiesSent != 0 {
		t.Fatalf("counters of a new Manager: %+v", c)
	}
}

// TestCookieCounter: with a threshold of one half-open SA, the second
// request is answered with a COOKIE and CookiesSent counts it.
func TestCookieCounter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newResponder(t, Options{CookieThreshold: 1})
		to := netip.AddrPortFrom(addrB, 500)
		r.m.HandlePacket(to, netip.AddrPortFrom(addrA, 500), initRequest(t, 0x2001))
		synctest.Wait()
		r.m.HandlePacket(to, netip.AddrPortFrom(addrA, 501), initRequest(t, 0x2002))
		synctest.Wait()
		c := r.m.Counters()
		if c.CookiesSent != 1 || c.HalfOpen != 1 || c.IKESAs != 1 {
			t.Fatalf("counters %+v; want 1 cookie, 1 half-open SA", c)
		}
		r.mu.Lock()
		last := r.answers[len(r.answers)-1]
		r.mu.Unlock()
		if nt := notifyTypes(t, last); len(nt) != 1 || nt[0] != message.COOKIE {
			t.Fatalf("second answer carries %v, want one COOKIE", nt)
		}
	})
}

// TestQueueDropCounter: a message for an IKE SA whose event queue is full
// is counted; one for an SA that has ended is not.
func TestQueueDropCounter(t *testing.T) {
	r := newResponder(t, Options{})
	var from, to netip.AddrPort
	full := &stuckSA{done: make(chan struct{})}
	r.m.deliver(full, to, from, nil, false)
	r.m.deliver(full, to, from, nil, false)
	gone := &stuckSA{done: make(chan struct{})}
	close(gone.done)
	r.m.deliver(gone, to, from, nil, false)
	if c := r.m.Counters(); c.QueueDrops != 2 {
		t.Fatalf("QueueDrops = %d, want 2", c.QueueDrops)
	}
}

// stuckSA is an IKE SA whose event queue is always full.
type stuckSA struct {
	shared.SA
	done chan struct{}
}

func (s *stuckSA) Done() <-chan struct{}                              { return s.done }
func (s *stuckSA) Deliver(_, _ netip.AddrPort, _ []byte, _ bool) bool { return false }
