#include "textflag.h"

// Layout of Key (aescbc.go): encryption round keys at 0 (15 x 16 bytes),
// decryption round keys at 240, rounds at 480. Layout of lanes: eight input
// pointers at 0, eight *Key at 64, eight chaining values at 128.
#define DEC 240
#define ROUNDS 480
#define KEYS 64
#define CHAIN 128

#define ENC8(off) \
	VAESENC off(R8), X0, X0 \
	VAESENC off(R9), X1, X1 \
	VAESENC off(R10), X2, X2 \
	VAESENC off(R11), X3, X3 \
	VAESENC off(R12), X4, X4 \
	VAESENC off(R13), X5, X5 \
	VAESENC off(R14), X6, X6 \
	VAESENC off(R15), X7, X7

#define LAST8(off) \
	VAESENCLAST off(R8), X0, X0 \
	VAESENCLAST off(R9), X1, X1 \
	VAESENCLAST off(R10), X2, X2 \
	VAESENCLAST off(R11), X3, X3 \
	VAESENCLAST off(R12), X4, X4 \
	VAESENCLAST off(R13), X5, X5 \
	VAESENCLAST off(R14), X6, X6 \
	VAESENCLAST off(R15), X7, X7

#define KEY8(off) \
	VPXOR off(R8), X0, X0 \
	VPXOR off(R9), X1, X1 \
	VPXOR off(R10), X2, X2 \
	VPXOR off(R11), X3, X3 \
	VPXOR off(R12), X4, X4 \
	VPXOR off(R13), X5, X5 \
	VPXOR off(R14), X6, X6 \
	VPXOR off(R15), X7, X7

#define DEC8(off) \
	VMOVDQU off(AX), X8 \
	VAESDEC X8, X0, X0 \
	VAESDEC X8, X1, X1 \
	VAESDEC X8, X2, X2 \
	VAESDEC X8, X3, X3 \
	VAESDEC X8, X4, X4 \
	VAESDEC X8, X5, X5 \
	VAESDEC X8, X6, X6 \
	VAESDEC X8, X7, X7

#define DECLAST8(off) \
	VMOVDQU off(AX), X8 \
	VAESDECLAST X8, X0, X0 \
	VAESDECLAST X8, X1, X1 \
	VAESDECLAST X8, X2, X2 \
	VAESDECLAST X8, X3, X3 \
	VAESDECLAST X8, X4, X4 \
	VAESDECLAST X8, X5, X5 \
	VAESDECLAST X8, X6, X6 \
	VAESDECLAST X8, X7, X7

// func invMixColumns(dst, src *[16]byte)
TEXT ·invMixColumns(SB), NOSPLIT, $0-16
	MOVQ    dst+0(FP), DI
	MOVQ    src+8(FP), SI
	VMOVDQU (SI), X0
	VAESIMC X0, X1
	VMOVDQU X1, (DI)
	RET

// func encryptLanes(l *lanes, nr int64, n int)
//
// Each lane is an independent CBC chain: per block, the plaintext is XORed
// into the lane's chaining value and the result encrypted with the lane's
// key; the eight encryptions of one block position overlap in the AES unit.
// R8-R15 hold the lanes' key schedules, CX the byte offset in every lane.
TEXT ·encryptLanes(SB), NOSPLIT, $0-24
	MOVQ l+0(FP), DI
	MOVQ nr+8(FP), AX
	MOVQ n+16(FP), DX
	SHLQ $4, DX
	TESTQ DX, DX
	JZ   ret
	MOVQ KEYS+0(DI), R8
	MOVQ KEYS+8(DI), R9
	MOVQ KEYS+16(DI), R10
	MOVQ KEYS+24(DI), R11
	MOVQ KEYS+32(DI), R12
	MOVQ KEYS+40(DI), R13
	MOVQ KEYS+48(DI), R14
	MOVQ KEYS+56(DI), R15
	VMOVDQU CHAIN+0(DI), X0
	VMOVDQU CHAIN+16(DI), X1
	VMOVDQU CHAIN+32(DI), X2
	VMOVDQU CHAIN+48(DI), X3
	VMOVDQU CHAIN+64(DI), X4
	VMOVDQU CHAIN+80(DI), X5
	VMOVDQU CHAIN+96(DI), X6
	VMOVDQU CHAIN+112(DI), X7
	XORQ CX, CX
eloop:
	MOVQ 0(DI), SI
	VPXOR (SI)(CX*1), X0, X0
	MOVQ 8(DI), SI
	VPXOR (SI)(CX*1), X1, X1
	MOVQ 16(DI), SI
	VPXOR (SI)(CX*1), X2, X2
	MOVQ 24(DI), SI
	VPXOR (SI)(CX*1), X3, X3
	MOVQ 32(DI), SI
	VPXOR (SI)(CX*1), X4, X4
	MOVQ 40(DI), SI
	VPXOR (SI)(CX*1), X5, X5
	MOVQ 48(DI), SI
	VPXOR (SI)(CX*1), X6, X6
	MOVQ 56(DI), SI
	VPXOR (SI)(CX*1), X7, X7
	KEY8(0)
	ENC8(16)
	ENC8(32)
	ENC8(48)
	ENC8(64)
	ENC8(80)
	ENC8(96)
	ENC8(112)
	ENC8(128)
	ENC8(144)
	CMPQ AX, $12
	JB   elast10
	ENC8(160)
	ENC8(176)
	CMPQ AX, $12
	JE   elast12
	ENC8(192)
	ENC8(208)
	LAST8(224)
	JMP  estore
