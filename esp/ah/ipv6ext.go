package ah

import "github.com/ipsecgw/ipsecgw/header"

// IPv6 extension headers in front of AH (RFC 4302 §3.1.1, §3.3.3.1.2):
// Hop-by-Hop Options, Routing and Destination Options may come between the
// fixed header and AH, and the ICV covers them. In the options headers the
// third-highest bit of each option's type says whether its data may change
// en route (RFC 8200 §4.2); such data counts as zeros, the option's type and
// length as they are. A Routing header is mutable but predictable: at the
// final destination (Segments Left 0) it is what the sender authenticated,
// so it is covered as it is; one that still has segments left means the
// packet is not at its destination yet and is refused. A Fragment header
// is refused too: AH protects whole packets (§3.3.4).

// maxExtLen bounds the extension headers before AH that Open accepts: their
// bytes are saved on the stack while mutable option data is zeroed.
const maxExtLen = 256

// v6Chain walks the extension headers of the IPv6 packet pkt from the
// fixed header while they are Hop-by-Hop, Routing or Destination Options
// headers. It returns where the first other header starts (hl), the
// offset of the Next Header field that names it (nextAt), and its type.
func v6Chain(pkt []byte) (hl, nextAt int, next byte, err error) {
	hl, nextAt, next = header.IPv6Len, 6, pkt[6]
	for next == header.ProtoHopByHop || next == header.ProtoRouting || next == header.ProtoDestOpts {
		if len(pkt) < hl+8 {
			return 0, 0, 0, ErrShort
		}
		l := (int(pkt[hl+1]) + 1) * 8
		if len(pkt) < hl+l {
			return 0, 0, 0, ErrShort
		}
		if next == header.ProtoHopByHop && hl != header.IPv6Len {
			// RFC 8200 §4.1: Hop-by-Hop only right after the fixed header.
			return 0, 0, 0, ErrHeader
		}
		nextAt, next = hl, pkt[hl]
		hl += l
	}
	if next == header.ProtoFragment {
		return 0, 0, 0, ErrHeader
	}
	return hl, nextAt, next, nil
}

// zeroV6Ext zeroes the mutable parts of the extension headers ext (the
// bytes between the fixed header and AH), whose first header is of type
// first. The caller has saved them. It refuses (ErrExtension) a Routing
// header with segments left and malformed options, before changing
// anything.
func zeroV6Ext(ext []byte, first byte) error {
	for pass := range 2 {
		typ := first
		for b := ext; len(b) > 0; {
			l := (int(b[1]) + 1) * 8
			switch typ {
			case header.ProtoRouting:
				if b[3] != 0 {
					return ErrExtension
				}
			case header.ProtoHopByHop, header.ProtoDestOpts:
				if err := zeroOptions(b[2:l], pass == 1); err != nil {
					return err
				}
			}
			typ, b = b[0], b[l:]
		}
	}
	return nil
}

// zeroOptions walks the TLV options o of a Hop-by-Hop or Destination
// Options header and, with zero set, clears the data of each option whose
// type has the "may change en route" bit (0x20).
func zeroOptions(o []byte, zero bool) error {
	for i := 0; i < len(o); {
		if o[i] == 0 { // Pad1: a single byte
			i++
			continue
		}
		if i+2 > len(o) || i+2+int(o[i+1]) > len(o) {
			return ErrExtension
		}
		end := i + 2 + int(o[i+1])
		if zero && o[i]&0x20 != 0 {
			clear(o[i+2 : end])
		}
		i = end
	}
	return nil
}
