package ikev2

import "testing"

// TestReassemblyLimits: more than 255 fragments, or more than 64 KiB of
// held fragments, abandon the message.
func TestReassemblyLimits(t *testing.T) {
	var r reassembly
	if err := r.limit(maxFragments+1, 100); err == nil {
		t.Error("256 fragments accepted")
	}
	r = reassembly{}
	for i := range maxReassembly / 1280 {
		if err := r.limit(maxFragments, 1280); err != nil {
			t.Fatalf("fragment %d (%d bytes held): %v", i, r.bytes, err)
		}
	}
	if err := r.limit(maxFragments, 1280); err == nil {
		t.Errorf("%d bytes of fragments held", r.bytes)
	}
}
