package conn

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

const (
	// DefaultIKEPort and DefaultNATTPort are the standard ports.
	DefaultIKEPort  = 500
	DefaultNATTPort = 4500
	// DefaultBufSize holds the largest UDP datagram: IKE messages with
	// certificates arrive as reassembled IP fragments well above the MTU,
	// and on port 4500 they share buffers with ESP.
	DefaultBufSize = 65536
	// DefaultBatchSize is the number of datagrams per recvmmsg/sendmmsg.
	DefaultBatchSize = 64
	// ESPBatchSize is the most ESP packets handed to Config.ESP at once.
	// With GRO one datagram holds up to ~45 ESP packets of a 64 KiB TUN
	// super-packet, so this is several datagrams' worth: the receiving
	// dataplane merges packets of a flow only within a batch, and every
	// batch boundary inside a TCP burst costs an extra TUN write.
	ESPBatchSize = 256
	// DefaultIKEQueueLen bounds the IKE queue.
	DefaultIKEQueueLen = 256
	// DefaultSocketBuf is the SO_RCVBUF/SO_SNDBUF asked for. With UDP
	// GRO the kernel charges a coalesced datagram of 30-45 ESP packets
	// its whole truesize, so 4 MB held only ~60 of them: in a bench-net
	// run of 4 TCP streams the receiving gateway's kernel dropped 18 and
	// 45 of them (Udp RcvbufErrors) in 2 of 4 10-second samples, each
	// drop a burst loss that TCP waited out with retransmission timeouts
	// (437 and 1,634 retransmits against ~20). At 16 MB none was dropped
	// in the 8 samples interleaved with them. The memory is only used
	// while datagrams wait: at most ~50 ms of traffic at 2.5 Gbit/s.
	DefaultSocketBuf = 16 << 20

	// ReadOffset is where received datagrams start in their buffer. It
	// keeps room in front so that after in-place decryption even an ESP
	// packet without IV (ENCR_NULL) leaves the inner packet with the 10
	// bytes of headroom the TUN writer needs (tun.VirtioNetHdrLen).
	ReadOffset = 16
)

// ESPPacket is one received ESP packet. It lives in the receiver's buffer
// only until the handler returns: with UDP GRO several packets share one
// buffer, which the next recvmmsg overwrites. A handler copies what it
// keeps (the dataplane copies into its own batch, once).
type ESPPacket struct {
	// Buf is the receive buffer holding the packet.
	Buf []byte
	// Off and Len locate the ESP packet (SPI first) in Buf.
	Off, Len int
	// Src is the sender; its port is 0 for plain ESP.
	Src netip.AddrPort
	// UDP is true for ESP-in-UDP received on the NAT-T port.
	UDP bool
	// AH is true for an AH packet from the raw AH socket (Config.RawAH):
	// over IPv4 the whole IP packet (header first, as the ICV covers
	// it), over IPv6 the packet from the AH header on (an IPv6 raw
	// socket strips the fixed header).
	AH bool
}

// Bytes returns the ESP packet.
func (p *ESPPacket) Bytes() []byte { return p.Buf[p.Off : p.Off+p.Len] }

// ESPHandler receives batches of ESP packets. It is called from the
// receiving goroutines, one per socket (NAT-T and raw ESP), which may run
// at the same time; the batch slice and the packets' buffers are reused as
// soon as it returns.
type ESPHandler func(batch []ESPPacket)

// IKEPacket is one queued IKE message (without non-ESP marker).
type IKEPacket struct {
	Data []byte
	// Src is the sender, LocalPort the port it arrived on: NAT-T moves
	// IKE to 4500, and replies must leave from the same port.
	Src       netip.AddrPort
	LocalPort uint16
	// Local is the address and port the message was sent to. On a Conn
	// bound to the wildcard address the kernel reports the address
	// (IP_PKTINFO); answer with SendIKEFrom(Local, Src) so the reply
	// leaves from the address the peer talked to.
	Local netip.AddrPort
}