elast12:
	LAST8(192)
	JMP  estore
elast10:
	LAST8(160)
estore:
	MOVQ 0(DI), SI
	VMOVDQU X0, (SI)(CX*1)
	MOVQ 8(DI), SI
	VMOVDQU X1, (SI)(CX*1)
	MOVQ 16(DI), SI
	VMOVDQU X2, (SI)(CX*1)
	MOVQ 24(DI), SI
	VMOVDQU X3, (SI)(CX*1)
	MOVQ 32(DI), SI
	VMOVDQU X4, (SI)(CX*1)
	MOVQ 40(DI), SI
	VMOVDQU X5, (SI)(CX*1)
	MOVQ 48(DI), SI
	VMOVDQU X6, (SI)(CX*1)
	MOVQ 56(DI), SI
	VMOVDQU X7, (SI)(CX*1)
	ADDQ $16, CX
	CMPQ CX, DX
	JB   eloop
	VMOVDQU X0, CHAIN+0(DI)
	VMOVDQU X1, CHAIN+16(DI)
	VMOVDQU X2, CHAIN+32(DI)
	VMOVDQU X3, CHAIN+48(DI)
	VMOVDQU X4, CHAIN+64(DI)
	VMOVDQU X5, CHAIN+80(DI)
	VMOVDQU X6, CHAIN+96(DI)
	VMOVDQU X7, CHAIN+112(DI)
ret:
	RET

// func decryptBlocks(k *Key, iv *[16]byte, data *byte, n int)
//
// Eight blocks per iteration go through the rounds together; each is then
// XORed with the ciphertext block before it, read before any store (the
// last one of the iteration is kept in X15 for the next).
TEXT ·decryptBlocks(SB), NOSPLIT, $0-32
	MOVQ    k+0(FP), AX
	MOVQ    iv+8(FP), BX
	MOVQ    data+16(FP), SI
	MOVQ    n+24(FP), CX
	MOVQ    ROUNDS(AX), DX
	VMOVDQU (BX), X15
	LEAQ    DEC(AX), AX
dloop8:
	CMPQ CX, $8
	JB   dtail
	VMOVDQU 0(SI), X0
	VMOVDQU 16(SI), X1
	VMOVDQU 32(SI), X2
	VMOVDQU 48(SI), X3
	VMOVDQU 64(SI), X4
	VMOVDQU 80(SI), X5
	VMOVDQU 96(SI), X6
	VMOVDQU 112(SI), X7
	VMOVDQU (AX), X8
	VPXOR X8, X0, X0
	VPXOR X8, X1, X1
	VPXOR X8, X2, X2
	VPXOR X8, X3, X3
	VPXOR X8, X4, X4
	VPXOR X8, X5, X5
	VPXOR X8, X6, X6
	VPXOR X8, X7, X7
	DEC8(16)
	DEC8(32)
	DEC8(48)
	DEC8(64)
	DEC8(80)
	DEC8(96)
	DEC8(112)
	DEC8(128)
	DEC8(144)
	CMPQ DX, $12
	JB   dlast10
	DEC8(160)
	DEC8(176)
	CMPQ DX, $12
	JE   dlast12
	DEC8(192)
	DEC8(208)
	DECLAST8(224)
	JMP  dxor
dlast12:
	DECLAST8(192)
	JMP  dxor
dlast10:
	DECLAST8(160)
dxor:
	VPXOR X15, X0, X0
	VPXOR 0(SI), X1, X1
	VPXOR 16(SI), X2, X2
	VPXOR 32(SI), X3, X3
	VPXOR 48(SI), X4, X4
	VPXOR 64(SI), X5, X5
	VPXOR 80(SI), X6, X6
	VPXOR 96(SI), X7, X7
	VMOVDQU 112(SI), X15
	VMOVDQU X0, 0(SI)
	VMOVDQU X1, 16(SI)
	VMOVDQU X2, 32(SI)
	VMOVDQU X3, 48(SI)
	VMOVDQU X4, 64(SI)
	VMOVDQU X5, 80(SI)
	VMOVDQU X6, 96(SI)
	VMOVDQU X7, 112(SI)
	ADDQ $128, SI
	SUBQ $8, CX
	JMP  dloop8
dtail:
	TESTQ CX, CX
	JZ    dret
	VMOVDQU (SI), X0
	VMOVDQU X0, X9
	VPXOR   (AX), X0, X0
	MOVQ    DX, R9
	DECQ    R9
	LEAQ    16(AX), R10
dround:
	VAESDEC (R10), X0, X0
	ADDQ    $16, R10
	DECQ    R9
	JNZ     dround
	VAESDECLAST (R10), X0, X0
	VPXOR   X15, X0, X0
	VMOVDQU X0, (SI)
	VMOVDQU X9, X15
	ADDQ    $16, SI
	DECQ    CX
	JMP     dtail
dret:
	RET
