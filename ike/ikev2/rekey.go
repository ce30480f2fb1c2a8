package ikev2

import (
	"net/netip"

	"bytes"
	"fmt"
	mrand "math/rand/v2"
	"time"

	"github.com/ipsecgw/ipsecgw/config"

	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
)

// armIKERekey schedules the renewal of the IKE SA at ikelifetime - margin -
// random(margin × rekeyfuzz): rekeying with CREATE_CHILD_SA for reauth=no
// conns, reauthentication (a new IKE SA, then the old one deleted) for
// reauth=yes, strongSwan's ipsec.conf default. Either side rekeys (the one
// whose timer expires first, as with strongSwan); when both do at once,
// the collision is resolved by the nonces (RFC 7296 §2.8.2). Only the
// original initiator reauthenticates: two reauthentications would build
// two independent IKE SAs, which nothing resolves.
func (sa *ikeSA) armIKERekey() {
	c := sa.conn
	if (sa.reauthOnly() && !sa.initiator) || !c.Rekey || c.IKELifetime <= c.Margin {
		return
	}
	d := c.IKELifetime - c.Margin
	if fuzz := time.Duration(float64(c.Margin) * float64(c.RekeyFuzz) / 100); fuzz > 0 {
		d -= time.Duration(mrand.Int64N(int64(fuzz) + 1))
	}
	sa.scheduleIKERekey(d)
}

// reauthOnly: the IKE SA is renewed by reauthentication, not rekeyed in
// CREATE_CHILD_SA (reauth=yes). An SA with additional key exchanges is
// rekeyed too: they run again in IKE_FOLLOWUP_KE exchanges (RFC 9370
// §2.2.4, task_followupke.go).
func (sa *ikeSA) reauthOnly() bool {
	return sa.conn.Reauth
}

func (sa *ikeSA) scheduleIKERekey(d time.Duration) {
	c := sa.conn
	if sa.rekeyTimer != nil {
		sa.rekeyTimer.Stop()
	}
	sa.rekeyAt = sa.e.instant(sa.e.clock.Now().Add(d))
	sa.rekeyTimer = sa.after(d, func() {
		if sa.state != saEstablished {
			return
		}
		if sa.reauthOnly() {
			sa.reauthenticate()
		} else {
			sa.log.Info("rekeying IKE SA", "conn", c.Name)
			sa.enqueue(&ikeRekeyTask{})
		}
	})
}

// retryDelay is how long a refused or failed rekey waits before it is tried
// again: strongSwan's 15 s less up to 10 s of jitter, but at most half the
// margin so that the retry still comes before the SA expires.
func retryDelay(margin time.Duration) time.Duration {
	d := 15*time.Second - time.Duration(mrand.Int64N(int64(10*time.Second)+1))
	if margin > 0 && d > margin/2 {
		d = margin / 2
	}
	return max(d, time.Second)
}

// reauthenticate builds a new IKE SA for the conns this one serves, make
// before break: the old SA stops taking new CHILD SAs now and is deleted
// once the new one has installed the first CHILD SA.
func (sa *ikeSA) reauthenticate() {
	names := map[string]bool{sa.conn.Name: true}
	for _, ch := range sa.children {
		names[ch.conn.Name] = true
	}
	cfgConns := map[string]config.Conn{}
	cfg := sa.e.host.Config()
	for n := range names {
		if c, ok := cfg.Conn(n); ok {
			cfgConns[n] = c
		}
	}
	main, ok := cfgConns[sa.conn.Name]
	if !ok {
		return // the conn was removed by a reload; let the SA live out
	}
	nsa, err := sa.e.newSA(true, netip.AddrPortFrom(sa.local.Addr(), 500), netip.AddrPortFrom(sa.remote.Addr(), 500))
	if err != nil {
		return
	}
	sa.log.Info("reauthenticating IKE SA", "conn", main.Name)
	sa.servePeer(nil)
	// Said to the Host at once, so that Up of a conn with the same peer
	// finds the new SA; the new SA learns it in its own loop.
	sa.e.host.ServePeer(nsa, &main)
	old := sa
	nsa.post(func() {
		nsa.serving = true
		nsa.replaces = old
		nsa.startInitiator(&main)
		for n, c := range cfgConns {
			if n != main.Name {
				nsa.upChild(&c)
			}
		}
	})
}

