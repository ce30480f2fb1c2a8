// Package daemon is the running gateway: Gateway wires ipsecgw's
// components together and is the control socket's backend. It holds no
// protocol logic of its own.
//
// # Shape
//
// gateway.go builds the pieces (build), sets them going (start) and
// stops them in order (shutdown):
//
//   - guard.Guard: the leak guards, synced first so that no protected
//     traffic leaves in clear from here on, whatever happens to the
//     process;
//   - sad.Table, spd.Live, tun.TUN and esp.Dataplane: the dataplane;
//   - install.Installer: puts the CHILD SAs and trap policies IKE asks
//     for into the SAD, the SPD and the TUN routes;
//   - sockets (sockets.go): UDP 500/4500 and raw ESP, IPv4 and, when a
//     conn has an IPv6 address, IPv6 (decided at start);
//   - larvalHold (larval.go): ESP for an SPI whose negotiation is still in
//     flight waits for its SA instead of being dropped;
//   - ike.Manager: the IKE negotiator; its events feed the state log
//     (statelog.go: one line per conn state change);
//   - updown.Runner (updown.go): the conns' leftupdown= scripts, run from
//     IKE's events when CHILD SAs come up and go down, their runs and
//     failures in the status;
//   - control.Server: the control socket, with the Gateway as its backend
//     (backend.go: status values, up, down, reset, reload, list-sas,
//     stats, global counters; events.go: event streams; keyexport.go:
//     the SAs' keys as Wireshark's tables, for root clients only);
//   - sdnotify.Notifier (notify.go): READY=1 once every auto=start conn
//     had its first try (at most ReadyTimeout), STATUS= with the tunnel
//     count, RELOADING=1/READY=1 around reloads, STOPPING=1, and
//     WATCHDOG=1 while the IKE SA loops and the dataplane pass a probe;
//   - metrics.Metrics (metrics.go): /metrics on metrics_listen, fed by
//     IKE's events and the status and counters;
//   - the usage sampler: each conn's traffic across rekeys and
//     reconnects (install.Usage), read once a second so that the time of
//     the last inbound packet is known; SIGUSR2 logs the counters.
//
// Every callback one piece hands another is a Gateway method, and every
// field is set by build before start lets anything run, so no piece can
// call into one that is not there yet.
//
// # Lifecycle
//
// Run builds and starts the gateway: auto=start conns are initiated,
// auto=add conns accepted as responder (right=%any included), trap
// policies installed for auto=route conns. When its context ends
// (SIGTERM/SIGINT in `ipsecgw run`) it deletes its SAs at the peers (ike
// Manager.Close), removes the control socket, the policies, the routes
// and the TUN device; the leak guards stay.
//
// A reload (SIGHUP in `ipsecgw run`, reload.go) loads the files again and
// applies config.Diff: unchanged conns are not touched; conns whose CHILD
// or IKE parameters changed are taken down and, for auto=start, brought
// up again; a configuration with errors is refused and the running one
// stays. The guards follow the new configuration.
//
// NAT keepalives (keepalive.go): every nat_keepalive (default 20 s, 0 =
// off) one 0xFF byte goes from port 4500 to the peer of each established
// IKE SA whose own side is behind a NAT (ike.IKEInfo.NATLocal). The
// settings keyingtries_retry_interval, fragment_size, ike.cookie_threshold,
// ike.cookie_threshold_ip and ike.half_open_limit are handed to the IKE
// manager (0 turns a threshold off).
//
// Reading the settings (ipsecgw.yaml, environment, flags) is the command
// line's job, so daemon depends on neither viper nor pflag.
package daemon
