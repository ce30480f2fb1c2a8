package esp

import (
	"errors"
	"fmt"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"github.com/ipsecgw/ipsecgw/header"
)

// ClearSender sends the packets the SPD says to bypass, in clear, through
// raw IP sockets that take the whole packet with its header (IPPROTO_RAW
// implies IP_HDRINCL / IPV6_HDRINCL). Use its Send as Config.Clear.
//
// A bypassed packet came out of the TUN because a route sent it there, so
// re-sending it plainly would route it straight back in. The sockets
// therefore set SO_MARK to Mark, and the daemon installs a policy rule that
// routes marked packets without the TUN routes (for example
// `ip rule add fwmark MARK lookup main priority 100` when the TUN routes
// live in their own table). Needs CAP_NET_RAW and, for SO_MARK,
// CAP_NET_ADMIN.
type ClearSender struct {
	fd4, fd6 int
	mark     uint32
	errs     atomic.Uint64
	to4      unix.SockaddrInet4
	to6      unix.SockaddrInet6
}

// NewClearSender opens the raw sockets with the given firewall mark.
func NewClearSender(mark uint32) (*ClearSender, error) {
	c := &ClearSender{fd4: -1, fd6: -1, mark: mark}
	var err error
	if c.fd4, err = rawSocket(unix.AF_INET, mark); err != nil {
		return nil, err
	}
	if c.fd6, err = rawSocket(unix.AF_INET6, mark); err != nil {
		unix.Close(c.fd4)
		return nil, err
	}
	return c, nil
}

func rawSocket(family int, mark uint32) (int, error) {
	fd, err := unix.Socket(family, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return -1, fmt.Errorf("esp: raw socket for bypassed packets (needs CAP_NET_RAW): %w", err)
	}
	if mark != 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(mark)); err != nil {
			unix.Close(fd)
			return -1, fmt.Errorf("esp: SO_MARK %#x on the bypass socket (needs CAP_NET_ADMIN): %w", mark, err)
		}
	}
	return fd, nil
}

// Send sends each packet to the destination in its IP header. Packets the
// kernel refuses are counted (Errors), not retried. Send is called from
// one goroutine at a time (the dataplane's sender).
func (c *ClearSender) Send(pkts [][]byte) {
	for _, p := range pkts {
		var err error
		// The packet passed the SPD, which validated its header; this
		// only needs the destination address to be there.
		switch {
		case len(p) >= header.IPv4MinLen && header.IPVersion(p) == 4:
			copy(c.to4.Addr[:], header.IPv4(p).Dst())
			err = unix.Sendto(c.fd4, p, 0, &c.to4)
		case len(p) >= header.IPv6Len && header.IPVersion(p) == 6:
			copy(c.to6.Addr[:], header.IPv6(p).Dst())
			err = unix.Sendto(c.fd6, p, 0, &c.to6)
		default:
			err = errNotIP
		}
		if err != nil {
			c.errs.Add(1)
		}
	}
}

var errNotIP = errors.New("not an IP packet")

// Errors returns how many packets could not be sent.
func (c *ClearSender) Errors() uint64 { return c.errs.Load() }

// Close closes the sockets.
func (c *ClearSender) Close() error {
	return errors.Join(unix.Close(c.fd4), unix.Close(c.fd6))
}
