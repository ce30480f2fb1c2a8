package ikev2

import (
	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
	"github.com/ipsecgw/ipsecgw/ike/shared"
)

// INFORMATIONAL (RFC 7296 §1.4): deletes, notifications and liveness
// checks, for either role; what deleting SAs involves.

// infoTask is an INFORMATIONAL exchange. As initiator it sends payloads
// (DELETEs, a notification, or nothing: a liveness check) and calls done
// or failed; as responder it acts on the peer's deletes and
// notifications and answers with the DELETEs of the CHILD SAs it removed.
type infoTask struct {
	responder bool
	payloads  []message.Payload
	done      func(sa *ikeSA, m *message.Message)
	failed    func(sa *ikeSA, reason string)
	// Responder: what the request asked for.
	deleteIKE  bool
	authFailed bool
	espDeleted message.Delete // our SPIs of the ESP CHILD SAs the peer deleted
	ahDeleted  message.Delete // and of the AH ones
	closed     []string       // their conns (closeaction)
}

func (*infoTask) exchange() message.ExchangeType { return message.INFORMATIONAL }

func (t *infoTask) build(*ikeSA) ([]message.Payload, error) {
	if t.authFailed {
		return nil, nil
	}
	if t.responder && len(t.espDeleted.SPIs)+len(t.ahDeleted.SPIs) > 0 {
		var ps []message.Payload
		for _, d := range []message.Delete{t.espDeleted, t.ahDeleted} {
			if len(d.SPIs) > 0 {
				ps = append(ps, d)
			}
		}
		return ps, nil
	}
	return t.payloads, nil
}

func (t *infoTask) process(sa *ikeSA, m *message.Message) error {
	if t.responder {
		t.processRequest(sa, m)
		return nil
	}
	if t.done != nil {
		t.done(sa, m)
	}
	return nil
}

func (t *infoTask) fail(sa *ikeSA, _ shared.Cause, reason string) {
	if t.failed != nil {
		t.failed(sa, reason)
	}
}

// processRequest removes the CHILD SAs the peer deleted and the ones it
// reports INVALID_SPI for; a deleted IKE SA and an AUTHENTICATION_FAILED
// end the SA once the answer is out (answered).
func (t *infoTask) processRequest(sa *ikeSA, m *message.Message) {
	t.espDeleted.Protocol = message.ProtoESP
	t.ahDeleted.Protocol = message.ProtoAH
	for _, p := range m.Inner {
		switch p.Type {
		case message.PayloadD:
			d, _, err := message.ParseDelete(p.Body)
			if err != nil {
				continue
			}
			switch d.Protocol {
			case message.ProtoIKE:
				t.deleteIKE = true
			case message.ProtoESP, message.ProtoAH:
				for _, spi := range d.SPIs {
					t.peerDeleted(sa, spi)
				}
			}
		case message.PayloadN:
			n, _, err := message.ParseNotify(p.Body)
			if err != nil {
				continue
			}
			switch n.Type {
			case message.AUTHENTICATION_FAILED:
				t.authFailed = true
			case message.INVALID_SPI:
				// The peer received ESP with an SPI it does not know
				// (RFC 7296 §2.21.4): if it is one of our outbound SAs,
				// the peer lost it, and the SA is useless.
				if spi, ok := spiValue(n.Data); ok {
					for _, c := range sa.children {
						if c.outSPI == spi {
							sa.log.Info("peer reports INVALID_SPI for a CHILD SA; removing it", "conn", c.conn.Name, "spi", spiHex(spi))
							sa.removeChild(c, shared.CausePeerRefused, "the peer reports INVALID_SPI for it")
							break
						}
					}
				}
			}
		}
	}
	if t.deleteIKE && !t.authFailed {
		if ours := sa.ikeRekeyPending(); ours != nil {
			// The peer's rekey crossed ours and the peer, not having seen
			// the collision, deletes the old SA before answering us (RFC
			// 7296 §2.8.2): its new SA takes over the CHILD SAs.
			sa.pending.timer.Stop()
			if f, ok := sa.pending.t.(*followupTask); ok {
				f.release() // our rekey was in its IKE_FOLLOWUP_KE exchanges
			}
			sa.pending = nil
			ours.abandon()
			if p := ours.passive; p != nil {
				ours.passive = nil
				sa.log.Info("IKE SA rekey collision: the peer deleted the old IKE SA, its new one takes over")
				sa.handOver(p)
			}
		}
		t.espDeleted.SPIs, t.ahDeleted.SPIs = nil, nil // the IKE SA's delete answers with nothing
	}
}

// peerDeleted removes the CHILD SA whose outbound SPI the peer deleted
// (the SPI is the peer's inbound one) and answers with ours.
func (t *infoTask) peerDeleted(sa *ikeSA, spi uint32) {
	for _, c := range sa.children {
		if c.outSPI == spi {
			if c.proto == shared.ProtoAH {
				t.ahDeleted.SPIs = append(t.ahDeleted.SPIs, c.inSPI)
			} else {
				t.espDeleted.SPIs = append(t.espDeleted.SPIs, c.inSPI)
			}
			t.closed = append(t.closed, c.conn.Name)
			sa.removeChild(c, shared.CausePeerDeleted, "the peer deleted the CHILD SA")
			return
		}
	}
	sa.log.Debug("peer deleted an unknown CHILD SA", "spi", spiHex(spi))
}

