// Package checksum computes the Internet checksum of RFC 1071 (the 16-bit
// ones' complement sum used by IPv4, TCP, UDP and ICMP). It is the
// project's one implementation: package header's IPv4 header and TCP/UDP
// checksums are built on it, and the TUN offload code uses it directly for
// the incremental sums of segmentation and coalescing, where it runs once
// per packet on the hot path.
//
// A partial sum is a plain number whose value, taken modulo 0xffff, is the
// sum of big-endian 16-bit words, so callers may add their own words to it
// (sum += uint64(binary.BigEndian.Uint16(h[i:]))) before folding it. The
// functions here return partial sums below 2^32, so chaining them and adding
// a few caller values cannot overflow a uint64.
//
// Internally the data is summed as little-endian words (the natural load on
// the machines we care about) and converted once at the end: swapping the
// two bytes of a 16-bit word multiplies it by 256 modulo 0xffff, and that
// commutes with addition, so byte-swapping the finished sum is enough.
// Every step is either a plain addition or an addition with end-around
// carry, so the sum is zero only when the data and initial are all zero;
// Fold therefore returns exactly what a word-by-word ones' complement sum
// would, including the 0 versus 0xffff distinction.
package checksum

import (
	"encoding/binary"
	"math/bits"
)

// Sum adds the 16-bit big-endian words of b to the partial sum initial and
// returns the new partial sum (not folded, not complemented). If len(b) is
// odd, the last byte is treated as the high byte of a word whose low byte
// is zero (RFC 1071). Partial sums of consecutive chunks may be chained
// (Sum(b2, Sum(b1, 0))) as long as every chunk except the last has even
// length. The result is below 2^32.
func Sum(b []byte, initial uint64) uint64 {
	// The dispatch is written out here rather than in a helper so that a
	// short packet costs one call (to sumGeneric), not two.
	var s uint64
	if useAVX2 && len(b) >= avx2MinLen {
		s = sumAVX2(b)
	} else {
		s = sumGeneric(b)
	}
	return finish(s, initial)
}

// finish turns a little-endian partial sum of the data into a big-endian
// one, adds initial and folds the result below 2^32. Reversing all eight
// bytes swaps the bytes of each 16-bit word (and permutes the words, which
// does not matter modulo 0xffff because 2^16 is 1 there).
func finish(le, initial uint64) uint64 {
	return fold32(addCarry(bits.ReverseBytes64(le), initial))
}

// Fold folds a partial sum to 16 bits with end-around carry (the ones'
// complement sum, not complemented).
func Fold(sum uint64) uint16 {
	return fold16(uint32(fold32(sum)))
}

// fold16 folds x = hi<<16 | lo to 16 bits with end-around carry. The top
// half of x + (lo<<16 | hi) is hi + lo plus the carry out of the bottom
// half's lo + hi, which is the end-around carry.
func fold16(x uint32) uint16 {
	return uint16((x + bits.RotateLeft32(x, 16)) >> 16)
}

// Checksum returns the Internet checksum of b starting from the partial sum
// initial: ^Fold(Sum(b, initial)).
func Checksum(b []byte, initial uint64) uint16 {
	// Sum is below 2^32, so the 64-to-32-bit step of Fold can be skipped,
	// which lets Checksum be inlined into callers.
	return ^fold16(uint32(Sum(b, initial)))
}

// PseudoHeaderSum returns the partial sum of the TCP/UDP pseudo-header for
// IPv4 (src and dst 4 bytes) or IPv6 (16 bytes each): src, dst,
// zero+protocol, and the upper-layer length (for IPv6 a 32-bit length).
// length must be in [0, 2^32). The result is below 2^32.
func PseudoHeaderSum(proto uint8, src, dst []byte, length int) uint64 {
	// A big-endian 32-bit value hi<<16|lo is congruent to hi+lo modulo
	// 0xffff, so the 32-bit IPv6 length (and the 16-bit IPv4 one) is just
	// added as a number, and addresses can be summed 32 bits at a time.
	s := uint64(proto) + uint64(uint32(length))
	s += addrSum(src) + addrSum(dst) // ten terms below 2^32: no overflow
	return fold32(s)
}

