package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

// TestRoundOrder: ipsecgw and ipsecgw-baseline swap places in the even
// repetitions and nothing else moves; without both, the order stays.
func TestRoundOrder(t *testing.T) {
	all := []string{"strongswan", "ipsecgw", baselineResponder, "ipsecgw-pair"}
	if got := roundOrder(all, 1); !slices.Equal(got, all) {
		t.Errorf("rep 1: %v", got)
	}
	if got, want := roundOrder(all, 2), []string{"strongswan", baselineResponder, "ipsecgw", "ipsecgw-pair"}; !slices.Equal(got, want) {
		t.Errorf("rep 2: %v, want %v", got, want)
	}
	if got := roundOrder(all, 3); !slices.Equal(got, all) {
		t.Errorf("rep 3: %v", got)
	}
	if all[1] != "ipsecgw" {
		t.Error("roundOrder changed its argument")
	}
	plain := []string{"strongswan", "ipsecgw"}
	if got := roundOrder(plain, 2); !slices.Equal(got, plain) {
		t.Errorf("without a baseline, rep 2: %v", got)
	}
}

// TestIdlePerPair: the per-pair figure is the N-idle run's RSS less the
// single tunnel's, divided by N, on the medians of the repetitions; a
// failed run counts in neither.
func TestIdlePerPair(t *testing.T) {
	r := &Report{Options: options{IdleN: 1000, IdleSettle: 90 * time.Second}}
	add := func(idle int, initRSS, respRSS, initIdle, respIdle int64, failed bool) {
		x := Idle{Idle: idle, InitiatorRSSKiB: initRSS, ResponderRSSKiB: respRSS, InitiatorIdleRSSKiB: initIdle, ResponderIdleRSSKiB: respIdle}
		if failed {
			x.Error = "boom"
		}
		r.Idle = append(r.Idle, x)
	}
	add(0, 20_000, 19_000, 18_000, 17_000, false)
	add(1000, 40_000, 35_000, 30_000, 25_000, false)
	add(0, 22_000, 21_000, 20_000, 19_000, false)
	add(1000, 42_000, 37_000, 32_000, 27_000, false)
	add(1000, 900_000, 900_000, 900_000, 900_000, true)
	md := r.idleMarkdown()
	// Medians: single 21,000/20,000 and 19,000/18,000; 1,000 idle
	// 41,000/36,000 and 31,000/26,000.
	want := "after the setup initiator 20.0, responder 16.0; after 1m30s idle initiator 12.0, responder 8.0"
	if !strings.Contains(md, want) {
		t.Fatalf("idle report lacks %q:\n%s", want, md)
	}
}
