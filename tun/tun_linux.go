package tun

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
	wgtun "golang.zx2c4.com/wireguard/tun"
)

// Config says which TUN device to create.
type Config struct {
	// Name is the interface name; it may contain one "%d" for the kernel
	// to fill in. Empty means "ipsecgw%d".
	Name string
	// MTU of the device; 0 means InnerMTU(DefaultPathMTU, DefaultFraming).
	MTU int
	// NetNS, when not empty, is the path of a network namespace file
	// (e.g. /run/netns/blue) to create the device in. The process itself
	// stays in its own namespace; the TUN file descriptor and all netlink
	// changes made through the returned TUN act in NetNS.
	NetNS string
	// Persist keeps the device, with the addresses and routes on it,
	// when the process ends without Close (a crash, SIGKILL): a TUN
	// device without a reader drops what is routed into it, so traffic
	// for the routes on it is dropped rather than forwarded by the next
	// best route (the default route, in clear). Create attaches to a
	// persistent device of the name that is already there, and Close
	// removes the device as for a non-persistent one.
	Persist bool
	// Alias, when not empty, is set as the device's interface alias
	// (ifalias, `ip link show` prints it) so that a persistent device
	// left behind is recognised later by whoever set it.
	Alias string
}

// TUN is a Linux TUN device plus the addresses and routes we put on it.
//
// Privileges: creating the device and changing addresses/routes needs
// CAP_NET_ADMIN in the user namespace owning the network namespace, not
// root: for example
//
//	setpriv --reuid=nobody --regid=nogroup --clear-groups \
//	    --inh-caps=+net_admin --ambient-caps=+net_admin ipsecgw ...
//
// or AmbientCapabilities=CAP_NET_ADMIN in a systemd unit. /dev/net/tun must
// be readable and writable by the user (it is mode 0666 on most systems).
// Config.NetNS additionally needs CAP_SYS_ADMIN (setns); without it, start
// the process inside the namespace instead (ip netns exec).
type TUN struct {
	dev   wgtun.Device
	nl    *netlink.Handle
	io    *offloadIO // nil: the device has no virtio header (no offloads)
	file  *os.File   // the TUN file descriptor, owned by dev
	shut  atomic.Bool
	index int
	name  string
	mtu   atomic.Int64
	// mss is the TCP MSS clamp (SetClampMSS): 0 off, MSSFromMTU, or a
	// fixed MSS.
	mss atomic.Int32
	// persist: TUNSETPERSIST was set, Close clears it.
	persist bool

	mu     sync.Mutex // guards the sets below and closed
	routes map[netip.Prefix]struct{}
	addrs  map[netip.Prefix]struct{}
	closed bool

	eventsDone chan struct{}
}

var _ Device = (*TUN)(nil)

// Create creates and brings up a TUN device as described by cfg.
func Create(cfg Config) (*TUN, error) {
	name := cfg.Name
	if name == "" {
		name = "ipsecgw%d"
	}
	mtu := cfg.MTU
	if mtu == 0 {
		var err error
		if mtu, err = InnerMTU(DefaultPathMTU, DefaultFraming); err != nil {
			return nil, err
		}
	}
	if mtu < 68 || mtu > MaxPacketSize {
		return nil, fmt.Errorf("tun: MTU %d out of range 68..%d", mtu, MaxPacketSize)
	}

	var (
		dev wgtun.Device
		nl  *netlink.Handle
		err error
	)
	if cfg.NetNS == "" {
		dev, err = wgtun.CreateTUN(name, mtu)
		if err != nil {
			return nil, fmt.Errorf("tun: create %q: %w", name, err)
		}
		nl, err = netlink.NewHandle()
	} else {
		dev, nl, err = createInNamespace(cfg.NetNS, name, mtu)
	}
	if err != nil {
		if dev != nil {
			dev.Close()
		}
		return nil, err
	}

	t := &TUN{
		dev:        dev,
		nl:         nl,
		routes:     make(map[netip.Prefix]struct{}),
		addrs:      make(map[netip.Prefix]struct{}),
		eventsDone: make(chan struct{}),
	}
	t.mtu.Store(int64(mtu))
	// The wireguard device blocks its netlink listener until its event
	// channel is drained, so someone must always be reading it.
	go t.drainEvents()

	if err := t.init(); err != nil {
		t.Close()
		return nil, err
	}
	if err := t.initIO(); err != nil {
		t.Close()
		return nil, err
	}
	if cfg.Alias != "" {
		if err := t.nl.LinkSetAlias(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: t.index}}, cfg.Alias); err != nil {
			t.Close()
			return nil, fmt.Errorf("tun: alias of %s: %w", t.name, err)
		}
	}
	if cfg.Persist {
		if err := t.setPersist(true); err != nil {
			t.Close()
			return nil, err
		}
		t.persist = true
	}
	return t, nil
}