// addrSum returns the partial sum of an IP address, with fast paths for
// the two real address lengths.
func addrSum(a []byte) uint64 {
	switch len(a) {
	case 4:
		return uint64(binary.BigEndian.Uint32(a))
	case 16:
		return uint64(binary.BigEndian.Uint32(a[0:4])) +
			uint64(binary.BigEndian.Uint32(a[4:8])) +
			uint64(binary.BigEndian.Uint32(a[8:12])) +
			uint64(binary.BigEndian.Uint32(a[12:16]))
	}
	return Sum(a, 0)
}

// addCarry adds with end-around carry: the result is congruent to a+b
// modulo 0xffff and is zero only if both are zero.
func addCarry(a, b uint64) uint64 {
	s, c := bits.Add64(a, b, 0)
	return s + c // cannot wrap: if c is 1 then s <= 2^64-2
}

// fold32 folds a partial sum to below 2^32 with end-around carry.
func fold32(s uint64) uint64 {
	s = s>>32 + s&0xffffffff // < 2^33
	return s>>32 + s&0xffffffff
}

// sumGeneric returns a partial sum of the little-endian 16-bit words of b
// (an odd last byte is the low byte of its word), not folded. It is the
// portable implementation and the one used for short inputs.
//
// A single add-with-carry chain (bits.Add64 compiles to ADC on amd64 and
// ADCS on arm64) is bound by the one-cycle latency of the carry flag:
// 8 bytes per cycle. The CPU has spare load and ALU slots, so half of each
// 64-byte block is instead added as zero-extended 32-bit words into two
// plain 64-bit accumulators that run in parallel with the carry chain and
// cannot overflow (2^32 blocks would be needed). That is 1.3-1.5x the single
// chain.
func sumGeneric(b []byte) uint64 {
	var ac, c, a0, a1 uint64
	for len(b) >= 64 {
		ac, c = bits.Add64(ac, binary.LittleEndian.Uint64(b[0:8]), 0)
		a0 += uint64(binary.LittleEndian.Uint32(b[32:36]))
		a1 += uint64(binary.LittleEndian.Uint32(b[36:40]))
		ac, c = bits.Add64(ac, binary.LittleEndian.Uint64(b[8:16]), c)
		a0 += uint64(binary.LittleEndian.Uint32(b[40:44]))
		a1 += uint64(binary.LittleEndian.Uint32(b[44:48]))
		ac, c = bits.Add64(ac, binary.LittleEndian.Uint64(b[16:24]), c)
		a0 += uint64(binary.LittleEndian.Uint32(b[48:52]))
		a1 += uint64(binary.LittleEndian.Uint32(b[52:56]))
		ac, c = bits.Add64(ac, binary.LittleEndian.Uint64(b[24:32]), c)
		a0 += uint64(binary.LittleEndian.Uint32(b[56:60]))
		a1 += uint64(binary.LittleEndian.Uint32(b[60:64]))
		ac += c // end-around carry; cannot wrap (see addCarry)
		b = b[64:]
	}
	if len(b) >= 32 {
		ac, c = bits.Add64(ac, binary.LittleEndian.Uint64(b[0:8]), 0)
		ac, c = bits.Add64(ac, binary.LittleEndian.Uint64(b[8:16]), c)
		ac, c = bits.Add64(ac, binary.LittleEndian.Uint64(b[16:24]), c)
		ac, c = bits.Add64(ac, binary.LittleEndian.Uint64(b[24:32]), c)
		ac += c
		b = b[32:]
	}
	if len(b) >= 16 {
		ac, c = bits.Add64(ac, binary.LittleEndian.Uint64(b[0:8]), 0)
		ac, c = bits.Add64(ac, binary.LittleEndian.Uint64(b[8:16]), c)
		ac += c
		b = b[16:]
	}
	// The rest are small values added to the plain accumulators.
	if len(b) >= 8 {
		a0 += uint64(binary.LittleEndian.Uint32(b[0:4]))
		a1 += uint64(binary.LittleEndian.Uint32(b[4:8]))
		b = b[8:]
	}
	if len(b) >= 4 {
		a0 += uint64(binary.LittleEndian.Uint32(b[0:4]))
		b = b[4:]
	}
	if len(b) >= 2 {
		a1 += uint64(binary.LittleEndian.Uint16(b[0:2]))
		b = b[2:]
	}
	if len(b) == 1 {
		// The odd byte sits at an even offset: the low byte of a
		// little-endian word, i.e. the high byte of a big-endian one.
		a0 += uint64(b[0])
	}
	return addCarry(ac, a0+a1) // a0+a1 < 2^64 for any slice that fits in memory
}
