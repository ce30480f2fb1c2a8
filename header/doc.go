// Package header is the one place in ipsecgw that knows where the fields of
// IPv4, IPv6, UDP, TCP and ICMP headers lie. The SPD's flow parser, the ESP
// outer headers, the socket demultiplexer, the sender of bypassed packets
// and the TUN offloads all read and write packets through it, so that an
// offset, a header length or a protocol number is written down once, here,
// with the RFC it comes from.
//
// # Views
//
// A header is a view over the packet's bytes, in the manner of gVisor's
// pkg/tcpip/header: IPv4, IPv6, UDP, TCP and ICMP are []byte types whose
// methods read and write fields in place. They copy nothing and allocate
// nothing, and are small enough for the compiler to inline, so the
// per-packet paths cost what the hand-written offsets did.
//
// # Validated once
//
// Accessors do not check lengths: a view is validated once, and its
// accessors then rely on that. IPv4.Valid and IPv6.Valid check what every
// accessor of the IP header needs (the version, the IPv4 header length,
// and that the length fields claim no more bytes than the buffer holds);
// Payload then ends where the packet says it ends, so bytes behind it
// (link padding, the rest of a larger buffer) are never read as payload.
// After Valid, the compiler knows the lengths it checked and drops the
// bounds checks of the accessors that follow (as long as nothing is stored
// in between that could alias the packet). A caller that needs less than a
// whole valid packet (a raw socket's destination address, the fixed header
// of a kernel super-packet) checks the length against the constants here
// itself. An accessor used on a view too short for its field panics with
// an index out of range, as any slice access would.
//
// # Checksums
//
// IPv4 header and TCP/UDP checksums, including the pseudo-header of RFC 768,
// RFC 9293 §3.1 and RFC 8200 §8.1, are computed by internal/checksum, the
// project's one implementation of the Internet checksum (RFC 1071, with its
// AVX2 code on x86-64).
package header
