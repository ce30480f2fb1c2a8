//go:build !amd64

package aesgcm

// Supported reports false: the vector code is x86-64 only.
func Supported() bool { return false }

// The assembly's entry points exist only on amd64; New refuses before any
// of these could run.
func sealBlocks(*expandedKey, *[16]byte, *[16]byte, *[16]byte, *byte, int, *byte, *byte, int, *byte, int) {
	panic("aesgcm: unsupported")
}
func openBlocks(*expandedKey, *[16]byte, *[16]byte, *[16]byte, *byte, int, *byte, *byte, int, *byte, int) {
	panic("aesgcm: unsupported")
}
func ghashBlocks(*expandedKey, *[16]byte, *byte, int) { panic("aesgcm: unsupported") }
func encryptBlock(*expandedKey, *[16]byte, *[16]byte) { panic("aesgcm: unsupported") }
