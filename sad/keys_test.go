package sad

import (
	"bytes"
	"testing"
)

// TestSAKeys: an SA hands out copies of its keys while they exist, also
// before it is installed and while a packet holds it after removal, and
// nothing once they are wiped.
func TestSAKeys(t *testing.T) {
	want := bytes.Repeat([]byte{0xab}, 20) // newCipher's key and salt
	tab := NewTable(Options{})
	sa := mustSA(t, cfg(Inbound, 0x5000, 5))
	if e, i := sa.Keys(); !bytes.Equal(e, want) || i != nil {
		t.Fatalf("before install: %x %x", e, i)
	}
	if err := tab.InstallInbound(sa); err != nil {
		t.Fatal(err)
	}
	if !sa.Acquire() {
		t.Fatal("acquire")
	}
	tab.Remove(sa)
	if e, _ := sa.Keys(); !bytes.Equal(e, want) {
		t.Fatal("keys gone while a packet still holds the SA")
	}
	sa.Release()
	if e, i := sa.Keys(); e != nil || i != nil {
		t.Fatalf("keys of a wiped SA: %x %x", e, i)
	}
	never := mustSA(t, cfg(Outbound, 0x6000, 6))
	never.Discard()
	if e, _ := never.Keys(); e != nil {
		t.Fatal("keys of a discarded SA")
	}
}
