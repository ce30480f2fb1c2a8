package lab

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Attacker addressing: a namespace of its own with a link into GW1 (a
// second upstream of GW1, as an attacker on the path would have), from
// which hostile tests send with any source address they like.
var (
	AttackerNet  = netip.MustParsePrefix("203.0.113.0/24")
	AttackerAddr = netip.MustParseAddr("203.0.113.1")
	AttackerGW   = netip.MustParseAddr("203.0.113.254") // GW1's end of the link
)

// IfAttacker is the name of the attacker link on both ends.
const IfAttacker = "atk"

// AddAttacker adds the attacker namespace ("atk") linked to GW1: GW1 routes
// AttackerNet over the link (so answers to spoofed sources in it go back to
// the attacker's wire) and does no reverse-path filtering, so that
// datagrams with any source reach its daemon as they would from the
// internet. Only for labs without NAT (the NAT variant uses AttackerNet).
func (l *Lab) AddAttacker(ctx context.Context) (*Node, error) {
	if l.NAT {
		return nil, errors.New("lab: the attacker namespace needs a lab without NAT")
	}
	n, err := l.addNode(ctx, "atk", false)
	if err != nil {
		return nil, err
	}
	n.Addr, n.PublicAddr, n.LAN = AttackerAddr, AttackerAddr, AttackerNet
	bits := fmt.Sprintf("/%d", AttackerNet.Bits())
	if err := veth(ctx, n, IfAttacker, AttackerAddr.String()+bits, l.GW1, IfAttacker, AttackerGW.String()+bits); err != nil {
		return nil, err
	}
	if _, err := run(ctx, "", "ip", "-n", n.NS, "route", "add", "default", "via", AttackerGW.String()); err != nil {
		return nil, err
	}
	if _, err := run(ctx, l.GW1.NS, "sysctl", "-q", "-w", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf."+IfAttacker+".rp_filter=0"); err != nil {
		return nil, err
	}
	return n, nil
}

// RawSender sends IPv4 datagrams whose header the caller chooses (any
// source address) from a node's namespace.
type RawSender struct {
	fd  int
	buf []byte
}

// RawSender opens a raw IPv4 socket (IP_HDRINCL) in the node's namespace.
func (n *Node) RawSender() (*RawSender, error) {
	var fd int
	err := n.inNamespace(func() error {
		var err error
		fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &RawSender{fd: fd}, nil
}

// UDP sends payload from src to dst over UDP (no UDP checksum, which IPv4
// allows).
func (s *RawSender) UDP(src, dst netip.AddrPort, payload []byte) error {
	udp := make([]byte, 8, 8+len(payload))
	binary.BigEndian.PutUint16(udp[0:], src.Port())
	binary.BigEndian.PutUint16(udp[2:], dst.Port())
	binary.BigEndian.PutUint16(udp[4:], uint16(8+len(payload)))
	return s.IP(src.Addr(), dst.Addr(), unix.IPPROTO_UDP, append(udp, payload...))
}

// IP sends payload as an IPv4 datagram of protocol proto from src to dst;
// the kernel fills in the header checksum and the ID.
func (s *RawSender) IP(src, dst netip.Addr, proto uint8, payload []byte) error {
	b := s.buf[:0]
	b = append(b, 0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, proto, 0, 0)
	b = append(b, src.AsSlice()...)
	b = append(b, dst.AsSlice()...)
	b = append(b, payload...)
	binary.BigEndian.PutUint16(b[2:], uint16(len(b)))
	s.buf = b
	return unix.Sendto(s.fd, b, 0, &unix.SockaddrInet4{Addr: dst.As4()})
}

// Close closes the socket.
func (s *RawSender) Close() error { return unix.Close(s.fd) }

// Tap receives copies of the IPv4 packets crossing one interface of a node
// in both directions (an AF_PACKET socket), as a wiretap on that link.
type Tap struct {
	fd   int
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// TapPacket is one IPv4 packet seen by a Tap (Data is the tap's buffer,
// valid during the call); Outgoing is true for packets the node sent.
type TapPacket struct {
	Data     []byte
	Outgoing bool
}

// StartTap taps iface in the node's namespace and calls f for every packet
// from one goroutine until Stop.
func (n *Node) StartTap(iface string, f func(TapPacket)) (*Tap, error) {
	var fd int
	err := n.inNamespace(func() error {
		ifi, err := net.InterfaceByName(iface)
		if err != nil {
			return err
		}
		proto := htons(unix.ETH_P_IP)
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, int(proto))
		if err != nil {
			return err
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: proto, Ifindex: ifi.Index}); err != nil {
			unix.Close(fd)
			return err
		}
		// Room for bursts (a tap that overflows only misses copies), and
		// a receive timeout so that the loop notices Stop.
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 8<<20)
		tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
		return unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	})
	if err != nil {
		return nil, err
	}
	t := &Tap{fd: fd, stop: make(chan struct{}), done: make(chan struct{})}
	go t.run(f)
	return t, nil
}

func (t *Tap) run(f func(TapPacket)) {
	defer close(t.done)
	defer unix.Close(t.fd)
	buf := make([]byte, 65536)
	for {
		select {
		case <-t.stop:
			return
		default:
		}
		n, from, err := unix.Recvfrom(t.fd, buf, 0)
		if err != nil {
			continue // the timeout, or an interrupted call
		}
		ll, _ := from.(*unix.SockaddrLinklayer)
		f(TapPacket{Data: buf[:n], Outgoing: ll != nil && ll.Pkttype == unix.PACKET_OUTGOING})
	}
}

// Stop ends the tap and waits until f is no longer called.
func (t *Tap) Stop() {
	t.once.Do(func() { close(t.stop) })
	<-t.done
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }
