#include "textflag.h"

// Layout of expandedKey (aesgcm.go): round keys at 0 (15 × 32 bytes, each
// key in both 128-bit lanes), hash key powers at 480 (4 × 32 bytes:
// [H^8|H^7] [H^6|H^5] [H^4|H^3] [H^2|H^1]), rounds at 608.
#define POW 480
#define ROUNDS 608

// Byte reversal within each 128-bit lane: blocks into GHASH register form.
DATA bswap<>+0(SB)/8, $0x08090a0b0c0d0e0f
DATA bswap<>+8(SB)/8, $0x0001020304050607
DATA bswap<>+16(SB)/8, $0x08090a0b0c0d0e0f
DATA bswap<>+24(SB)/8, $0x0001020304050607
GLOBL bswap<>(SB), RODATA|NOPTR, $32

// Reverses only the last 4 bytes of each lane: the big-endian 32-bit block
// counter becomes a little-endian dword that VPADDD can increment (and back).
DATA swaplast<>+0(SB)/8, $0x0706050403020100
DATA swaplast<>+8(SB)/8, $0x0c0d0e0f0b0a0908
DATA swaplast<>+16(SB)/8, $0x0706050403020100
DATA swaplast<>+24(SB)/8, $0x0c0d0e0f0b0a0908
GLOBL swaplast<>(SB), RODATA|NOPTR, $32

// Counter increments (dword 3 of each lane).
DATA two<>+0(SB)/8, $0
DATA two<>+8(SB)/8, $0x0000000200000000
DATA two<>+16(SB)/8, $0
DATA two<>+24(SB)/8, $0x0000000200000000
GLOBL two<>(SB), RODATA|NOPTR, $32

DATA laneinc<>+0(SB)/8, $0
DATA laneinc<>+8(SB)/8, $0
DATA laneinc<>+16(SB)/8, $0
DATA laneinc<>+24(SB)/8, $0x0000000100000000
GLOBL laneinc<>(SB), RODATA|NOPTR, $32

DATA one<>+0(SB)/8, $0
DATA one<>+8(SB)/8, $0x0000000100000000
GLOBL one<>(SB), RODATA|NOPTR, $16

// mask<>+16-n is n bytes of ones followed by zeros: the partial block.
DATA mask<>+0(SB)/8, $0xffffffffffffffff
DATA mask<>+8(SB)/8, $0xffffffffffffffff
DATA mask<>+16(SB)/8, $0
DATA mask<>+24(SB)/8, $0
GLOBL mask<>(SB), RODATA|NOPTR, $32

// The reduction constant: x^128 + x^7 + x^2 + x + 1 in reflected form.
DATA poly<>+0(SB)/8, $1
DATA poly<>+8(SB)/8, $0xc200000000000000
GLOBL poly<>(SB), RODATA|NOPTR, $16

// One AES round with round key at off(AX) on the four vectors Y0-Y3.
#define ROUND4(off) \
	VMOVDQU off(AX), Y5 \
	VAESENC Y5, Y0, Y0 \
	VAESENC Y5, Y1, Y1 \
	VAESENC Y5, Y2, Y2 \
	VAESENC Y5, Y3, Y3

// AES on the eight counter blocks in Y0-Y3 (R9 = offset of the last round
// key, R8 = rounds).
#define AES4(lastlabel) \
	VMOVDQU 0(AX), Y5 \
	VPXOR Y5, Y0, Y0 \
	VPXOR Y5, Y1, Y1 \
	VPXOR Y5, Y2, Y2 \
	VPXOR Y5, Y3, Y3 \
	ROUND4(32) \
	ROUND4(64) \
	ROUND4(96) \
	ROUND4(128) \
	ROUND4(160) \
	ROUND4(192) \
	ROUND4(224) \
	ROUND4(256) \
	ROUND4(288) \
	CMPQ R8, $10 \
	JE lastlabel \
	ROUND4(320) \
	ROUND4(352) \
	CMPQ R8, $12 \
	JE lastlabel \
	ROUND4(384) \
	ROUND4(416) \
