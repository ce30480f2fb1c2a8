package daemon

import (
	"fmt"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/ike"
	"github.com/ipsecgw/ipsecgw/install"
)

// The gateway as the control protocol's backend: the status values it
// carries, built from the IKE Manager and the SAD, and the commands.

// Up implements control.Backend.
func (g *Gateway) Up(name string) error {
	if _, ok := g.cfg.Load().Conn(name); !ok {
		return fmt.Errorf("no connection named %q", name)
	}
	return g.ike.Up(name)
}

// Down implements control.Backend.
func (g *Gateway) Down(name string) error {
	if _, ok := g.cfg.Load().Conn(name); !ok {
		return fmt.Errorf("no connection named %q", name)
	}
	return g.ike.Down(name)
}

// Status implements control.Backend: every configured conn in file order,
// with what IKE knows about it and the SAD's counters for its CHILD SAs.
func (g *Gateway) Status() []control.ConnStatus {
	byName := map[string]ike.ConnStatus{}
	for _, st := range g.ike.Status() {
		byName[st.Name] = st
	}
	now := g.now()
	conns := g.cfg.Load().Conns()
	out := make([]control.ConnStatus, 0, len(conns))
	for _, c := range conns {
		cs := control.ConnStatus{
			Name: c.Name, State: control.StateDown, Auto: c.Auto.String(), Version: c.Version.String(),
			Local: endString(c.Local), Remote: endString(c.Remote), Children: []control.ChildStatus{},
		}
		if st, ok := byName[c.Name]; ok {
			g.fill(&cs, st, now)
		}
		out = append(out, cs)
	}
	return out
}

func (g *Gateway) fill(cs *control.ConnStatus, st ike.ConnStatus, now time.Time) {
	if st.State != "" {
		cs.State = string(st.State)
	}
	cs.LastError = st.Reason
	if st.SPIi != 0 {
		if st.Local.IsValid() {
			cs.Local = st.Local.String()
		}
		if st.Remote.IsValid() {
			cs.Remote = st.Remote.String()
		}
		cs.IKE = &control.IKEStatus{
			Initiator: st.Initiator, InitiatorSPI: control.FormatIKESPI(st.SPIi), ResponderSPI: control.FormatIKESPI(st.SPIr),
			Proposal: st.Algorithms, LocalID: st.LocalID, RemoteID: st.RemoteID,
			NATDetected: st.NATDetected(), UptimeSeconds: control.Uptime(st.Established, now),
		}
	}
	for _, ch := range st.Children {
		c := control.ChildStatus{
			Proposal: ch.Algorithms, Protocol: "esp",
			SPIIn: control.FormatSPI(ch.InSPI), SPIOut: control.FormatSPI(ch.OutSPI), UDPEncap: ch.Encap,
			LocalTS: install.TSStrings(ch.LocalTS), RemoteTS: install.TSStrings(ch.RemoteTS),
			UptimeSeconds: control.Uptime(ch.Established, now),
		}
		if g.inst != nil {
			if in, outS, ok := g.inst.ChildCounters(ch.InSPI); ok {
				c.BytesIn, c.PacketsIn = in.Bytes, in.Packets
				c.BytesOut, c.PacketsOut = outS.Bytes, outS.Packets
			}
		}
		cs.Children = append(cs.Children, c)
	}
}

// Global implements control.Backend.
func (g *Gateway) Global() control.GlobalStatus {
	n := g.ike.Counters()
	out := control.GlobalStatus{
		IKESAs: n.IKESAs, HalfOpen: n.HalfOpen, HalfOpenLimit: n.HalfOpenLimit,
		CookieThreshold:   g.set.IKE.CookieThreshold,
		CookieThresholdIP: g.set.IKE.CookieThresholdIP,
		CookiesSent:       n.CookiesSent, HalfOpenRefused: n.HalfOpenRefused, IKESAQueueDrops: n.QueueDrops,
	}
	if g.socks != nil {
		out.IKEQueueDrops = g.socks.ikeQueueDrops()
	}
	return out
}

func endString(e config.End) string {
	if e.Addr.IsValid() {
		return e.Addr.String()
	}
	return e.Host
}
