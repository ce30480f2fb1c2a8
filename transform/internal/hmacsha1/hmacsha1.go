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

// state is a SHA-1 chaining value in the register form the two-lane
// assembly uses: abcd holds D, C, B, A as little-endian words (A in the
// top dword), e holds E in its top dword and zeros below.
type state struct{ abcd, e [16]byte }

// Key holds the SHA-1 chaining values (A..E) after the inner and the
// outer padded key.
type Key struct{ inner, outer [5]uint32 }

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

func (s *state) words() [5]uint32 {
	return [5]uint32{
		binary.LittleEndian.Uint32(s.abcd[12:]),
		binary.LittleEndian.Uint32(s.abcd[8:]),
		binary.LittleEndian.Uint32(s.abcd[4:]),
		binary.LittleEndian.Uint32(s.abcd[0:]),
		binary.LittleEndian.Uint32(s.e[12:]),
	}
}

// digest writes the SHA-1 value of a final chaining value (big-endian A..E).
func digest(h [5]uint32, out *[Size]byte) {
	for i, v := range h {
		binary.BigEndian.PutUint32(out[4*i:], v)
	}
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
	var l lanes
	l.data = [2]*byte{&ipad[0], &opad[0]}
	l.st = [2]state{toState(initial), toState(initial)}
	blocks2(&l, 1)
	k := &Key{inner: l.st[0].words(), outer: l.st[1].words()}
	clear(ipad[:])
	clear(opad[:])
	l = lanes{}
	return k, nil
}

// lanes is what the two-lane assembly reads and updates: per lane the
// next input block and the chaining value. Offsets in hmacsha1_amd64.s.
type lanes struct {
	data [2]*byte
	st   [2]state
}

