// Package lab is the strongSwan interop lab: throw-away network namespaces
// with strongSwan (charon) instances, traffic generators and packet
// captures, for tests and the demo (internal/lab/demo, `make demo`).
// ipsecgw's own interop tests reuse it: build a lab, build the ipsecgw
// binary once (BuildIPsecGW), start it in one gateway namespace
// (Node.StartIPsecGW, which waits for its control socket; IPsecGW.Status
// and WaitEstablished run `ipsecgw status --json`) and charon in the other
// (Node.StartCharon), then drive traffic and inspect SAs. The daemon is a
// lab process like charon: Close and the signal handler stop it;
// IPsecGW.Restart starts one that exited (a test killed it) again with the
// same files and control socket. The lab
// talks to ipsecgw only through its binary, never imports its packages, so
// in-package tests of those packages (esp) may use the lab.
//
// # Topology
//
// New(t, Options{}) (or Build for programs) creates, per lab, namespaces
// named isgw-<id>-<role> where <id> is 6 random hex digits:
//
//	host1 (10.1.0.2) ─ eth0══lan ─ gw1 (198.51.100.1 ul) ══ ul (198.51.100.2) gw2 ─ lan══eth0 ─ host2 (10.2.0.2)
//	                      10.1.0.1                                        10.2.0.1
//
// With Options{NAT: true} a router namespace doing nftables MASQUERADE sits
// in front of gw1:
//
//	gw1 (203.0.113.2 ul) ══ priv (203.0.113.1) nat (198.51.100.1) pub ══ ul (198.51.100.2) gw2
//
// gw2 sees gw1 as 198.51.100.1 either way (Node.PublicAddr). Gateways and
// the NAT router forward IPv4; IPv6 is disabled everywhere so captures and
// charon's interface log stay quiet. Every veth is created directly between
// two lab namespaces, so nothing ever appears in the host namespace, and
// interface names (ul, lan, eth0, priv, pub) need not be unique between
// labs. Each gateway has an address inside its LAN because kernel-libipsec
// installs a CHILD SA only if a local address lies inside the local
// selector. Host routes default to their gateway; the gateways have no
// route between the LANs except the one charon installs into its TUN, so a
// ping that succeeds went through the tunnel.
//
// # Running several charon instances side by side
//
// charon 5.9.8 has its PID file path compiled in (/var/run/charon.pid)
// and its VICI socket defaults to /var/run/charon.vici, so two instances
// in one mount namespace collide even in different network namespaces.
// Node.StartCharon therefore runs
//
//	ip netns exec isgw-<id>-gw1 unshare --mount --propagation private \
//	    sh -c 'mount --bind "$0" /run && exec "$1"' <instance dir> /usr/lib/ipsec/charon
//
// with STRONGSWAN_CONF=/run/strongswan.conf. Inside the private mount
// namespace /run *is* the instance directory (StateRoot/<id>/charon-<name>),
// so the PID file, the VICI socket (plugins.vici.socket =
// unix:///run/charon.vici), the filelog (/run/charon.log) and strongswan.conf
// are all per instance, and from the host they are plain files in the
// instance directory. ip netns exec, unshare and sh all exec(), so the PID
// the lab records is charon's own PID. Private propagation keeps the bind
// mount from leaking into the host.
//
// strongswan.conf uses load_modular = no with an explicit plugin list
// (DefaultPlugins): the kernel has no ESP, and Debian ships kernel-libipsec
// with load = no, so the list names kernel-libipsec (userspace ESP on a TUN
// device "ipsec0", routes in table 220) before kernel-netlink. It leaves out
// resolve and updown, which would touch host files. Logging goes to the
// filelog (no syslog daemon here) with ike_name and flush_line, levels ike
// and cfg 2 (proposal details), never 4 (which logs keys).
//
// swanctl drives an instance from the host namespace through the socket
// file: swanctl --load-all --file <dir>/swanctl/swanctl.conf --uri
// unix://<dir>/charon.vici (swanctl wants the command first). Charon.ListSAs
// parses `swanctl --list-sas --pretty` into IKESA/ChildSA (state, version,
// algorithms, SPIs, encapsulation, NAT flags, byte and packet counters).
//
// kernel-libipsec always uses UDP encapsulation: even without NAT,
// strongSwan fakes NAT detection and sends ESP in UDP 4500 ("TUNNEL-in-UDP",
// nat-any/nat-remote set). Only a real NAT sets nat-local on the NATed side,
// which is how the NAT test tells them apart.
//
// # Failure output
//
// Operations return *CharonError, whose text contains the charon log lines
// that explain a failure (proposal, authentication and selector problems)
// plus the tail of the log, from both ends when Establish is used. New's
// cleanup prints the last lines of every charon log of a failed test.
//
// # Cleanup
//
// Each lab writes StateRoot/<id>/state.json (owner PID and start time, the
// namespaces, every started process as PID plus kernel start time) before
// it creates anything. Close (registered with t.Cleanup by New, so it runs
// on failure and on panic) stops processes newest first (SIGTERM, then
// SIGKILL), deletes the namespaces (which deletes their veths) and the
// directory. While a lab exists, SIGINT/SIGTERM/SIGHUP tear all labs down
// and exit with status 130. Started processes get a parent-death SIGKILL,
// so a killed test binary takes them along; its namespaces are removed by
// CleanStale, which Build runs first: it tears down every lab whose owner
// is dead, killing only recorded PIDs whose start time still matches, never
// processes found by name. Labs of live owners (a test package running at
// the same time) are left alone. AssertClean checks that nothing of this
// process's labs remains and that no isgw- namespace lacks a live owner.
//
// # Skipping
//
// New and Require skip a test when not root or when charon, swanctl or a
// needed tool is missing; with IPSECGW_REQUIRE_INTEROP=1 (set by CI) they
// fail instead.
package lab
