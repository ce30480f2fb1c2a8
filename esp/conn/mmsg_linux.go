package conn

import (
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
	hdrs  []unix.Mmsghdr
	iovs  []unix.Iovec
	names []unix.RawSockaddrInet6 // large enough for IPv4 too
}

func newMmsgs(n int) *mmsgs {
	m := &mmsgs{
		hdrs:  make([]unix.Mmsghdr, n),
		iovs:  make([]unix.Iovec, n),
		names: make([]unix.RawSockaddrInet6, n),
	}
	for i := range m.hdrs {
		h := &m.hdrs[i].Hdr
		h.Iov = &m.iovs[i]
		h.SetIovlen(1)
		h.Name = (*byte)(unsafe.Pointer(&m.names[i]))
		h.Namelen = unix.SizeofSockaddrInet6
	}
	return m
}

// setBuf points message i at b.
func (m *mmsgs) setBuf(i int, b []byte) {
	if len(b) == 0 {
		m.iovs[i].Base = nil
	} else {
		m.iovs[i].Base = &b[0]
	}
	m.iovs[i].SetLen(len(b))
}

// resetForRecv restores the name lengths and flags the kernel overwrote.
func (m *mmsgs) resetForRecv(n int) {
	for i := range n {
		m.hdrs[i].Hdr.Namelen = unix.SizeofSockaddrInet6
		m.hdrs[i].Hdr.Flags = 0
		m.hdrs[i].Len = 0
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

func recvmmsg(fd uintptr, m *mmsgs, n int) (int, unix.Errno) {
	r, _, e := unix.Syscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&m.hdrs[0])), uintptr(n), unix.MSG_DONTWAIT, 0, 0)
	return int(r), e
}

func sendmmsg(fd uintptr, m *mmsgs, from, n int) (int, unix.Errno) {
	r, _, e := unix.Syscall6(unix.SYS_SENDMMSG, fd, uintptr(unsafe.Pointer(&m.hdrs[from])), uintptr(n-from), unix.MSG_DONTWAIT, 0, 0)
	return int(r), e
}