// lanes16 is what the sixteen-lane assembly reads and updates: per lane
// the next input block, and the chaining values word by word (h[i][lane]
// is word i of lane's). Offsets in sha1x16_amd64.s.
type lanes16 struct {
	data [16]*byte
	h    [5][16]uint32
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

// Multi computes HMACs several messages at a time: sixteen at once with
// AVX-512 when a batch is large enough to fill most of the lanes, two at
// once on SHA-NI otherwise and for the last few messages of a batch. The
// zero value is ready; it keeps only buffers between calls (reuse it: it
// is a few KiB). Not safe for concurrent use.
type Multi struct {
	l2   lanes
	l16  lanes16
	lane [16]laneJob
	// parked holds the messages in flight when Sum left the sixteen
	// lanes for the two (nparked of them).
	parked  [16]laneJob
	nparked int
	tails   [16]tail
	next    int // first job not started
	sink    [maxChunk * blockSize]byte
}

// maxChunk bounds the blocks per assembly call, so an idle lane fits in
// sink.
const maxChunk = 32

// wideMin is the number of messages in flight from which the sixteen
// lanes pay. On AMD Zen 4, with all sixteen busy, they hash 1400-byte
// messages about 1.9 times and 64-byte ones about 1.5 times as fast as the
// two SHA-NI lanes (BenchmarkSum, best of six runs on a shared machine),
// so one sixteen-lane step costs as much as 8.5 to 11 messages' blocks on
// the two lanes. Below it, and once fewer messages than that are left in
// flight, Sum uses the two lanes. Tests change it to run either path
// alone.
var wideMin = 9

// tail holds a message's last partial block, trailer and padding (at most
// two blocks), then the outer block.
type tail struct {
	inner [2 * blockSize]byte
	outer [blockSize]byte
}

// laneJob is where a message is: phase 0 hashes Data's whole blocks, 1 the
// inner tail, 2 the outer block; data is its next block (left of them in
// this phase) and tail its slot in Multi.tails. Idle lanes have job -1.
type laneJob struct {
	job, phase, left, tail int
	data                   *byte
	h                      [5]uint32 // only while parked
}

// Sum computes every job's MAC. It panics on a trailer longer than
// MaxTrailer or an Out longer than Size.
func (m *Multi) Sum(jobs []Job) {
	for i := range jobs {
		if len(jobs[i].Trailer) > MaxTrailer || len(jobs[i].Out) > Size {
			panic("hmacsha1: trailer or output too long")
		}
	}
	m.next, m.nparked = 0, 0
	if len(jobs) >= wideMin && wideSupported() {
		m.run(jobs, true)
	}
	m.run(jobs, false)
	// Drop the pointers into the callers' packets.
	m.l2 = lanes{}
	m.l16 = lanes16{}
	m.parked = [16]laneJob{}
	m.tails = [16]tail{}
}

// run computes MACs on the sixteen lanes (wide) or the two, starting the
// parked messages first and then the jobs not started yet, until every
// message is done or, on the wide lanes, until no job is left to start
// and fewer than wideMin messages are in flight: those are parked for the
// two lanes, which then finish them faster than sixteen mostly idle lanes.
func (m *Multi) run(jobs []Job, wide bool) {
	width := 2
	if wide {
		width = 16
	}
	busy := 0
	for lane := range width {
		if m.fill(jobs, wide, lane) {
			busy++
		}
	}
	for busy > 0 {
		if wide && m.next == len(jobs) && busy < wideMin {
			m.parkAll()
			return
		}
		n := maxChunk
		for lane := range width {
			if m.lane[lane].job >= 0 {
				n = min(n, m.lane[lane].left)
			} else {
				m.setData(wide, lane, &m.sink[0])
			}
		}
		if wide {
			blocks16(&m.l16, n)
		} else {
			blocks2(&m.l2, n)
		}
		for lane := range width {
			lj := &m.lane[lane]
			if lj.job < 0 {
				continue
			}
			lj.left -= n
			if lj.left > 0 {
				m.setData(wide, lane, (*byte)(unsafe.Add(unsafe.Pointer(m.data(wide, lane)), n*blockSize)))
				continue
			}
			if m.advance(jobs, wide, lane) {
				continue
			}
			if !m.fill(jobs, wide, lane) {
				busy--
			}
		}
	}
}

// fill gives an idle lane its next message: a parked one (two lanes only)
// or the next job. It returns false, marking the lane idle, when there is
// none.
func (m *Multi) fill(jobs []Job, wide bool, lane int) bool {
	lj := &m.lane[lane]
	if !wide && m.nparked > 0 {
		m.nparked--
		p := &m.parked[m.nparked]
		*lj = laneJob{job: p.job, phase: p.phase, left: p.left, tail: p.tail}
		m.setData(false, lane, p.data)
		m.setState(false, lane, p.h)
		return true
	}
	if m.next == len(jobs) {
		lj.job = -1
		return false
	}
	j := &jobs[m.next]
	// A lane's tail slot is free once its previous message is done; the
	// two lanes start new jobs only when nothing was parked (parking
	// happens once every job has started), so slots never collide.
	*lj = laneJob{job: m.next, left: len(j.Data) / blockSize, tail: lane}
	m.setState(wide, lane, j.Key.inner)
	if lj.left > 0 {
		// Never a pointer past the end of Data: the collector would take
		// it for one into the next object.
		m.setData(wide, lane, unsafe.SliceData(j.Data))
	}
	m.next++
	m.advance(jobs, wide, lane)
	return true
}

// parkAll moves the messages in flight on the sixteen lanes to parked.
func (m *Multi) parkAll() {
	for lane := range 16 {
		lj := m.lane[lane]
		if lj.job < 0 {
			continue
		}
		lj.data = m.l16.data[lane]
		lj.h = m.state(true, lane)
		m.parked[m.nparked] = lj
		m.nparked++
	}
}

func (m *Multi) state(wide bool, lane int) [5]uint32 {
	if !wide {
		return m.l2.st[lane].words()
	}
	var h [5]uint32
	for i := range h {
		h[i] = m.l16.h[i][lane]
	}
	return h
}

func (m *Multi) setState(wide bool, lane int, h [5]uint32) {
	if !wide {
		m.l2.st[lane] = toState(h)
		return
	}
	for i := range h {
		m.l16.h[i][lane] = h[i]
	}
}

func (m *Multi) data(wide bool, lane int) *byte {
	if wide {
		return m.l16.data[lane]
	}
	return m.l2.data[lane]
}

func (m *Multi) setData(wide bool, lane int, p *byte) {
	if wide {
		m.l16.data[lane] = p
	} else {
		m.l2.data[lane] = p
	}
}

// advance moves the lane to its next phase while the current one has no
// blocks left; it returns false when the job is finished (its MAC written).
func (m *Multi) advance(jobs []Job, wide bool, lane int) bool {
	lj := &m.lane[lane]
	j := &jobs[lj.job]
	t := &m.tails[lj.tail]
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
			m.setData(wide, lane, &t.inner[0])
			lj.left = blocks
		case 1:
			lj.phase = 2
			var d [Size]byte
			digest(m.state(wide, lane), &d)
			copy(t.outer[:], d[:])
			t.outer[Size] = 0x80
			clear(t.outer[Size+1 : blockSize-8])
			binary.BigEndian.PutUint64(t.outer[blockSize-8:], (blockSize+Size)*8)
			m.setState(wide, lane, j.Key.outer)
			m.setData(wide, lane, &t.outer[0])
			lj.left = 1
		default:
			var d [Size]byte
			digest(m.state(wide, lane), &d)
			copy(j.Out, d[:])
			return false
		}
	}
	return true
}
