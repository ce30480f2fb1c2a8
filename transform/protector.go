package transform

import (
	"crypto/subtle"
	"hash"
	"sync"
	"sync/atomic"

	"crypto/cipher"
)

// Limits on the explicit aad and trailer arguments of Seal and Open. They are
// copied into per-call scratch so that a caller may build them on its stack
// without the compiler moving them to the heap.
const (
	MaxAAD     = 64 // longest explicit AEAD associated data accepted
	MaxTrailer = 16 // longest integrity-only trailer accepted
)

// Protector is one direction of packet protection for an ESP SA or an IKE SA:
// an AEAD cipher (AES-GCM, ChaCha20-Poly1305) or a cipher (AES-CBC, AES-CTR,
// 3DES-CBC, NULL) combined with an integrity algorithm, keyed once by
// NewProtector.
//
// A Protector is safe for concurrent use by multiple goroutines (per-call
// state comes from an internal pool), and Seal and Open do not allocate in the
// steady state. Close wipes the keys; it must not run concurrently with Seal
// or Open.
//
// # Buffer layout
//
// Seal and Open work in place on one buffer pkt and one offset off:
//
//	pkt[:off]                          authenticated, not encrypted ("header")
//	pkt[off : off+IVSize()]            IV, sent in clear
//	pkt[off+IVSize() : len-ICVSize()]  payload: plaintext before Seal,
//	                                   ciphertext after; for CBC ciphers its
//	                                   length must be a multiple of BlockSize()
//	pkt[len-ICVSize():]                ICV, written by Seal, checked by Open
//
// What is authenticated depends on the kind of cipher:
//
//   - cipher + integrity: ICV = truncated MAC over pkt[:len-ICVSize()]
//     followed by trailer (header, IV and ciphertext, then bytes that are
//     authenticated but not sent). The aad argument is ignored.
//   - AEAD: nonce = salt || IV; associated data = aad if aad != nil, else
//     pkt[:off]. The IV is not part of the associated data. The trailer
//     argument is ignored.
//
// The two users map onto this as follows.
//
// ESP (RFC 4303 §2, packet SPI|Seq|IV|ciphertext|ICV): off = 8 (SPI and the
// low 32 bits of the sequence number). Without ESN pass aad = nil, trailer =
// nil. With ESN: for cipher+integrity the high 32 bits of the sequence number
// are authenticated after the ciphertext but not sent (RFC 4303 §2.2.1,
// Appendix A), so pass trailer = SeqHi as 4 big-endian bytes; for AEAD the
// associated data is SPI|SeqHi|SeqLo (RFC 4106 §5, RFC 7634 §3), so pass aad
// = those 12 bytes. Since aad then replaces pkt[:off], a receiver must build
// it from the SPI and SeqLo of the packet it received (plus its SeqHi
// estimate, RFC 4303 Appendix A.2), never from a cached copy. Callers pass both and the Protector uses the one its kind
// needs (AEAD() tells which). Both may live on the caller's stack: they are
// copied, never retained.
//
// IKE SK payload (RFC 7296 §3.14, RFC 5282 §5.1): off = offset of the IV,
// i.e. pkt[:off] is the IKE header through the generic header of the SK (or
// SKF, RFC 7383) payload, and len(pkt) is the end of the message. aad and
// trailer are nil: for cipher+integrity the checksum covers the message from
// the IKE header through the last encrypted byte, and for AEAD the associated
// data is the IKE header through the SK payload header, exactly pkt[:off].
// The caller fills in header lengths before Seal, since they are
// authenticated.
//
// # IVs
//
// AES-GCM with an 8-byte ICV is the one exception to "nothing outside pkt is
// touched": when cap(pkt) >= len(pkt)+8 it temporarily uses, then restores,
// those 8 bytes (see gcm8.go), so other goroutines must not use them
// meanwhile; without that capacity it works on a pooled copy instead.
//
// The IV is chosen by the caller before Seal. AEAD and counter-mode IVs must
// never repeat under one key; CBC IVs must be unpredictable. IV(iv, seq)
// derives a suitable IV from a number the caller guarantees unique per key
// (ESP: the 64-bit sequence number, as RFC 4106 §3.1 and RFC 7634 §2
// permit); NextIV(iv) uses an internal counter (IKE, where message IDs are not
// unique per key).
type Protector struct {
	encr, integ Transform
	eng         engine
	pool        *sync.Pool // *scratch; the engine's (engine.scratchPool)
	ivc         atomic.Uint64
	closed      atomic.Bool
	authErr     error // returned for every forged packet, so rejecting one does not allocate (authErrFor)
}

