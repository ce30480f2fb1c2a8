package aescbc

import (
	"errors"
	"unsafe"

	"github.com/ipsecgw/ipsecgw/transform/internal/aeskey"
)

// BlockSize is the AES block size in bytes.
const BlockSize = 16

var errKeySize = errors.New("aescbc: key must be 16, 24 or 32 bytes")

// ErrUnsupported is returned by NewKey when the processor lacks AES-NI or
// AVX; use crypto/cipher's CBC instead.
var ErrUnsupported = errors.New("aescbc: processor lacks AES-NI/AVX")

// Key is an expanded AES key: the encryption round keys, the decryption
// round keys of the equivalent inverse cipher (FIPS 197 §5.3.5) in the
// order AESDEC consumes them, and the number of rounds. Its layout is read
// by the assembly (offsets in aescbc_amd64.s, checked by TestKeyLayout).
type Key struct {
	enc    [15][BlockSize]byte
	dec    [15][BlockSize]byte
	rounds int64
}

// NewKey expands a 16-, 24- or 32-byte AES key.
func NewKey(key []byte) (*Key, error) {
	if !Supported() {
		return nil, ErrUnsupported
	}
	k := new(Key)
	if err := k.expand(key); err != nil {
		return nil, err
	}
	return k, nil
}

// Wipe clears the key schedule; the Key must not be used afterwards.
func (k *Key) Wipe() { *k = Key{} }

func (k *Key) expand(key []byte) error {
	var s aeskey.Schedule
	defer s.Wipe()
	if err := aeskey.Expand(&s, key); err != nil {
		return errKeySize
	}
	rounds := s.Rounds
	for r := 0; r <= rounds; r++ {
		s.PutRoundKey(k.enc[r][:], r)
	}
	// Equivalent inverse cipher: the round keys in reverse order, the inner
	// ones passed through InvMixColumns (which AESIMC computes).
	k.dec[0] = k.enc[rounds]
	for r := 1; r < rounds; r++ {
		invMixColumns(&k.dec[r], &k.enc[rounds-r])
	}
	k.dec[rounds] = k.enc[0]
	k.rounds = int64(rounds)
	return nil
}

// Decrypt decrypts data (whole blocks) in place in CBC mode with the given
// IV. It panics if len(data) is not a multiple of BlockSize.
func Decrypt(k *Key, iv *[BlockSize]byte, data []byte) {
	if len(data)%BlockSize != 0 {
		panic("aescbc: input not full blocks")
	}
	if len(data) == 0 {
		return
	}
	decryptBlocks(k, iv, unsafe.SliceData(data), len(data)/BlockSize)
}

// Lanes is the number of messages EncryptMulti encrypts side by side.
const Lanes = 8

// Job is one CBC encryption for EncryptMulti: Data (whole blocks) is
// encrypted in place under Key, chained from IV.
type Job struct {
	Key  *Key
	IV   *[BlockSize]byte
	Data []byte
}

// Multi encrypts batches of messages in parallel lanes. Its zero value is
// ready to use; it holds no state between calls of EncryptMulti except
// buffers, so one Multi per goroutine serves any number of keys. It is
// large (a few KiB) and should be reused, not allocated per batch.
type Multi struct {
	l    lanes
	job  [Lanes]int // index into jobs of each lane's job, -1 when idle
	left [Lanes]int // blocks still to encrypt in each lane
	// sink takes the output of idle lanes, which the assembly processes
	// like the others (an idle lane costs nothing while the busy ones wait
	// for their AESENC latency anyway).
	sink [maxChunk * BlockSize]byte
}

// maxChunk bounds the blocks per assembly call, so idle lanes fit in sink.
const maxChunk = 64

// lanes is what the assembly reads: per lane the next input block, the
// key schedule and the chaining value. Offsets in aescbc_amd64.s.
type lanes struct {
	data  [Lanes]*byte
	keys  [Lanes]*Key
	chain [Lanes][BlockSize]byte
}

// EncryptMulti encrypts every job in place. Jobs may have different keys
// (of any size) and lengths; each must have a non-nil Key from NewKey and
// Data a multiple of BlockSize long (it panics otherwise). The result is
// what encrypting each job on its own would give.
func (m *Multi) EncryptMulti(jobs []Job) {
	for i := range jobs {
		if len(jobs[i].Data)%BlockSize != 0 {
			panic("aescbc: input not full blocks")
		}
	}
	// The lanes of one assembly call share the round count; key sizes
	// other than the first job's wait for their own pass.
	for _, nr := range [3]int64{10, 12, 14} {
		m.pass(jobs, nr)
	}
	m.l = lanes{}
}

// pass encrypts the jobs whose keys have nr rounds.
func (m *Multi) pass(jobs []Job, nr int64) {
	next := 0 // next job to consider for a free lane
	refill := func(lane int) bool {
		for ; next < len(jobs); next++ {
			j := &jobs[next]
			if j.Key.rounds != nr || len(j.Data) == 0 {
				continue
			}
			m.job[lane], m.left[lane] = next, len(j.Data)/BlockSize
			m.l.data[lane] = unsafe.SliceData(j.Data)
			m.l.keys[lane] = j.Key
			m.l.chain[lane] = *j.IV
			next++
			return true
		}
		m.job[lane] = -1
		return false
	}
	busy := 0
	for lane := range Lanes {
		if refill(lane) {
			busy++
		}
	}
	if busy == 0 {
		return
	}
	var anyKey *Key
	for busy > 0 {
		n := maxChunk
		for lane := range Lanes {
			if m.job[lane] >= 0 {
				n = min(n, m.left[lane])
				anyKey = m.l.keys[lane]
			}
		}
		for lane := range Lanes {
			if m.job[lane] < 0 {
				m.l.data[lane] = &m.sink[0]
				m.l.keys[lane] = anyKey
			}
		}
		encryptLanes(&m.l, nr, n)
		for lane := range Lanes {
			if m.job[lane] < 0 {
				continue
			}
			m.left[lane] -= n
			if m.left[lane] > 0 {
				m.l.data[lane] = (*byte)(unsafe.Add(unsafe.Pointer(m.l.data[lane]), n*BlockSize))
				continue
			}
			if !refill(lane) {
				busy--
			}
		}
	}
}
