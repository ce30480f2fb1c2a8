package install

import (
	"bytes"
	"testing"

	"github.com/ipsecgw/ipsecgw/ike"
	"github.com/ipsecgw/ipsecgw/sad"
	"github.com/ipsecgw/ipsecgw/spd"
	"github.com/ipsecgw/ipsecgw/transform"
)

// TestInstallAH: an AH CHILD SA becomes a pair of AH SAs with
// integrity-only protectors, never UDP-encapsulated, and is removed like
// an ESP one.
func TestInstallAH(t *testing.T) {
	table := sad.NewTable(sad.Options{})
	defer table.Close()
	inst := New(table, &spd.Live{}, Options{Router: &recRouter{}})
	c := gcmChild("net", 7, 0x1000, 0x2000)
	c.Protocol = ike.ProtoAH
	c.Encr, c.InEncrKey, c.OutEncrKey = transform.Transform{}, nil, nil
	c.Integ = transform.Transform{Type: transform.TypeINTEG, ID: transform.IntegHMACSHA2_256_128}
	c.InIntegKey, c.OutIntegKey = bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	if err := inst.Install(c); err != nil {
		t.Fatal(err)
	}
	in, out := table.Inbound(0x1000), table.Outbound(7)
	if in == nil || out == nil {
		t.Fatal("AH SAs not installed")
	}
	for _, sa := range []*sad.SA{in, out} {
		if sa.Proto() != sad.AH || sa.UDPEncap() || sa.Cipher().ICVSize() != 16 || sa.Cipher().IVSize() != 0 {
			t.Errorf("%v: proto %v encap %v ICV %d", sa, sa.Proto(), sa.UDPEncap(), sa.Cipher().ICVSize())
		}
	}
	if err := inst.Remove("net", 0x1000, 0x2000); err != nil {
		t.Fatal(err)
	}
	if table.Inbound(0x1000) != nil || table.Outbound(7) != nil {
		t.Error("AH SAs left after Remove")
	}
}
