package ike

import (
	"strconv"
	"strings"
	"testing"
	"testing/synctest"

	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
)

// TestFragmentedAuth: with a fragment size of 400 bytes, IKE_AUTH in both
// directions (40 subnets on each side) goes out as SKF fragments no larger
// than the limit, the peer reassembles them, and the CHILD SA is up.
// With fragmentation=accept on A, A sends whole messages while B still
// fragments.
func TestFragmentedAuth(t *testing.T) {
	subnets := func(second byte) string {
		var b []string
		for i := range 40 {
			b = append(b, "10."+itoa(int(second))+"."+itoa(i)+".0/24")
		}
		return strings.Join(b, ",")
	}
	for _, tc := range []struct {
		name       string
		extraA     string
		wantFragsA bool
	}{{"yes", "", true}, {"accept", "fragmentation=accept", false}} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				ca, cb := confPair("net", tc.extraA, "")
				ca = strings.NewReplacer("leftsubnet=10.1.0.0/24", "leftsubnet="+subnets(1), "rightsubnet=10.2.0.0/24", "rightsubnet="+subnets(2)).Replace(ca)
				cb = strings.NewReplacer("leftsubnet=10.2.0.0/24", "leftsubnet="+subnets(2), "rightsubnet=10.1.0.0/24", "rightsubnet="+subnets(1)).Replace(cb)
				a, b, net, _ := pair(t, ca, secrets, cb, secrets, testOpts{fragmentSize: 400})
				a.m.Up("net")
				synctest.Wait()
				if s := status(a, "net"); s.State != StateEstablished || len(s.Children) != 1 {
					t.Fatalf("A: %s %q", s.State, s.Reason)
				}
				frags := map[bool]int{}
				for _, p := range net.packets() {
					h, _, err := message.ParseHeader(p.data)
					if err != nil {
						t.Fatal(err)
					}
					if h.NextPayload == message.PayloadSKF {
						frags[p.from.Addr() == addrA]++
						if len(p.data)+28 > 400 {
							t.Errorf("fragment of %d bytes exceeds the 400-byte datagram limit", len(p.data))
						}
					} else if h.Exchange == message.IKE_AUTH && len(p.data)+28 > 400 && (p.from.Addr() != addrA || tc.wantFragsA) {
						t.Errorf("IKE_AUTH of %d bytes sent whole from %s", len(p.data), p.from)
					}
				}
				if (frags[true] > 0) != tc.wantFragsA || frags[false] == 0 {
					t.Errorf("fragments from A: %d, from B: %d", frags[true], frags[false])
				}
				t.Logf("fragments: A→B %d, B→A %d", frags[true], frags[false])
				closeAll(t, synctest.Wait, a, b)
			})
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
