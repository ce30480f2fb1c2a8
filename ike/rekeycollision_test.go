package ike

import (
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// dataplane wraps a node's fakeInstaller with what a real dataplane does
// with the outbound direction (the current outbound SA of each conn, held
// back by KeepOutbound and switched by SwitchOutbound), and checks every
// change against the peer's installer: a gateway that sends on an SA the
// peer has not installed inbound yet, or removes an inbound SA the peer
// still sends on, loses packets.
type dataplane struct {
	*fakeInstaller
	name string
	peer *dataplane

	mu         sync.Mutex
	current    map[string]uint32 // conn → outbound SPI in use
	switches   int               // SwitchOutbound calls that changed the outbound SA
	violations []string
}

var _ ChildInstaller = (*dataplane)(nil)

// withDataplanes puts dataplanes in front of the installers of a and b.
// It must run before either Manager installs anything.
func withDataplanes(a, b *node) (da, db *dataplane) {
	da = &dataplane{fakeInstaller: a.inst, name: "A", current: map[string]uint32{}}
	db = &dataplane{fakeInstaller: b.inst, name: "B", current: map[string]uint32{}}
	da.peer, db.peer = db, da
	a.ref.set(da)
	b.ref.set(db)
	return da, db
}

func (d *dataplane) violate(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.violations = append(d.violations, d.name+": "+fmt.Sprintf(format, args...))
}

// peerHasInbound reports whether the peer installed spi as an inbound SA.
func (d *dataplane) peerHasInbound(spi uint32) bool {
	p := d.peer.fakeInstaller
	p.mu.Lock()
	defer p.mu.Unlock()
	_, ok := p.sas[spi]
	return ok
}

func (d *dataplane) setOutbound(conn string, spi uint32) {
	// The first SA of a conn carries nothing before both sides have it;
	// only a switch away from a working SA can lose packets.
	if d.outbound(conn) != 0 && !d.peerHasInbound(spi) {
		d.violate("sends on SPI %08x before the peer installed it inbound", spi)
	}
	d.mu.Lock()
	d.current[conn] = spi
	d.mu.Unlock()
}

func (d *dataplane) outbound(conn string) uint32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.current[conn]
}

func (d *dataplane) Install(sa ChildSA) error {
	if err := d.fakeInstaller.Install(sa); err != nil {
		return err
	}
	if !sa.KeepOutbound || d.outbound(sa.Conn) == 0 {
		d.setOutbound(sa.Conn, sa.OutSPI)
	}
	return nil
}

func (d *dataplane) Remove(conn string, in, out uint32) error {
	if err := d.fakeInstaller.Remove(conn, in, out); err != nil {
		return err
	}
	others := false
	for _, sa := range d.all() {
		others = others || sa.Conn == conn
	}
	if d.outbound(conn) == out {
		if others {
			d.violate("removed its current outbound SA %08x while the conn has other SAs: no outbound SA left", out)
		}
		d.mu.Lock()
		delete(d.current, conn)
		d.mu.Unlock()
	}
	if others && d.peer.outbound(conn) == in {
		d.violate("removed inbound SA %08x, which the peer still sends on", in)
	}
	return nil
}

func (d *dataplane) SwitchOutbound(conn string, inSPI uint32) error {
	d.fakeInstaller.mu.Lock()
	sa, ok := d.fakeInstaller.sas[inSPI]
	d.fakeInstaller.mu.Unlock()
	if !ok || sa.Conn != conn {
		return fmt.Errorf("no CHILD SA %s %08x", conn, inSPI)
	}
	if d.outbound(conn) != sa.OutSPI {
		d.setOutbound(conn, sa.OutSPI)
		d.mu.Lock()
		d.switches++
		d.mu.Unlock()
	}
	return nil
}

func (d *dataplane) check(t *testing.T) {
	t.Helper()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, v := range d.violations {
		t.Error(v)
	}
}

// checkOnePair asserts that each side holds one CHILD SA, the same pair,
// and sends on it.
func checkOnePair(t *testing.T, a, b *node, da, db *dataplane) {
	t.Helper()
	as, bs := a.inst.all(), b.inst.all()
	if len(as) != 1 || len(bs) != 1 {
		t.Fatalf("A holds %d CHILD SAs, B %d; want one pair", len(as), len(bs))
	}
	checkMatching(t, a, b)
	if got := da.outbound("net"); got != as[0].OutSPI {
		t.Errorf("A sends on %08x, not on its only SA's %08x", got, as[0].OutSPI)
	}
	if got := db.outbound("net"); got != bs[0].OutSPI {
		t.Errorf("B sends on %08x, not on its only SA's %08x", got, bs[0].OutSPI)
	}
}

// TestPeerChildRekeyMakeBeforeBreak: as the responder of the peer's CHILD
// rekey, a gateway installs the new SA inbound-only and keeps sending on
// the old one until the peer deletes it. Switching at once (as before) sent
// packets on an SPI the initiator installs only when it processes the
// response: against strongSwan the first echo request on the new SA was
// lost, 2-3 times per 30 s of simultaneous rekeys.
func TestPeerChildRekeyMakeBeforeBreak(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// B rekeys every 15 min; A (1 h) never gets to.
		ca, cb := confPair("net", "", "lifetime=20m\nmargintime=5m\nrekeyfuzz=0%")
		a, b, _, clk := pair(t, ca, secrets, cb, secrets, testOpts{})
		da, db := withDataplanes(a, b)
		a.m.Up("net")
		synctest.Wait()
		for i := 0; i < 4; i++ {
			clk.advance(15*time.Minute, synctest.Wait)
		}
		da.check(t)
		db.check(t)
		checkOnePair(t, a, b, da, db)
		if da.switches != 4 {
			t.Errorf("A switched its outbound SA %d times, want once per rekey (4)", da.switches)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}

// TestChildRekeyCollisionsMakeBeforeBreak: both sides rekey the CHILD SA
// at the same instant, round after round, their CREATE_CHILD_SA requests
// crossing each time (RFC 7296 §2.8.1). Each round ends with exactly one
// SA pair, and no step ever has a side send on an SA the other has not
// installed, or remove an SA the other still sends on.
func TestChildRekeyCollisionsMakeBeforeBreak(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// ikelifetime: no IKE reauthentication during the 3 h of rounds.
		extra := "lifetime=20m\nmargintime=5m\nrekeyfuzz=0%\nikelifetime=24h"
		ca, cb := confPair("net", extra, extra)
		a, b, net, clk := pair(t, ca, secrets, cb, secrets, testOpts{})
		da, db := withDataplanes(a, b)
		a.m.Up("net")
		synctest.Wait()
		const rounds = 12
		for i := 0; i < rounds; i++ {
			net.mu.Lock()
			net.hold = true
			net.mu.Unlock()
			clk.advance(15*time.Minute, synctest.Wait)
			net.mu.Lock()
			held := len(net.held)
			net.mu.Unlock()
			if held != 2 {
				t.Fatalf("round %d: %d held requests, want the two crossing CREATE_CHILD_SA", i, held)
			}
			net.release()
			synctest.Wait()
			checkOnePair(t, a, b, da, db)
		}
		da.check(t)
		db.check(t)
		if s := status(a, "net"); s.State != StateEstablished {
			t.Errorf("A: %s", s.State)
		}
		closeAll(t, synctest.Wait, a, b)
	})
}
