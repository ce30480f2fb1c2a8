package ikev1

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev1/isakmp"
)

// Dead peer detection (RFC 3706). Informational messages are not
// answered or retransmitted in IKEv1, so liveness is its own exchange:
// dpddelay after the last authenticated message from the peer we send an
// R-U-THERE (a fresh sequence number each, every dpddelay while the
// silence lasts), and when nothing came for dpdtimeout since that last
// message the peer is dead (strongSwan's rule): the SA ends and the
// Manager applies dpdaction (clear, hold, restart). A peer that dies is
// so found dead within dpdtimeout. Only peers that announced DPD with
// their Vendor ID are probed; we announce it always and answer every
// R-U-THERE with R-U-THERE-ACK (task_info.go).

// dpdAnswerTime is the least time a peer gets to answer an R-U-THERE
// before it is declared dead (when dpdtimeout is shorter than dpddelay).
const dpdAnswerTime = time.Second

// armDPD schedules the next liveness check: dpddelay after the last
// message from the peer.
func (sa *isakmpSA) armDPD() {
	c := sa.conn
	if c.DPDAction == config.ActionNone || c.DPDDelay <= 0 || !sa.peerDPD {
		return
	}
	if sa.dpdSeq == 0 {
		// RFC 3706 §5.5: start at a random number below 2^31.
		var b [4]byte
		rand.Read(b[:])
		sa.dpdSeq = binary.BigEndian.Uint32(b[:])&0x7fffffff | 1
	}
	d := c.DPDDelay
	if idle := sa.e.clock.Now().Sub(sa.lastRecv); idle < d && sa.dpdSince.IsZero() {
		d -= idle
	}
	sa.dpdTimer = sa.after(d, sa.dpdCheck)
}

func (sa *isakmpSA) dpdCheck() {
	if sa.state != saEstablished {
		return
	}
	c := sa.conn
	now := sa.e.clock.Now()
	if now.Sub(sa.lastRecv) >= c.DPDDelay {
		sa.dpdSeq++
		sa.log.Debug("peer silent: sending R-U-THERE", "seq", sa.dpdSeq, "idle", now.Sub(sa.lastRecv))
		sa.sendInformational(isakmp.DPD(false, sa.ckyI, sa.ckyR, sa.dpdSeq))
		if sa.dpdSince.IsZero() {
			sa.dpdSince = now
			timeout := c.DPDTimeout
			if timeout <= 0 {
				timeout = config.DefaultDPDTimeout
			}
			dead := max(sa.lastRecv.Add(timeout).Sub(now), dpdAnswerTime)
			sa.dpdDeadTimer = sa.after(dead, func() { sa.dpdTimeout(timeout) })
		}
	}
	sa.armDPD()
}

// dpdTimeout declares the peer dead when nothing authenticated came since
// the first unanswered R-U-THERE.
func (sa *isakmpSA) dpdTimeout(timeout time.Duration) {
	if sa.state != saEstablished || sa.dpdSince.IsZero() || sa.lastRecv.After(sa.dpdSince) {
		return
	}
	sa.peerDead(fmt.Sprintf("no answer to DPD R-U-THERE from %s, nothing received for %s (dpdtimeout)", sa.remote, sa.e.clock.Now().Sub(sa.lastRecv).Round(time.Second)))
}

// alive records an authenticated message from the peer: it proves the
// peer alive and ends a pending DPD probe.
func (sa *isakmpSA) alive() {
	sa.lastRecv = sa.e.clock.Now()
	if !sa.dpdSince.IsZero() {
		sa.dpdSince = time.Time{}
		if sa.dpdDeadTimer != nil {
			sa.dpdDeadTimer.Stop()
			sa.dpdDeadTimer = nil
		}
	}
}