// Config says which sockets to open.
type Config struct {
	// Addr is the local address to bind. The zero value means 0.0.0.0;
	// an IPv6 address (including ::) opens IPv6 sockets. One Conn serves
	// one address family.
	Addr netip.Addr
	// IKEPort and NATTPort are the UDP ports; 0 lets the kernel choose
	// (tests). DefaultConfig sets 500 and 4500.
	IKEPort, NATTPort uint16
	// RawESP opens a raw IP protocol 50 socket for ESP without UDP
	// encapsulation (needs CAP_NET_RAW).
	RawESP bool
	// RawAH opens a raw IP protocol 51 socket for AH (RFC 4302), which
	// sends whole IP packets built by the caller (IP_HDRINCL,
	// IPV6_HDRINCL: the ICV covers the outer header, so it must not be
	// the kernel's choice) and receives AH for Config.ESP with
	// ESPPacket.AH set (needs CAP_NET_RAW).
	RawAH bool
	// BufSize is the size of each pooled receive buffer, ReadOffset
	// included. 0 means DefaultBufSize.
	BufSize int
	// BatchSize is the number of datagrams per batched syscall.
	BatchSize int
	// IKEQueueLen bounds the IKE queue; more is dropped and counted.
	IKEQueueLen int
	// SocketBuf is the SO_RCVBUF and SO_SNDBUF size. As root
	// SO_RCVBUFFORCE/SO_SNDBUFFORCE are used, because net.core.rmem_max
	// cannot be raised from inside a network namespace.
	SocketBuf int
	// ESP receives ESP packets. Nil drops them (counted as unhandled).
	ESP ESPHandler
	// NetNS, when not empty, is the path of a network namespace (e.g.
	// /run/netns/gw1) to open the sockets in, for running several
	// gateways in one process (tests) without entering the namespace.
	NetNS string
	// UDPOffload turns on UDP GSO (UDP_SEGMENT) for sending and GRO
	// (UDP_GRO) for receiving on the NAT-T socket where the kernel has
	// them (Linux ≥ 4.18 / 5.0). GRO makes received ESP be copied once
	// out of the coalesced datagram into per-packet buffers.
	UDPOffload bool
}

// DefaultConfig listens on 0.0.0.0 on the standard ports.
func DefaultConfig() Config {
	return Config{IKEPort: DefaultIKEPort, NATTPort: DefaultNATTPort}
}

// Stats are the counters of a Conn. Every dropped datagram is counted
// under exactly one reason.
type Stats struct {
	// ESP counts the packets handed to Config.ESP: ESP, and AH from the
	// raw AH socket.
	IKE, ESP, Keepalives uint64
	// IKEQueueDrops counts IKE messages dropped because the queue was full.
	IKEQueueDrops uint64
	// ESPUnhandled counts ESP packets dropped for want of a handler.
	ESPUnhandled uint64
	// Drops counts malformed datagrams by reason.
	Drops [numDropReasons]uint64
	// ReceiveErrors and SendErrors count failed syscalls.
	ReceiveErrors, SendErrors uint64
	// Coalesced counts datagrams that arrived inside a GRO-coalesced read
	// (Config.UDPOffload); it shows whether GRO is doing anything.
	Coalesced uint64
}

type counters struct {
	ike, esp, keepalives, ikeQueueDrops, espUnhandled atomic.Uint64
	drops                                             [numDropReasons]atomic.Uint64
	recvErrors, sendErrors, coalesced                 atomic.Uint64
}