// setPersist sets or clears the device's TUNSETPERSIST flag.
func (t *TUN) setPersist(on bool) error {
	rc, err := t.file.SyscallConn()
	if err != nil {
		return fmt.Errorf("tun: %s: %w", t.name, err)
	}
	v := 0
	if on {
		v = 1
	}
	var ioErr error
	if err := rc.Control(func(fd uintptr) { ioErr = unix.IoctlSetInt(int(fd), unix.TUNSETPERSIST, v) }); err != nil {
		return fmt.Errorf("tun: %s: %w", t.name, err)
	}
	if ioErr != nil {
		return fmt.Errorf("tun: TUNSETPERSIST %d on %s: %w", v, t.name, ioErr)
	}
	return nil
}

func (t *TUN) init() error {
	name, err := t.dev.Name()
	if err != nil {
		return fmt.Errorf("tun: device name: %w", err)
	}
	t.name = name
	link, err := t.nl.LinkByName(name)
	if err != nil {
		return fmt.Errorf("tun: find link %s: %w", name, err)
	}
	t.index = link.Attrs().Index
	if err := t.nl.LinkSetUp(link); err != nil {
		return fmt.Errorf("tun: set %s up: %w", name, err)
	}
	return nil
}

// createInNamespace creates the TUN and a netlink handle inside the
// namespace at path. Namespaces belong to OS threads, so the work runs on a
// goroutine locked to its thread; if switching back fails, the goroutine
// exits still locked and the Go runtime throws that thread away instead of
// reusing it in the wrong namespace.
func createInNamespace(path, name string, mtu int) (wgtun.Device, *netlink.Handle, error) {
	target, err := netns.GetFromPath(path)
	if err != nil {
		return nil, nil, fmt.Errorf("tun: open namespace %s: %w", path, err)
	}
	defer target.Close()

	type result struct {
		dev wgtun.Device
		err error
	}
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			done <- result{err: fmt.Errorf("tun: current namespace: %w", err)}
			return
		}
		defer orig.Close()
		if err := netns.Set(target); err != nil {
			runtime.UnlockOSThread()
			done <- result{err: fmt.Errorf("tun: enter namespace %s: %w", path, err)}
			return
		}
		dev, err := wgtun.CreateTUN(name, mtu)
		if err != nil {
			err = fmt.Errorf("tun: create %q in %s: %w", name, path, err)
		}
		if netns.Set(orig) == nil {
			runtime.UnlockOSThread()
		}
		done <- result{dev, err}
	}()
	r := <-done
	if r.err != nil {
		return nil, nil, r.err
	}
	nl, err := netlink.NewHandleAt(target)
	if err != nil {
		r.dev.Close()
		return nil, nil, fmt.Errorf("tun: netlink in %s: %w", path, err)
	}
	return r.dev, nl, nil
}

func (t *TUN) drainEvents() {
	defer close(t.eventsDone)
	for ev := range t.dev.Events() {
		if ev&wgtun.EventMTUUpdate != 0 {
			if m, err := t.dev.MTU(); err == nil {
				t.mtu.Store(int64(m))
			}
		}
	}
}

// Read implements Device.
func (t *TUN) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if t.io == nil {
		n, err := t.file.Read(bufs[0][offset:])
		if err != nil {
			return 0, t.ioErr(err)
		}
		sizes[0] = n
		t.clampRead(bufs[:1], sizes, offset)
		return 1, nil
	}
	n, err := t.io.read(t, bufs, sizes, offset)
	t.clampRead(bufs[:n], sizes, offset)
	return n, err
}

// Write implements Device. It returns the number of packets the kernel
// took; the error joins those of the packets it refused.
func (t *TUN) Write(bufs [][]byte, offset int) (int, error) {
	if offset < VirtioNetHdrLen {
		return 0, fmt.Errorf("tun: write offset %d < %d", offset, VirtioNetHdrLen)
	}
	if c := int(t.mss.Load()); c != 0 {
		max4, max6 := mssLimits(c, t.MTU())
		for _, b := range bufs {
			ClampMSS(b[offset:], max4, max6)
		}
	}
	if t.io == nil {
		var errs error
		n := 0
		for _, b := range bufs {
			if _, err := t.file.Write(b[offset:]); err != nil {
				errs = errors.Join(errs, t.ioErr(err))
			} else {
				n++
			}
		}
		return n, errs
	}
	return t.io.write(t, bufs, offset)
}