lastlabel: \
	VMOVDQU (AX)(R9*1), Y5 \
	VAESENCLAST Y5, Y0, Y0 \
	VAESENCLAST Y5, Y1, Y1 \
	VAESENCLAST Y5, Y2, Y2 \
	VAESENCLAST Y5, Y3, Y3

// Next four counter vectors (eight blocks) from Y4 into Y0-Y3.
#define COUNTERS8 \
	VPSHUFB swaplast<>(SB), Y4, Y0 \
	VPADDD two<>(SB), Y4, Y4 \
	VPSHUFB swaplast<>(SB), Y4, Y1 \
	VPADDD two<>(SB), Y4, Y4 \
	VPSHUFB swaplast<>(SB), Y4, Y2 \
	VPADDD two<>(SB), Y4, Y4 \
	VPSHUFB swaplast<>(SB), Y4, Y3 \
	VPADDD two<>(SB), Y4, Y4

// Folds the sums' two lanes, joins the middle into low and high, reduces
// the low 128 bits twice and leaves the new hash in X12.
#define REDUCE \
	VEXTRACTI128 $1, Y7, X10 \
	VPXOR X10, X7, X7 \
	VEXTRACTI128 $1, Y8, X10 \
	VPXOR X10, X8, X8 \
	VEXTRACTI128 $1, Y9, X10 \
	VPXOR X10, X9, X9 \
	VPSLLDQ $8, X9, X10 \
	VPXOR X10, X7, X7 \
	VPSRLDQ $8, X9, X9 \
	VPXOR X9, X8, X8 \
	VMOVDQU poly<>(SB), X11 \
	VPCLMULQDQ $0x10, X11, X7, X10 \
	VPSHUFD $0x4e, X7, X7 \
	VPXOR X10, X7, X7 \
	VPCLMULQDQ $0x10, X11, X7, X10 \
	VPSHUFD $0x4e, X7, X7 \
	VPXOR X10, X7, X7 \
	VPXOR X8, X7, X12

// The seal loop's GHASH works on the previous group's ciphertext in Y6-Y9
// while AES runs on the next group in Y0-Y5: hash in Y10 (X10), sums in
// Y11 (low halves), Y12 (high), Y13 (middle), Y14 and Y15 temporaries.
// SMUL multiplies the (byte-swapped) pair V by the powers at off(AX).
#define SMUL(V, off) \
	VMOVDQU off(AX), Y15 \
	VPCLMULQDQ $0x00, Y15, V, Y14 \
	VPXOR Y14, Y11, Y11 \
	VPCLMULQDQ $0x11, Y15, V, Y14 \
	VPXOR Y14, Y12, Y12 \
	VPCLMULQDQ $0x01, Y15, V, Y14 \
	VPXOR Y14, Y13, Y13 \
	VPCLMULQDQ $0x10, Y15, V, Y14 \
	VPXOR Y14, Y13, Y13

// SFIRST starts the sums with the first pair (Y6, the hash added in).
#define SFIRST \
	VPSHUFB bswap<>(SB), Y6, Y6 \
	VPXOR Y10, Y6, Y6 \
	VMOVDQU POW(AX), Y15 \
	VPCLMULQDQ $0x00, Y15, Y6, Y11 \
	VPCLMULQDQ $0x11, Y15, Y6, Y12 \
	VPCLMULQDQ $0x01, Y15, Y6, Y13 \
	VPCLMULQDQ $0x10, Y15, Y6, Y14 \
	VPXOR Y14, Y13, Y13

// SREDUCE folds and reduces the sums into X10.
#define SREDUCE \
	VEXTRACTI128 $1, Y11, X14 \
	VPXOR X14, X11, X11 \
	VEXTRACTI128 $1, Y12, X14 \
	VPXOR X14, X12, X12 \
	VEXTRACTI128 $1, Y13, X14 \
	VPXOR X14, X13, X13 \
	VPSLLDQ $8, X13, X14 \
	VPXOR X14, X11, X11 \
	VPSRLDQ $8, X13, X13 \
	VPXOR X13, X12, X12 \
	VMOVDQU poly<>(SB), X15 \
	VPCLMULQDQ $0x10, X15, X11, X14 \
	VPSHUFD $0x4e, X11, X11 \
	VPXOR X14, X11, X11 \
	VPCLMULQDQ $0x10, X15, X11, X14 \
	VPSHUFD $0x4e, X11, X11 \
	VPXOR X14, X11, X11 \
	VPXOR X12, X11, X10

