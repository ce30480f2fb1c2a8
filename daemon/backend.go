package daemon

import (
	"context"
	"fmt"
	"time"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/ike"
	"github.com/ipsecgw/ipsecgw/ike/shared"
	"github.com/ipsecgw/ipsecgw/install"
	"github.com/ipsecgw/ipsecgw/sad"
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
	usage := g.usage(now)
	conns := g.cfg.Load().Conns()
	out := make([]control.ConnStatus, 0, len(conns))
	for _, c := range conns {
		cs := control.ConnStatus{
			Name: c.Name, State: control.StateDown, Auto: c.Auto.String(), Version: c.Version.String(),
			Local: endString(c.Local), Remote: endString(c.Remote), Children: []control.ChildStatus{},
			Usage:  controlUsage(usage[c.Name], now),
			Updown: g.updownStatus(c.Local.Updown, c.Name),
		}
		cs.Health, cs.Bandwidth = g.health.view(c, usage[c.Name], now)
		st, ok := byName[c.Name]
		if ok {
			g.fill(&cs, st, now)
		}
		if g.tcp != nil {
			cs.TCP = g.tcp.status(c, st.Remote)
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
			Proposal: ch.Algorithms, Protocol: childProtocol(ch),
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
		Drops: ikeDrops(n.Drops),
	}
	if g.socks != nil {
		out.IKEQueueDrops = g.socks.ikeQueueDrops()
		// Datagrams on the IKE ports too short to be IKE never reach the
		// Manager; they are malformed IKE all the same.
		ike, _ := g.socks.malformed()
		out.Drops[shared.DropMalformed.Label()] += ike
	}
	return out
}

func endString(e config.End) string {
	if e.Addr.IsValid() {
		return e.Addr.String()
	}
	return e.Host
}

// usage is the installer's usage records as of now (none without one:
// unit tests of the status).
func (g *Gateway) usage(now time.Time) map[string]install.Usage {
	if g.inst == nil {
		return nil
	}
	return g.inst.Usage(now)
}

// controlUsage converts a usage record for the status.
func controlUsage(u install.Usage, now time.Time) control.Usage {
	last := int64(-1)
	if !u.LastInbound.IsZero() {
		last = control.Uptime(u.LastInbound, now)
	}
	return control.Usage{BytesIn: u.BytesIn, PacketsIn: u.PacketsIn, BytesOut: u.BytesOut, PacketsOut: u.PacketsOut, LastInboundSeconds: last}
}

// ikeDrops renders IKE's drop counters by reason label, every reason
// present.
func ikeDrops(d [shared.NumDropReasons]uint64) map[string]uint64 {
	m := make(map[string]uint64, shared.NumDropReasons-1)
	for _, r := range shared.DropReasons() {
		m[r.Label()] = d[r]
	}
	return m
}

// drops renders drop counters by reason label, every reason present.
func drops(d [sad.NumDropReasons]uint64) map[string]uint64 {
	m := make(map[string]uint64, sad.NumDropReasons-1)
	for r := sad.DropReason(1); int(r) < sad.NumDropReasons; r++ {
		m[r.Label()] = d[r]
	}
	return m
}

// Reset implements control.Backend: down (if the conn has SAs), then up.
func (g *Gateway) Reset(name string) error {
	if _, ok := g.cfg.Load().Conn(name); !ok {
		return fmt.Errorf("no connection named %q", name)
	}
	if err := g.ike.Down(name); err != nil {
		g.log.Debug("reset: nothing to take down", "conn", name, "err", err)
	}
	return g.Up(name)
}

// Reload implements control.Backend: what SIGHUP does, with the result.
func (g *Gateway) Reload() (control.ReloadResult, error) {
	if g.opts.Load == nil {
		return control.ReloadResult{}, fmt.Errorf("this daemon has no configuration files to reload")
	}
	return g.reload(g.opts.Load)
}

// ListSAs implements control.Backend.
func (g *Gateway) ListSAs() []control.SAEntry {
	now := g.now()
	var out []control.SAEntry
	for _, st := range g.ike.Status() {
		if st.SPIi == 0 && len(st.Children) == 0 {
			continue
		}
		e := control.SAEntry{Conn: st.Name, Children: []control.ChildSA{}}
		if st.SPIi != 0 {
			e.IKE = &control.IKESA{
				Version: max(st.Version, 2), Initiator: st.Initiator,
				InitiatorSPI: control.FormatIKESPI(st.SPIi), ResponderSPI: control.FormatIKESPI(st.SPIr),
				Local: st.Local.String(), Remote: st.Remote.String(), LocalID: st.LocalID, RemoteID: st.RemoteID,
				Proposal: st.Algorithms, NATDetected: st.NATDetected(),
				EstablishedSeconds: control.Uptime(st.Established, now), RekeySeconds: control.SecondsUntil(st.RekeyAt, now),
			}
		}
		for _, ch := range st.Children {
			c := control.ChildSA{
				Protocol: childProtocol(ch), Proposal: ch.Algorithms, SPIIn: control.FormatSPI(ch.InSPI), SPIOut: control.FormatSPI(ch.OutSPI),
				UDPEncap: ch.Encap, LocalTS: install.TSStrings(ch.LocalTS), RemoteTS: install.TSStrings(ch.RemoteTS),
				EstablishedSeconds: control.Uptime(ch.Established, now),
				RekeySeconds:       control.SecondsUntil(ch.RekeyAt, now), ExpiresSeconds: control.SecondsUntil(ch.ExpireAt, now),
			}
			if g.inst != nil {
				if in, outS, ok := g.inst.ChildCounters(ch.InSPI); ok {
					c.BytesIn, c.PacketsIn, c.BytesOut, c.PacketsOut = in.Bytes, in.Packets, outS.Bytes, outS.Packets
				}
				if hard, ok := g.inst.ChildLimits(ch.InSPI); ok {
					c.LifeBytes, c.LifePackets = hard.Bytes, hard.Packets
				}
			}
			e.Children = append(e.Children, c)
		}
		out = append(out, e)
	}
	return out
}

// Stats implements control.Backend.
func (g *Gateway) Stats() control.Stats {
	out := control.Stats{IKE: g.Global(), Conns: []control.ConnStats{}}
	var zero [sad.NumDropReasons]uint64
	out.Dataplane.Drops = drops(zero)
	if g.dp != nil {
		d := g.dp.Stats()
		out.Dataplane = control.DataplaneStats{
			TxPackets: d.TxPackets, TxBytes: d.TxBytes, RxPackets: d.RxPackets, RxBytes: d.RxBytes,
			Bypassed: d.Bypassed, Held: d.Held, SendErrors: d.SendErrors, WriteErrors: d.WriteErrors, ReadErrors: d.ReadErrors,
			Drops: drops(d.Drops),
		}
		if g.socks != nil {
			// ESP too short or unparsable for the sockets never reaches
			// the dataplane's own counters.
			_, esp := g.socks.malformed()
			out.Dataplane.Drops[sad.DropMalformed.Label()] += esp
		}
	}
	now := g.now()
	usage := g.usage(now)
	for _, cs := range g.Status() {
		u := usage[cs.Name]
		out.Conns = append(out.Conns, control.ConnStats{Name: cs.Name, State: cs.State, Usage: controlUsage(u, now), Drops: drops(u.Drops)})
	}
	return out
}

// ExportKeys implements control.Backend (the server lets only root ask).
func (g *Gateway) ExportKeys() (control.KeyExport, error) {
	if g.inst == nil {
		return control.KeyExport{}, fmt.Errorf("no SAs")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	children := g.inst.ExportKeys()
	ikes := g.ike.ExportKeys(ctx)
	defer func() {
		for i := range children {
			children[i].Wipe()
		}
		for _, k := range ikes {
			clear(k.SKei)
			clear(k.SKer)
			clear(k.SKai)
			clear(k.SKar)
		}
	}()
	return formatKeys(children, ikes), nil
}

// childProtocol is a CHILD SA's protocol for status: "esp" or "ah" (an
// engine that does not say negotiates ESP).
func childProtocol(ch ike.ChildInfo) string {
	if ch.Protocol == "" {
		return "esp"
	}
	return ch.Protocol
}
