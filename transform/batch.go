package transform

import (
	"github.com/ipsecgw/ipsecgw/transform/internal/aescbc"
	"github.com/ipsecgw/ipsecgw/transform/internal/hmacsha1"
)

// SealBatch seals many packets, of one Protector or of several, as a unit,
// so that ciphers that gain from working on several packets at once can:
// AES-CBC on processors with AES-NI encrypts up to eight packets side by
// side (CBC encryption is serial within a packet, so one packet alone keeps
// the AES unit mostly idle), and with HMAC-SHA1 on processors with SHA-NI
// computes the ICVs several packets at a time (sixteen with AVX-512 when
// the batch has enough packets, else two). Other ciphers are sealed as
// they are added.
//
// Use: Add every packet of a batch, then Flush; once Flush returns, every
// packet added since the previous Flush is sealed exactly as Seal would have
// sealed it. Between Add and Flush the packet and its Protector must be left
// alone (not modified, not closed). A SealBatch is reusable and, once its
// buffers have grown to the batch size, does not allocate; it is not safe
// for concurrent use (keep one per goroutine or per batch buffer).
type SealBatch struct {
	jobs  []batchJob
	cbc   []aescbc.Job
	multi aescbc.Multi
	sha1  []hmacsha1.Job
	macs  hmacsha1.Multi
}

// batchJob is one packet waiting for Flush.
type batchJob struct {
	p        *Protector
	e        *integEngine
	pkt      []byte
	off      int
	trailer  [MaxTrailer]byte
	ntrailer int
}

// Add checks pkt as Seal does (same layout, same aad and trailer meaning)
// and either seals it at once or queues it for Flush. An error means the
// packet was not sealed and is not queued.
func (b *SealBatch) Add(p *Protector, pkt []byte, off int, aad, trailer []byte) error {
	if err := p.check("seal", pkt, off, aad, trailer); err != nil {
		return err
	}
	e, ok := p.eng.(*integEngine)
	if !ok {
		return p.Seal(pkt, off, aad, trailer)
	}
	m, ok := e.c.(*cbcMode)
	if !ok || m.fast == nil {
		return p.Seal(pkt, off, aad, trailer)
	}
	b.jobs = append(b.jobs, batchJob{p: p, e: e, pkt: pkt, off: off})
	j := &b.jobs[len(b.jobs)-1]
	j.ntrailer = copy(j.trailer[:], trailer)
	iv := off + aescbc.BlockSize
	b.cbc = append(b.cbc, aescbc.Job{
		Key:  m.fast,
		IV:   (*[aescbc.BlockSize]byte)(pkt[off:iv]),
		Data: pkt[iv : len(pkt)-e.icv],
	})
	return nil
}

// Flush seals the queued packets: all their encryption first, in parallel
// lanes, then the ICV of each (encrypt-then-MAC, RFC 4303 §3.3.2),
// HMAC-SHA1 several packets at a time on processors with SHA-NI.
func (b *SealBatch) Flush() {
	if len(b.jobs) == 0 {
		return
	}
	b.multi.EncryptMulti(b.cbc)
	var (
		cur *Protector
		sc  *scratch
	)
	for i := range b.jobs {
		j := &b.jobs[i]
		if k := j.e.sha1; k != nil {
			end := len(j.pkt) - j.e.icv
			b.sha1 = append(b.sha1, hmacsha1.Job{Key: k, Data: j.pkt[:end], Trailer: j.trailer[:j.ntrailer], Out: j.pkt[end:]})
			continue
		}
		// Consecutive packets of one SA (the usual case) share a scratch.
		if j.p != cur {
			if cur != nil {
				cur.pool.Put(sc)
			}
			cur, sc = j.p, j.p.get()
		}
		end := len(j.pkt) - j.e.icv
		copy(j.pkt[end:], j.e.mac(sc, j.pkt[:end], j.trailer[:j.ntrailer]))
	}
	if cur != nil {
		cur.pool.Put(sc)
	}
	// HMAC-SHA1 in lanes (internal/hmacsha1 picks sixteen or two).
	b.macs.Sum(b.sha1)
	// Drop the references so that a batch buffer does not keep closed SAs'
	// Protectors or packets alive.
	clear(b.jobs)
	clear(b.cbc)
	clear(b.sha1)
	b.jobs, b.cbc, b.sha1 = b.jobs[:0], b.cbc[:0], b.sha1[:0]
}

