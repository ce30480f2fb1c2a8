package esp

import (
	"errors"

	"github.com/ipsecgw/ipsecgw/sad"
	"github.com/ipsecgw/ipsecgw/transform"
)

// Seal protects the inner packet buf[off:off+n] with the outbound SA sa:
// it reserves the next sequence number (sad.SA.NextSeq: refused once the SA
// is expired or its sequence numbers are used up, never wrapping) and
// frames the packet in place as SealPacket does. The caller holds a
// reference on sa (sad.SA.Acquire). On a drop the reason is charged to the
// SA as well.
func Seal(sa *sad.SA, buf []byte, off, n int) (start int, pkt []byte, r sad.DropReason) {
	p := sa.Cipher()
	if off < HeadLen(p) || off+TailLen(p, n)+n+Spare > cap(buf) {
		sa.Drop(sad.DropMalformed)
		return 0, nil, sad.DropMalformed
	}
	seq, r := sa.NextSeq(n)
	if r != sad.NotDropped {
		sa.Drop(r)
		return 0, nil, r
	}
	start, pkt, err := SealPacket(p, sa.SPI(), seq, sa.ESN(), buf, off, n)
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
	spi, lo, ok := ParseHeader(pkt)
	if !ok {
		return nil, 0, 0, sad.DropMalformed
	}
	sa = t.Inbound(spi)
	if sa == nil {
		return nil, 0, 0, sad.DropNoSA
	}
	if !sa.Acquire() {
		return nil, 0, 0, sad.DropNoSA
	}
	off, n, r = openSA(sa, lo, pkt)
	sa.Release()
	if r != sad.NotDropped {
		sa.Drop(r)
	}
	return sa, off, n, r
}

func openSA(sa *sad.SA, lo uint32, pkt []byte) (off, n int, r sad.DropReason) {
	seq, r := sa.Check(lo)
	if r != sad.NotDropped {
		return 0, 0, r
	}
	off, n, _, err := OpenPacket(sa.Cipher(), seq, sa.ESN(), pkt)
	switch {
	case err == nil:
	case errors.Is(err, ErrAuth):
		return 0, 0, sad.DropAuthFailed
	case errors.Is(err, ErrDummy):
		// A dummy packet is authentic: it advances the window (RFC 4303
		// §2.6 says discard it silently, not that it is a replay hole).
		sa.Accept(seq, 0)
		return 0, 0, sad.DropMalformed
	case errors.Is(err, transform.ErrClosed):
		return 0, 0, sad.DropNoSA
	default:
		if errors.Is(err, ErrPadding) || errors.Is(err, ErrNextHeader) {
			// Authentic but badly formed by the peer: record the number so
			// a replay of it is not processed twice.
			sa.Accept(seq, 0)
		}
		return 0, 0, sad.DropMalformed
	}
	if r := sa.Accept(seq, n); r != sad.NotDropped {
		return 0, 0, r
	}
	if r := sa.CheckInner(pkt[off : off+n]); r != sad.NotDropped {
		return 0, 0, r
	}
	return off, n, sad.NotDropped
}