// SHASH8 absorbs the eight blocks in Y6-Y9 (bytes as in memory) into X10.
#define SHASH8 \
	SFIRST \
	VPSHUFB bswap<>(SB), Y7, Y7 \
	SMUL(Y7, POW+32) \
	VPSHUFB bswap<>(SB), Y8, Y8 \
	SMUL(Y8, POW+64) \
	VPSHUFB bswap<>(SB), Y9, Y9 \
	SMUL(Y9, POW+96) \
	SREDUCE

// AESHASH8 is SHASH8 on Y6-Y9 spread between the AES rounds of the next
// eight counter blocks (into Y0-Y3), so that the hash, which may wait for
// its input, never holds back the AES.
#define AESHASH8(lastlabel) \
	COUNTERS8 \
	VMOVDQU 0(AX), Y5 \
	VPXOR   Y5, Y0, Y0 \
	VPXOR   Y5, Y1, Y1 \
	VPXOR   Y5, Y2, Y2 \
	VPXOR   Y5, Y3, Y3 \
	SFIRST \
	ROUND4(32) \
	VPSHUFB bswap<>(SB), Y7, Y7 \
	ROUND4(64) \
	SMUL(Y7, POW+32) \
	ROUND4(96) \
	VPSHUFB bswap<>(SB), Y8, Y8 \
	ROUND4(128) \
	SMUL(Y8, POW+64) \
	ROUND4(160) \
	VPSHUFB bswap<>(SB), Y9, Y9 \
	ROUND4(192) \
	SMUL(Y9, POW+96) \
	ROUND4(224) \
	ROUND4(256) \
	SREDUCE \
	ROUND4(288) \
	CMPQ R8, $10 \
	JE   lastlabel \
	ROUND4(320) \
	ROUND4(352) \
	CMPQ R8, $12 \
	JE   lastlabel \
	ROUND4(384) \
	ROUND4(416) \
lastlabel: \
	VMOVDQU     (AX)(R9*1), Y5 \
	VAESENCLAST Y5, Y0, Y0 \
	VAESENCLAST Y5, Y1, Y1 \
	VAESENCLAST Y5, Y2, Y2 \
	VAESENCLAST Y5, Y3, Y3

// dst = src XOR Y0-Y3 for eight blocks, the ciphertext also kept in Y6-Y9.
#define XORSTOREKEEP \
	VPXOR   0(SI), Y0, Y6 \
	VPXOR   32(SI), Y1, Y7 \
	VPXOR   64(SI), Y2, Y8 \
	VPXOR   96(SI), Y3, Y9 \
	VMOVDQU Y6, 0(DI) \
	VMOVDQU Y7, 32(DI) \
	VMOVDQU Y8, 64(DI) \
	VMOVDQU Y9, 96(DI)

// dst = src XOR Y0-Y3 for eight blocks.
#define XORSTORE \
	VPXOR   0(SI), Y0, Y0 \
	VPXOR   32(SI), Y1, Y1 \
	VPXOR   64(SI), Y2, Y2 \
	VPXOR   96(SI), Y3, Y3 \
	VMOVDQU Y0, 0(DI) \
	VMOVDQU Y1, 32(DI) \
	VMOVDQU Y2, 64(DI) \
	VMOVDQU Y3, 96(DI)

// Absorbs the N (1 to 8) blocks at P into X12 with one reduction: block i
// of N meets H^(N-i), which pow holds 16 bytes after H^(N-i+1).
// Clobbers R10, R11, R13, X0, X7-X11, X13, X15.
#define GHASHN(P, N, loop) \
	MOVQ $8, R10 \
	SUBQ N, R10 \
	SHLQ $4, R10 \
	LEAQ POW(AX)(R10*1), R10 \
	VPXOR X7, X7, X7 \
	VPXOR X8, X8, X8 \
	VPXOR X9, X9, X9 \
	VMOVDQU X12, X15 \
	MOVQ P, R11 \
	MOVQ N, R13 \
