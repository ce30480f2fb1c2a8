package conn

import (
	"encoding/binary"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mmsgs is a preallocated recvmmsg/sendmmsg vector: one header, one iovec
// and one socket address per message, wired together once so that a batch
// syscall needs no allocation. golang.org/x/net's ReadBatch is not used
// because it turns every source address into a freshly allocated
// net.Addr.
type mmsgs struct {
	hdrs   []unix.Mmsghdr
	iovs   []unix.Iovec // iovPer per message
	iovPer int
	names  []unix.RawSockaddrInet6 // large enough for IPv4 too
	ctrl   []byte                  // ctrlSpace bytes per message, for UDP_SEGMENT/UDP_GRO
}

// ctrlSpace fits the control messages we receive: UDP_GRO's int and an
// IPv4 or IPv6 packet-info structure (the local address a datagram was
// sent to). On send it holds UDP_SEGMENT's uint16.
var ctrlSpace = unix.CmsgSpace(4) + unix.CmsgSpace(unix.SizeofInet6Pktinfo)

// newMmsgs prepares n messages of iovPer iovecs each (more than one only
// for UDP_SEGMENT sends, which gather several packets into one message).
func newMmsgs(n, iovPer int) *mmsgs {
	m := &mmsgs{
		hdrs:   make([]unix.Mmsghdr, n),
		iovs:   make([]unix.Iovec, n*iovPer),
		iovPer: iovPer,
		names:  make([]unix.RawSockaddrInet6, n),
		ctrl:   make([]byte, n*ctrlSpace),
	}
	for i := range m.hdrs {
		h := &m.hdrs[i].Hdr
		h.Iov = &m.iovs[i*iovPer]
		h.SetIovlen(1)
		h.Name = (*byte)(unsafe.Pointer(&m.names[i]))
		h.Namelen = unix.SizeofSockaddrInet6
	}
	return m
}

// wantControl makes message i receive control data (UDP_GRO sizes).
func (m *mmsgs) wantControl(i int) {
	m.hdrs[i].Hdr.Control = &m.ctrl[i*ctrlSpace]
	m.hdrs[i].Hdr.SetControllen(ctrlSpace)
}

// control returns what message i's control data says: the segment size
// of a GRO-coalesced datagram (0 if not coalesced) and the local address
// the datagram was sent to (invalid unless packet info was asked for).
func (m *mmsgs) control(i int) (gro int, local netip.Addr) {
	n := min(int(m.hdrs[i].Hdr.Controllen), ctrlSpace)
	b := m.ctrl[i*ctrlSpace : i*ctrlSpace+n]
	for len(b) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
		l := int(h.Len)
		if l < unix.CmsgLen(0) || l > len(b) {
			break
		}
		data := b[unix.CmsgLen(0):l]
		switch {
		case h.Level == unix.SOL_UDP && h.Type == unix.UDP_GRO && len(data) >= 4:
			gro = int(int32(binary.NativeEndian.Uint32(data)))
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			// struct in_pktinfo { int ifindex; in_addr spec_dst; in_addr addr; }:
			// addr is the header's destination address.
			local = netip.AddrFrom4([4]byte(data[8:12]))
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			local = netip.AddrFrom16([16]byte(data[:16]))
		}
		adv := unix.CmsgSpace(l - unix.CmsgLen(0))
		if adv > len(b) {
			break
		}
		b = b[adv:]
	}
	return gro, local
}

// pktinfo builds the control message that makes a datagram leave from
// src (used for IKE on sockets bound to the wildcard address).
func pktinfo(src netip.Addr) []byte {
	if src.Is4() {
		oob := make([]byte, unix.CmsgSpace(unix.SizeofInet4Pktinfo))
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		h.Level, h.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
		h.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
		a := src.As4()
		copy(oob[unix.CmsgLen(0)+4:], a[:]) // spec_dst: the source to use
		return oob
	}
	oob := make([]byte, unix.CmsgSpace(unix.SizeofInet6Pktinfo))
	h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
	h.Level, h.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
	h.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
	a := src.As16()
	copy(oob[unix.CmsgLen(0):], a[:])
	return oob
}

