package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/esp"
	"github.com/ipsecgw/ipsecgw/esp/conn"
)

// sockets holds the IKE/ESP sockets of both address families: an esp/conn
// Conn serves one family, and a gateway may have IPv4 and IPv6 peers. IPv4
// is always open; IPv6 only when a loaded conn has an IPv6 address at either
// end (a host without IPv6 then still starts).
type sockets struct {
	v4, v6 *conn.Conn
	// local4/local6 stand in for the destination address of received IKE
	// messages when the kernel does not report it.
	local4, local6 netip.Addr
	// noRawESP: the raw ESP socket could not be opened (no CAP_NET_RAW,
	// as in a container given only NET_ADMIN); ESP then always goes in
	// UDP 4500 (the gateway runs as with esp.encapsulation: udp).
	noRawESP bool
	once     sync.Once
}

// listenESP opens one family's sockets, without the raw ESP socket when
// the process may not open it.
func (s *sockets) listenESP(cfg conn.Config, log *slog.Logger) (*conn.Conn, error) {
	if !s.noRawESP {
		c, err := conn.Listen(cfg)
		if err == nil || !errors.Is(err, os.ErrPermission) {
			return c, err
		}
		log.Warn("no raw ESP socket (it needs CAP_NET_RAW): ESP goes in UDP 4500 with every peer, as with esp.encapsulation: udp; AH conns cannot carry traffic", "err", err)
		s.noRawESP = true
	}
	cfg.RawESP, cfg.RawAH = false, false
	return conn.Listen(cfg)
}

func openSockets(cfg *config.Config, host []netip.Addr, handler conn.ESPHandler, log *slog.Logger) (*sockets, error) {
	s := &sockets{local4: pickLocal(cfg, host, true), local6: pickLocal(cfg, host, false)}
	var err error
	s.v4, err = s.listenESP(conn.Config{
		IKEPort: conn.DefaultIKEPort, NATTPort: conn.DefaultNATTPort, RawESP: true, RawAH: true,
		ESP: handler, UDPOffload: true,
	}, log)
	if err != nil {
		return nil, fmt.Errorf("IPv4 IKE/ESP sockets: %w", err)
	}
	if needsIPv6(cfg) {
		s.v6, err = s.listenESP(conn.Config{
			Addr: netip.IPv6Unspecified(), IKEPort: conn.DefaultIKEPort, NATTPort: conn.DefaultNATTPort,
			RawESP: true, RawAH: true, ESP: handler, UDPOffload: true,
		}, log)
		if err != nil {
			s.v4.Close()
			return nil, fmt.Errorf("IPv6 IKE/ESP sockets (a conn has an IPv6 address): %w", err)
		}
	}
	log.Debug("sockets open", "ipv6", s.v6 != nil)
	return s, nil
}

// needsIPv6 reports whether a loaded conn has an IPv6 outer address.
func needsIPv6(cfg *config.Config) bool {
	for _, c := range cfg.Conns() {
		if c.Auto == config.AutoIgnore {
			continue
		}
		for _, a := range []netip.Addr{c.Local.Addr, c.Remote.Addr} {
			if a.IsValid() && !a.Unmap().Is4() {
				return true
			}
		}
	}
	return false
}

func (s *sockets) close() {
	s.once.Do(func() {
		s.v4.Close()
		if s.v6 != nil {
			s.v6.Close()
		}
	})
}

// sendIKE sends from the socket of remote's family.
func (s *sockets) sendIKE(pkt []byte, local, remote netip.AddrPort) error {
	if !local.Addr().IsValid() || local.Addr().IsUnspecified() {
		local = netip.AddrPortFrom(netip.Addr{}, local.Port())
	}
	if remote.Addr().Unmap().Is4() {
		return s.v4.SendIKEFrom(pkt, local, netip.AddrPortFrom(remote.Addr().Unmap(), remote.Port()))
	}
	if s.v6 == nil {
		return fmt.Errorf("no IPv6 socket open for %s", remote)
	}
	return s.v6.SendIKEFrom(pkt, local, remote)
}

// ikeFeeders is the number of goroutines taking the IKE messages of each
// socket. One of them may process a message itself (handle's inline)
// while another waits for the next; when all the others are busy, the
// message goes to a goroutine of its own, so that a slow exchange (a CRL
// fetch) never leaves the socket unread.
const ikeFeeders = 2