// Conn owns the IKE, NAT-T and raw ESP sockets.
type Conn struct {
	cfg    Config
	family int
	ike    *net.UDPConn
	natt   *net.UDPConn
	raw    *net.IPConn // nil unless cfg.RawESP
	ah     *net.IPConn // nil unless cfg.RawAH

	ikeRC, nattRC, rawRC, ahRC syscall.RawConn
	gso                        atomic.Bool // UDP_SEGMENT usable on the NAT-T socket
	gro                        bool        // UDP_GRO enabled on the NAT-T socket
	pktinfo                    bool        // packet info on the UDP sockets (wildcard bind)
	ahNet                      string      // "ip4:51" or "ip6:51"

	ikeQ chan IKEPacket
	c    counters
	wg   sync.WaitGroup
	once sync.Once
}

// Listen opens the sockets and starts the receiving goroutines.
func Listen(cfg Config) (*Conn, error) {
	if !cfg.Addr.IsValid() {
		cfg.Addr = netip.IPv4Unspecified()
	}
	cfg.Addr = cfg.Addr.Unmap()
	if cfg.BufSize == 0 {
		cfg.BufSize = DefaultBufSize
	}
	if cfg.BufSize < ReadOffset+ikeHeaderLen+markerLen {
		return nil, fmt.Errorf("conn: buffer size %d too small", cfg.BufSize)
	}
	if cfg.IKEPort != 0 && cfg.IKEPort == cfg.NATTPort {
		return nil, fmt.Errorf("conn: IKE port and NAT-T port are both %d; they must differ", cfg.IKEPort)
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.IKEQueueLen <= 0 {
		cfg.IKEQueueLen = DefaultIKEQueueLen
	}
	if cfg.SocketBuf <= 0 {
		cfg.SocketBuf = DefaultSocketBuf
	}
	c := &Conn{cfg: cfg, family: unix.AF_INET, ikeQ: make(chan IKEPacket, cfg.IKEQueueLen)}
	udpNet, ipNet := "udp4", "ip4:50"
	c.ahNet = "ip4:51"
	if cfg.Addr.Is6() {
		c.family, udpNet, ipNet, c.ahNet = unix.AF_INET6, "udp6", "ip6:50", "ip6:51"
	}
	open := c.open
	if cfg.NetNS != "" {
		open = func(udpNet, ipNet string) error {
			return inNetNS(cfg.NetNS, func() error { return c.open(udpNet, ipNet) })
		}
	}
	if err := open(udpNet, ipNet); err != nil {
		c.closeSockets()
		return nil, err
	}
	if cfg.UDPOffload {
		c.enableOffload()
	}
	if cfg.Addr.IsUnspecified() {
		if err := c.enablePktinfo(); err != nil {
			c.closeSockets()
			return nil, err
		}
	}
	c.start(c.ikeRC, sockIKE)
	c.start(c.nattRC, sockNATT)
	if c.raw != nil {
		if c.family == unix.AF_INET {
			c.start(c.rawRC, sockRaw4)
		} else {
			c.start(c.rawRC, sockRaw6)
		}
	}
	if c.ah != nil {
		if c.family == unix.AF_INET {
			c.start(c.ahRC, sockAH4)
		} else {
			c.start(c.ahRC, sockAH6)
		}
	}
	return c, nil
}

func listenUDP(network string, ap netip.AddrPort, bufSize int) (*net.UDPConn, syscall.RawConn, error) {
	u, err := net.ListenUDP(network, net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return nil, nil, err
	}
	rc, err := u.SyscallConn()
	if err == nil {
		err = setBufs(rc, bufSize)
	}
	if err != nil {
		u.Close()
		return nil, nil, err
	}
	return u, rc, nil
}

// setBufs sets the socket buffers, forcing past the sysctl limits when we
// have CAP_NET_ADMIN and falling back to the capped request otherwise.
func setBufs(rc syscall.RawConn, size int) error {
	var err error
	cerr := rc.Control(func(fd uintptr) {
		for _, o := range [][2]int{{unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}, {unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}} {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[0], size) != nil {
				if e := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[1], size); e != nil {
					err = fmt.Errorf("set socket buffer to %d: %w", size, e)
					return
				}
			}
		}
	})
	if cerr != nil {
		return cerr
	}
	return err
}

