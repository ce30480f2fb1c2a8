package daemon

import (
	"net/netip"
	"testing"

	"github.com/ipsecgw/ipsecgw/install"
	"github.com/ipsecgw/ipsecgw/transform"
)

// TestFormatKeysAH: AH CHILD SAs go into the ah_sa table (source,
// destination, SPI, integrity algorithm and key per direction), not into
// Wireshark's ESP table, and count as CHILD SAs.
func TestFormatKeysAH(t *testing.T) {
	ap := netip.MustParseAddrPort
	integ := func(id transform.ID) transform.Transform {
		return transform.Transform{Type: transform.TypeINTEG, ID: id}
	}
	k := formatKeys([]install.ChildKeys{
		{Conn: "h", InSPI: 0xa1, OutSPI: 0xa2, Local: ap("198.51.100.1:0"), Remote: ap("198.51.100.2:0"), AH: true,
			Integ: integ(transform.IntegHMACSHA2_256_128), InInteg: []byte{1, 2}, OutInteg: []byte{3, 4}},
		{Conn: "x", InSPI: 0xb1, OutSPI: 0xb2, Local: ap("[2001:db8::1]:0"), Remote: ap("[2001:db8::2]:0"), AH: true,
			Integ: integ(transform.IntegAESXCBC96), InInteg: []byte{5}, OutInteg: []byte{6}},
	}, nil)
	want := `"IPv4","198.51.100.2","198.51.100.1","0x000000a1","HMAC-SHA-256-128 [RFC4868]","0x0102"` + "\n" +
		`"IPv4","198.51.100.1","198.51.100.2","0x000000a2","HMAC-SHA-256-128 [RFC4868]","0x0304"` + "\n" +
		`"IPv6","2001:db8::2","2001:db8::1","0x000000b1","AES-XCBC-MAC-96 [RFC3566]","0x05"` + "\n" +
		`"IPv6","2001:db8::1","2001:db8::2","0x000000b2","AES-XCBC-MAC-96 [RFC3566]","0x06"` + "\n"
	if k.AHSA != want {
		t.Errorf("ah_sa:\n%s\nwant\n%s", k.AHSA, want)
	}
	if k.ESPSA != "" || k.ChildSAs != 2 || len(k.Unsupported) != 0 {
		t.Errorf("esp_sa %q, %d CHILD SAs, unsupported %v", k.ESPSA, k.ChildSAs, k.Unsupported)
	}
}
