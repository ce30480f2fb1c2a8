package lab

import (
	"net"
	"net/netip"
	"path/filepath"
	"runtime"

	"golang.org/x/sys/unix"
)

// ListenUDP opens a UDP socket inside the node's network namespace (a
// socket keeps the namespace it was created in), for tests that speak to
// a daemon in the lab directly: an IKE stack of their own, stray or forged
// datagrams. addr may have port 0.
func (n *Node) ListenUDP(addr netip.AddrPort) (*net.UDPConn, error) {
	var c *net.UDPConn
	err := n.inNamespace(func() error {
		network := "udp4"
		if addr.Addr().Is6() {
			network = "udp6"
		}
		var err error
		c, err = net.ListenUDP(network, net.UDPAddrFromAddrPort(addr))
		return err
	})
	return c, err
}

// ListenTCP opens a TCP listener inside the node's network namespace,
// for servers a test runs in the lab itself (a CRL distribution point,
// say): accepted connections stay in that namespace while the test's
// goroutines serve them from any thread.
func (n *Node) ListenTCP(addr netip.AddrPort) (net.Listener, error) {
	var ln *net.TCPListener
	err := n.inNamespace(func() error {
		var err error
		ln, err = net.ListenTCP("tcp", net.TCPAddrFromAddrPort(addr))
		return err
	})
	if err != nil {
		return nil, err
	}
	return ln, nil
}

// ListenICMP opens a raw ICMPv4 socket inside the node's network
// namespace, for a pinger of the test's own (internal/pinger) that sends
// echo requests from the node on a schedule iputils ping cannot keep.
func (n *Node) ListenICMP() (net.PacketConn, error) {
	var c *net.IPConn
	err := n.inNamespace(func() error {
		var err error
		c, err = net.ListenIP("ip4:icmp", nil)
		return err
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// inNamespace runs f on an OS thread inside the node's network namespace.
// The thread enters the namespace and comes back before it is unlocked.
// It must not be thrown away instead: the lab starts charon with a
// parent-death signal, which the kernel sends when the *thread* that
// forked it exits, and that may be this one.
func (n *Node) inNamespace(f func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := unix.Open("/proc/thread-self/ns/net", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		defer func() {
			if unix.Setns(orig, unix.CLONE_NEWNET) == nil {
				runtime.UnlockOSThread()
			}
			unix.Close(orig)
		}()
		fd, err := unix.Open(filepath.Join("/run/netns", n.NS), unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			done <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			done <- err
			return
		}
		done <- f()
	}()
	return <-done
}