// setSegment asks the kernel to split message i into size-byte datagrams
// (UDP_SEGMENT); size 0 sends it as one datagram.
func (m *mmsgs) setSegment(i, size int) {
	h := &m.hdrs[i].Hdr
	if size == 0 {
		h.Control = nil
		h.SetControllen(0)
		return
	}
	c := m.ctrl[i*ctrlSpace : i*ctrlSpace+ctrlSpace]
	ch := (*unix.Cmsghdr)(unsafe.Pointer(&c[0]))
	ch.Level = unix.SOL_UDP
	ch.Type = unix.UDP_SEGMENT
	ch.SetLen(unix.CmsgLen(2))
	*(*uint16)(unsafe.Pointer(&c[unix.CmsgLen(0)])) = uint16(size)
	h.Control = &c[0]
	h.SetControllen(unix.CmsgSpace(2))
}

// addBuf appends b as iovec k of message i (k < iovPer).
func (m *mmsgs) addBuf(i, k int, b []byte) {
	v := &m.iovs[i*m.iovPer+k]
	if len(b) == 0 {
		v.Base = nil
	} else {
		v.Base = &b[0]
	}
	v.SetLen(len(b))
	m.hdrs[i].Hdr.SetIovlen(k + 1)
}

// setBuf points message i at b.
func (m *mmsgs) setBuf(i int, b []byte) { m.addBuf(i, 0, b) }

// resetForRecv restores the name lengths and flags the kernel overwrote.
func (m *mmsgs) resetForRecv(n int) {
	for i := range n {
		m.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		m.hdrs[i].Hdr.Flags = 0
		m.hdrs[i].Len = 0
		if m.hdrs[i].Hdr.Control != nil {
			m.hdrs[i].Hdr.SetControllen(ctrlSpace)
		}
	}
}

// addr decodes message i's source address without allocating.
func (m *mmsgs) addr(i int) netip.AddrPort {
	sa := &m.names[i]
	switch sa.Family {
	case unix.AF_INET:
		s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(sa))
		p := (*[2]byte)(unsafe.Pointer(&s4.Port))
		return netip.AddrPortFrom(netip.AddrFrom4(s4.Addr), uint16(p[0])<<8|uint16(p[1]))
	case unix.AF_INET6:
		p := (*[2]byte)(unsafe.Pointer(&sa.Port))
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(p[0])<<8|uint16(p[1]))
	}
	return netip.AddrPort{}
}

// setAddr stores dst as message i's destination for a socket of the
// given family (AF_INET or AF_INET6). It reports false for an address of
// the other family.
func (m *mmsgs) setAddr(i int, family int, dst netip.AddrPort) bool {
	a := dst.Addr()
	if family == unix.AF_INET {
		if !a.Is4() && !a.Is4In6() {
			return false
		}
		s4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(&m.names[i]))
		*s4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a.Unmap().As4()}
		p := (*[2]byte)(unsafe.Pointer(&s4.Port))
		p[0], p[1] = byte(dst.Port()>>8), byte(dst.Port())
		m.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet4
		return true
	}
	if !a.Is6() || a.Is4In6() {
		return false
	}
	s6 := &m.names[i]
	*s6 = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: a.As16()}
	p := (*[2]byte)(unsafe.Pointer(&s6.Port))
	p[0], p[1] = byte(dst.Port()>>8), byte(dst.Port())
	m.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
	return true
}

// recvmmsg and sendmmsg are raw system calls: the sockets are
// non-blocking (MSG_DONTWAIT, and the poller waits for us), and telling
// the Go scheduler that the thread may block (unix.Syscall) makes it hand
// the P to another thread during a long send or receive, which costs two
// thread switches per call.
func recvmmsg(fd uintptr, m *mmsgs, n int) (int, unix.Errno) {
	r, _, e := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&m.hdrs[0])), uintptr(n), unix.MSG_DONTWAIT, 0, 0)
	return int(r), e
}

func sendmmsg(fd uintptr, m *mmsgs, from, n int) (int, unix.Errno) {
	r, _, e := unix.RawSyscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&m.hdrs[from])), uintptr(n-from), unix.MSG_DONTWAIT, 0, 0)
	return int(r), e
}