// OpenBatch opens many packets, of one Protector or of several, as a unit:
// with HMAC-SHA1 on processors with SHA-NI their ICVs are verified several
// packets at a time, as in SealBatch (then each authentic one is decrypted
// as Open would).
// Packets of other algorithms are opened as they are added.
//
// Use: Add every packet (it returns the packet's index), Flush, read each
// result with Err, then Reset. Between Add and Flush the packet and its
// Protector must be left alone. Reusable, 0 allocations once its buffers
// have grown; not safe for concurrent use.
type OpenBatch struct {
	jobs []openJob
	sha1 []hmacsha1.Job
	macs hmacsha1.Multi
}

// openJob is one packet of an OpenBatch and, after Flush, its result.
type openJob struct {
	p        *Protector
	e        *integEngine // nil once opened or refused
	pkt      []byte
	off      int
	trailer  [MaxTrailer]byte
	ntrailer int
	sum      [hmacsha1.Size]byte
	err      error
}

// Add checks pkt as Open does and either opens it at once or queues it
// for Flush; aad and trailer mean what they mean for Open. It returns the
// index under which Err reports the outcome.
func (b *OpenBatch) Add(p *Protector, pkt []byte, off int, aad, trailer []byte) int {
	b.jobs = append(b.jobs, openJob{p: p})
	i := len(b.jobs) - 1
	j := &b.jobs[i]
	if err := p.check("open", pkt, off, aad, trailer); err != nil {
		j.err = err
		return i
	}
	e, ok := p.eng.(*integEngine)
	if !ok || e.sha1 == nil {
		j.err = p.Open(pkt, off, aad, trailer)
		return i
	}
	j.e, j.pkt, j.off = e, pkt, off
	j.ntrailer = copy(j.trailer[:], trailer)
	return i
}

// Flush verifies the queued packets' ICVs (in constant time, as Open does)
// and decrypts those that are authentic.
func (b *OpenBatch) Flush() {
	for i := range b.jobs {
		j := &b.jobs[i]
		if j.e == nil {
			continue
		}
		end := len(j.pkt) - j.e.icv
		b.sha1 = append(b.sha1, hmacsha1.Job{Key: j.e.sha1, Data: j.pkt[:end], Trailer: j.trailer[:j.ntrailer], Out: j.sum[:j.e.icv]})
	}
	b.macs.Sum(b.sha1)
	clear(b.sha1)
	b.sha1 = b.sha1[:0]
	var (
		cur *Protector
		sc  *scratch
	)
	for i := range b.jobs {
		j := &b.jobs[i]
		if j.e == nil {
			continue
		}
		end := len(j.pkt) - j.e.icv
		if !ctEqual(j.sum[:j.e.icv], j.pkt[end:]) {
			j.err = j.p.authErr
		} else {
			if j.p != cur {
				if cur != nil {
					cur.pool.Put(sc)
				}
				cur, sc = j.p, j.p.get()
			}
			iv := j.off + j.e.c.ivSize()
			j.e.c.decrypt(sc, j.pkt[j.off:iv], j.pkt[iv:end])
		}
		j.e = nil
	}
	if cur != nil {
		cur.pool.Put(sc)
	}
}

// Err is the outcome of the packet Add returned index i for: nil when it
// was authentic and is now decrypted, otherwise what Open would have
// returned. Valid after Flush until Reset.
func (b *OpenBatch) Err(i int) error { return b.jobs[i].err }

// Reset forgets the packets and results (dropping the references to
// packets and Protectors) for the next batch.
func (b *OpenBatch) Reset() {
	clear(b.jobs)
	b.jobs = b.jobs[:0]
}

// Reserve makes room for n packets, so that batches of up to n never
// allocate (the dataplane sizes each of its batch buffers once).
func (b *SealBatch) Reserve(n int) {
	b.jobs = make([]batchJob, 0, n)
	b.cbc = make([]aescbc.Job, 0, n)
	b.sha1 = make([]hmacsha1.Job, 0, n)
}

// Reserve makes room for n packets, so that batches of up to n never
// allocate.
func (b *OpenBatch) Reserve(n int) {
	b.jobs = make([]openJob, 0, n)
	b.sha1 = make([]hmacsha1.Job, 0, n)
}
