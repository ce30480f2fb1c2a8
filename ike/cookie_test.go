package ike

import (
	"net/netip"
	"testing"
)

// TestNeedCookieThresholds: with the defaults, three half-open SAs from one
// address make that address (and only it) send cookies, and 30 half-open
// SAs in total make everybody send them.
func TestNeedCookieThresholds(t *testing.T) {
	ca, cb := confPair("net", "", "")
	_, b, _, _ := pair(t, ca, secrets, cb, secrets, testOpts{})
	m := b.m
	flood := netip.MustParseAddr("192.0.2.66")
	other := netip.MustParseAddr("192.0.2.7")
	add := func(ip netip.Addr, port uint16) halfKey {
		k := halfKey{netip.AddrPortFrom(ip, port), uint64(port) + 1}
		m.mu.Lock()
		m.halfOpen[k] = nil // needCookie only counts keys
		m.mu.Unlock()
		return k
	}
	var keys []halfKey
	defer func() {
		m.mu.Lock()
		for _, k := range keys {
			delete(m.halfOpen, k)
		}
		m.mu.Unlock()
	}()
	for i := range DefaultCookieThresholdIP - 1 {
		keys = append(keys, add(flood, uint16(1000+i)))
	}
	if m.needCookie(flood) {
		t.Fatalf("cookie required after %d half-open SAs from one address", DefaultCookieThresholdIP-1)
	}
	keys = append(keys, add(flood, 2000))
	if !m.needCookie(flood) {
		t.Fatalf("no cookie required after %d half-open SAs from one address", DefaultCookieThresholdIP)
	}
	if m.needCookie(other) {
		t.Fatal("another address must not need a cookie below the global threshold")
	}
	for i := 0; len(keys) < DefaultCookieThreshold; i++ {
		ip := netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)})
		keys = append(keys, add(ip, 500))
	}
	if !m.needCookie(other) {
		t.Fatalf("no cookie required with %d half-open SAs", len(keys))
	}
	m.opts.CookieThreshold = -1
	if m.needCookie(flood) {
		t.Fatal("cookies required although disabled")
	}
}
