package config

import (
	"testing"
	"time"
)

func TestValues(t *testing.T) {
	durs := map[string]time.Duration{"30": 30 * time.Second, "30s": 30 * time.Second, "8m": 8 * time.Minute, "1h": time.Hour,
		"1d": 24 * time.Hour, "1.5h": 90 * time.Minute, "86400s": 24 * time.Hour, "0": 0}
	for in, want := range durs {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "x", "1x", "-5", "1e3", "NaN", "inf", "0x10", "400d", "s"} {
		if _, err := ParseDuration(bad); err == nil {
			t.Errorf("duration %q accepted", bad)
		}
	}
	sizes := map[string]uint64{"100": 100, "4k": 4096, "4K": 4096, "2m": 2 << 20, "1g": 1 << 30, "1G": 1 << 30, "1t": 1 << 40, "10kB": 10240}
	for in, want := range sizes {
		if got, err := parseSize(in); err != nil || got != want {
			t.Errorf("%q: %v %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "-1", "4q", "99999999999999999999", "20000000t"} {
		if _, err := parseSize(bad); err == nil {
			t.Errorf("size %q accepted", bad)
		}
	}
}
