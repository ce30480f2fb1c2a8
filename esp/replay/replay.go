// Package replay implements the ESP anti-replay window of RFC 4303 §3.4.3
// (with the extended sequence numbers of RFC 4303 Appendix A) and the
// outbound sequence number counter.
//
// # Window layout
//
// The window is a ring of 64-bit words after RFC 6479: bit (s mod 64) of word
// (s/64 mod len(ring)) records sequence number s. When the highest sequence
// number seen ("top") moves into a new word, only the words skipped over are
// cleared, so advancing costs O(words skipped), never a shift of the whole
// bitmap. The ring always has one word more than the window needs (rounded up
// to a power of two so that the index is a mask), which is what lets a word be
// cleared as a whole while every bit still inside the window survives.
//
// The configured size is enforced exactly: a window of size W accepts
// top-W+1 ... top (and anything newer). Only the memory is rounded: the ring
// holds nextPow2(ceil(W/64)+1) words. Sizes 1 ... MaxSize are allowed; the
// default is DefaultSize (128).
//
// The ring is allocated by the first Accept, not by New: before any packet
// is accepted every bit is clear anyway, and a hub's idle inbound SAs (with
// the daemon's default window of 1024, 256 bytes each) may never see one.
//
// # Check and Accept
//
// The dataplane calls Check with the 32-bit sequence number from the ESP
// header before it verifies the ICV; Check rejects replays cheaply and, with
// ESN, infers the high 32 bits the ICV is computed over. After the ICV
// verifies, the dataplane calls Accept with the 64-bit value Check returned;
// Accept checks again (another core may have accepted the same number in the
// meantime) and records the number.
//
// # Concurrency
//
// Packets of one SA may be decrypted on several cores at once. Accept
// serialises on a per-window mutex held for a few dozen instructions. Check
// takes no lock: it reads top and one bitmap word with atomic loads. That is
// safe because every state change Accept makes is monotone with respect to
// rejection:
//
//   - top only grows, so "too old" judged against an older top stays true;
//   - a bit, once set, is cleared only when its word is reused for numbers at
//     least (words-1)*64 >= W above it, and by then the number it recorded is
//     outside the window; so a set bit seen by Check means "duplicate" either
//     under the state Check saw or under the current one.
//
// Accept publishes the ring (when it allocates it) before it publishes a
// new top, so a Check that loaded a non-zero top finds the ring; with top
// still 0 an absent ring reads as all clear, which it is.
//
// A stale read can therefore only make Check say "acceptable" for a packet
// that Accept will then refuse — which Accept's re-check exists for. Check
// never rejects a packet that the current state would accept. The one effect
// of a stale top is on ESN inference near a 2^32 boundary: a packet whose
// low bits sit at the very edge of the window may have its high bits inferred
// against the older top. The ICV then fails and the packet is counted as an
// authentication failure — the same outcome RFC 4303 Appendix A2.2 already
// gives every packet whose high bits are guessed wrong.
package replay

import (
	"math/bits"
	"sync"
	"sync/atomic"
	"unsafe"
)

const (
	// DefaultSize is the window size used when zero is configured. RFC 4303
	// §3.4.3 requires at least 32 and recommends 64; 128 also absorbs the
	// reordering that multi-queue NICs and parallel decryption introduce.
	DefaultSize = 128
	// MaxSize is the largest window accepted. It bounds the ring at 1025
	// words rounded to 2048 (16 KiB) per SA.
	MaxSize = 1 << 16
)

// Result says whether a sequence number is, or was, acceptable.
type Result uint8

const (
	// OK: the number has not been seen and lies inside (or ahead of) the window.
	OK Result = iota
	// Duplicate: the number was already accepted.
	Duplicate
	// TooOld: the number lies behind the window.
	TooOld
	// Invalid: the number can never be valid: 0 in 32-bit mode or as a full
	// 64-bit ESN value, or an ESN inference that would need high bits below 0
	// or above 2^32-1.
	Invalid
)

var resultNames = [...]string{"ok", "duplicate", "too old", "invalid"}

func (r Result) String() string {
	if int(r) < len(resultNames) {
		return resultNames[r]
	}
	return "unknown"
}

// Window is an anti-replay window for one inbound SA. The zero value is not
// usable; create one with New.
type Window struct {
	mu   sync.Mutex // serialises Accept
	top  atomic.Uint64
	size uint64 // W, exact
	mask uint64 // len(ring)-1
	esn  bool
	// ring points to the first of mask+1 words, nil until the first
	// Accept; read with word.
	ring atomic.Pointer[atomic.Uint64]
}

// word returns word i (already masked) of the ring r.
func (w *Window) word(r *atomic.Uint64, i uint64) *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Add(unsafe.Pointer(r), i*8))
}

// ringLocked returns the ring, allocating it on first use; with mu held.
func (w *Window) ringLocked() *atomic.Uint64 {
	r := w.ring.Load()
	if r == nil {
		words := make([]atomic.Uint64, w.mask+1)
		r = &words[0]
		w.ring.Store(r)
	}
	return r
}

// words is the number of 64-bit words of the ring (allocated or not).
func (w *Window) words() int { return int(w.mask + 1) }

// New returns a window of the given size (0 means DefaultSize). esn selects
// extended 64-bit sequence numbers. It reports false for a size above
// MaxSize.
func New(size int, esn bool) (*Window, bool) {
	if size == 0 {
		size = DefaultSize
	}
	if size < 0 || size > MaxSize {
		return nil, false
	}
	words := (size+63)/64 + 1
	n := 1 << bits.Len(uint(words-1)) // next power of two >= words
	return &Window{
		size: uint64(size),
		mask: uint64(n - 1),
		esn:  esn,
	}, true
}

