package ikev1

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev1/isakmp"
	"github.com/ipsecgw/ipsecgw/ike/shared"
)

// Informational exchanges (RFC 2409 §5.7): one message each, answered by
// nobody. We send notifications (sendNotify), deletes and DPD (dpd.go)
// through sendInformational; this file handles the peer's.

// phase1Task is the phase 1 task's part in informational handling: an
// error notification in answer to it, or an answer we cannot decrypt.
type phase1Task interface {
	task
	undecryptable
	refused(sa *isakmpSA, n isakmp.NotifyType, protected bool) error
}

// handleInformational processes one informational message of the peer.
// Before phase 1 has keys the peer can only send notifications in clear,
// which are believed while phase 1 is in progress (an unauthenticated
// refusal ends it, as with strongSwan); once keys exist everything must
// be encrypted and carry a HASH that verifies.
func (sa *isakmpSA) handleInformational(local, remote netip.AddrPort, m *isakmp.Message) {
	mid := m.Header.MessageID
	if !m.Encrypted() {
		if sa.state != saPhase1 || sa.keys != nil {
			sa.e.drops.Drop(sa.log, shared.DropWrongState, "unprotected informational message dropped", "msgid", mid)
			return
		}
		sa.phase1Notifies(m, false)
		return
	}
	if sa.keys == nil {
		sa.e.drops.Count(shared.DropWrongState)
		return
	}
	_, err := sa.open(m)
	if err != nil {
		sa.iv.Forget(mid)
		if t, ok := sa.p1.(phase1Task); ok && sa.state == saPhase1 && sa.pending != nil && sa.pending.t == sa.p1 {
			// An encrypted answer to our authentication that does not
			// decrypt comes from other keys: another PSK.
			sa.failPending(sa.pending, t.undecryptable(sa, err))
			return
		}
		sa.e.drops.Drop(sa.log, openDropReason(err), "informational message dropped", "msgid", mid, "err", err)
		return
	}
	ok := verifyHash(m, func(rest []byte) []byte { return sa.keys.InformationalHash(mid, rest) })
	sa.iv.Forget(mid)
	if !ok {
		sa.e.drops.Drop(sa.log, shared.DropAuthFailed, "informational message with a wrong HASH dropped", "msgid", mid)
		return
	}
	if why := sa.replayedInformational(m); why != "" {
		sa.e.drops.Drop(sa.log, shared.DropRetransmission, "replayed informational message dropped", "msgid", mid, "why", why)
		return
	}
	sa.alive()
	if sa.state == saPhase1 {
		sa.phase1Notifies(m, true)
		return
	}
	if sa.state == saEstablished {
		sa.followPeer(local, remote)
	}
	var closed []string
	deleteISAKMP := false
	for _, p := range m.Payloads {
		switch p.Type {
		case isakmp.PayloadN:
			n, _, err := isakmp.ParseNotify(p.Body)
			if err == nil {
				sa.notified(n)
			}
		case isakmp.PayloadD:
			d, _, err := isakmp.ParseDelete(p.Body)
			if err != nil {
				continue
			}
			if d.Protocol == isakmp.ProtoISAKMP {
				for _, spi := range d.SPIs {
					if ci, cr, ok := isakmp.Cookies(spi); ok && ci == sa.ckyI && cr == sa.ckyR {
						deleteISAKMP = true
					}
				}
				continue
			}
			if spis, ok := d.ESPSPIs(); ok {
				for _, spi := range spis {
					closed = append(closed, sa.peerDeleted(spi)...)
				}
			}
		}
	}
	if deleteISAKMP {
		sa.deletedByPeer()
		return
	}
	sa.childrenClosedByPeer(closed)
}

// infoReplayWindow is how many message IDs of the peer's protected
// informational messages are remembered.
const infoReplayWindow = 32

