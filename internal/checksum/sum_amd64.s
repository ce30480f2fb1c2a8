#include "textflag.h"

// 32 zero bytes then 32 0xff bytes. The 32 bytes at tailMask+r keep the
// last r bytes of a vector and clear the others.
DATA tailMask<>+0x00(SB)/8, $0
DATA tailMask<>+0x08(SB)/8, $0
DATA tailMask<>+0x10(SB)/8, $0
DATA tailMask<>+0x18(SB)/8, $0
DATA tailMask<>+0x20(SB)/8, $0xffffffffffffffff
DATA tailMask<>+0x28(SB)/8, $0xffffffffffffffff
DATA tailMask<>+0x30(SB)/8, $0xffffffffffffffff
DATA tailMask<>+0x38(SB)/8, $0xffffffffffffffff
GLOBL tailMask<>(SB), RODATA|NOPTR, $64

// Each 32-bit lane v of a loaded vector holds two little-endian words:
// v = hi<<16 + lo. Per vector, only two sums are kept per lane:
//
//	A += v       (wraps modulo 2^32)
//	H += v >> 16 (exact)
//
// which costs three ALU ops (add, shift, add) instead of the four of a
// mask-and-shift split. At the end, A - H<<16 is the sum of the lo words
// modulo 2^32, and that sum is exact because it is below 2^32: a lane sees
// at most avx2MaxChunk/32 = 8192 vectors, so the lo and hi sums are each
// below 8192*0xffff < 2^29 and even their total fits in a lane.
//
// Four (A, H) pairs, one per vector of a 128-byte block, keep the loop from
// waiting on the one-cycle latency of VPADDD. (A 256-byte loop measured no
// faster on Zen 4, where this one runs at ~32 bytes a cycle from L1.)
//
// Registers: Y0-Y3 A sums, Y4-Y7 H sums, Y8-Y11 data, SI pointer, CX bytes
// left.

// ACC adds the vector in data to the pair (a, h), clobbering data.
#define ACC(data, a, h) \
	VPADDD data, a, a \
	VPSRLD $16, data, data \
	VPADDD data, h, h

// func sumAVX2Core(b []byte) uint64
// Requires: AVX2, len(b) even, 32 <= len(b) <= avx2MaxChunk.
TEXT ·sumAVX2Core(SB), NOSPLIT, $0-32
	MOVQ b_base+0(FP), SI
	MOVQ b_len+8(FP), CX

	VPXOR Y0, Y0, Y0
	VPXOR Y1, Y1, Y1
	VPXOR Y2, Y2, Y2
	VPXOR Y3, Y3, Y3
	VPXOR Y4, Y4, Y4
	VPXOR Y5, Y5, Y5
	VPXOR Y6, Y6, Y6
	VPXOR Y7, Y7, Y7

	CMPQ CX, $128
	JB   loop32

loop128:
	VMOVDQU 0(SI), Y8
	VMOVDQU 32(SI), Y9
	VMOVDQU 64(SI), Y10
	VMOVDQU 96(SI), Y11
	ACC(Y8, Y0, Y4)
	ACC(Y9, Y1, Y5)
	ACC(Y10, Y2, Y6)
	ACC(Y11, Y3, Y7)
	ADDQ $128, SI
	SUBQ $128, CX
	CMPQ CX, $128
	JAE  loop128

loop32:
	// At most three whole vectors are left.
	CMPQ CX, $32
	JB   tail
	VMOVDQU (SI), Y8
	ACC(Y8, Y0, Y4)
	ADDQ $32, SI
	SUBQ $32, CX
	JMP  loop32

tail:
	// 0 <= CX < 32 bytes are left (an even number). Rather than summing
	// them piecewise, load the 32 bytes that end at the end of b (there
	// are at least 32 in b) and clear the first 32-CX of them, which were
	// already summed. The load starts len(b)-32 bytes into b, an even
	// offset, so each 16-bit half of a lane is still a whole word.
	TESTQ CX, CX
	JZ    reduce
	LEAQ  tailMask<>(SB), DX
	VMOVDQU (DX)(CX*1), Y8
	VPAND -32(SI)(CX*1), Y8, Y8
	ACC(Y8, Y1, Y5)

reduce:
	// Combine the four pairs. The A sums wrap as intended; the H sums
	// stay exact (see above).
	VPADDD Y1, Y0, Y0
	VPADDD Y3, Y2, Y2
	VPADDD Y2, Y0, Y0
	VPADDD Y5, Y4, Y4
	VPADDD Y7, Y6, Y6
	VPADDD Y6, Y4, Y4

	// Per lane: lo = A - H<<16, total = lo + H.
	VPSLLD $16, Y4, Y8
	VPSUBD Y8, Y0, Y0
	VPADDD Y4, Y0, Y0

	// Add the eight 32-bit lanes, widened to 64 bits so that the
	// horizontal sum cannot overflow.
	VEXTRACTI128 $1, Y0, X1
	VPMOVZXDQ    X0, Y0
	VPMOVZXDQ    X1, Y1
	VPADDQ       Y1, Y0, Y0
	VEXTRACTI128 $1, Y0, X1
	VPADDQ       X1, X0, X0
	VPSHUFD      $0x4e, X0, X1 // swap the two 64-bit halves
	VPADDQ       X1, X0, X0
	VMOVQ        X0, AX

	VZEROUPPER
	MOVQ AX, ret+24(FP)
	RET
