// Package metrics is ipsecgw's Prometheus endpoint: the only package that
// imports github.com/prometheus/client_golang. It is fed two ways, as the
// design asks: IKE's typed events (rekeys, DPD timeouts, negotiation
// failures by cause, exchange round trips), counted as they happen by
// Observe, and the daemon's status and counters (Source), read at each
// scrape. Every configured conn has its series, down ones included — a
// tunnel that is configured but down shows ipsecgw_conn_up 0, which an
// exporter bolted onto strongSwan cannot see.
//
// Per conn (label conn): ipsecgw_conn_up, ipsecgw_conn_state (one series
// per state, 1 for the current), ipsecgw_conn_ike_sas,
// ipsecgw_conn_child_sas, ipsecgw_conn_bytes_total and
// ipsecgw_conn_packets_total (direction in|out: the usage since the daemon
// started, across rekeys and reconnects), ipsecgw_conn_drops_total
// (reason), ipsecgw_conn_last_inbound_seconds, ipsecgw_conn_ike_rekeys_total,
// ipsecgw_conn_child_rekeys_total, ipsecgw_conn_dpd_timeouts_total,
// ipsecgw_conn_failures_total (cause) and the histogram
// ipsecgw_ike_exchange_rtt_seconds (exchange).
//
// Daemon-wide: ipsecgw_ike_sas, ipsecgw_ike_half_open,
// ipsecgw_ike_half_open_limit, ipsecgw_ike_cookies_sent_total,
// ipsecgw_ike_half_open_refused_total, ipsecgw_ike_queue_drops_total
// (queue sockets|ike_sa), ipsecgw_dataplane_packets_total and
// ipsecgw_dataplane_bytes_total (direction), ipsecgw_dataplane_drops_total
// (reason), ipsecgw_dataplane_errors_total (op), ipsecgw_build_info, and
// the Go runtime and process collectors.
package metrics
