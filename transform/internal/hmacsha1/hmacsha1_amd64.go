package hmacsha1

import (
	"sync"

	"golang.org/x/sys/cpu"
)

// Supported reports whether this processor has the SHA extensions, SSSE3
// and AVX (the assembly uses SHA1RNDS4 and friends, PSHUFB and VEX-encoded
// moves). golang.org/x/sys/cpu does not report SHA, so CPUID is asked.
func Supported() bool { return supported() }

var supported = sync.OnceValue(func() bool {
	const sha = 1 << 29 // CPUID.(7,0):EBX
	if !cpu.X86.HasAVX || !cpu.X86.HasSSSE3 {
		return false
	}
	if maxLeaf, _, _, _ := cpuid(0, 0); maxLeaf < 7 {
		return false
	}
	_, b, _, _ := cpuid(7, 0)
	return b&sha != 0
})

func cpuid(leaf, sub uint32) (a, b, c, d uint32)

// blocks2 compresses n blocks in each of the two lanes of l, advancing
// neither data pointer in l.
//
//go:noescape
func blocks2(l *lanes, n int)

// wideSupported reports whether the sixteen-lane code can run: it needs
// AVX-512F and, for byte shuffles on 512-bit registers, AVX-512BW.
func wideSupported() bool { return cpu.X86.HasAVX512F && cpu.X86.HasAVX512BW }

// blocks16 compresses n blocks in each of the sixteen lanes of l,
// advancing none of l.data.
//
//go:noescape
func blocks16(l *lanes16, n int)
