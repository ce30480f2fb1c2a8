package hmacsha1

import (
	"crypto/sha1"
	"encoding/binary"
	"errors"
	"unsafe"
)

const (
	blockSize = 64
	// Size is the length of an untruncated HMAC-SHA1 value.
	Size = 20
	// MaxTrailer is the longest trailer a Job may carry.
	MaxTrailer = 16
)

// ErrUnsupported is returned by NewKey without SHA-NI/AVX.
var ErrUnsupported = errors.New("hmacsha1: processor lacks SHA-NI/AVX")

// state is a SHA-1 chaining value in the register form the assembly uses:
// abcd holds D, C, B, A as little-endian words (A in the top dword), e
// holds E in its top dword and zeros below.
type state struct{ abcd, e [16]byte }

// Key holds the SHA-1 states after the inner and outer padded keys.
type Key struct{ inner, outer state }

// Wipe clears the precomputed states.
func (k *Key) Wipe() { *k = Key{} }

var initial = [5]uint32{0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0}

func toState(h [5]uint32) state {
	var s state
	binary.LittleEndian.PutUint32(s.abcd[0:], h[3])
	binary.LittleEndian.PutUint32(s.abcd[4:], h[2])
	binary.LittleEndian.PutUint32(s.abcd[8:], h[1])
	binary.LittleEndian.PutUint32(s.abcd[12:], h[0])
	binary.LittleEndian.PutUint32(s.e[12:], h[4])
	return s
}

// digest writes the SHA-1 value of a final state (big-endian A..E).
func (s *state) digest(out *[Size]byte) {
	binary.BigEndian.PutUint32(out[0:], binary.LittleEndian.Uint32(s.abcd[12:]))
	binary.BigEndian.PutUint32(out[4:], binary.LittleEndian.Uint32(s.abcd[8:]))
	binary.BigEndian.PutUint32(out[8:], binary.LittleEndian.Uint32(s.abcd[4:]))
	binary.BigEndian.PutUint32(out[12:], binary.LittleEndian.Uint32(s.abcd[0:]))
	binary.BigEndian.PutUint32(out[16:], binary.LittleEndian.Uint32(s.e[12:]))
}

// NewKey precomputes the pad states of an HMAC-SHA1 key (RFC 2104: a key
// longer than a block is hashed first).
func NewKey(key []byte) (*Key, error) {
	if !Supported() {
		return nil, ErrUnsupported
	}
	if len(key) > blockSize {
		h := sha1.Sum(key)
		key = h[:]
	}
	var ipad, opad [blockSize]byte
	copy(ipad[:], key)
	copy(opad[:], key)
	for i := range ipad {
		ipad[i] ^= 0x36
		opad[i] ^= 0x5c
	}
	k := &Key{inner: toState(initial), outer: toState(initial)}
	var l lanes
	l.data = [2]*byte{&ipad[0], &opad[0]}
	l.st = [2]state{k.inner, k.outer}
	blocks2(&l, 1)
	k.inner, k.outer = l.st[0], l.st[1]
	clear(ipad[:])
	clear(opad[:])
	l = lanes{}
	return k, nil
}

// lanes is what the assembly reads and updates: per lane the next input
// block and the chaining value. Offsets in hmacsha1_amd64.s.
type lanes struct {
	data [2]*byte
	st   [2]state
}

// Job is one HMAC-SHA1 computation for Sum: the MAC of Data followed by
// Trailer (at most MaxTrailer bytes) under Key, truncated to len(Out)
// bytes (at most Size) and written to Out.
type Job struct {
	Key     *Key
	Data    []byte
	Trailer []byte
	Out     []byte
}

// Multi computes HMACs two messages at a time. The zero value is ready;
// it keeps only buffers between calls (reuse it: it is a few KiB). Not
// safe for concurrent use.
type Multi struct {
	l     lanes
	lane  [2]laneJob
	tails [2]tail
	sink  [maxChunk * blockSize]byte
}

// maxChunk bounds the blocks per assembly call, so an idle lane fits in
// sink.
const maxChunk = 32

