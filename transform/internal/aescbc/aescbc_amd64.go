package aescbc

import "golang.org/x/sys/cpu"

// Supported reports whether this processor has AES-NI and AVX (the
// assembly uses the VEX-encoded 128-bit AES instructions).
func Supported() bool { return cpu.X86.HasAES && cpu.X86.HasAVX }

// invMixColumns sets *dst to InvMixColumns(*src) (AESIMC).
//
//go:noescape
func invMixColumns(dst, src *[BlockSize]byte)

// decryptBlocks decrypts n blocks at data in place, chained from *iv.
//
//go:noescape
func decryptBlocks(k *Key, iv *[BlockSize]byte, data *byte, n int)

// encryptLanes encrypts n blocks in each of the eight lanes of l in place
// (keys with nr rounds), leaving each lane's last ciphertext block in its
// chaining value. It does not advance l.data.
//
//go:noescape
func encryptLanes(l *lanes, nr int64, n int)