// childWork reports whether a task is about CHILD SAs (creating, rekeying
// or deleting one), i.e. work that follows the CHILD SAs to a rekeyed IKE
// SA instead of dying with the old one.
func childWork(t task) bool {
	switch x := t.(type) {
	case *childTask:
		return true
	case *followupTask:
		// An IKE_FOLLOWUP_KE belongs to the CREATE_CHILD_SA it continues.
		return x.owner != nil && childWork(x.owner)
	case *infoTask:
		for _, p := range x.payloads {
			if d, ok := p.(message.Delete); ok && (d.Protocol == message.ProtoESP || d.Protocol == message.ProtoAH) {
				return true
			}
		}
	}
	return false
}

// softLimit is the byte or packet count at which a CHILD SA of c is
// rekeyed: life - margin - random(margin × rekeyfuzz), the formula
// strongSwan uses for rekey_bytes/rekey_packets. With no margin configured
// a tenth of the limit is used, so that a volume limit still leads to a
// rekey before the hard limit deletes the SA; 0 (no soft limit) when the
// conn has no such limit or does not rekey.
func softLimit(c *config.Conn, life, margin uint64) uint64 {
	if life == 0 || !c.Rekey {
		return 0
	}
	if margin == 0 {
		margin = life / 10
	}
	if margin >= life {
		return 1 // rekey on the first packet, as strongSwan would
	}
	soft := life - margin
	if fuzz := uint64(float64(margin) * float64(c.RekeyFuzz) / 100); fuzz > 0 {
		soft -= min(mrand.Uint64N(fuzz+1), soft-1)
	}
	return soft
}

// losesCollision reports whether the SA about to be created by the
// exchange with nonces ni, nr as a successor of old is the redundant one
// of a rekey collision: old already has a successor, and the new
// exchange's lowest nonce is below that successor's (the rule succeeded
// applies, RFC 7296 §2.8.1). Such an SA is installed without taking over
// the outbound direction, so that deleting it leaves traffic on the winner.
func losesCollision(old *child, ni, nr []byte) bool {
	if len(old.successors) != 1 {
		return false
	}
	low := ni
	if bytes.Compare(nr, ni) < 0 {
		low = nr
	}
	return bytes.Compare(low, old.successors[0].minNonce) < 0
}

// switchOutbound is called before old leaves the dataplane: when the
// surviving successor of old (in a collision the one with the highest
// nonce, RFC 7296 §2.8.1) was installed inbound-only, traffic switches to
// it now. The peer deleting old, or our DELETE of old being answered,
// shows that the peer has the successor's inbound SA; at old's hard
// expiry nothing better is left. A redundant successor is never switched
// to.
func (sa *ikeSA) switchOutbound(old *child) {
	var win *child
	for _, s := range old.successors {
		if sa.hasChild(s) && (win == nil || bytes.Compare(s.minNonce, win.minNonce) > 0) {
			win = s
		}
	}
	if win == nil || !win.outHeld {
		return
	}
	win.outHeld = false
	if err := sa.e.cfg.Installer.SwitchOutbound(win.conn.Name, win.inSPI); err != nil {
		sa.log.Warn("switching to the rekeyed CHILD SA", "conn", win.conn.Name, "in_spi", fmt.Sprintf("%08x", win.inSPI), "err", err)
		return
	}
	sa.log.Info("outbound traffic switched to the rekeyed CHILD SA", "conn", win.conn.Name, "in_spi", fmt.Sprintf("%08x", win.inSPI), "out_spi", fmt.Sprintf("%08x", win.outSPI))
}