// replayedInformational recognises a protected informational message the
// peer already sent, which an attacker on the path can replay at will: an
// informational exchange is one message that is never retransmitted, its
// message ID is fresh each time (RFC 2408 §3.1), and the sequence numbers
// of R-U-THERE only grow (RFC 3706 §7). A replay would otherwise count as
// a sign of life of a dead peer and be answered with an R-U-THERE-ACK
// each time. It returns why the message is a replay, or "" after recording
// it.
func (sa *isakmpSA) replayedInformational(m *isakmp.Message) string {
	mid := m.Header.MessageID
	// (0 marks an unused slot; the peer's message IDs are not 0.)
	if mid != 0 && slices.Contains(sa.infoSeen[:], mid) {
		return "message ID seen before"
	}
	for _, p := range m.Find(isakmp.PayloadN) {
		n, _, err := isakmp.ParseNotify(p.Body)
		if err != nil || n.Type != isakmp.R_U_THERE {
			continue
		}
		if seq, ok := n.DPDSequence(); ok {
			// Serial number arithmetic: the sequence wraps.
			if sa.peerDPDSeen && int32(seq-sa.peerDPDSeq) <= 0 {
				return fmt.Sprintf("R-U-THERE sequence number %d not after %d", seq, sa.peerDPDSeq)
			}
			sa.peerDPDSeq, sa.peerDPDSeen = seq, true
		}
	}
	sa.infoSeen[sa.infoNext] = mid
	sa.infoNext = (sa.infoNext + 1) % infoReplayWindow
	return ""
}

// phase1Notifies handles the notifications of an informational message
// during phase 1: an error ends it with a reason.
func (sa *isakmpSA) phase1Notifies(m *isakmp.Message, protected bool) {
	t, ok := sa.p1.(phase1Task)
	for _, p := range m.Find(isakmp.PayloadN) {
		n, _, err := isakmp.ParseNotify(p.Body)
		if err != nil || !n.Type.IsError() {
			continue
		}
		sa.log.Info("peer sent an error notification during phase 1", "type", n.Type.String(), "protected", protected)
		if !ok {
			return
		}
		err = t.refused(sa, n.Type, protected)
		if o := sa.pending; o != nil && o.t == sa.p1 {
			o.timer.Stop()
			sa.pending = nil
		}
		if p := sa.passive[0]; p != nil {
			p.stop()
		}
		t.fail(sa, causeOf(err), err.Error())
		return
	}
}

// notified acts on one notification of an established SA.
func (sa *isakmpSA) notified(n isakmp.Notify) {
	switch n.Type {
	case isakmp.R_U_THERE:
		if seq, ok := n.DPDSequence(); ok {
			sa.sendInformational(isakmp.DPD(true, sa.ckyI, sa.ckyR, seq))
		}
	case isakmp.R_U_THERE_ACK:
		if seq, ok := n.DPDSequence(); ok && seq != sa.dpdSeq {
			sa.log.Debug("DPD acknowledgement with an unexpected sequence number", "seq", seq, "want", sa.dpdSeq)
		}
	case isakmp.INITIAL_CONTACT:
		// Sent by some peers in an informational of its own right after
		// phase 1: the other SAs with the same identities are stale.
		for _, o := range sa.e.host.Authenticated(sa, sa.ids) {
			o.DropStale()
		}
	case isakmp.INVALID_SPI:
		if n.Protocol != isakmp.ProtoESP && n.Protocol != isakmp.ProtoAH {
			return
		}
		spi, ok := spiOf(n.SPI)
		if !ok {
			spi, ok = spiOf(n.Data)
		}
		for _, c := range sa.children {
			if ok && c.outSPI == spi {
				sa.log.Info("peer reports INVALID-SPI for an IPsec SA; removing it", "conn", c.conn.Name, "spi", spiHex(spi))
				sa.removeChild(c, shared.CausePeerRefused, "the peer reports INVALID-SPI for it")
				break
			}
		}
	default:
		if !n.Type.IsError() {
			return
		}
		sa.log.Info("peer sent an error notification", "type", n.Type.String())
		// A refusal of our quick mode in flight: strongSwan names it by our
		// SPI, or by SPI 0 when it refused before looking at the SA
		// payload; a notification naming another SPI is about something
		// else.
		if o := sa.pending; o != nil {
			if q, ok := o.t.(*quickMode); ok {
				if spi, isSPI := spiOf(n.SPI); !isSPI || spi == 0 || spi == q.inSPI || (n.Protocol != isakmp.ProtoESP && n.Protocol != isakmp.ProtoAH) {
					sa.failPending(o, q.refused(n.Type))
				}
			}
		}
	}
}

// peerDeleted removes the IPsec SA whose outbound SPI the peer deleted
// (the peer names its inbound SPI) and returns its conn.
func (sa *isakmpSA) peerDeleted(spi uint32) []string {
	for _, c := range sa.children {
		if c.outSPI == spi {
			text := "the peer deleted the IPsec SA"
			if c.successor != nil {
				text = ""
			}
			sa.removeChild(c, shared.CausePeerDeleted, text)
			if c.successor != nil {
				return nil
			}
			return []string{c.conn.Name}
		}
	}
	sa.log.Debug("peer deleted an unknown IPsec SA", "spi", spiHex(spi))
	return nil
}

