package aesgcm

import "sync"

// Supported reports whether this processor (and the operating system's
// saved vector state) allows the 256-bit VAES and VPCLMULQDQ code.
func Supported() bool { return supported() }

var supported = sync.OnceValue(func() bool {
	const (
		// CPUID.1:ECX
		pclmulqdq = 1 << 1
		aesni     = 1 << 25
		osxsave   = 1 << 27
		avx       = 1 << 28
		// CPUID.(7,0):EBX and ECX
		avx2       = 1 << 5
		vaes       = 1 << 9
		vpclmulqdq = 1 << 10
	)
	maxLeaf, _, _, _ := cpuid(0, 0)
	if maxLeaf < 7 {
		return false
	}
	_, _, c1, _ := cpuid(1, 0)
	if c1&(pclmulqdq|aesni|osxsave|avx) != pclmulqdq|aesni|osxsave|avx {
		return false
	}
	// The OS must save XMM and YMM state (XCR0 bits 1 and 2).
	if xcr0, _ := xgetbv(); xcr0&6 != 6 {
		return false
	}
	_, b7, c7, _ := cpuid(7, 0)
	return b7&avx2 != 0 && c7&(vaes|vpclmulqdq) == vaes|vpclmulqdq
})

// sealBlocks absorbs npre blocks at pre (the padded additional data) into
// the hash *acc (register form), encrypts n whole blocks from src to dst in
// counter mode starting at the counter block *ctr, and absorbs them too.
// last holds the rem (0 to 15) remaining bytes of plaintext, zero-padded,
// and then the length block: the first becomes the zero-padded ciphertext,
// both are absorbed. *j0 goes in as J0 and comes back as the tag (E(K, J0)
// XOR the hash). npre is at most 8.
//
//go:noescape
func sealBlocks(k *expandedKey, ctr, j0, acc *[16]byte, pre *byte, npre int, dst, src *byte, n int, last *byte, rem int)

// openBlocks is sealBlocks for decryption: it hashes the ciphertext at
// src before decrypting it to dst (which may be src), and hashes the
// zero-padded partial ciphertext at last before replacing it with the
// plaintext (its bytes after rem are then garbage).
//
//go:noescape
func openBlocks(k *expandedKey, ctr, j0, acc *[16]byte, pre *byte, npre int, dst, src *byte, n int, last *byte, rem int)

// ghashBlocks absorbs n whole blocks from data into *acc.
//
//go:noescape
func ghashBlocks(k *expandedKey, acc *[16]byte, data *byte, n int)

// encryptBlock is one AES block encryption.
//
//go:noescape
func encryptBlock(k *expandedKey, dst, src *[16]byte)

func cpuid(leaf, sub uint32) (a, b, c, d uint32)

func xgetbv() (lo, hi uint32)