loop: \
	VMOVDQU (R11), X0 \
	VPSHUFB bswap<>(SB), X0, X0 \
	VPXOR X15, X0, X0 \
	VPXOR X15, X15, X15 \
	VMOVDQU (R10), X13 \
	VPCLMULQDQ $0x00, X13, X0, X10 \
	VPXOR X10, X7, X7 \
	VPCLMULQDQ $0x11, X13, X0, X10 \
	VPXOR X10, X8, X8 \
	VPCLMULQDQ $0x01, X13, X0, X10 \
	VPXOR X10, X9, X9 \
	VPCLMULQDQ $0x10, X13, X0, X10 \
	VPXOR X10, X9, X9 \
	ADDQ $16, R11 \
	ADDQ $16, R10 \
	DECQ R13 \
	JNZ loop \
	REDUCE

// AES on the one block in X0.
#define ROUND1(off) \
	VMOVDQU off(AX), X5 \
	VAESENC X5, X0, X0

#define AES1(lastlabel) \
	VMOVDQU 0(AX), X5 \
	VPXOR X5, X0, X0 \
	ROUND1(32) \
	ROUND1(64) \
	ROUND1(96) \
	ROUND1(128) \
	ROUND1(160) \
	ROUND1(192) \
	ROUND1(224) \
	ROUND1(256) \
	ROUND1(288) \
	CMPQ R8, $10 \
	JE lastlabel \
	ROUND1(320) \
	ROUND1(352) \
	CMPQ R8, $12 \
	JE lastlabel \
	ROUND1(384) \
	ROUND1(416) \
lastlabel: \
	VMOVDQU (AX)(R9*1), X5 \
	VAESENCLAST X5, X0, X0

// AES on the block in X14 with round keys through X6 (the tag mask
// E(K, J0), computed alongside the bulk work).
#define ROUNDJ(off) \
	VMOVDQU off(AX), X6 \
	VAESENC X6, X14, X14

#define AESJ0(lastlabel) \
	VMOVDQU 0(AX), X6 \
	VPXOR X6, X14, X14 \
	ROUNDJ(32) \
	ROUNDJ(64) \
	ROUNDJ(96) \
	ROUNDJ(128) \
	ROUNDJ(160) \
	ROUNDJ(192) \
	ROUNDJ(224) \
	ROUNDJ(256) \
	ROUNDJ(288) \
	CMPQ R8, $10 \
	JE lastlabel \
	ROUNDJ(320) \
	ROUNDJ(352) \
	CMPQ R8, $12 \
	JE lastlabel \
	ROUNDJ(384) \
	ROUNDJ(416) \
lastlabel: \
	VMOVDQU (AX)(R9*1), X6 \
	VAESENCLAST X6, X14, X14

// Common entry of sealBlocks and openBlocks: the tag mask into *j0, the
// additional data into the hash, then AX key, BX counter block, CX hash,
// DI dst, SI src, DX blocks, R8 rounds, R9 last round key offset, X12
// hash, Y4 counters (lane 0 the next block's, lane 1 the one after, in
// swaplast form).
#define ENTRY \
	MOVQ k+0(FP), AX \
	MOVQ ctr+8(FP), BX \
	MOVQ j0+16(FP), R12 \
	MOVQ acc+24(FP), CX \
	MOVQ ROUNDS(AX), R8 \
	MOVQ R8, R9 \
	SHLQ $5, R9 \
	VMOVDQU (CX), X12 \
	VMOVDQU (R12), X14 \
	AESJ0(lastj0) \
	VMOVDQU X14, (R12) \
	MOVQ pre+32(FP), SI \
	MOVQ npre+40(FP), DX \
	TESTQ DX, DX \
	JZ nopre \
	GHASHN(SI, DX, preloop) \
