// Package hmacsha1 computes HMAC-SHA1 (RFC 2104, FIPS 180-4) over many
// messages at once on x86-64 processors with the SHA extensions.
//
// Why: HMAC-SHA1 is most of the cost of an ESP AES-CBC+HMAC-SHA1 packet
// once the CBC encryption runs in parallel lanes, and a single SHA-1
// computation on SHA-NI (what crypto/sha1 does) waits on the latency of
// SHA1RNDS4 along one dependency chain. Two messages interleaved
// instruction by instruction keep two chains in flight on the same unit.
// The inner and outer pad states are computed once per key (Key), so a
// message costs its own blocks plus one outer block, with no key schedule.
//
// Supported reports false elsewhere; callers then use crypto/hmac, with
// which this package's output is identical (tested on random keys, lengths
// and trailers).
package hmacsha1