// engine is the cipher-specific part of a Protector. The layout has been
// validated and aad/trailer copied into sc before seal/open are called.
type engine interface {
	aead() bool
	ivSize() int
	blockSize() int
	icvSize() int
	// needsBlocks reports whether the payload must be a multiple of blockSize.
	needsBlocks() bool
	seal(sc *scratch, pkt []byte, off int, aad, trailer []byte)
	// open verifies and decrypts; it returns false when the ICV is wrong.
	open(sc *scratch, pkt []byte, off int, aad, trailer []byte) bool
	// makeIV writes an IV for the unique number n into iv (len ivSize).
	makeIV(sc *scratch, iv []byte, n uint64)
	newScratch() *scratch
	// scratchPool is where the Protector keeps the engine's scratch
	// between calls: one pool shared by all engines whose scratch holds
	// nothing of their key (plainScratch), else one of the engine's own,
	// which zero empties. A hub's idle SAs then hold no pool each.
	scratchPool() *sync.Pool
	// keys returns the key material the engine was built from (the
	// engine's own copies, not to be modified).
	keys() (encKey, integKey []byte)
	zero()
}

// plainScratch pools the scratch of the engines whose scratch holds
// nothing of their key: what a call leaves in it (a nonce, aad) is no more
// secret than the packet it came with.
var plainScratch sync.Pool

// scratch is per-call state taken from the Protector's pool.
type scratch struct {
	nonce   [16]byte
	aad     [MaxAAD]byte
	trailer [MaxTrailer]byte
	sum     [64]byte
	ks      [ctrBatch]byte // CTR keystream / IV block
	work    []byte         // GCM-8 work area when the packet lacks tailroom
	mac     hash.Hash      // keyed MAC for cipher+integrity engines
	cbcEnc  cipher.BlockMode
	cbcDec  cipher.BlockMode
}

// AEAD reports whether the cipher is a combined mode (GCM, ChaCha20-Poly1305).
func (p *Protector) AEAD() bool { return p.eng.aead() }

// IVSize is the number of IV bytes carried in each packet: 16 for AES-CBC, 8
// for 3DES-CBC, AES-CTR, AES-GCM and ChaCha20-Poly1305, 0 for NULL.
func (p *Protector) IVSize() int { return p.eng.ivSize() }

// BlockSize is the alignment the payload (including padding and, for ESP,
// the Pad Length and Next Header bytes) must be padded to: 16 for AES-CBC, 8
// for 3DES-CBC, 4 for AES-CTR, AES-GCM, ChaCha20-Poly1305 and NULL (ESP's
// 4-byte alignment, RFC 4303 §2.4). Only CBC ciphers reject other lengths.
func (p *Protector) BlockSize() int { return p.eng.blockSize() }

// ICVSize is the number of ICV bytes at the end of the packet.
func (p *Protector) ICVSize() int { return p.eng.icvSize() }

// Overhead is IVSize()+ICVSize(): the bytes the Protector adds around the
// padded payload, not counting the header before off.
func (p *Protector) Overhead() int { return p.eng.ivSize() + p.eng.icvSize() }

// Encr and Integ return the transforms the Protector was built from (Integ is
// IntegNone for AEAD ciphers).
func (p *Protector) Encr() Transform  { return p.encr }
func (p *Protector) Integ() Transform { return p.integ }

func (p *Protector) check(op string, pkt []byte, off int, aad, trailer []byte) error {
	if p.closed.Load() {
		return newErr(op, p.encr, ErrClosed, "")
	}
	if off < 0 || len(pkt) < off+p.eng.ivSize()+p.eng.icvSize() {
		return newErr(op, p.encr, ErrLayout, "packet shorter than header+IV+ICV")
	}
	if p.eng.needsBlocks() && (len(pkt)-off-p.eng.ivSize()-p.eng.icvSize())%p.eng.blockSize() != 0 {
		return newErr(op, p.encr, ErrLayout, "payload not a multiple of the block size")
	}
	if len(aad) > MaxAAD || len(trailer) > MaxTrailer {
		return newErr(op, p.encr, ErrLayout, "aad or trailer too long")
	}
	return nil
}

