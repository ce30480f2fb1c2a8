package ike

import (
	"testing"
	"testing/cryptotest"
)

// fuzzInput gives the input t runs of a stateful fuzz target the same
// deterministic crypto/rand stream as every other input
// (testing/cryptotest), until t ends. The gateway's SPIs, nonces, IVs
// and key pairs are then the same in every run of an input, so that a
// failing input replays exactly, and the peers' X25519 shared secret
// with the gateway's public value is computed once per process
// (peerShared) instead of once an input.
func fuzzInput(t *testing.T) {
	cryptotest.SetGlobalRandom(t, 1)
}
