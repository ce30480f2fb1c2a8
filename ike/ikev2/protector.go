package ikev2

import (
	"fmt"

	"github.com/ipsecgw/ipsecgw/transform"
)

// protector builds the SK payload protector of one direction (outbound:
// ours; otherwise the peer's) from the IKE SA's keys, for one message; the
// caller closes it. None is kept between messages: an established IKE SA
// is idle nearly all its life, and a pair of protectors holds about 4 KB
// for aes128-sha256 (AES key schedules, HMAC pad states, per-call
// scratch), against a few microseconds to build one when a message is
// sealed or opened. The handshake builds as many as before (one per
// direction).
func (sa *ikeSA) protector(outbound bool) (*transform.Protector, error) {
	if !sa.keys.Derived() {
		return nil, errNoKeys
	}
	p, err := sa.keys.Protector(sa.alg.Encr, sa.alg.Integ, sa.initiator, outbound)
	if err != nil {
		return nil, fmt.Errorf("IKE SA protection %s: %w", sa.alg, err)
	}
	return p, nil
}
