package ikev2

import "testing"

// TestReassemblyLimits: more than 255 fragments, or more than 64 KiB of
// held fragments, abandon the message.
func TestReassemblyLimits(t *testing.T) {
	sa := &ikeSA{}
	if err := sa.limitReassembly(maxFragments+1, 100); err == nil {
		t.Error("256 fragments accepted")
	}
	sa = &ikeSA{}
	for i := range maxReassembly / 1280 {
		if err := sa.limitReassembly(maxFragments, 1280); err != nil {
			t.Fatalf("fragment %d (%d bytes held): %v", i, sa.fragBytes, err)
		}
	}
	if err := sa.limitReassembly(maxFragments, 1280); err == nil {
		t.Errorf("%d bytes of fragments held", sa.fragBytes)
	}
}
