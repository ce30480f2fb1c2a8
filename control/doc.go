// Package control is the control protocol of ipsecgw: the request and
// response types (Request, Response) and the status JSON types
// (ConnStatus, IKEStatus, ChildStatus, GlobalStatus) with their schema, the
// server on the unix socket (Listen, Server) that answers from a Backend,
// the client (Dial, Client) of `ipsecgw status|up|down`, and the rendering
// of the status for people (WriteTable, WriteGlobal, FormatSPI ...).
//
// It imports no other ipsecgw package: package daemon implements Backend
// and fills in the status values; the command line, the interop tests and
// bench/netbench are clients.
//
// # Protocol
//
// The control socket is a unix stream socket (default
// /run/ipsecgw/ipsecgw.sock; its directory is created if missing) with mode
// 0660. A client writes one JSON object per line and reads one JSON object
// per line back, in order; it may send several requests on one connection.
// A request line longer than 64 KiB, or one that is not JSON, is answered
// with an error and the connection is closed.
//
// Requests:
//
//	{"cmd":"status"}
//	{"cmd":"up","name":"CONN"}
//	{"cmd":"down","name":"CONN"}
//	{"cmd":"reset","name":"CONN"}
//	{"cmd":"reload"}
//	{"cmd":"list-sas"}
//	{"cmd":"stats"}
//	{"cmd":"events"}
//	{"cmd":"export-keys"}
//
// Responses:
//
//	{"ok":true,"conns":[ConnStatus, ...],"global":GlobalStatus}   (status)
//	{"ok":true}                               (up, down, reset)
//	{"ok":true,"reload":ReloadResult}         (reload)
//	{"ok":true,"sas":[SAEntry, ...]}          (list-sas; key left out when none)
//	{"ok":true,"stats":Stats}                 (stats)
//	{"ok":true,"keys":KeyExport}              (export-keys)
//	{"ok":false,"error":"no connection named \"x\""}
//
// up returns as soon as the exchange has been started (poll status to see
// it reach established); down returns once the SAs have been deleted;
// reset does down, then up (CloudStack's ResetVpnConnection). reload
// applies ipsec.conf and ipsec.secrets as SIGHUP does and answers with
// what changed, or with an error when the files have errors (the running
// configuration stays). events answers {"ok":true}, then streams one
// {"ok":true,"event":Event} line per IKE event until the client closes
// the connection or sends anything. export-keys is answered only for a
// client running as root (SO_PEERCRED); the daemon logs a warning each
// time.
//
// A ConnStatus (every key always present):
//
//	{
//	  "name": "net-net",
//	  "state": "established",          // down | connecting | established |
//	                                   // phase1-failed | phase2-failed
//	  "auto": "start",                 // ignore | add | route | start
//	  "version": "ikev2",              // ikev1 | ikev2 | ike
//	  "local": "198.51.100.1",
//	  "remote": "198.51.100.2",
//	  "last_error": "",                // why the last attempt failed
//	  "ike": {                         // null when there is no IKE SA
//	    "initiator": true,
//	    "initiator_spi": "1f2e3d4c5b6a7988",
//	    "responder_spi": "8877665544332211",
//	    "proposal": "aes128-sha256-modp2048",
//	    "local_id": "198.51.100.1",
//	    "remote_id": "198.51.100.2",
//	    "nat_detected": false,
//	    "uptime_seconds": 42
//	  },
//	  "children": [{                   // [] when there is none
//	    "proposal": "aes128gcm16",
//	    "protocol": "esp",
//	    "spi_in": "c1a2b3c4",          // ours (the peer sends with it)
//	    "spi_out": "c5d6e7f8",         // the peer's
//	    "udp_encap": true,
//	    "local_ts": ["10.1.0.0/24"],
//	    "remote_ts": ["10.2.0.0/24"],
//	    "bytes_in": 8400, "packets_in": 100,
//	    "bytes_out": 8400, "packets_out": 100,
//	    "uptime_seconds": 42
//	  }],
//	  "usage": {                       // since the daemon started, over
//	    "bytes_in": 1250400,           // every CHILD SA of the conn:
//	    "packets_in": 14886,           // rekeys and reconnects do not
//	    "bytes_out": 1250400,          // reset it
//	    "packets_out": 14886,
//	    "last_inbound_seconds": 1      // -1: nothing ever came
//	  },
//	  "updown": {                      // null without leftupdown=
//	    "script": "/etc/ipsec.d/updown.sh",
//	    "runs": 1, "failures": 0,      // since the daemon started
//	    "last_verb": "up-client",      // PLUTO_VERB of the last run
//	    "last_error": ""               // why the last run failed
//	  },
//	  "health": {
//	    "last_inbound_seconds": 1,     // as in usage
//	    "dpd": "ok",                   // off | idle | ok | timeout
//	    "dpd_delay_seconds": 30,       // 0 when off
//	    "last_dpd_seconds": 12,        // last check completed; -1: none
//	    "last_dpd_rtt_ms": 0.84        // -1: unknown (retransmitted)
//	  },
//	  "bandwidth": {                   // inner bytes/s over the last
//	    "in_bytes_per_second": 16800,  // interval (5 s; 0 until the
//	    "out_bytes_per_second": 16800, // first interval has passed)
//	    "interval_seconds": 5
//	  }
//	}
//
// The GlobalStatus (every key always present; counters since start):
//
//	{
//	  "ike_sas": 3, "half_open": 1, "half_open_limit": 10000,
//	  "cookie_threshold": 30, "cookie_threshold_ip": 3, // 0: off
//	  "cookies_sent": 4321,        // IKE_SA_INIT answered with a COOKIE
//	  "half_open_refused": 0,      // IKE_SA_INIT dropped at the limit
//	  "ike_queue_drops": 0,        // socket → IKE queue full
//	  "ike_sa_queue_drops": 0      // an IKE SA's event queue full
//	}
//
// A DPD check (an empty INFORMATIONAL, RFC 7296 section 2.4) goes out when
// no IKE message came from the peer for dpddelay, so on a live tunnel
// "dpd" is ok and last_dpd_seconds stays below about dpddelay; "timeout"
// means the last check went unanswered (dpdaction then applied).
// "health" and "bandwidth" were added after the first release: the keys
// before them are unchanged.
//
// Byte and packet counters are the inner traffic that passed each SA (the
// daemon reads them from its SAD). The state names are a stable
// interface: scripts may match on them.
package control
