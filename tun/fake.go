package tun

import (
	"errors"
	"fmt"
	"os"
	"sync"
)

// Fake is an in-memory Device for tests that run whole gateways in one
// process: Inject plays the kernel sending a packet into the tunnel (it
// comes out of Read), and everything the dataplane Writes shows up on
// Written. It enforces the same buffer rules as the real device so code
// tested against it works against a TUN.
type Fake struct {
	name  string
	mtu   int
	batch int

	in      chan []byte
	out     chan []byte
	closed  chan struct{}
	closeMu sync.Once
}

var _ Device = (*Fake)(nil)

// ErrFakeFull is returned by Inject when the fake's inbound queue is full.
var ErrFakeFull = errors.New("tun: fake device queue full")

// NewFake returns a Fake with the given name, MTU and batch size whose
// queues hold queueLen packets in each direction.
func NewFake(name string, mtu, batchSize, queueLen int) *Fake {
	return &Fake{
		name:   name,
		mtu:    mtu,
		batch:  max(batchSize, 1),
		in:     make(chan []byte, queueLen),
		out:    make(chan []byte, queueLen),
		closed: make(chan struct{}),
	}
}

// Inject queues a copy of pkt to be returned by Read, as if the kernel had
// routed it into the device. It does not block: a full queue returns
// ErrFakeFull, like a TUN whose reader falls behind drops packets.
func (f *Fake) Inject(pkt []byte) error {
	select {
	case <-f.closed:
		return os.ErrClosed
	default:
	}
	select {
	case f.in <- append([]byte(nil), pkt...):
		return nil
	default:
		return ErrFakeFull
	}
}

// Written delivers a copy of every packet passed to Write, in order.
func (f *Fake) Written() <-chan []byte { return f.out }

// Read implements Device: it blocks until at least one packet is queued
// or the device is closed, then returns as many queued packets as fit.
func (f *Fake) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if len(bufs) == 0 {
		return 0, nil
	}
	if len(sizes) < len(bufs) {
		return 0, errors.New("tun: sizes shorter than bufs")
	}
	var pkt []byte
	select {
	case pkt = <-f.in:
	case <-f.closed:
		return 0, os.ErrClosed
	}
	n := 0
	for {
		if offset < 0 || offset+len(pkt) > len(bufs[n]) {
			return n, fmt.Errorf("tun: packet of %d bytes does not fit buffer %d at offset %d", len(pkt), n, offset)
		}
		sizes[n] = copy(bufs[n][offset:], pkt)
		n++
		if n == len(bufs) {
			return n, nil
		}
		select {
		case pkt = <-f.in:
		default:
			return n, nil
		}
	}
}

// Write implements Device. If the output queue is full the packet is
// dropped and counted as not written, like a TUN that cannot keep up.
func (f *Fake) Write(bufs [][]byte, offset int) (int, error) {
	if offset < VirtioNetHdrLen {
		return 0, fmt.Errorf("tun: write offset %d < %d", offset, VirtioNetHdrLen)
	}
	select {
	case <-f.closed:
		return 0, os.ErrClosed
	default:
	}
	n := 0
	for _, b := range bufs {
		if offset > len(b) {
			return n, fmt.Errorf("tun: write offset %d beyond buffer of %d bytes", offset, len(b))
		}
		select {
		case f.out <- append([]byte(nil), b[offset:]...):
			n++
		default:
		}
	}
	return n, nil
}

// BatchSize implements Device.
func (f *Fake) BatchSize() int { return f.batch }

// MTU implements Device.
func (f *Fake) MTU() int { return f.mtu }

// Name implements Device.
func (f *Fake) Name() string { return f.name }

// Close implements Device; blocked Reads return os.ErrClosed.
func (f *Fake) Close() error {
	f.closeMu.Do(func() { close(f.closed) })
	return nil
}
