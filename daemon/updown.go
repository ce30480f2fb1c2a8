package daemon

import (
	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/ike"
	"github.com/ipsecgw/ipsecgw/ike/shared"
	"github.com/ipsecgw/ipsecgw/updown"
)

// The updown scripts (leftupdown=): package updown runs them from IKE's
// events; the gateway tells it each conn's script and interface and shows
// what they did in the status.

// startUpdown subscribes the script runner to IKE's events. Called before
// IKE starts, so that no CHILD SA comes up unseen; the runner ends after
// the down scripts of the last SAs once the Manager closed.
func (g *Gateway) startUpdown() {
	g.updown = updown.New(updown.Options{Conn: g.updownConn, Logger: g.log})
	events := g.ike.Subscribe(g.updownEvent).Events()
	g.background(func() { g.updown.Run(events) })
}

// updownEvent selects the events the script runner acts on (its
// subscription's filter): the ends and rekeys of CHILD and IKE SAs, and
// a CHILD SA up only when its conn has a script in the configuration in
// force as it comes up. A burst of thousands of setups of conns without
// one then does not wake the runner at all.
func (g *Gateway) updownEvent(ev ike.Event) bool {
	switch e := ev.(type) {
	case shared.ChildUp:
		c, ok := g.cfg.Load().Conn(e.Conn)
		return ok && c.Local.Updown != ""
	case shared.ChildRekeyed, shared.ChildDown, shared.IKEDown, shared.IKERekeyed:
		return true
	}
	return false
}

// updownConn is what a script run needs of a conn, from the configuration
// in force when its CHILD SA comes up.
func (g *Gateway) updownConn(name string) (updown.Conn, bool) {
	c, ok := g.cfg.Load().Conn(name)
	if !ok {
		return updown.Conn{}, false
	}
	ifc := c.Interface
	return updown.Conn{
		Name: name, Script: c.Local.Updown, Interface: g.interfaceName(c),
		MarkIn: updown.Mark(ifc.MarkIn), MarkOut: updown.Mark(ifc.MarkOut), IfIDIn: ifc.IfIDIn, IfIDOut: ifc.IfIDOut,
	}, true
}

// updownStatus is the status of the conn's script, nil without one.
func (g *Gateway) updownStatus(script, conn string) *control.UpdownStatus {
	if script == "" {
		return nil
	}
	st := &control.UpdownStatus{Script: script}
	if g.updown != nil {
		if s, ok := g.updown.Status(conn); ok {
			st.Runs, st.Failures, st.LastVerb, st.LastError = s.Runs, s.Failures, s.LastVerb, s.LastError
		}
	}
	return st
}
