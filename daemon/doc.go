// Package daemon wires ipsecgw's components into the running gateway: it
// takes a typed config.Config and settings.Settings, opens the TUN device and
// the IKE/ESP sockets, starts the ESP dataplane and the IKE manager, installs
// the CHILD SAs IKE negotiates into the SAD, the SPD and the TUN routes, and
// serves the control socket (control.Listen) with a Daemon as the
// control.Backend, which builds the status of every conn and the global
// counters. It holds no protocol logic of its own: the control protocol,
// its status types and their rendering are package control's; reading
// the settings (ipsecgw.yaml, environment, flags) is the command line's,
// so daemon depends on neither viper nor pflag.
//
// # Lifecycle
//
// Run starts everything, initiates auto=start conns, accepts auto=add conns
// as responder (right=%any included) and installs trap policies for
// auto=route conns. When its context ends (SIGTERM/SIGINT in `ipsecgw
// run`) it deletes its SAs at the peers (ike Manager.Close), removes the
// control socket, the policies, the routes and the TUN device. Each state
// change of a connection is one log line ("connection state", from the IKE
// manager's StateChanged events).
//
// Reload (SIGHUP in `ipsecgw run`) loads the files again and applies
// config.Diff: unchanged conns are not touched; conns whose CHILD or IKE
// parameters changed are taken down and, for auto=start, brought up again;
// a configuration with errors is refused and the running one stays.
//
// Sockets: UDP 500/4500 and raw ESP on the IPv4 wildcard address, and on
// the IPv6 one as well when a conn has an IPv6 address (decided at start;
// a reload does not open IPv6 sockets). CHILD SAs are installed by
// Installer (the ike.ChildInstaller): inbound SA, outbound SA, SPD rules,
// then routes for the remote subnets on the TUN device.
//
// NAT keepalives (keepalive.go): every nat_keepalive (default 20 s, 0 =
// off) one 0xFF byte goes from port 4500 to the peer of each established
// IKE SA whose own side is behind a NAT (ike.ConnStatus.NATLocal). The
// settings keyingtries_retry_interval and fragment_size are handed to the
// IKE manager (ike.Options KeyingRetryInterval and FragmentSize).
//
// The settings ike.cookie_threshold, ike.cookie_threshold_ip and
// ike.half_open_limit are handed to the IKE manager (0 turns a threshold
// off).
package daemon
