// Package esp is the ESP dataplane: RFC 4303 tunnel-mode framing applied in
// place on pooled buffers (esp.go, sa.go), and the pipeline that moves
// packets between a TUN device and the ESP sockets (dataplane.go).
//
// # Framing
//
// An ESP tunnel-mode packet (RFC 4303 §2) is
//
//	SPI (4) | Sequence Number low 32 bits (4) | IV | inner IP packet |
//	Padding (1, 2, 3, ...) | Pad Length (1) | Next Header (1) | ICV
//
// where everything from the inner packet through Next Header is encrypted,
// and the payload from the inner packet through Next Header is a multiple
// of the cipher's block size and of 4 bytes (transform.Protector.BlockSize
// already folds in the 4). No TFC padding is added.
//
// Outbound, the inner packet sits in a buffer with headroom (tun.Headroom)
// and tailroom (tun.Tailroom): SealPacket writes the ESP header and IV in
// front of it and the trailer behind it, then the Protector encrypts in
// place. The ESP sockets (esp/conn) send the ESP packet and the kernel adds
// the outer IP (and UDP) header; WriteOuter builds that header in the
// headroom too, for transports that carry whole IP packets (captures,
// in-memory tests).
//
// Inbound, OpenPacket verifies the ICV before anything is decrypted, then
// checks the monotonic padding bytes (RFC 4303 §2.4) and the Next Header.
//
// # Extended sequence numbers
//
// With ESN (RFC 4303 §2.2.1) only the low 32 bits travel; the high 32 bits
// are authenticated: appended after the ciphertext for cipher+integrity
// (Appendix A), or inside the AAD SPI|SeqHi|SeqLo for AEAD (RFC 4106 §5,
// RFC 7634 §3). The receiver infers them from its replay window
// (sad.SA.Check).
//
// # The pipeline and its API
//
// The daemon (or a test) wires a Dataplane from a TUN device, the SAD, a
// swappable SPD and the ESP sockets:
//
//	live := &spd.Live{}                 // IKE/daemon Store()s new tables
//	var c *conn.Conn
//	dp, err := esp.New(esp.Config{TUN: dev, SAD: sadTable, SPD: live,
//		NewSender: func() esp.Sender { return c.NewSender() },
//		OnTrap:    ike.Acquire})        // must not block
//	c, err = conn.Listen(conn.Config{..., ESP: dp.HandleESP})
//	dp.Start()
//	...
//	c.Close(); dp.Close()               // sockets first, then the dataplane
//
// dp.Stats() gives global counters with drops by sad.DropReason (per-SA
// counters are on the SAs); dp.ReleaseHeld(policyID, sender) sends the
// packets a Trap policy held once IKE installed its SA. Rekeying is done
// entirely in the SAD (sad.Table.Rekey): the dataplane looks SAs up per
// packet and holds a reference (sad.SA.Acquire) while it uses one, so an SA
// retired mid-batch keeps its keys until the batch has left.
//
// Ordering and replay: sequence numbers are reserved in TUN read order, and
// batches leave in that order although sealed in parallel. Inbound, workers
// check the replay window and verify the ICV in parallel, and the in-order
// writer records the numbers (sad.SA.Accept), so that parallel decryption
// never pushes a packet out of the window.
package esp

import (
	"encoding/binary"
	"errors"

	"github.com/ipsecgw/ipsecgw/header"
	"github.com/ipsecgw/ipsecgw/transform"
)

// Sizes of the framing.
const (
	// HeaderLen is SPI + sequence number.
	HeaderLen = 8
	// trailerMin is Pad Length + Next Header.
	trailerMin = 2
)

// Next Header values of tunnel mode.
const (
	NextIPv4  = header.ProtoIPv4
	NextIPv6  = header.ProtoIPv6
	NextDummy = header.ProtoNoNext // RFC 4303 §2.6 dummy packet; discarded silently
)

