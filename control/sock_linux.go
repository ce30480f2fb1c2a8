package control

import (
	"net"
	"syscall"
)

// listenUnixRestricted creates a listening unix socket whose file is born
// with mode 0600 at most (umask 0177 around bind), so that it is never more
// open than intended before the caller sets its final mode.
func listenUnixRestricted(path string) (*net.UnixListener, error) {
	old := syscall.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	syscall.Umask(old)
	return ln, err
}
