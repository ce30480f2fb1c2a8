package daemon

import (
	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/ike"
)

// Global implements control.Backend.
func (d *Daemon) Global() control.GlobalStatus {
	g := control.GlobalStatus{
		HalfOpenLimit:     d.ikeSettings.HalfOpenLimit,
		CookieThreshold:   d.ikeSettings.CookieThreshold,
		CookieThresholdIP: d.ikeSettings.CookieThresholdIP,
	}
	if c, ok := d.ike.(interface{ Counters() ike.Counters }); ok {
		n := c.Counters()
		g.IKESAs, g.HalfOpen, g.HalfOpenLimit = n.IKESAs, n.HalfOpen, n.HalfOpenLimit
		g.CookiesSent, g.HalfOpenRefused, g.IKESAQueueDrops = n.CookiesSent, n.HalfOpenRefused, n.QueueDrops
	}
	if d.ikeQueueDrops != nil {
		g.IKEQueueDrops = d.ikeQueueDrops()
	}
	return g
}

// socketQueueDrops sums the IKE queue drops of the sockets of both
// address families.
func socketQueueDrops(s *sockets) func() uint64 {
	return func() uint64 {
		n := s.v4.Stats().IKEQueueDrops
		if s.v6 != nil {
			n += s.v6.Stats().IKEQueueDrops
		}
		return n
	}
}

// offIfZero maps a threshold setting (0: off) to ike.Options (negative:
// off, 0: default).
func offIfZero(n int) int {
	if n == 0 {
		return -1
	}
	return n
}