// receiveIKE feeds every received IKE message to handle until the sockets
// are closed; inline says that handle may process it in the calling
// goroutine (ike.Manager.ProcessPacket).
func (s *sockets) receiveIKE(handle func(local, remote netip.AddrPort, pkt []byte, inline bool)) {
	var wg sync.WaitGroup
	feed := func(c *conn.Conn, fallback netip.Addr, busy *atomic.Int32) {
		defer wg.Done()
		for p := range c.IKE() {
			local := p.Local
			if !local.Addr().IsValid() {
				// The kernel did not say which address the message came
				// to (no IP_PKTINFO): assume the configured one.
				local = netip.AddrPortFrom(fallback, p.LocalPort)
			}
			handle(local, p.Src, p.Data, busy.Add(1) < ikeFeeders)
			busy.Add(-1)
		}
	}
	start := func(c *conn.Conn, fallback netip.Addr) {
		busy := new(atomic.Int32)
		for range ikeFeeders {
			wg.Add(1)
			go feed(c, fallback, busy)
		}
	}
	start(s.v4, s.local4)
	if s.v6 != nil {
		start(s.v6, s.local6)
	}
	wg.Wait()
}

func (s *sockets) newSender() esp.Sender {
	d := &dualSender{v4: s.v4.NewSender()}
	if s.v6 != nil {
		d.v6 = s.v6.NewSender()
	}
	return d
}

// dualSender sends each ESP (or AH) packet from the socket of its destination's
// family. Batches of one family (the usual case) go through unchanged; a
// mixed batch is split into two reused slices, so sending does not
// allocate once they have grown.
type dualSender struct {
	v4, v6 *conn.Sender
	b4, b6 []conn.OutPacket
}

func (d *dualSender) Send(pkts []conn.OutPacket) (int, error) {
	if d.v6 == nil {
		return d.v4.Send(pkts)
	}
	n4 := 0
	for i := range pkts {
		if pkts[i].Dst.Addr().Is4() {
			n4++
		}
	}
	switch n4 {
	case len(pkts):
		return d.v4.Send(pkts)
	case 0:
		return d.v6.Send(pkts)
	}
	d.b4, d.b6 = d.b4[:0], d.b6[:0]
	for _, p := range pkts {
		if p.Dst.Addr().Is4() {
			d.b4 = append(d.b4, p)
		} else {
			d.b6 = append(d.b6, p)
		}
	}
	a, errA := d.v4.Send(d.b4)
	b, errB := d.v6.Send(d.b6)
	clear(d.b4)
	clear(d.b6)
	return a + b, errors.Join(errA, errB)
}

// pickLocal chooses the local address of one family reported to IKE for
// messages whose destination address the sockets could not learn: the
// single literal local address of that family among the loaded conns, else
// the host's single global address of the family, else the unspecified
// address (the Manager then matches conns by remote address).
func pickLocal(cfg *config.Config, host []netip.Addr, v4 bool) netip.Addr {
	unspec := netip.IPv6Unspecified()
	if v4 {
		unspec = netip.IPv4Unspecified()
	}
	var lits []netip.Addr
	for _, c := range cfg.Conns() {
		a := c.Local.Addr.Unmap()
		if c.Auto == config.AutoIgnore || !a.IsValid() || a.Is4() != v4 {
			continue
		}
		if !slices.Contains(lits, a) {
			lits = append(lits, a)
		}
	}
	if len(lits) == 1 {
		return lits[0]
	}
	var cands []netip.Addr
	for _, a := range host {
		a = a.Unmap()
		if a.Is4() == v4 && !a.IsLoopback() && !a.IsLinkLocalUnicast() {
			cands = append(cands, a)
		}
	}
	if len(lits) == 0 && len(cands) == 1 {
		return cands[0]
	}
	return unspec
}

// malformed sums the datagrams both address families' sockets dropped
// before IKE or the dataplane saw them, by where they were headed: too
// short for an IKE header or a marker (ike), too short for an ESP header,
// a bad IPv4 header on raw ESP, or larger than the receive buffer (esp).
func (s *sockets) malformed() (ike, esp uint64) {
	for _, c := range []*conn.Conn{s.v4, s.v6} {
		if c == nil {
			continue
		}
		d := c.Stats().Drops
		ike += d[conn.DropEmpty] + d[conn.DropShortMarker] + d[conn.DropShortIKE]
		esp += d[conn.DropShortESP] + d[conn.DropBadIPHeader] + d[conn.DropTruncated]
	}
	return ike, esp
}

// ikeQueueDrops sums the IKE queue drops of the sockets of both address
// families.
func (s *sockets) ikeQueueDrops() uint64 {
	n := s.v4.Stats().IKEQueueDrops
	if s.v6 != nil {
		n += s.v6.Stats().IKEQueueDrops
	}
	return n
}
