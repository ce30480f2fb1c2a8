package daemon

import (
	"context"
	"time"

	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/ike"
	"github.com/ipsecgw/ipsecgw/ike/shared"
)

// Events implements control.Backend: a subscription to IKE's events,
// converted for the control socket, until ctx ends or IKE closes. The
// subscription never makes IKE wait; a slow client only makes it queue.
func (g *Gateway) Events(ctx context.Context) <-chan control.Event {
	sub := g.ike.Subscribe()
	out := make(chan control.Event)
	go func() {
		defer close(out)
		defer sub.Unsubscribe()
		for {
			select {
			case ev, ok := <-sub.Events():
				if !ok {
					return
				}
				select {
				case out <- controlEvent(ev, g.now()):
				case <-ctx.Done():
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// controlEvent describes an IKE event for `ipsecgw events`.
func controlEvent(ev ike.Event, now time.Time) control.Event {
	e := control.Event{Time: now, Conns: ev.Conns()}
	if e.Conns == nil {
		e.Conns = []string{}
	}
	setIKE := func(i ike.IKEInfo) {
		if i.SPIi != 0 {
			e.InitiatorSPI, e.ResponderSPI = control.FormatIKESPI(i.SPIi), control.FormatIKESPI(i.SPIr)
		}
	}
	setChild := func(c ike.ChildInfo) {
		e.SPIIn, e.SPIOut, e.Proposal = control.FormatSPI(c.InSPI), control.FormatSPI(c.OutSPI), c.Algorithms
	}
	cause := func(c shared.Cause) string {
		if c == shared.CauseNone {
			return ""
		}
		return c.String()
	}
	switch x := ev.(type) {
	case shared.Initiating:
		e.Type = "initiating"
	case shared.IKEUp:
		e.Type, e.Proposal = "ike-up", x.IKE.Algorithms
		setIKE(x.IKE)
	case shared.IKEUpdated:
		e.Type = "ike-updated"
		setIKE(x.IKE)
	case shared.IKERekeyed:
		e.Type, e.Proposal = "ike-rekeyed", x.New.Algorithms
		setIKE(x.New)
		e.OldIKE = control.FormatIKESPI(x.Old.SPIi) + "_i/" + control.FormatIKESPI(x.Old.SPIr) + "_r"
	case shared.IKEDown:
		e.Type, e.Cause, e.Text = "ike-down", cause(x.Cause), x.Text
		setIKE(x.IKE)
	case shared.ChildUp:
		e.Type = "child-up"
		setIKE(x.IKE)
		setChild(x.Child)
	case shared.ChildRekeyed:
		e.Type = "child-rekeyed"
		setIKE(x.IKE)
		setChild(x.New)
		e.OldSPIIn = control.FormatSPI(x.Old.InSPI)
	case shared.ChildDown:
		e.Type, e.Cause, e.Text = "child-down", cause(x.Cause), x.Text
		if x.Rekeyed {
			e.Cause = "rekeyed"
		}
		setIKE(x.IKE)
		setChild(x.Child)
	case shared.Failure:
		e.Type, e.State, e.Cause, e.Text = "failure", string(x.State), cause(x.Cause), x.Text
	case shared.StateChanged:
		e.Type, e.From, e.State, e.Text = "state", string(x.From), string(x.To), x.Reason
	case shared.ExchangeDone:
		e.Type, e.Exchange, e.DPD, e.Retransmits, e.TimedOut = "exchange", x.Exchange, x.DPD, x.Retransmits, x.TimedOut
		e.RTTMillis = float64(x.RTT) / float64(time.Millisecond)
		setIKE(x.IKE)
	default:
		e.Type = "other"
	}
	return e
}
