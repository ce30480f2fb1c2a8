//go:build !amd64

package checksum

// There is no vector code outside amd64. useAVX2 is a false constant, so
// the AVX2 branch in Sum compiles away and sumAVX2 is never called.
const (
	useAVX2    = false
	avx2MinLen = 0
)

func sumAVX2([]byte) uint64 { panic("checksum: no AVX2 code on this architecture") }
