package daemon

import "testing"

func TestOffIfZero(t *testing.T) {
	if offIfZero(0) != -1 || offIfZero(30) != 30 {
		t.Error("offIfZero: 0 must turn a threshold off, others pass through")
	}
}
