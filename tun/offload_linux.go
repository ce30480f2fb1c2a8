package tun

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// Offloads we ask the kernel for: checksum offload and TCP segmentation
// for IPv4 and IPv6 (Linux 2.6), and UDP segmentation (Linux 6.2) when
// the kernel has it.
const (
	tunTCPOffloads = unix.TUN_F_CSUM | unix.TUN_F_TSO4 | unix.TUN_F_TSO6
	tunUDPOffloads = unix.TUN_F_USO4 | unix.TUN_F_USO6
)

// offloadIO reads and writes a TUN that carries a virtio header in front
// of every packet (IFF_VNET_HDR). Reads and writes each have their own
// lock and state, so one reader and one writer run in parallel.
type offloadIO struct {
	rc syscall.RawConn

	readMu sync.Mutex
	rbuf   []byte // one read: virtio header + up to 64 KiB
	seg    segmenter
	readFn func(fd uintptr) bool // bound once, like writev
	tryFn  func(fd uintptr)      // readFn without waiting, for rc.Control
	rN     int
	rErr   syscall.Errno

	writeMu sync.Mutex
	gro     coalescer
	pieces  [][]byte // one write's gather list, then as iovecs
	iov     []unix.Iovec
	writev  func(fd uintptr) bool // bound once: passing it to RawConn.Write must not allocate
	wErr    syscall.Errno
}

// initIO takes over the wireguard device's file descriptor for reading
// and writing. The wireguard device keeps owning it (creation, MTU
// events, Close).
func (t *TUN) initIO() error {
	nt, ok := t.dev.(*wgtun.NativeTun)
	if !ok {
		return fmt.Errorf("tun: unexpected device type %T", t.dev)
	}
	t.file = nt.File()
	if t.dev.BatchSize() <= 1 {
		return nil // the kernel did not give us a virtio header
	}
	rc, err := t.file.SyscallConn()
	if err != nil {
		return fmt.Errorf("tun: %s: %w", t.name, err)
	}
	o := &offloadIO{
		rc:     rc,
		rbuf:   make([]byte, VirtioNetHdrLen+MaxPacketSize),
		pieces: make([][]byte, 0, 1+maxSegments),
		iov:    make([]unix.Iovec, 0, 1+maxSegments),
	}
	o.writev = o.writevFD
	o.readFn = o.readFD
	o.tryFn = o.tryReadFD
	// Say which offloads we handle ourselves rather than trusting what
	// the wireguard device asked for: UDP GSO packets may only be written
	// when the kernel knows them, which is exactly when it accepts USO.
	var ioctlErr error
	if err := rc.Control(func(fd uintptr) {
		if unix.IoctlSetInt(int(fd), unix.TUNSETOFFLOAD, tunTCPOffloads|tunUDPOffloads) == nil {
			o.gro.udp = true
			return
		}
		ioctlErr = unix.IoctlSetInt(int(fd), unix.TUNSETOFFLOAD, tunTCPOffloads)
	}); err != nil {
		return fmt.Errorf("tun: %s: %w", t.name, err)
	}
	if ioctlErr != nil {
		return fmt.Errorf("tun: %s: set offloads: %w", t.name, ioctlErr)
	}
	t.io = o
	return nil
}

// read returns the packets of one read from the kernel, cut to the MTU,
// or the rest of a super-packet that did not fit the previous call; then,
// while buffers are left, the packets the kernel has queued behind it.
//
// Small packets come one per read (only TCP and UDP super-packets carry
// many), so without the second part a flood of them would cross the
// dataplane one packet per batch, paying every per-batch hand-off per
// packet. The extra reads never wait: what is queued now is taken, and
// the batch goes as soon as the queue is empty.
func (o *offloadIO) read(t *TUN, bufs [][]byte, sizes []int, offset int) (int, error) {
	o.readMu.Lock()
	defer o.readMu.Unlock()
	if !o.seg.pending() {
		if err := o.rc.Read(o.readFn); err != nil {
			return 0, t.ioErr(err)
		}
		if o.rErr != 0 {
			return 0, t.ioErr(o.rErr)
		}
		if err := o.seg.load(o.rbuf[:o.rN]); err != nil {
			return 0, err
		}
	}
	n, err := o.seg.fill(bufs, sizes, offset)
	for err == nil && n < len(bufs) && !o.seg.pending() {
		if o.rc.Control(o.tryFn) != nil || o.rErr != 0 {
			// Nothing queued (EAGAIN), or an error the next blocking
			// read reports again.
			break
		}
		if err = o.seg.load(o.rbuf[:o.rN]); err != nil {
			break // a malformed packet: the ones before it still go
		}
		var k int
		k, err = o.seg.fill(bufs[n:], sizes[n:], offset)
		n += k
	}
	return n, err
}

// write coalesces the batch and writes each resulting packet with one
// system call: a merged one as a gather list of its head and the payloads
// behind it, a single one from its own buffer.
func (o *offloadIO) write(t *TUN, bufs [][]byte, offset int) (int, error) {
	o.writeMu.Lock()
	defer o.writeMu.Unlock()
	c := &o.gro
	c.plan(bufs, offset)
	var errs error
	written := 0
	for i := range c.pkts {
		var n int
		o.pieces, n = c.frame(bufs, offset, i, o.pieces[:0])
		if n == 0 {
			continue
		}
		o.iov = o.iov[:0]
		for _, b := range o.pieces {
			o.iov = appendIovec(o.iov, b)
		}
		if err := o.rc.Write(o.writev); err != nil {
			errs = errors.Join(errs, t.ioErr(err))
			continue
		}
		if o.wErr != 0 {
			errs = errors.Join(errs, t.ioErr(o.wErr))
			continue
		}
		written += n
	}
	return written, errs
}

func appendIovec(iov []unix.Iovec, b []byte) []unix.Iovec {
	v := unix.Iovec{Base: unsafe.SliceData(b)}
	v.SetLen(len(b))
	return append(iov, v)
}

// The TUN descriptor is non-blocking, so reads and writes are raw system
// calls: unix.Syscall would tell the Go scheduler that the thread may
// block, and a write that forwards a 64 KiB super-packet through the
// kernel takes long enough for the scheduler to hand the goroutine's P to
// another thread, waking it and switching back afterwards. Raw calls cut
// the gateway's CPU per byte by about 15 % in bench-net.

// writevFD is the RawConn.Write callback: false asks the poller to wait
// until the descriptor is writable.
func (o *offloadIO) writevFD(fd uintptr) bool {
	_, _, e := unix.RawSyscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(unsafe.SliceData(o.iov))), uintptr(len(o.iov)))
	if e == unix.EAGAIN {
		return false
	}
	o.wErr = e
	return true
}

// tryReadFD is readFD for RawConn.Control: one attempt, EAGAIN included
// in rErr.
func (o *offloadIO) tryReadFD(fd uintptr) {
	n, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(o.rbuf))), uintptr(len(o.rbuf)))
	o.rN, o.rErr = int(n), e
}

// readFD is the RawConn.Read callback.
func (o *offloadIO) readFD(fd uintptr) bool {
	n, _, e := unix.RawSyscall(unix.SYS_READ, fd, uintptr(unsafe.Pointer(unsafe.SliceData(o.rbuf))), uintptr(len(o.rbuf)))
	if e == unix.EAGAIN {
		return false
	}
	o.rN, o.rErr = int(n), e
	return true
}
