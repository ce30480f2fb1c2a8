// Package deploy holds no Go code: it carries the files that run ipsecgw
// the way its users run gateways, and the tests that check them.
//
//	systemd/ipsecgw.service        the systemd unit (Type=notify, watchdog,
//	                               sandboxed, three capabilities)
//	container/Containerfile        a FROM scratch image, non-root
//	kubernetes/ipsecgw.yaml        a DaemonSet with NET_ADMIN and /dev/net/tun
//	grafana/ipsecgw-dashboard.json a Grafana dashboard over package metrics
//
// The tests run systemd-analyze verify and security --offline=true on the
// unit, check that the dashboard queries only metrics ipsecgw exports,
// and that the Kubernetes example keeps its promises (non-root, no
// privileged mode, probes on the control socket). The runs of the daemon
// under these conditions against strongSwan are in package interop.
package deploy
