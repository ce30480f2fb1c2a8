// Package config reads strongSwan-style ipsec.conf and ipsec.secrets files
// (and the Libreswan/Openswan dialect of them) and hands the rest of
// ipsecgw one typed, validated, immutable configuration. The daemon
// settings of ipsecgw.yaml live in package settings; config imports
// neither viper nor any command-line library.
//
// # Files
//
// Load parses ipsec.conf with the semantics of strongSwan's ipsec.conf(5):
// "config setup", "conn NAME", "conn %default" and "ca" sections, indented
// keyword=value lines, comments, quoted values, also= (several, nested;
// the current section wins), include with globs relative to the including
// file, sections of the same name merged, an empty value meaning the
// default. A section referenced several times by one conn (directly or
// through nested also=) is applied once, at its first reference. The Libreswan dialect ("ike=aes128-sha1;modp1536", phase2alg=,
// pfs=, ikev2=, leftsubnets={...}, salifetime=) is detected per file and
// per keyword; nobody has to say which dialect a file is in. A conn in the
// Libreswan dialect never has the daemon's default proposals appended (as
// Libreswan does not) and defaults to IKEv1 when neither ikev2= nor
// keyexchange= is given (Openswan's behaviour). Every other default is
// strongSwan's: ikelifetime 3h, lifetime 1h, margintime 9m, rekeyfuzz 100%,
// keyingtries 3, dpddelay 30s, dpdtimeout 150s, dpdaction none, IKE
// proposal aes128-sha256-modp3072 and ESP proposal aes128-sha256, both
// followed by the daemon defaults unless they end in "!".
//
// Every problem is collected as a Diagnostic with file, line, conn and
// keyword; loading never stops at the first. Keywords strongSwan or
// Libreswan accept but ipsecgw does not act upon yet (mark,
// leftnexthop ...), certificate authentication, and a conn whose ends match
// no local address are warnings: a file strongSwan loads passes with
// warnings only. Conns with auto=ignore (the default) are parsed and their
// values checked, but not validated as a whole (no PSK, overlap or address
// checks), because strongSwan does not load them either.
//
// # Limits
//
// The parser enforces these limits and reports an error when one is
// exceeded:
//
//   - a file: at most MaxFileSize (16 MiB) and lines of MaxLineLength (64 KiB);
//   - includes: nested at most MaxIncludeDepth (10) deep, at most MaxFiles (1000) files;
//   - sections: at most MaxSections (20000) and MaxConns (10000) conns;
//   - also=: nested at most MaxAlsoDepth (32) deep;
//   - subnets: at most MaxSubnetsPerEnd (256) per leftsubnet/rightsubnet, so
//     at most 256x256 CHILD SA selector pairs per conn;
//   - proposals: at most MaxProposals (32) per keyword and
//     MaxTransformsPerProps (64) algorithms per proposal;
//   - lifetimes: between MinLifetime (10s) and MaxLifetime (365 days);
//     replay_window at most MaxReplayWindow (1048576) packets.
//
// These cover the limit model of VPN consoles (20 tunnels per gateway, 20
// local and 20 remote subnets per tunnel; TestConsoleLimits). Subnets of
// two tunnels overlap when both their local and their remote subnets
// share addresses (with compatible protocols and ports): to the same peer
// with both conns starting (auto=start or route) that is an error at the
// later conn's rightsubnet line; otherwise a warning naming both conns,
// because redundant tunnels to two peers for the same subnets (AWS's two
// tunnels per VPN connection) are a standard setup (overlap.go).
//
// # swanctl.conf
//
// A swanctl.conf (Options.SwanctlPath, or ConfPath recognised by its name
// or its connections/secrets sections) is read into the same model: one
// conn per CHILD SA, its settings translated to the ipsec.conf keywords of
// the same meaning and validated like them, every problem at swanctl.conf
// FILE:LINE with the swanctl key (swanctl_conn.go lists the keys).
//
// # Secrets
//
// PSK values live only in unexported fields of type PSK, whose String,
// GoString, JSON and text forms are masked. No diagnostic quotes a secret.
// A secrets file readable by group or others gets a warning.
//
// # Algorithms
//
// algorithms.go holds the only table of IANA transform IDs in the package;
// proposals are lists of Transform values (type, IANA ID, key length).
package config