// Framing errors. They are preallocated so that rejecting a packet does not
// allocate.
var (
	ErrNoRoom      = errors.New("esp: not enough headroom or tailroom in the buffer")
	ErrShort       = errors.New("esp: packet shorter than ESP header, IV, trailer and ICV")
	ErrInnerPacket = errors.New("esp: inner packet is neither IPv4 nor IPv6")
	ErrPadding     = errors.New("esp: padding bytes are not the sequence 1, 2, 3")
	ErrNextHeader  = errors.New("esp: Next Header is not IPv4 (4) or IPv6 (41), or disagrees with the inner packet")
	ErrDummy       = errors.New("esp: dummy packet (Next Header 59)")
	ErrAuth        = errors.New("esp: ICV verification failed")
)

// HeadLen is how many bytes SealPacket writes in front of the inner packet:
// the ESP header and the IV.
func HeadLen(p *transform.Protector) int { return HeaderLen + p.IVSize() }

// TailLen is how many bytes SealPacket writes behind an inner packet of n
// bytes: padding, Pad Length, Next Header and ICV.
func TailLen(p *transform.Protector, n int) int {
	return padLen(p, n) + trailerMin + p.ICVSize()
}

func padLen(p *transform.Protector, n int) int {
	a := max(p.BlockSize(), 4)
	return (a - (n+trailerMin)%a) % a
}

// Spare is the capacity SealPacket and OpenPacket need past the end of the
// ESP packet beyond TailLen (AES-GCM with an 8-byte ICV borrows 8 bytes).
const Spare = 8

// nextHeader returns the tunnel-mode Next Header for an inner packet.
func nextHeader(inner []byte) (byte, bool) {
	switch header.IPVersion(inner) {
	case 4:
		return NextIPv4, true
	case 6:
		return NextIPv6, true
	}
	return 0, false
}

// SealPacket frames the inner IP packet buf[off:off+n] as ESP with the given
// SPI and 64-bit sequence number and encrypts it in place. It needs
// HeadLen(p) bytes before off and TailLen(p, n)+Spare bytes of capacity
// after off+n. It returns where the ESP packet starts in buf and the ESP
// packet itself (a slice of buf). The sequence number must be fresh for the
// key (the caller takes it from sad.SA.NextSeq); it also seeds the IV.
func SealPacket(p *transform.Protector, spi uint32, seq uint64, esn bool, buf []byte, off, n int) (start int, pkt []byte, err error) {
	start, pkt, err = framePacket(p, spi, seq, esn, buf, off, n)
	if err != nil {
		return 0, nil, err
	}
	var ext [12]byte
	aad, trailer := extAuth(&ext, pkt, seq, esn)
	if err := p.Seal(pkt, HeaderLen, aad, trailer); err != nil {
		return 0, nil, err
	}
	return start, pkt, nil
}

// sealPacketBatch is SealPacket with the encryption left to b: the packet is
// sealed once b.Flush returns.
func sealPacketBatch(b *transform.SealBatch, p *transform.Protector, spi uint32, seq uint64, esn bool, buf []byte, off, n int) (start int, pkt []byte, err error) {
	start, pkt, err = framePacket(p, spi, seq, esn, buf, off, n)
	if err != nil {
		return 0, nil, err
	}
	var ext [12]byte
	aad, trailer := extAuth(&ext, pkt, seq, esn)
	if err := b.Add(p, pkt, HeaderLen, aad, trailer); err != nil {
		return 0, nil, err
	}
	return start, pkt, nil
}

