//go:build !amd64

package aescbc

// Supported reports whether the assembly can run: never on this architecture.
func Supported() bool { return false }

func invMixColumns(*[BlockSize]byte, *[BlockSize]byte) { panic("aescbc: unsupported") }
func decryptBlocks(*Key, *[BlockSize]byte, *byte, int) { panic("aescbc: unsupported") }
func encryptLanes(*lanes, int64, int)                  { panic("aescbc: unsupported") }
