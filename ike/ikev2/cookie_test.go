package ikev2

import (
	"net/netip"
	"testing"
	"time"
)

// TestCookieJar: a cookie is valid for the initiator it was made for, with
// the secret it was made with and the one after; a changed byte, another
// nonce, address or SPI, or a secret two generations old, is refused.
func TestCookieJar(t *testing.T) {
	var j cookieJar
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ni := []byte("nonce of the initiator")
	ip := netip.MustParseAddr("198.51.100.7")
	c := j.make(now, ni, ip, 0x1122)
	if !j.valid(now, c, ni, ip, 0x1122) {
		t.Fatal("genuine cookie refused")
	}
	forged := append([]byte(nil), c...)
	forged[len(forged)-1] ^= 1
	for name, ok := range map[string]bool{
		"forged":      j.valid(now, forged, ni, ip, 0x1122),
		"other nonce": j.valid(now, c, []byte("another nonce"), ip, 0x1122),
		"other addr":  j.valid(now, c, ni, netip.MustParseAddr("198.51.100.8"), 0x1122),
		"other SPI":   j.valid(now, c, ni, ip, 0x1123),
		"short":       j.valid(now, c[:10], ni, ip, 0x1122),
	} {
		if ok {
			t.Errorf("%s cookie accepted", name)
		}
	}
	later := now.Add(CookieSecretLifetime)
	if !j.valid(later, c, ni, ip, 0x1122) {
		t.Error("cookie of the previous secret refused after one change")
	}
	if j.valid(later.Add(CookieSecretLifetime), c, ni, ip, 0x1122) {
		t.Error("cookie two secrets old accepted")
	}
}