nopre: \
	MOVQ dst+48(FP), DI \
	MOVQ src+56(FP), SI \
	MOVQ n+64(FP), DX \
	VBROADCASTI128 (BX), Y4 \
	VPSHUFB swaplast<>(SB), Y4, Y4 \
	VPADDD laneinc<>(SB), Y4, Y4

// Keystream for the last (fewer than eight) whole blocks and the one after
// them into the frame; the one after (the partial block's) into *ctr.
#define TAILSTREAM \
	COUNTERS8 \
	AES4(lastt) \
	VMOVDQU Y0, 0(SP) \
	VMOVDQU Y1, 32(SP) \
	VMOVDQU Y2, 64(SP) \
	VMOVDQU Y3, 96(SP) \
	MOVQ DX, R12 \
	SHLQ $4, R12 \
	VMOVDQU (SP)(R12*1), X0 \
	VMOVDQU X0, (BX)

// dst = src XOR keystream for the DX tail blocks (R12 = 16·DX).
#define TAILXOR \
	XORQ R11, R11 \
xorloop: \
	VMOVDQU (SI)(R11*1), X0 \
	VPXOR (SP)(R11*1), X0, X0 \
	VMOVDQU X0, (DI)(R11*1) \
	ADDQ $16, R11 \
	CMPQ R11, R12 \
	JB xorloop

// TAG stores the tag, E(K, J0) XOR the hash (byte order restored), into
// *j0 (where ENTRY left E(K, J0)), and the hash into *acc.
#define TAG \
	VMOVDQU X12, (CX) \
	VPSHUFB bswap<>(SB), X12, X0 \
	MOVQ j0+16(FP), R12 \
	VPXOR (R12), X0, X0 \
	VMOVDQU X0, (R12)

// func sealBlocks(k *expandedKey, ctr, j0, acc *[16]byte, pre *byte, npre int, dst, src *byte, n int, last *byte, rem int)
//
// In: *ctr the first counter block, *j0 the pre-counter block J0, *acc the
// hash so far, npre blocks of additional data at pre, n whole blocks at
// src, rem (0-15) bytes of plaintext zero-padded at last followed by the
// length block. Out: n blocks at dst, the partial block's ciphertext
// (zero-padded) at last, *j0 = the tag, *acc the hash.
TEXT ·sealBlocks(SB), NOSPLIT, $128-88
	ENTRY
	CMPQ DX, $8
	JB   tail

	// Software pipelined: each iteration hashes the previous group's
	// ciphertext (Y6-Y9) between the AES rounds of the next group, so that
	// the hash, which waits for its input, never holds back the AES.
	VMOVDQU X12, X10
	COUNTERS8
	AES4(first)
	XORSTOREKEEP
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $8, DX
	CMPQ DX, $8
	JB   drain

loop8:
	AESHASH8(last8)
	XORSTOREKEEP
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $8, DX
	CMPQ DX, $8
	JAE  loop8

drain:
	SHASH8
	VMOVDQU X10, X12

tail:
	TAILSTREAM
	TESTQ DX, DX
	JZ    partial
	TAILXOR
	GHASHN(DI, DX, tailhash)

partial:
	// The partial block (zero-padded plaintext at *last) becomes its
	// zero-padded ciphertext; it and the length block after it are hashed.
	MOVQ    last+72(FP), SI
	MOVQ    rem+80(FP), DX
	TESTQ   DX, DX
	JZ      lenonly
	VMOVDQU (SI), X0
	VPXOR   (BX), X0, X0
	LEAQ    mask<>+16(SB), R11
	SUBQ    DX, R11
	VPAND   (R11), X0, X0
	VMOVDQU X0, (SI)
	MOVQ    $2, DX
	GHASHN(SI, DX, lasthash)
	JMP     tag

lenonly:
	ADDQ $16, SI
	MOVQ $1, DX
	GHASHN(SI, DX, lenhash)

tag:
	TAG
	VZEROUPPER
	RET

