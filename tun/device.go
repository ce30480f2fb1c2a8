package tun

// Device is the batched packet interface the dataplane uses, implemented by
// the real TUN (TUN) and by the in-memory Fake. It follows the wireguard
// tun.Device calling convention so that the offload code can work on the
// caller's buffers without copies.
type Device interface {
	// Read reads up to len(bufs) packets. Packet i is placed at
	// bufs[i][offset:offset+sizes[i]]. len(sizes) must be >= len(bufs), and
	// len(bufs) should be BatchSize(): one offloaded super-packet read from
	// the kernel is split into as many buffers as it needs; what does not
	// fit is returned by the next Read.
	Read(bufs [][]byte, sizes []int, offset int) (n int, err error)

	// Write writes the packets bufs[i][offset:] and returns how many the
	// kernel took. offset must be at least VirtioNetHdrLen. Write may
	// modify the buffers: it writes the virtio header in front of each
	// packet and, where it merges packets of one flow into one, rewrites
	// the first one's headers.
	Write(bufs [][]byte, offset int) (int, error)

	// BatchSize is the number of buffers Read wants and the largest
	// number of packets Write handles well in one call. It does not change.
	BatchSize() int

	// MTU is the device's current MTU.
	MTU() int

	// Name is the interface name.
	Name() string

	// Close releases the device. Blocked Reads return an error.
	Close() error
}