// open opens the sockets (in the current thread's namespace).
func (c *Conn) open(udpNet, ipNet string) error {
	cfg := c.cfg
	var err error
	if c.ike, c.ikeRC, err = listenUDP(udpNet, netip.AddrPortFrom(cfg.Addr, cfg.IKEPort), cfg.SocketBuf); err != nil {
		return fmt.Errorf("conn: IKE socket %v: %w", netip.AddrPortFrom(cfg.Addr, cfg.IKEPort), err)
	}
	if c.natt, c.nattRC, err = listenUDP(udpNet, netip.AddrPortFrom(cfg.Addr, cfg.NATTPort), cfg.SocketBuf); err != nil {
		return fmt.Errorf("conn: NAT-T socket %v: %w", netip.AddrPortFrom(cfg.Addr, cfg.NATTPort), err)
	}
	if cfg.RawESP {
		if c.raw, err = net.ListenIP(ipNet, &net.IPAddr{IP: cfg.Addr.AsSlice()}); err != nil {
			return fmt.Errorf("conn: raw ESP socket (needs CAP_NET_RAW): %w", err)
		}
		if c.rawRC, err = c.raw.SyscallConn(); err != nil {
			return err
		}
		if err = setBufs(c.rawRC, cfg.SocketBuf); err != nil {
			return err
		}
	}
	if cfg.RawAH {
		if c.ah, err = net.ListenIP(c.ahNet, &net.IPAddr{IP: cfg.Addr.AsSlice()}); err != nil {
			return fmt.Errorf("conn: raw AH socket (needs CAP_NET_RAW): %w", err)
		}
		if c.ahRC, err = c.ah.SyscallConn(); err != nil {
			return err
		}
		if err = setBufs(c.ahRC, cfg.SocketBuf); err != nil {
			return err
		}
		level, opt := unix.IPPROTO_IP, unix.IP_HDRINCL
		if c.family == unix.AF_INET6 {
			level, opt = unix.IPPROTO_IPV6, unix.IPV6_HDRINCL
		}
		var serr error
		if cerr := c.ahRC.Control(func(fd uintptr) { serr = unix.SetsockoptInt(int(fd), level, opt, 1) }); cerr != nil {
			return cerr
		}
		if serr != nil {
			return fmt.Errorf("conn: raw AH socket: header inclusion: %w", serr)
		}
	}
	return nil
}

// enableOffload probes UDP_SEGMENT and switches on UDP_GRO on the NAT-T
// socket; either may be missing, which only costs speed.
func (c *Conn) enableOffload() {
	_ = c.nattRC.Control(func(fd uintptr) {
		if _, err := unix.GetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_SEGMENT); err == nil {
			c.gso.Store(true)
		}
		c.gro = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_GRO, 1) == nil
	})
}

// enablePktinfo asks for each datagram's local address on the UDP
// sockets, which a wildcard-bound socket otherwise does not know.
func (c *Conn) enablePktinfo() error {
	level, opt := unix.IPPROTO_IP, unix.IP_PKTINFO
	if c.family == unix.AF_INET6 {
		level, opt = unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO
	}
	for _, rc := range []syscall.RawConn{c.ikeRC, c.nattRC} {
		var err error
		if cerr := rc.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), level, opt, 1) }); cerr != nil {
			return cerr
		}
		if err != nil {
			return fmt.Errorf("conn: enable packet info: %w", err)
		}
	}
	c.pktinfo = true
	return nil
}

// Offload reports whether UDP GSO and GRO are in use.
func (c *Conn) Offload() (gso, gro bool) { return c.gso.Load(), c.gro }

// IKE delivers received IKE messages. It is closed after Close.
func (c *Conn) IKE() <-chan IKEPacket { return c.ikeQ }

