package esp

import (
	"errors"

	"github.com/ipsecgw/ipsecgw/sad"
	"github.com/ipsecgw/ipsecgw/transform"
)

// Seal protects the inner packet buf[off:off+n] with the outbound SA sa:
// it reserves the next sequence number (sad.SA.NextSeq: refused once the SA
// is expired or its sequence numbers are used up, never wrapping) and
// frames the packet in place as SealPacket does (ESP: pkt is the ESP
// packet), or as ah.SealTunnel does for an AH SA (pkt is the whole IP
// packet). The caller holds a
// reference on sa (sad.SA.Acquire). On a drop the reason is charged to the
// SA as well.
func Seal(sa *sad.SA, buf []byte, off, n int) (start int, pkt []byte, r sad.DropReason) {
	if off < headLen(sa) || off+tailLen(sa, n)+n+Spare > cap(buf) {
		sa.Drop(sad.DropMalformed)
		return 0, nil, sad.DropMalformed
	}
	seq, r := sa.NextSeq(n)
	if r != sad.NotDropped {
		sa.Drop(r)
		return 0, nil, r
	}
	start, pkt, err := sealAny(sa, seq, buf, off, n)
	if err != nil {
		r = sad.DropMalformed
		if errors.Is(err, transform.ErrClosed) {
			r = sad.DropNoSA
		}
		sa.Drop(r)
		return 0, nil, r
	}
	return start, pkt, sad.NotDropped
}

// Open authenticates and decrypts an inbound ESP packet pkt (SPI first) in
// place: SAD lookup by SPI, replay pre-check, ICV verification and
// decryption, replay window update (only now that the packet is
// authentic), padding and Next Header checks, and the inner packet against
// the SA's traffic selectors. On success the inner packet is
// pkt[off:off+n]. The SA is returned whenever the SPI was known (nil
// otherwise), so the caller can attribute the packet; drops are charged to
// it here.
func Open(t *sad.Table, pkt []byte) (sa *sad.SA, off, n int, r sad.DropReason) {
	sa, seq, off, n, r := openPending(t, pkt)
	if sa == nil || r == sad.DropAuthFailed || r == sad.DropReplay || r == sad.DropNoSA {
		return sa, 0, 0, r
	}
	if r = accept(sa, seq, n, r); r != sad.NotDropped {
		return sa, 0, 0, r
	}
	return sa, off, n, r
}

// openPending does everything Open does except recording the sequence
// number: the dataplane's workers open packets of one SA in parallel and
// the in-order writer calls accept, so that the window's top advances in
// packet order and packets decrypted early by another core never push
// their predecessors out of the window. r is NotDropped, a reason that
// still needs accept (the packet is authentic: DropMalformed from padding,
// Next Header or a dummy packet, DropSelectorMismatch), or a reason for a
// packet that must not be accepted (DropNoSA, DropReplay, DropAuthFailed),
// which has been charged to the SA already.
func openPending(t *sad.Table, pkt []byte) (sa *sad.SA, seq uint64, off, n int, r sad.DropReason) {
	spi, lo, ok := ParseHeader(pkt)
	if !ok {
		return nil, 0, 0, 0, sad.DropMalformed
	}
	sa = t.Inbound(spi)
	if sa == nil {
		return nil, 0, 0, 0, sad.DropNoSA
	}
	if !sa.Acquire() {
		return nil, 0, 0, 0, sad.DropNoSA
	}
	if sa.Proto() != sad.ESP {
		// An ESP packet naming an AH SA's SPI cannot be authentic.
		r = sad.DropAuthFailed
	} else {
		seq, off, n, r = openSA(sa, lo, pkt)
	}
	sa.Release()
	switch r {
	case sad.DropNoSA, sad.DropReplay, sad.DropAuthFailed:
		sa.Drop(r)
	}
	return sa, seq, off, n, r
}

