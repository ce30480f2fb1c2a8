package sad

import "testing"

// Reserved follows an SPI from AllocateSPI to InstallInbound or ReleaseSPI.
func TestReserved(t *testing.T) {
	tab := NewTable(Options{Rand: &seqReader{vals: []uint32{0x2000, 0x3000}}})
	a, err := tab.AllocateSPI()
	if err != nil {
		t.Fatal(err)
	}
	b, err := tab.AllocateSPI()
	if err != nil {
		t.Fatal(err)
	}
	if !tab.Reserved(a) || !tab.Reserved(b) || tab.Reserved(0x4000) {
		t.Fatalf("after allocation: %v %v, never allocated %v", tab.Reserved(a), tab.Reserved(b), tab.Reserved(0x4000))
	}
	if err := tab.InstallInbound(mustSA(t, cfg(Inbound, a, 1))); err != nil {
		t.Fatal(err)
	}
	tab.ReleaseSPI(b)
	if tab.Reserved(a) || tab.Reserved(b) {
		t.Errorf("installed %v or released %v still reserved", tab.Reserved(a), tab.Reserved(b))
	}
	if tab.Inbound(a) == nil {
		t.Errorf("installed SPI not found")
	}
}