// get takes per-call state from the pool or makes it. (A pool New
// function would be a closure over the engine: one more allocation per
// Protector, which a hub holds two of per idle CHILD SA.)
func (p *Protector) get() *scratch {
	if sc, ok := p.pool.Get().(*scratch); ok {
		return sc
	}
	return p.eng.newScratch()
}

// authErrs holds one authentication error per encryption transform, shared
// by all Protectors of that transform (an *Error per Protector cost 64
// bytes each).
var authErrs sync.Map // Transform -> error

// authErrFor returns the error Open gives for a forged packet of encr.
func authErrFor(encr Transform) error {
	if err, ok := authErrs.Load(encr); ok {
		return err.(error)
	}
	err, _ := authErrs.LoadOrStore(encr, error(&Error{Op: "open", T: encr, Err: ErrAuthFailed}))
	return err.(error)
}

// Seal encrypts the payload of pkt in place and writes the ICV into the last
// ICVSize() bytes; see the type documentation for the layout and for what aad
// and trailer mean. The IV must already be in pkt[off:off+IVSize()].
func (p *Protector) Seal(pkt []byte, off int, aad, trailer []byte) error {
	if err := p.check("seal", pkt, off, aad, trailer); err != nil {
		return err
	}
	sc := p.get()
	a, t := p.copyArgs(sc, aad, trailer)
	p.eng.seal(sc, pkt, off, a, t)
	p.pool.Put(sc)
	return nil
}

// Open verifies the ICV of pkt and, only if it is correct, decrypts the
// payload in place; afterwards the plaintext is pkt[off+IVSize() :
// len(pkt)-ICVSize()]. A wrong ICV gives an error wrapping ErrAuthFailed; the
// ICV comparison is constant-time. aad and trailer must be what the sender
// passed to Seal.
func (p *Protector) Open(pkt []byte, off int, aad, trailer []byte) error {
	if err := p.check("open", pkt, off, aad, trailer); err != nil {
		return err
	}
	sc := p.get()
	a, t := p.copyArgs(sc, aad, trailer)
	ok := p.eng.open(sc, pkt, off, a, t)
	p.pool.Put(sc)
	if !ok {
		return p.authErr
	}
	return nil
}

// copyArgs copies aad and trailer into sc so that the caller's slices never
// reach an interface call (which would force them onto the heap). A nil aad
// stays nil, meaning "use pkt[:off]".
func (p *Protector) copyArgs(sc *scratch, aad, trailer []byte) (a, t []byte) {
	if aad != nil {
		a = sc.aad[:copy(sc.aad[:], aad)]
	}
	t = sc.trailer[:copy(sc.trailer[:], trailer)]
	return a, t
}

// IV writes into iv (which must be IVSize() bytes long, normally
// pkt[off:off+IVSize()]) an IV derived from n, a number the caller guarantees
// is never reused with this Protector's key (ESP: the full 64-bit sequence
// number). Counter modes (CTR, GCM, ChaCha20-Poly1305) get n big-endian, which
// is unique; CBC ciphers get n encrypted with a random per-Protector AES key,
// which is unpredictable (RFC 3602 §3, RFC 4303 §3.3.2) and, for AES-CBC's
// 16-byte IV, also unique (3DES takes the first 8 bytes). Use either IV or
// NextIV on one Protector, never both: their numbers would overlap.
func (p *Protector) IV(iv []byte, n uint64) error {
	if p.closed.Load() {
		return newErr("iv", p.encr, ErrClosed, "")
	}
	if len(iv) != p.eng.ivSize() {
		return newErr("iv", p.encr, ErrLayout, "iv length differs from IVSize")
	}
	if len(iv) == 0 {
		return nil
	}
	sc := p.get()
	p.eng.makeIV(sc, iv, n)
	p.pool.Put(sc)
	return nil
}