// ioErr turns the errors of a closed device into os.ErrClosed.
func (t *TUN) ioErr(err error) error {
	if t.shut.Load() || errors.Is(err, syscall.EBADFD) {
		return os.ErrClosed
	}
	return err
}

// clampRead clamps the MSS of the SYNs among packets just read.
func (t *TUN) clampRead(bufs [][]byte, sizes []int, offset int) {
	c := int(t.mss.Load())
	if c == 0 {
		return
	}
	max4, max6 := mssLimits(c, t.MTU())
	for i, b := range bufs {
		ClampMSS(b[offset:offset+sizes[i]], max4, max6)
	}
}

// SetClampMSS makes the device clamp the MSS option of the TCP SYNs and
// SYN-ACKs it reads and writes (ClampMSS): mss is MSSFromMTU (the
// device's MTU minus the IP and TCP headers), a fixed MSS from 1 to 65535,
// or 0 to stop clamping. Packets in both directions are changed in place
// as they pass, so both ends of a connection learn an MSS whose segments
// fit the tunnel.
func (t *TUN) SetClampMSS(mss int) error {
	if mss != MSSFromMTU && (mss < 0 || mss > 0xffff) {
		return fmt.Errorf("tun: MSS %d out of range 1..65535", mss)
	}
	t.mss.Store(int32(mss))
	return nil
}

// BatchSize implements Device: 128 with offloads, 1 without.
func (t *TUN) BatchSize() int { return t.dev.BatchSize() }

// MTU implements Device.
func (t *TUN) MTU() int { return int(t.mtu.Load()) }

// Name implements Device.
func (t *TUN) Name() string { return t.name }

// Index is the interface index (in the device's namespace).
func (t *TUN) Index() int { return t.index }

// SetMTU changes the device MTU, e.g. after path MTU discovery or when an
// SA with a different framing is installed (see InnerMTU).
func (t *TUN) SetMTU(mtu int) error {
	if mtu < 68 || mtu > MaxPacketSize {
		return fmt.Errorf("tun: MTU %d out of range 68..%d", mtu, MaxPacketSize)
	}
	link, err := t.link()
	if err != nil {
		return err
	}
	if err := t.nl.LinkSetMTU(link, mtu); err != nil {
		return fmt.Errorf("tun: set MTU of %s to %d: %w", t.name, mtu, err)
	}
	t.mtu.Store(int64(mtu))
	return nil
}

func (t *TUN) link() (netlink.Link, error) {
	t.mu.Lock()
	closed := t.closed
	t.mu.Unlock()
	if closed {
		return nil, os.ErrClosed
	}
	link, err := t.nl.LinkByIndex(t.index)
	if err != nil {
		return nil, fmt.Errorf("tun: find link %s: %w", t.name, err)
	}
	return link, nil
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{
		IP:   p.Addr().AsSlice(),
		Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
	}
}

func checkPrefix(p netip.Prefix) (netip.Prefix, error) {
	if !p.IsValid() {
		return p, errors.New("tun: invalid prefix")
	}
	if p.Addr().Is4In6() {
		return p, fmt.Errorf("tun: %s is an IPv4-mapped IPv6 prefix; use the IPv4 form", p)
	}
	return p, nil
}

// AddAddress puts the address addr.Addr() with prefix length addr.Bits()
// on the device (e.g. 10.1.0.1/32 for a virtual IP from the peer). Adding
// an address that is already there is not an error. IPv6 addresses are
// added without duplicate address detection: a point-to-point TUN has no
// neighbours to conflict with, and DAD would hold the address tentative
// for a second or more. Even so, the kernel installs the local route of an
// IPv6 address from a work queue, so for a brief moment after AddAddress
// returns, packets to the new IPv6 address are not yet delivered locally.
func (t *TUN) AddAddress(addr netip.Prefix) error {
	addr, err := checkPrefix(addr)
	if err != nil {
		return err
	}
	link, err := t.link()
	if err != nil {
		return err
	}
	a := &netlink.Addr{IPNet: ipNet(addr)}
	if addr.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.addrs[addr]; ok {
		return nil
	}
	if err := t.nl.AddrAdd(link, a); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("tun: add address %s to %s: %w", addr, t.name, err)
	}
	t.addrs[addr] = struct{}{}
	return nil
}

