// Package sdnotify tells systemd how the gateway is doing, through the
// notification protocol of a Type=notify service (sd_notify(3): datagrams
// to the socket in $NOTIFY_SOCKET, sent with github.com/coreos/go-systemd/
// v22/daemon):
//
//   - READY=1 once every auto=start conn has had its first try (it was
//     established, or its negotiation failed), so that units ordered
//     after ipsecgw.service start with the tunnels up where they can be
//     (FirstTries decides; the daemon bounds the wait);
//   - STATUS=… with "N of M tunnels established", kept current;
//   - RELOADING=1 (with MONOTONIC_USEC=) and READY=1 around a reload;
//   - STOPPING=1 when the shutdown begins;
//   - WATCHDOG=1 every half WatchdogSec, but only while a probe of the
//     IKE SA loops and the dataplane pipeline passes (RunWatchdog): a
//     stuck loop stops the pings, and systemd restarts the service.
//
// Outside systemd ($NOTIFY_SOCKET unset) every call does nothing.
package sdnotify