// childrenClosedByPeer applies closeaction to the conns left without an
// IPsec SA by the peer's deletes: restart negotiates them again over this
// ISAKMP SA, hold installs their trap policy.
func (sa *isakmpSA) childrenClosedByPeer(names []string) {
	if sa.state != saEstablished {
		return
	}
	seen := map[string]bool{}
	for _, n := range names {
		if seen[n] {
			continue
		}
		seen[n] = true
		if sa.hasConnChild(n) {
			continue
		}
		c, ok := sa.e.host.Config().Conn(n)
		if !ok {
			continue
		}
		switch c.CloseAction {
		case config.ActionRestart:
			sa.log.Info("closeaction=restart: the peer deleted the IPsec SA, negotiating it again", "conn", n)
			sa.upChild(c)
		case config.ActionHold:
			sa.e.host.Hold(c, "closeaction")
		}
	}
}

// deletedByPeer ends the SA the peer deleted. Its IPsec SAs do not depend
// on it: when another ISAKMP SA with the same identities exists (the
// peer reauthenticated), they move there; otherwise they go with it and
// closeaction applies.
func (sa *isakmpSA) deletedByPeer() {
	sa.log.Info("peer deleted the ISAKMP SA")
	if len(sa.children) > 0 {
		for _, o := range sa.e.host.Authenticated(sa, sa.ids) {
			if n, ok := o.(*isakmpSA); ok && n.e == sa.e {
				sa.handOver(n, false)
				break
			}
		}
	}
	// A quick mode still queued or in flight (closeaction=restart of the
	// IPsec SA the peer deleted just before this SA, as strongSwan does
	// for maintenance) dies with this SA; its conns are owed a new
	// ISAKMP SA as much as those of IPsec SAs gone with it: the cause
	// makes the Manager apply their closeaction.
	if sa.serving && (len(sa.children) > 0 || sa.pending != nil || len(sa.queue) > 0) {
		sa.endCause, sa.endText = shared.CausePeerDeleted, "the peer deleted the ISAKMP SA"
	}
	sa.destroy()
}

// deleteISAKMP deletes the SA at the peer and here: its IPsec SAs first
// (the peer would keep them otherwise), then the ISAKMP SA itself
// (strongSwan's order). reason, when set, is recorded for the conns.
func (sa *isakmpSA) deleteISAKMP(reason string) {
	if sa.state == saDead {
		return
	}
	if reason != "" {
		sa.failConns(shared.StateDown, shared.CauseAdmin, reason)
	}
	if sa.state == saEstablished || sa.state == saDeleting {
		for _, d := range deletesOf(sa.children) {
			sa.sendInformational(d)
		}
		sa.sendInformational(isakmp.DeleteISAKMP(sa.ckyI, sa.ckyR))
	}
	sa.log.Info("ISAKMP SA deleted", "conn", sa.conn.Name)
	sa.destroy()
}

// downConn deletes a conn's IPsec SAs from this SA, or the whole SA when
// it serves nothing else. It reports whether the SA served the conn.
func (sa *isakmpSA) downConn(name string) bool {
	if sa.state == saDead || !sa.conns[name] && sa.conn.Name != name {
		return false
	}
	others := false
	var mine []*child
	for _, c := range sa.children {
		if c.conn.Name == name {
			mine = append(mine, c)
		} else {
			others = true
		}
	}
	if !others {
		sa.deleteISAKMP("")
		return true
	}
	delete(sa.conns, name)
	sa.dropQueued(name)
	if len(mine) == 0 {
		return true
	}
	for _, d := range deletesOf(mine) {
		sa.sendInformational(d)
	}
	for _, c := range mine {
		sa.removeChild(c, shared.CauseAdmin, "")
	}
	return true
}

// dropQueued forgets queued quick modes of a conn taken down.
func (sa *isakmpSA) dropQueued(name string) {
	kept := sa.queue[:0]
	for _, t := range sa.queue {
		if q, ok := t.(*quickMode); ok && q.conn.Name == name {
			discard(t)
			continue
		}
		kept = append(kept, t)
	}
	sa.queue = kept
}