// tail holds a message's last partial block, trailer and padding (at most
// two blocks), then the outer block.
type tail struct {
	inner [2 * blockSize]byte
	outer [blockSize]byte
}

// laneJob is where a lane is in its job: phase 0 hashes Data's whole
// blocks, 1 the inner tail, 2 the outer block; idle lanes have job -1.
type laneJob struct {
	job, phase, left int
}

// Sum computes every job's MAC. It panics on a trailer longer than
// MaxTrailer or an Out longer than Size.
func (m *Multi) Sum(jobs []Job) {
	for i := range jobs {
		if len(jobs[i].Trailer) > MaxTrailer || len(jobs[i].Out) > Size {
			panic("hmacsha1: trailer or output too long")
		}
	}
	next := 0
	start := func(lane int) bool {
		if next == len(jobs) {
			m.lane[lane].job = -1
			return false
		}
		j := &jobs[next]
		m.lane[lane] = laneJob{job: next, left: len(j.Data) / blockSize}
		m.l.st[lane] = j.Key.inner
		if m.lane[lane].left > 0 {
			// Never a pointer past the end of Data: the collector
			// would take it for one into the next object.
			m.l.data[lane] = unsafe.SliceData(j.Data)
		}
		next++
		m.advance(jobs, lane)
		return true
	}
	busy := 0
	for lane := range 2 {
		if start(lane) {
			busy++
		}
	}
	for busy > 0 {
		n := maxChunk
		for lane := range 2 {
			if m.lane[lane].job >= 0 {
				n = min(n, m.lane[lane].left)
			}
		}
		for lane := range 2 {
			if m.lane[lane].job < 0 {
				m.l.data[lane] = &m.sink[0]
			}
		}
		blocks2(&m.l, n)
		for lane := range 2 {
			lj := &m.lane[lane]
			if lj.job < 0 {
				continue
			}
			lj.left -= n
			if lj.left > 0 {
				m.l.data[lane] = (*byte)(unsafe.Add(unsafe.Pointer(m.l.data[lane]), n*blockSize))
				continue
			}
			if m.advance(jobs, lane) {
				continue
			}
			if !start(lane) {
				busy--
			}
		}
	}
	m.l = lanes{}
	m.tails = [2]tail{}
}

// advance moves the lane to its next phase while the current one has no
// blocks left; it returns false when the job is finished (its MAC written).
func (m *Multi) advance(jobs []Job, lane int) bool {
	lj := &m.lane[lane]
	j := &jobs[lj.job]
	t := &m.tails[lane]
	for lj.left == 0 {
		switch lj.phase {
		case 0:
			lj.phase = 1
			// The partial block, the trailer, 0x80, zeros and the bit
			// length of ipad||Data||Trailer (FIPS 180-4 §5.1.1).
			rest := j.Data[len(j.Data)/blockSize*blockSize:]
			n := copy(t.inner[:], rest)
			n += copy(t.inner[n:], j.Trailer)
			total := n + 1 + 8
			blocks := (total + blockSize - 1) / blockSize
			clear(t.inner[n : blocks*blockSize])
			t.inner[n] = 0x80
			bits := uint64(blockSize+len(j.Data)+len(j.Trailer)) * 8
			binary.BigEndian.PutUint64(t.inner[blocks*blockSize-8:], bits)
			m.l.data[lane] = &t.inner[0]
			lj.left = blocks
		case 1:
			lj.phase = 2
			var d [Size]byte
			m.l.st[lane].digest(&d)
			copy(t.outer[:], d[:])
			t.outer[Size] = 0x80
			clear(t.outer[Size+1 : blockSize-8])
			binary.BigEndian.PutUint64(t.outer[blockSize-8:], (blockSize+Size)*8)
			m.l.st[lane] = j.Key.outer
			m.l.data[lane] = &t.outer[0]
			lj.left = 1
		default:
			var d [Size]byte
			m.l.st[lane].digest(&d)
			copy(j.Out, d[:])
			return false
		}
	}
	return true
}