// func openBlocks(k *expandedKey, ctr, j0, acc *[16]byte, pre *byte, npre int, dst, src *byte, n int, last *byte, rem int)
//
// As sealBlocks, hashing the n blocks at src before decrypting them (dst
// may be src); at last the zero-padded partial ciphertext is replaced by
// its plaintext (garbage after rem bytes).
TEXT ·openBlocks(SB), NOSPLIT, $128-88
	ENTRY
	VMOVDQU X12, X10
	CMPQ    DX, $8
	JB      loopdone

loop8:
	// Hash the group's ciphertext between the AES rounds of its
	// keystream; dst may be src, so everything is loaded before the store.
	VMOVDQU 0(SI), Y6
	VMOVDQU 32(SI), Y7
	VMOVDQU 64(SI), Y8
	VMOVDQU 96(SI), Y9
	AESHASH8(last8)
	XORSTORE
	ADDQ $128, SI
	ADDQ $128, DI
	SUBQ $8, DX
	CMPQ DX, $8
	JAE  loop8

loopdone:
	VMOVDQU X10, X12

tail:
	TAILSTREAM
	TESTQ DX, DX
	JZ    partial
	GHASHN(SI, DX, tailhash)
	TAILXOR

partial:
	// Hash the zero-padded partial ciphertext at *last and the length
	// block, then decrypt the partial block in place there.
	MOVQ    last+72(FP), SI
	MOVQ    rem+80(FP), DX
	TESTQ   DX, DX
	JZ      lenonly
	MOVQ    $2, DX
	GHASHN(SI, DX, lasthash)
	VMOVDQU (SI), X0
	VPXOR   (BX), X0, X0
	VMOVDQU X0, (SI)
	JMP     tag

lenonly:
	ADDQ $16, SI
	MOVQ $1, DX
	GHASHN(SI, DX, lenhash)

tag:
	TAG
	VZEROUPPER
	RET

// func ghashBlocks(k *expandedKey, acc *[16]byte, data *byte, n int)
TEXT ·ghashBlocks(SB), NOSPLIT, $0-32
	MOVQ    k+0(FP), AX
	MOVQ    acc+8(FP), CX
	MOVQ    data+16(FP), SI
	MOVQ    n+24(FP), DX
	VMOVDQU (CX), X10
	CMPQ    DX, $8
	JB      loopdone

loop8:
	VMOVDQU 0(SI), Y6
	VMOVDQU 32(SI), Y7
	VMOVDQU 64(SI), Y8
	VMOVDQU 96(SI), Y9
	SHASH8
	ADDQ    $128, SI
	SUBQ    $8, DX
	CMPQ    DX, $8
	JAE     loop8

loopdone:
	VMOVDQU X10, X12

tail:
	TESTQ DX, DX
	JZ    done
	GHASHN(SI, DX, tailhash)

done:
	VMOVDQU X12, (CX)
	VZEROUPPER
	RET

// func encryptBlock(k *expandedKey, dst, src *[16]byte)
TEXT ·encryptBlock(SB), NOSPLIT, $0-24
	MOVQ    k+0(FP), AX
	MOVQ    dst+8(FP), DI
	MOVQ    src+16(FP), SI
	MOVQ    ROUNDS(AX), R8
	MOVQ    R8, R9
	SHLQ    $5, R9
	VMOVDQU (SI), X0
	AES1(last)
	VMOVDQU X0, (DI)
	VZEROUPPER
	RET

// func cpuid(leaf, sub uint32) (a, b, c, d uint32)
TEXT ·cpuid(SB), NOSPLIT, $0-24
	MOVL leaf+0(FP), AX
	MOVL sub+4(FP), CX
	CPUID
	MOVL AX, a+8(FP)
	MOVL BX, b+12(FP)
	MOVL CX, c+16(FP)
	MOVL DX, d+20(FP)
	RET

// func xgetbv() (lo, hi uint32)
TEXT ·xgetbv(SB), NOSPLIT, $0-8
	MOVL $0, CX
	XGETBV
	MOVL AX, lo+0(FP)
	MOVL DX, hi+4(FP)
	RET
