package ikev1

import (
	"net/netip"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev1/isakmp"
	"github.com/ipsecgw/ipsecgw/ike/shared"
)

// The Manager's handle on an ISAKMP SA (shared.SA): each method posts the
// request to the SA's loop.

// Done implements shared.SA.
func (sa *isakmpSA) Done() <-chan struct{} { return sa.loop.Done() }

// Deliver implements shared.SA.
func (sa *isakmpSA) Deliver(local, remote netip.AddrPort, pkt []byte, inline bool) bool {
	ev := func() { sa.handle(local, remote, pkt) }
	if inline {
		return sa.loop.TryRun(ev)
	}
	return sa.tryPost(ev)
}

// AddChild implements shared.SA.
func (sa *isakmpSA) AddChild(c config.Conn) bool { return sa.post(func() { sa.upChild(c) }) }

// DownConn implements shared.SA.
func (sa *isakmpSA) DownConn(name string) bool {
	return sa.loop.Ask(func() bool { return sa.downConn(name) })
}

// Delete implements shared.SA.
func (sa *isakmpSA) Delete(reason string) bool { return sa.post(func() { sa.deleteISAKMP(reason) }) }

// Destroy implements shared.SA.
func (sa *isakmpSA) Destroy() bool { return sa.post(sa.destroy) }

// DropStale implements shared.SA: the peer sent INITIAL-CONTACT on a new
// SA with the same identities, so it has no state for this one or its
// IPsec SAs (RFC 2407 §4.6.3.3). Only established SAs go; the SA ends
// silently, as with strongSwan.
func (sa *isakmpSA) DropStale() bool {
	return sa.tryPost(func() {
		if sa.state == saEstablished || sa.state == saDeleting {
			sa.log.Info("peer sent INITIAL-CONTACT: dropping the old ISAKMP SA and its IPsec SAs")
			sa.destroy()
		}
	})
}

// ReportInvalidSPI implements shared.SA: the peer is told with an
// INVALID-SPI notification, at most once every InvalidSPIInterval.
func (sa *isakmpSA) ReportInvalidSPI(spi uint32) bool {
	return sa.tryPost(func() {
		now := sa.e.clock.Now()
		if sa.state != saEstablished || (!sa.lastInvalidSPI.IsZero() && now.Sub(sa.lastInvalidSPI) < InvalidSPIInterval) {
			return
		}
		sa.lastInvalidSPI = now
		sa.log.Info("ESP with an unknown SPI from the peer: sending INVALID-SPI", "spi", spiHex(spi))
		sa.sendNotify(isakmp.Notify{DOI: isakmp.DOIIPsec, Protocol: isakmp.ProtoESP, Type: isakmp.INVALID_SPI, SPI: spiBytes(spi)})
	})
}

// DeleteChild implements shared.SA.
func (sa *isakmpSA) DeleteChild(inSPI uint32) bool {
	return sa.tryPost(func() {
		for _, ch := range sa.children {
			if ch.inSPI == inSPI && sa.state == saEstablished {
				sa.log.Info("deleting IPsec SA on request", "conn", ch.conn.Name, "in_spi", spiHex(inSPI))
				sa.deleteChild(ch, shared.CauseNone, "")
				return
			}
		}
	})
}

// RekeyChild implements shared.SA: the dataplane saw the IPsec SA reach
// its soft byte or packet limit.
func (sa *isakmpSA) RekeyChild(spi uint32, inbound bool) bool {
	return sa.tryPost(func() {
		for _, ch := range sa.children {
			if (inbound && ch.inSPI == spi) || (!inbound && ch.outSPI == spi) {
				sa.log.Info("IPsec SA reached its soft volume limit", "conn", ch.conn.Name, "in_spi", spiHex(ch.inSPI))
				sa.rekeyChild(ch)
				return
			}
		}
	})
}

// PeerMoved implements shared.SA: authenticated ESP-in-UDP for one of our
// IPsec SAs came from src, a NAT in front of the peer changed its mapping;
// the SA follows with the rules of followPeer.
func (sa *isakmpSA) PeerMoved(inSPI uint32, src netip.AddrPort) bool {
	return sa.tryPost(func() {
		if sa.state != saEstablished || !src.Addr().IsValid() {
			return
		}
		for _, ch := range sa.children {
			if ch.inSPI == inSPI && ch.encap {
				sa.followPeer(sa.local, src)
				return
			}
		}
	})
}
