// Package aesgcm is AES-GCM (NIST SP 800-38D) for x86-64 processors with
// VAES and VPCLMULQDQ: AES rounds and GHASH multiplications on 256-bit
// vectors, two blocks per instruction, eight blocks per loop iteration with
// one GHASH reduction per eight blocks.
//
// Why: the ESP dataplane spends most of its CPU time in AES-GCM, and the
// standard library's assembly works on one 128-bit block per instruction.
// On the processors that have the vector forms of AESENC and PCLMULQDQ
// (AMD Zen 3 and later, Intel Ice Lake and later) this package seals and
// opens ESP-sized packets about twice as fast. Elsewhere Supported reports
// false and callers use crypto/cipher's GCM, with which this package's
// output is identical (tested on random keys, nonces, lengths and
// alignments).
//
// The GHASH arithmetic follows the byte-reflected method of Gueron and
// Kounavis ("Intel Carry-Less Multiplication Instruction and its Usage for
// Computing the GCM Mode"): blocks are byte-reversed into registers, the
// hash key is premultiplied by x so that products need no shift, and
// reduction modulo x^128+x^7+x^2+x+1 takes two carry-less multiplications
// by 0xC2 << 56.
package aesgcm
