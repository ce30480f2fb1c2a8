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
