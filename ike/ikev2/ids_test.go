package ikev2

import (
	"testing"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/ikev2/message"
)

func TestIDRoundTrip(t *testing.T) {
	for _, s := range []string{"198.51.100.1", "2001:db8::1", "@gw.example", "alice@example.org", "@#0a0b0c", "C=CH, O=Example Corp, CN=gw"} {
		id, err := config.ParseIdentity(s)
		if err != nil {
			t.Fatal(err)
		}
		w, ok := wireID(id, false)
		if !ok {
			t.Fatalf("%s: not encodable", s)
		}
		parsed, _, err := message.ParseID(message.AppendID(nil, w))
		if err != nil {
			t.Fatal(err)
		}
		back, ok := configID(parsed)
		if !ok || !back.Equal(id) {
			t.Errorf("%s → %v → %v", s, w, back)
		}
	}
}