// RemoveAddress removes an address; removing one that is not there is not
// an error.
func (t *TUN) RemoveAddress(addr netip.Prefix) error {
	addr, err := checkPrefix(addr)
	if err != nil {
		return err
	}
	link, err := t.link()
	if err != nil {
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.addrs, addr)
	err = t.nl.AddrDel(link, &netlink.Addr{IPNet: ipNet(addr)})
	if err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) && !errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("tun: remove address %s from %s: %w", addr, t.name, err)
	}
	return nil
}

func (t *TUN) route(p netip.Prefix) *netlink.Route {
	return &netlink.Route{
		LinkIndex: t.index,
		Dst:       ipNet(p.Masked()),
		Scope:     netlink.SCOPE_LINK,
	}
}

// AddRoute routes the (remote) subnet p into the device, in the main
// table. Adding a route that is already there through this device is not
// an error; a route for p through another device is (we do not steal
// routes).
func (t *TUN) AddRoute(p netip.Prefix) error {
	p, err := checkPrefix(p)
	if err != nil {
		return err
	}
	p = p.Masked()
	// The route names the device by index: no lookup of the link first
	// (a netlink round trip per route, one per CHILD SA with its own
	// remote subnet); a device gone from under us fails the RouteAdd.
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return os.ErrClosed
	}
	if _, ok := t.routes[p]; ok {
		return nil
	}
	err = t.nl.RouteAdd(t.route(p))
	if errors.Is(err, unix.EEXIST) {
		if t.hasRoute(p) {
			// Already through us (e.g. the kernel's prefix route of an
			// address we added): nothing to do, and nothing of ours to
			// remove later.
			return nil
		}
		return fmt.Errorf("tun: route %s already exists through another device", p)
	}
	if err != nil {
		return fmt.Errorf("tun: add route %s dev %s: %w", p, t.name, err)
	}
	t.routes[p] = struct{}{}
	return nil
}

// hasRoute reports whether the main table has a route for exactly p
// through this device.
func (t *TUN) hasRoute(p netip.Prefix) bool {
	family := netlink.FAMILY_V4
	if p.Addr().Is6() {
		family = netlink.FAMILY_V6
	}
	rs, err := t.nl.RouteListFiltered(family, &netlink.Route{LinkIndex: t.index, Table: unix.RT_TABLE_MAIN},
		netlink.RT_FILTER_OIF|netlink.RT_FILTER_TABLE)
	if err != nil {
		return false
	}
	for _, r := range rs {
		if r.Dst == nil {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		a, ok := netip.AddrFromSlice(r.Dst.IP)
		if ok && netip.PrefixFrom(a.Unmap(), ones) == p {
			return true
		}
	}
	return false
}

// RemoveRoute removes the route for p through this device; removing one
// that is not there is not an error.
func (t *TUN) RemoveRoute(p netip.Prefix) error {
	p, err := checkPrefix(p)
	if err != nil {
		return err
	}
	p = p.Masked()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return os.ErrClosed
	}
	delete(t.routes, p)
	err = t.nl.RouteDel(t.route(p))
	if err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("tun: remove route %s dev %s: %w", p, t.name, err)
	}
	return nil
}

// Close removes the routes and addresses added through t, then the device
// itself (a non-persistent TUN disappears with its last file descriptor;
// a persistent one (Config.Persist) is made non-persistent first).
// It is safe to call more than once.
func (t *TUN) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	t.shut.Store(true)
	var errs []error
	for p := range t.routes {
		if err := t.nl.RouteDel(t.route(p)); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("tun: remove route %s: %w", p, err))
		}
	}
	clear(t.routes)
	if t.index != 0 {
		if link, err := t.nl.LinkByIndex(t.index); err == nil {
			for a := range t.addrs {
				if err := t.nl.AddrDel(link, &netlink.Addr{IPNet: ipNet(a)}); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
					errs = append(errs, fmt.Errorf("tun: remove address %s: %w", a, err))
				}
			}
		}
	}
	clear(t.addrs)
	t.mu.Unlock()

	if t.persist {
		// A persistent device outlives its file descriptor; Close
		// means the device goes, crash or not aside.
		if err := t.setPersist(false); err != nil {
			errs = append(errs, err)
		}
	}
	if err := t.dev.Close(); err != nil {
		errs = append(errs, fmt.Errorf("tun: close %s: %w", t.name, err))
	}
	<-t.eventsDone
	t.nl.Close()
	return errors.Join(errs...)
}
