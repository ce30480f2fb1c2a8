package ikev2

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
	"github.com/ipsecgw/ipsecgw/ike/shared"
)

// The Manager's handle on an IKE SA (shared.SA): each method posts the
// request to the SA's loop.

// Done implements shared.SA.
func (sa *ikeSA) Done() <-chan struct{} { return sa.loop.Done() }

// Deliver implements shared.SA.
func (sa *ikeSA) Deliver(local, remote netip.AddrPort, pkt []byte, inline bool) bool {
	ev := func() { sa.handle(local, remote, pkt) }
	if inline {
		return sa.loop.TryRun(ev)
	}
	return sa.tryPost(ev)
}

// AddChild implements shared.SA.
func (sa *ikeSA) AddChild(c config.Conn) bool { return sa.post(func() { sa.upChild(&c) }) }

// DownConn implements shared.SA.
func (sa *ikeSA) DownConn(name string) bool {
	return sa.loop.Ask(func() bool { return sa.downConn(name) })
}

// Delete implements shared.SA.
func (sa *ikeSA) Delete(reason string) bool { return sa.post(func() { sa.deleteIKE(reason) }) }

// Destroy implements shared.SA.
func (sa *ikeSA) Destroy() bool { return sa.post(sa.destroy) }

// DropStale implements shared.SA. Only established SAs go: one still
// being negotiated may be the peer's own simultaneous attempt. The SA is
// destroyed silently, as strongSwan does: the peer has no state to delete.
func (sa *ikeSA) DropStale() bool {
	return sa.tryPost(func() {
		if sa.state == saEstablished {
			sa.log.Info("peer sent INITIAL_CONTACT: dropping old IKE SA")
			sa.destroy()
		}
	})
}

// ReportInvalidSPI implements shared.SA: the peer is told with an
// INVALID_SPI notification (RFC 7296 §2.21.4), at most once every
// InvalidSPIInterval, so that a stream of stray packets does not become a
// stream of IKE messages.
func (sa *ikeSA) ReportInvalidSPI(spi uint32) bool {
	return sa.tryPost(func() {
		now := sa.e.clock.Now()
		if sa.state != saEstablished || (sa.lastInvalidSPI != 0 && now.Sub(sa.e.time(sa.lastInvalidSPI)) < InvalidSPIInterval) {
			return
		}
		sa.lastInvalidSPI = sa.e.instant(now)
		sa.log.Info("ESP with an unknown SPI from the peer: sending INVALID_SPI", "spi", spiHex(spi))
		sa.enqueue(&infoTask{payloads: []message.Payload{message.Notify{Protocol: message.ProtoESP, Type: message.INVALID_SPI, Data: spiBytes(spi)}}})
	})
}

// DeleteChild implements shared.SA.
func (sa *ikeSA) DeleteChild(inSPI uint32) bool {
	return sa.tryPost(func() {
		for _, ch := range sa.children {
			if ch.inSPI == inSPI && sa.state == saEstablished {
				sa.log.Info("deleting CHILD SA on request", "conn", ch.conn.Name, "in_spi", spiHex(inSPI))
				sa.deleteChild(ch)
				return
			}
		}
	})
}

// RekeyChild implements shared.SA: the dataplane saw the CHILD SA reach
// its soft byte or packet limit.
func (sa *ikeSA) RekeyChild(spi uint32, inbound bool) bool {
	return sa.tryPost(func() {
		for _, ch := range sa.children {
			if (inbound && ch.inSPI == spi) || (!inbound && ch.outSPI == spi) {
				sa.log.Info("CHILD SA reached its soft volume limit", "conn", ch.conn.Name, "in_spi", spiHex(ch.inSPI))
				sa.rekeyChild(ch)
				return
			}
		}
	})
}

// causeError is an error with the cause it is reported under.
type causeError struct {
	cause shared.Cause
	err   error
}

func (e causeError) Error() string { return e.err.Error() }
func (e causeError) Unwrap() error { return e.err }

// failure is an error with its cause, in words that say what to change.
func failure(cause shared.Cause, format string, args ...any) error {
	return causeError{cause, fmt.Errorf(format, args...)}
}

// configError marks an error as one of our own configuration.
func configError(err error) error { return causeError{shared.CauseConfig, err} }

// causeOf is the cause an error carries, CauseInternal when none.
func causeOf(err error) shared.Cause {
	var ce causeError
	if errors.As(err, &ce) {
		return ce.cause
	}
	return shared.CauseInternal
}
