package sad

import (
	"bytes"
	"runtime"
	"testing"
	"unsafe"
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

// TestSASlotWholeCacheLines: the heap slot an SA gets is a whole number of
// 64-byte cache lines and holds the whole SA, and the counters at the SA's
// end start a line, so they share no line with the SA's other fields or
// with the next object (see counters). Adding fields can
// move the SA into a size class that is not; then pad it to one that is.
func TestSASlotWholeCacheLines(t *testing.T) {
	const n = 4096
	sas := make([]*SA, n)
	// Other goroutines may allocate meanwhile: the least of a few tries
	// is the slot.
	slot := uint64(1 << 20)
	for range 5 {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range sas {
			sas[i] = new(SA)
		}
		runtime.ReadMemStats(&after)
		slot = min(slot, (after.TotalAlloc-before.TotalAlloc)/n)
	}
	runtime.KeepAlive(sas)
	if size := uint64(unsafe.Sizeof(SA{})); slot%64 != 0 || slot < size {
		t.Fatalf("an SA of %d bytes gets a heap slot of %d bytes, not a whole number of cache lines", size, slot)
	}
	if off := unsafe.Offsetof(SA{}.ctr); off != unsafe.Sizeof(SA{})-unsafe.Sizeof(counters{}) || off%64 != 0 {
		t.Fatalf("the counters (offset %d) are not the SA's last field, starting a cache line", off)
	}
}
