package conn

import "testing"

func TestBufPool(t *testing.T) {
	p := NewBufPool(2048, 4, 2)
	a, b, c := p.Get(), p.Get(), p.Get() // two idle, one new
	for _, x := range [][]byte{a, b, c} {
		if len(x) != 2048 {
			t.Fatalf("buffer of %d bytes", len(x))
		}
	}
	p.Put(a[:10]) // shortened slices come back full length
	if got := p.Get(); len(got) != 2048 || &got[0] != &a[0] {
		t.Fatal("Put/Get did not recycle the buffer at full length")
	}
	p.Put(make([]byte, 100)) // wrong size: not kept
	for range 10 {
		p.Put(make([]byte, 2048)) // beyond the bound: not kept
	}
	if len(p.free) != 4 {
		t.Fatalf("%d idle buffers, want the bound 4", len(p.free))
	}
	if allocs := testing.AllocsPerRun(100, func() { p.Put(p.Get()) }); allocs != 0 {
		t.Fatalf("steady-state Get/Put allocates %v times", allocs)
	}
}