// Size returns the configured window size.
func (w *Window) Size() int { return int(w.size) }

// ESN reports whether the window uses extended sequence numbers.
func (w *Window) ESN() bool { return w.esn }

// Top returns the highest sequence number accepted so far (0 if none).
func (w *Window) Top() uint64 { return w.top.Load() }

// Check tells whether the packet with the 32-bit sequence number low (as
// carried in the ESP header) could be accepted, and returns the full
// sequence number: low itself without ESN, or with ESN the 64-bit value
// whose high 32 bits were inferred from the window (RFC 4303 A2.2). The
// caller must include those high bits in the ICV and pass the returned value
// to Accept once the ICV verifies. Check changes nothing.
func (w *Window) Check(low uint32) (uint64, Result) {
	top := w.top.Load()
	seq, r := w.infer(top, low)
	if r != OK {
		return seq, r
	}
	return seq, w.lookup(top, seq)
}

// infer maps the 32 bits on the wire to the 64-bit sequence number.
func (w *Window) infer(top uint64, low uint32) (uint64, Result) {
	if !w.esn {
		if low == 0 {
			return 0, Invalid
		}
		return uint64(low), OK
	}
	tl, th := uint32(top), uint32(top>>32)
	bottom := tl - uint32(w.size) + 1 // wraps exactly as the RFC's arithmetic mod 2^32
	var hi uint32
	if uint64(tl) >= w.size-1 {
		// Case A: the window lies within one 2^32 subspace.
		if low >= bottom {
			hi = th
		} else {
			if th == ^uint32(0) {
				return 0, Invalid
			}
			hi = th + 1
		}
	} else {
		// Case B: the window straddles two subspaces.
		if low >= bottom {
			if th == 0 {
				// Would belong before sequence number 0: nothing was ever sent there.
				return 0, Invalid
			}
			hi = th - 1
		} else {
			hi = th
		}
	}
	seq := uint64(hi)<<32 | uint64(low)
	if seq == 0 {
		return 0, Invalid
	}
	return seq, OK
}

// lookup judges seq against top and the bitmap.
func (w *Window) lookup(top, seq uint64) Result {
	if seq > top {
		return OK
	}
	if top-seq >= w.size {
		return TooOld
	}
	r := w.ring.Load()
	if r == nil {
		return OK // nothing accepted yet
	}
	word := w.word(r, (seq>>6)&w.mask).Load()
	if word&(1<<(seq&63)) != 0 {
		return Duplicate
	}
	return OK
}

// Accept records seq (the value Check returned) after the packet
// authenticated. It returns OK if the number was recorded, or why not: the
// state may have moved since Check.
func (w *Window) Accept(seq uint64) Result {
	if seq == 0 {
		return Invalid
	}
	w.mu.Lock()
	ring := w.ringLocked()
	top := w.top.Load()
	if seq > top {
		// Advance: clear the words between the old top's word and the new
		// one (at most the whole ring), then set the bit and publish top.
		oldWord, newWord := top>>6, seq>>6
		if n := newWord - oldWord; n > 0 {
			if n > w.mask+1 {
				n = w.mask + 1
			}
			for i := uint64(1); i <= n; i++ {
				w.word(ring, (oldWord+i)&w.mask).Store(0)
			}
		}
		b := w.word(ring, (seq>>6)&w.mask)
		b.Store(b.Load() | 1<<(seq&63))
		w.top.Store(seq)
		w.mu.Unlock()
		return OK
	}
	if top-seq >= w.size {
		w.mu.Unlock()
		return TooOld
	}
	b := w.word(ring, (seq>>6)&w.mask)
	word := b.Load()
	bit := uint64(1) << (seq & 63)
	if word&bit != 0 {
		w.mu.Unlock()
		return Duplicate
	}
	b.Store(word | bit)
	w.mu.Unlock()
	return OK
}

// Sequence is the outbound sequence number counter of one SA. It hands out
// 1, 2, 3, ... and refuses, rather than wraps, once the space is used up:
// RFC 4303 §3.3.3 requires a new SA before the counter would cycle. It is
// safe for concurrent use; the zero value is not usable, create one with
// NewSequence.
type Sequence struct {
	last  atomic.Uint64
	limit uint64
}

// NewSequence returns a counter whose last usable number is 2^32-1, or
// 2^64-1 with ESN.
func NewSequence(esn bool) *Sequence {
	s := &Sequence{limit: 1<<32 - 1}
	if esn {
		s.limit = 1<<64 - 1
	}
	return s
}

// Next returns the next sequence number, or false once the counter is
// exhausted; after that it keeps returning false and the SA must be replaced.
// The low 32 bits go into the ESP header; with ESN the high 32 bits enter
// the ICV.
func (s *Sequence) Next() (uint64, bool) {
	for {
		cur := s.last.Load()
		if cur >= s.limit {
			return 0, false
		}
		if s.last.CompareAndSwap(cur, cur+1) {
			return cur + 1, true
		}
	}
}

// Last returns the last number handed out (0 if none).
func (s *Sequence) Last() uint64 { return s.last.Load() }

// Remaining returns how many numbers are left before exhaustion.
func (s *Sequence) Remaining() uint64 { return s.limit - s.last.Load() }

// Limit returns the last usable sequence number.
func (s *Sequence) Limit() uint64 { return s.limit }

// NewSequenceAt returns a counter whose last handed-out number is last, so
// that Next continues with last+1. It serves SA state that moves between
// dataplane instances, and tests that need to reach the end of the space.
func NewSequenceAt(esn bool, last uint64) *Sequence {
	s := NewSequence(esn)
	s.last.Store(min(last, s.limit))
	return s
}