// openBegin is openPending up to the ICV check, which (with the
// decryption) it leaves to b: when queued, the SA stays acquired and
// openFinish completes the packet after b.Flush. Otherwise the packet was
// refused before reaching b and sa, seq and r are openPending's.
func openBegin(b *transform.OpenBatch, t *sad.Table, pkt []byte) (sa *sad.SA, seq uint64, idx int, queued bool, r sad.DropReason) {
	spi, lo, ok := ParseHeader(pkt)
	if !ok {
		return nil, 0, 0, false, sad.DropMalformed
	}
	sa = t.Inbound(spi)
	if sa == nil || !sa.Acquire() {
		return nil, 0, 0, false, sad.DropNoSA
	}
	switch {
	case sa.Proto() != sad.ESP:
		// An ESP packet naming an AH SA's SPI cannot be authentic.
		r = sad.DropAuthFailed
	default:
		if seq, r = sa.Check(lo); r != sad.NotDropped {
			seq = 0
			break
		}
		p := sa.Cipher()
		if len(pkt) < HeadLen(p)+trailerMin+p.ICVSize() {
			// OpenPacket's ErrShort, which openSA counts as not authentic.
			seq, r = 0, sad.DropAuthFailed
			break
		}
		var ext [12]byte
		aad, trailer := extAuth(&ext, pkt, seq, sa.ESN())
		return sa, seq, b.Add(p, pkt, HeaderLen, aad, trailer), true, sad.NotDropped
	}
	sa.Release()
	switch r {
	case sad.DropNoSA, sad.DropReplay, sad.DropAuthFailed:
		sa.Drop(r)
	}
	return sa, seq, 0, false, r
}

// openFinish completes, after b.Flush, a packet openBegin queued as index
// idx, and releases its SA; the results are openPending's.
func openFinish(b *transform.OpenBatch, sa *sad.SA, seq uint64, idx int, pkt []byte) (uint64, int, int, sad.DropReason) {
	var (
		off, n int
		err    = b.Err(idx)
	)
	if err != nil {
		err = openErr(err)
	} else {
		off, n, _, err = unframe(sa.Cipher(), pkt)
	}
	seq, off, n, r := openVerdict(sa, seq, pkt, off, n, err)
	sa.Release()
	switch r {
	case sad.DropNoSA, sad.DropReplay, sad.DropAuthFailed:
		sa.Drop(r)
	}
	return seq, off, n, r
}

// accept records an authentic packet in the replay window and returns the
// final verdict (r from openPending unless the window refuses it now),
// charging drops to the SA.
func accept(sa *sad.SA, seq uint64, n int, r sad.DropReason) sad.DropReason {
	if r != sad.NotDropped {
		n = 0
	}
	if a := sa.Accept(seq, n); a != sad.NotDropped {
		r = a
	}
	if r != sad.NotDropped {
		sa.Drop(r)
	}
	return r
}

func openSA(sa *sad.SA, lo uint32, pkt []byte) (seq uint64, off, n int, r sad.DropReason) {
	seq, r = sa.Check(lo)
	if r != sad.NotDropped {
		return 0, 0, 0, r
	}
	off, n, _, err := OpenPacket(sa.Cipher(), seq, sa.ESN(), pkt)
	return openVerdict(sa, seq, pkt, off, n, err)
}

// openVerdict maps OpenPacket's outcome for the packet with sequence
// number seq to a drop reason and checks the inner packet's selectors.
func openVerdict(sa *sad.SA, seq uint64, pkt []byte, off, n int, err error) (uint64, int, int, sad.DropReason) {
	switch {
	case err == nil:
	case errors.Is(err, ErrAuth):
		return 0, 0, 0, sad.DropAuthFailed
	case errors.Is(err, transform.ErrClosed):
		return 0, 0, 0, sad.DropNoSA
	case errors.Is(err, ErrDummy), errors.Is(err, ErrPadding), errors.Is(err, ErrNextHeader):
		// Authentic but not deliverable (a dummy packet is discarded
		// silently, RFC 4303 §2.6; bad padding or Next Header is the
		// peer's bug): still record the number, so a replay of it is not
		// processed twice.
		return seq, 0, 0, sad.DropMalformed
	default:
		// Layout errors (a CBC payload that is not whole blocks) are
		// found before the ICV is checked: not authentic.
		return 0, 0, 0, sad.DropAuthFailed
	}
	if r := sa.CheckInner(pkt[off : off+n]); r != sad.NotDropped {
		return seq, 0, 0, r
	}
	return seq, off, n, sad.NotDropped
}
