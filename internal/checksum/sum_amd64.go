package checksum

import "golang.org/x/sys/cpu"

// useAVX2 reports whether Sum may use the AVX2 code. cpu.X86.HasAVX2 also
// checks that the OS saves the YMM registers.
var useAVX2 = cpu.X86.HasAVX2

const (
	// avx2MinLen is the length from which the AVX2 code beats sumGeneric
	// (measured on Zen 4: both take ~5-6 ns at 112-128 bytes; below that
	// the vector set-up and final reduction cost more than they save).
	// It must be at least 32: see sumAVX2Core.
	avx2MinLen = 128

	// avx2MaxChunk bounds the bytes given to one sumAVX2Core call so that
	// its 32-bit lane accumulators cannot overflow (the bound is worked
	// out in sum_amd64.s). It must be even.
	avx2MaxChunk = 256 << 10
)

// sumAVX2 returns a little-endian partial sum of b, like sumGeneric, using
// AVX2 for all but inputs shorter than 32 bytes. The caller must have
// checked useAVX2.
func sumAVX2(b []byte) uint64 {
	var s uint64
	if len(b)&1 != 0 {
		// The assembly handles even lengths only. The odd byte is the
		// low byte of a little-endian word.
		s = uint64(b[len(b)-1])
		b = b[:len(b)-1]
	}
	for len(b) > avx2MaxChunk {
		s += sumAVX2Core(b[:avx2MaxChunk]) // each < 2^33: no overflow
		b = b[avx2MaxChunk:]
	}
	if len(b) >= 32 {
		return s + sumAVX2Core(b)
	}
	return addCarry(s, sumGeneric(b)) // only reached when called directly (tests)
}

// sumAVX2Core returns the exact sum of the little-endian 16-bit words of b,
// which is below 2^33. len(b) must be even, at least 32 and at most
// avx2MaxChunk. b may have any alignment.
//
//go:noescape
func sumAVX2Core(b []byte) uint64