// IKEPort and NATTPort are the bound ports (useful with port 0).
func (c *Conn) IKEPort() uint16 { return c.ike.LocalAddr().(*net.UDPAddr).AddrPort().Port() }

// NATTPort is the bound NAT-T port.
func (c *Conn) NATTPort() uint16 { return c.natt.LocalAddr().(*net.UDPAddr).AddrPort().Port() }

// Stats returns a snapshot of the counters.
func (c *Conn) Stats() Stats {
	s := Stats{
		IKE: c.c.ike.Load(), ESP: c.c.esp.Load(), Keepalives: c.c.keepalives.Load(),
		IKEQueueDrops: c.c.ikeQueueDrops.Load(), ESPUnhandled: c.c.espUnhandled.Load(),
		ReceiveErrors: c.c.recvErrors.Load(), SendErrors: c.c.sendErrors.Load(),
		Coalesced: c.c.coalesced.Load(),
	}
	for i := range s.Drops {
		s.Drops[i] = c.c.drops[i].Load()
	}
	return s
}

// SendIKE sends an IKE message from the given local port (the IKE or the
// NAT-T port), adding the non-ESP marker on the NAT-T port. IKE is not on
// the fast path; this copies.
func (c *Conn) SendIKE(msg []byte, dst netip.AddrPort, fromNATT bool) error {
	u := c.ike
	if fromNATT {
		u = c.natt
		msg = append(make([]byte, markerLen, markerLen+len(msg)), msg...)
	}
	_, err := u.WriteToUDPAddrPort(msg, dst)
	if err != nil {
		c.c.sendErrors.Add(1)
	}
	return err
}

// SendIKEFrom sends an IKE message from local to remote: from the NAT-T
// socket (with the non-ESP marker) when local's port is the NAT-T port,
// else from the IKE socket; and, on a wildcard-bound Conn, from local's
// address when it is set, so that a reply leaves from the address the
// request came to.
func (c *Conn) SendIKEFrom(msg []byte, local, remote netip.AddrPort) error {
	natt := local.Port() == c.NATTPort()
	if !c.pktinfo || !local.Addr().IsValid() || local.Addr().IsUnspecified() {
		return c.SendIKE(msg, remote, natt)
	}
	u := c.ike
	if natt {
		u = c.natt
		msg = append(make([]byte, markerLen, markerLen+len(msg)), msg...)
	}
	src := local.Addr().Unmap()
	if src.Is4() != (c.family == unix.AF_INET) {
		c.c.sendErrors.Add(1)
		return errWrongFamily
	}
	if _, _, err := u.WriteMsgUDPAddrPort(msg, pktinfo(src), remote); err != nil {
		c.c.sendErrors.Add(1)
		return err
	}
	return nil
}

// SendKeepalive sends a NAT-keepalive (one 0xFF byte) from the NAT-T port.
func (c *Conn) SendKeepalive(dst netip.AddrPort) error {
	_, err := c.natt.WriteToUDPAddrPort([]byte{0xFF}, dst)
	if err != nil {
		c.c.sendErrors.Add(1)
	}
	return err
}

// Close closes the sockets, waits for the receivers to stop, and closes
// the IKE queue.
func (c *Conn) Close() error {
	var err error
	c.once.Do(func() {
		err = c.closeSockets()
		c.wg.Wait()
		close(c.ikeQ)
	})
	return err
}

func (c *Conn) closeSockets() error {
	var errs []error
	if c.ike != nil {
		errs = append(errs, c.ike.Close())
	}
	if c.natt != nil {
		errs = append(errs, c.natt.Close())
	}
	if c.raw != nil {
		errs = append(errs, c.raw.Close())
	}
	if c.ah != nil {
		errs = append(errs, c.ah.Close())
	}
	return errors.Join(errs...)
}

// BufSize is the size of the receive buffers, which is also the size a
// handler must use for buffers it swaps into ESPPacket.Buf.
func (c *Conn) BufSize() int { return c.cfg.BufSize }
