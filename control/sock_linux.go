package control

import (
	"errors"
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

// peerCredOf is peerCred; tests replace it to play a client of another
// user.
var peerCredOf = peerCred

// peerCred returns the user and process ID of the client at the other end
// of a unix socket connection (SO_PEERCRED: what the kernel recorded at
// connect, not what the client claims).
func peerCred(c net.Conn) (uid uint32, pid int32, err error) {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return 0, 0, errors.New("not a unix socket")
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return 0, 0, err
	}
	var cred *syscall.Ucred
	var serr error
	if err := raw.Control(func(fd uintptr) {
		cred, serr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return 0, 0, err
	}
	if serr != nil {
		return 0, 0, serr
	}
	return cred.Uid, cred.Pid, nil
}
