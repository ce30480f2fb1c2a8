// Package aescbc is AES-CBC (NIST SP 800-38A §6.2) for x86-64 processors
// with AES-NI and AVX, built for the ESP dataplane.
//
// Why: CBC encryption is serial within a message (each block's input is the
// previous block's output), so encrypting one packet at a time keeps one
// AESENC in flight while the processor could pipeline several; the standard
// library's CBC decryption calls the block cipher once per block. This
// package encrypts up to eight independent messages at once, one per
// register lane, each lane with its own key schedule and IV
// (EncryptMulti, the "multi-buffer" technique of Intel's IPsec library and
// VPP), and decrypts one message eight blocks at a time (Decrypt), which CBC
// allows because every plaintext block depends only on two ciphertext
// blocks.
//
// The 128-bit VEX forms of AESENC/AESDEC are used (memory operands need no
// alignment); the 256/512-bit VAES forms would need the lanes' round keys
// interleaved per instruction and bring little while HMAC dominates the
// per-byte cost of a CBC+HMAC packet.
//
// Supported reports false on other architectures and processors; callers
// then use crypto/cipher's CBC, with which this package's output is
// identical (tested on random keys of all sizes, IVs, lengths and lane
// mixes).
package aescbc
