package conn

// BufPool is a bounded free list of fixed-size packet buffers. An ESP
// handler that keeps packets past its return (to hand them to crypto
// workers) swaps in a buffer from the pool (ESPPacket.Buf = pool.Get())
// and puts the kept one back when done with it. Unlike sync.Pool it never
// drops buffers at GC and never grows beyond its bound, so steady-state
// traffic allocates nothing.
type BufPool struct {
	size int
	free chan []byte
}

// NewBufPool returns a pool of buffers of size bytes holding at most max
// idle buffers, prefilled with prefill of them.
func NewBufPool(size, max, prefill int) *BufPool {
	p := &BufPool{size: size, free: make(chan []byte, max)}
	for range min(prefill, max) {
		p.free <- make([]byte, size)
	}
	return p
}

// Size is the length of every buffer from the pool.
func (p *BufPool) Size() int { return p.size }

// Get returns an idle buffer, or a new one when none is idle.
func (p *BufPool) Get() []byte {
	select {
	case b := <-p.free:
		return b
	default:
		return make([]byte, p.size)
	}
}

// Put returns b to the pool; buffers of the wrong size, or beyond the
// bound, are left to the garbage collector.
func (p *BufPool) Put(b []byte) {
	if cap(b) < p.size {
		return
	}
	select {
	case p.free <- b[:p.size]:
	default:
	}
}
