package main

import (
	"slices"
	"testing"
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
