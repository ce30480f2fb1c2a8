//go:build !amd64

package hmacsha1

// Supported reports whether the assembly can run: never on this architecture.
func Supported() bool { return false }

func blocks2(*lanes, int) { panic("hmacsha1: unsupported") }

func wideSupported() bool { return false }

func blocks16(*lanes16, int) { panic("hmacsha1: unsupported") }