// answered ends the SA the peer deleted or refused to authenticate, or
// applies closeaction to the conns whose CHILD SAs it deleted.
func (t *infoTask) answered(sa *ikeSA) {
	switch {
	case t.authFailed:
		sa.failPhase1(shared.CauseAuthFailed, sa.rejectedText(sa.conn))
	case t.deleteIKE:
		sa.log.Info("peer deleted the IKE SA")
		if sa.rawRequest != nil && sa.hasRsp {
			// Should our answer be lost, the peer's retransmissions of
			// its DELETE are answered once the SA is gone.
			sa.e.host.AnsweredDelete(sa.ourSPI(), sa.local, sa.remote, sa.rawRequest, sa.lastRsp)
		}
		if sa.serving { // not an SA a rekey replaced: closeaction applies
			sa.destroyFor(shared.CausePeerDeleted, "the peer deleted the IKE SA")
		} else {
			sa.destroy()
		}
	default:
		sa.childrenClosedByPeer(t.closed)
	}
}

// deleteIKE sends a DELETE for the IKE SA and destroys it when answered (or
// when the peer does not answer). reason, when set, is recorded for the
// conns as the cause of going down.
func (sa *ikeSA) deleteIKE(reason string) {
	if sa.state == saDead {
		return
	}
	if sa.state == saDeleting {
		// Our DELETE is outstanding, or this SA was replaced by a rekey
		// and only waits for the peer's DELETE: then end it now.
		if sa.pending == nil && len(sa.queue) == 0 {
			sa.destroy()
		}
		return
	}
	if reason != "" {
		sa.failConns(shared.StateDown, shared.CauseAdmin, reason)
	}
	if sa.state != saEstablished {
		sa.destroy()
		return
	}
	sa.state = saDeleting
	sa.servePeer(nil)
	for _, t := range sa.queue {
		t.fail(sa, shared.CauseAdmin, "IKE SA deleted")
	}
	sa.queue = nil
	sa.log.Info("deleting IKE SA", "conn", sa.conn.Name)
	end := func(sa *ikeSA) { sa.destroy() }
	sa.queue = append(sa.queue, &infoTask{
		payloads: []message.Payload{message.Delete{Protocol: message.ProtoIKE}},
		done:     func(sa *ikeSA, _ *message.Message) { end(sa) },
		failed:   func(sa *ikeSA, _ string) { end(sa) },
	})
	sa.kick()
}

// downConn deletes a conn's CHILD SAs from this IKE SA, or the whole IKE SA
// when it serves nothing else. It reports whether the SA served the conn.
func (sa *ikeSA) downConn(name string) bool {
	if sa.state == saDead || !sa.conns.Has(name) && sa.conn.Name != name {
		return false
	}
	var mine []*child
	others := false
	for _, c := range sa.children {
		if c.conn.Name == name {
			mine = append(mine, c)
		} else {
			others = true
		}
	}
	if !others {
		sa.deleteIKE("")
		return true
	}
	sa.conns.Remove(name)
	if len(mine) == 0 {
		return true
	}
	esp, ah := message.Delete{Protocol: message.ProtoESP}, message.Delete{Protocol: message.ProtoAH}
	for _, c := range mine {
		if c.proto == shared.ProtoAH {
			ah.SPIs = append(ah.SPIs, c.inSPI)
		} else {
			esp.SPIs = append(esp.SPIs, c.inSPI)
		}
		c.deleting = true
	}
	var ds []message.Payload
	for _, d := range []message.Delete{esp, ah} {
		if len(d.SPIs) > 0 {
			ds = append(ds, d)
		}
	}
	remove := func(sa *ikeSA) {
		for _, c := range mine {
			sa.removeChild(c, shared.CauseAdmin, "")
		}
	}
	sa.enqueue(&infoTask{
		payloads: ds,
		done:     func(sa *ikeSA, _ *message.Message) { remove(sa) },
		failed:   func(sa *ikeSA, _ string) { remove(sa) },
	})
	return true
}

// removeChild takes a CHILD SA out of the dataplane and the SA, and
// reports it with the cause of its end.
func (sa *ikeSA) removeChild(c *child, cause shared.Cause, text string) {
	found := false
	for i, x := range sa.children {
		if x == c {
			sa.switchOutbound(c)
			c.stopTimers()
			sa.children = append(sa.children[:i], sa.children[i+1:]...)
			if err := sa.e.cfg.Installer.Remove(c.conn.Name, c.inSPI, c.outSPI); err != nil {
				sa.log.Warn("removing CHILD SA", "conn", c.conn.Name, "err", err)
			}
			sa.log.Info("CHILD SA deleted", "conn", c.conn.Name, "in_spi", spiHex(c.inSPI))
			found = true
			break
		}
	}
	if !found {
		return
	}
	still := false
	for _, x := range sa.children {
		if x.conn.Name == c.conn.Name {
			still = true
		}
	}
	if !still && c.conn.Name != sa.conn.Name {
		sa.conns.Remove(c.conn.Name)
	}
	sa.e.host.Emit(shared.ChildDown{Conn: c.conn.Name, IKE: sa.info(), Child: c.info(), Cause: cause, Text: text,
		Rekeyed: len(c.successors) > 0, Left: !still && !sa.conns.Has(c.conn.Name)})
}