// NextIV is IV with an internal counter, for callers that have no unique
// number of their own (IKE SK payloads).
func (p *Protector) NextIV(iv []byte) error { return p.IV(iv, p.ivc.Add(1)) }

// Keys returns copies of the key material the Protector was built from
// (encKey and integKey as given to NewProtector; nil for an absent one), for
// debugging exports. After Close it returns nil, nil. It must not be called
// concurrently with Close.
func (p *Protector) Keys() (encKey, integKey []byte) {
	if p.closed.Load() {
		return nil, nil
	}
	e, i := p.eng.keys()
	return clone(e), clone(i)
}

// clone copies b; nil or empty gives nil.
func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// Close wipes the key material held by the Protector; later Seal, Open and IV
// calls fail with ErrClosed. It must not be called concurrently with them.
func (p *Protector) Close() {
	if p.closed.Swap(true) {
		return
	}
	p.eng.zero()
}

// ctEqual compares two ICVs in constant time.
func ctEqual(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// NewProtector builds one direction of protection from the negotiated
// encryption transform and integrity transform (IntegNone for AEAD ciphers;
// a non-AEAD cipher requires a real integrity algorithm, since this package
// does not offer unauthenticated encryption). encKey is KeymatLen(encr) bytes
// (cipher key, then the 4-byte salt/nonce where the cipher has one) and
// integKey is KeymatLen(integ) bytes (nil for AEAD). The keys are copied.
// AEAD ciphers expand their key on the first Seal or Open rather than here,
// so that an SA that never carries a packet holds only its key bytes.
func NewProtector(encr, integ Transform, encKey, integKey []byte) (*Protector, error) {
	ei, err := Lookup(encr)
	if err != nil {
		return nil, err
	}
	if encr.Type != TypeENCR {
		return nil, newErr("new", encr, ErrUnsupported, "not an encryption transform")
	}
	if integ.Type == 0 {
		integ.Type = TypeINTEG
	}
	ii, err := Lookup(integ)
	if err != nil {
		return nil, err
	}
	if integ.Type != TypeINTEG {
		return nil, newErr("new", integ, ErrUnsupported, "not an integrity transform")
	}
	if ei.AEAD != (integ.ID == IntegNone) {
		if ei.AEAD {
			return nil, newErr("new", integ, ErrUnsupported, "AEAD cipher "+ei.Name+" takes no integrity transform")
		}
		return nil, newErr("new", encr, ErrUnsupported, "cipher needs an integrity transform")
	}
	if len(encKey) != ei.KeySize+ei.SaltSize {
		return nil, newErr("new", encr, ErrKeyLength, "encryption key material has the wrong length")
	}
	if len(integKey) != ii.KeySize {
		return nil, newErr("new", integ, ErrKeyLength, "integrity key has the wrong length")
	}
	var eng engine
	if ei.AEAD {
		switch encr.ID {
		case EncrAESGCM12, EncrAESGCM16:
			eng, err = newGCM(encKey, ei.ICVSize)
		case EncrAESGCM8:
			eng, err = newGCM8(encKey)
		case EncrChaCha20Poly1305:
			eng, err = newChaCha(encKey)
		}
	} else {
		var c cipherMode
		switch encr.ID {
		case EncrAESCBC:
			c, err = newAESCBC(encKey)
		case Encr3DES:
			c, err = new3DESCBC(encKey)
		case EncrAESCTR:
			c, err = newAESCTR(encKey)
		case EncrNull:
			c = nullMode{}
		}
		if err == nil {
			eng, err = newIntegEngine(c, integ.ID, integKey)
		}
	}
	if err != nil {
		// Only key-schedule failures reach here (e.g. 3DES rejecting nothing,
		// AES rejecting a length Lookup already checked); keep the cause.
		return nil, &Error{Op: "new", T: encr, Err: ErrKeyLength, Detail: err.Error()}
	}
	if eng == nil {
		return nil, newErr("new", encr, ErrUnsupported, "")
	}
	p := &Protector{encr: encr, integ: integ, eng: eng, pool: eng.scratchPool()}
	p.authErr = authErrFor(encr)
	return p, nil
}