// framePacket is SealPacket up to the encryption: header, IV, padding and
// trailer in place.
func framePacket(p *transform.Protector, spi uint32, seq uint64, esn bool, buf []byte, off, n int) (start int, pkt []byte, err error) {
	start = off - HeadLen(p)
	pad := padLen(p, n)
	end := off + n + pad + trailerMin + p.ICVSize()
	if start < 0 || n < 0 || end+Spare > cap(buf) {
		return 0, nil, ErrNoRoom
	}
	buf = buf[:end]
	next, ok := nextHeader(buf[off : off+n])
	if !ok {
		return 0, nil, ErrInnerPacket
	}
	binary.BigEndian.PutUint32(buf[start:], spi)
	binary.BigEndian.PutUint32(buf[start+4:], uint32(seq))
	if err := p.IV(buf[start+HeaderLen:off], seq); err != nil {
		return 0, nil, err
	}
	t := off + n
	for i := range pad {
		buf[t+i] = byte(i + 1)
	}
	buf[t+pad] = byte(pad)
	buf[t+pad+1] = next
	return start, buf[start:end], nil
}

// extAuth returns the ESN additions to the authenticated data (nil, nil
// without ESN). ext holds them so that they stay on the caller's stack.
func extAuth(ext *[12]byte, pkt []byte, seq uint64, esn bool) (aad, trailer []byte) {
	if !esn {
		return nil, nil
	}
	copy(ext[0:4], pkt[0:4])
	binary.BigEndian.PutUint32(ext[4:], uint32(seq>>32))
	// SeqLo comes from the packet itself, never from seq: a receiver must
	// authenticate what it received.
	copy(ext[8:12], pkt[4:8])
	return ext[:], ext[4:8]
}

// ParseHeader returns the SPI and the low 32 bits of the sequence number of
// an ESP packet.
func ParseHeader(pkt []byte) (spi, seqLo uint32, ok bool) {
	if len(pkt) < HeaderLen {
		return 0, 0, false
	}
	return binary.BigEndian.Uint32(pkt), binary.BigEndian.Uint32(pkt[4:]), true
}

// OpenPacket verifies and decrypts the ESP packet pkt (SPI first) in place,
// with seq the full sequence number (with ESN, the high bits inferred by
// the replay window). On success the inner packet is pkt[off:off+n] and next
// its Next Header (NextIPv4 or NextIPv6, consistent with the inner packet's
// version). Errors: ErrShort, ErrAuth (ICV wrong: nothing was decrypted),
// ErrPadding, ErrNextHeader, ErrDummy, or a transform error (closed key, bad
// layout such as a CBC payload that is not a multiple of the block size).
// pkt needs Spare bytes of capacity past its end.
func OpenPacket(p *transform.Protector, seq uint64, esn bool, pkt []byte) (off, n int, next byte, err error) {
	hl := HeadLen(p)
	if len(pkt) < hl+trailerMin+p.ICVSize() {
		return 0, 0, 0, ErrShort
	}
	var ext [12]byte
	aad, trailer := extAuth(&ext, pkt, seq, esn)
	if err := p.Open(pkt, HeaderLen, aad, trailer); err != nil {
		return 0, 0, 0, openErr(err)
	}
	return unframe(p, pkt)
}

// openErr is the OpenPacket error for a failed transform Open.
func openErr(err error) error {
	if errors.Is(err, transform.ErrAuthFailed) {
		return ErrAuth
	}
	return err
}

// unframe is OpenPacket after the decryption: padding and Next Header.
func unframe(p *transform.Protector, pkt []byte) (off, n int, next byte, err error) {
	hl := HeadLen(p)
	t := len(pkt) - p.ICVSize() // end of plaintext
	next = pkt[t-1]
	pad := int(pkt[t-2])
	end := t - trailerMin - pad
	if end < hl {
		return 0, 0, 0, ErrPadding
	}
	for i, b := range pkt[end : t-trailerMin] {
		if b != byte(i+1) {
			return 0, 0, 0, ErrPadding
		}
	}
	if next == NextDummy {
		return 0, 0, 0, ErrDummy
	}
	got, ok := nextHeader(pkt[hl:end])
	if !ok || got != next {
		return 0, 0, 0, ErrNextHeader
	}
	return hl, end - hl, next, nil
}
