package ah

import (
	"github.com/ipsecgw/ipsecgw/header"
)

// mutable holds the IP header fields that the ICV sees as zeros (RFC 4302
// §3.3.3.1), saved while they are zeroed in place.
type mutable struct {
	fixed [8]byte // IPv4: TOS, flags/fragment, TTL, checksum; IPv6: the first 4 bytes and the hop limit
	opts  [40]byte
	// ext are the IPv6 extension headers between the fixed header and AH
	// (ipv6ext.go).
	ext [maxExtLen]byte
}

// IPv4 option types whose contents are immutable and authenticated as they
// are (RFC 4302 Appendix A.1): End of Options List, No Operation, Security,
// Extended Security, Commercial Security, Router Alert, Sender Directed
// Multi-Destination Delivery. Every other option is zeroed whole.
func immutableOption(t byte) bool {
	switch t {
	case 0, 1, 130, 133, 134, 148, 149:
		return true
	}
	return false
}

// Loose and Strict Source Route: mutable but predictable, and the ICV
// would need the final destination from the option; refused.
func sourceRoute(t byte) bool { return t == 131 || t == 137 }

// zero saves and zeroes the mutable fields of the IP header pkt[:hl].
func (m *mutable) zero(pkt []byte, hl int) error {
	if header.IPVersion(pkt) == 6 {
		if hl > header.IPv6Len {
			ext := pkt[header.IPv6Len:hl]
			if len(ext) > maxExtLen {
				return ErrExtension
			}
			copy(m.ext[:], ext)
			if err := zeroV6Ext(ext, pkt[6]); err != nil {
				return err
			}
		}
		copy(m.fixed[:4], pkt[:4])
		m.fixed[4] = pkt[7]
		pkt[0], pkt[1], pkt[2], pkt[3] = 6<<4, 0, 0, 0
		pkt[7] = 0
		return nil
	}
	m.fixed = [8]byte{pkt[1], pkt[6], pkt[7], pkt[8], pkt[10], pkt[11]}
	opts := pkt[header.IPv4MinLen:hl]
	// Check the options before changing anything, so that a refused
	// packet is left as it came.
	for i := 0; i < len(opts); {
		t := opts[i]
		if t == 0 {
			break
		}
		l := optLen(opts[i:])
		if sourceRoute(t) {
			return ErrOption
		}
		i += l
	}
	copy(m.opts[:], opts)
	for i := 0; i < len(opts); {
		t := opts[i]
		if t == 0 {
			break
		}
		l := optLen(opts[i:])
		if !immutableOption(t) {
			clear(opts[i : i+l])
		}
		i += l
	}
	pkt[1], pkt[6], pkt[7], pkt[8], pkt[10], pkt[11] = 0, 0, 0, 0, 0, 0
	return nil
}

// optLen is the length of the option at the start of o (1 for No
// Operation, and the rest of the options when the length byte is missing
// or wrong, so a malformed option is zeroed rather than misread).
func optLen(o []byte) int {
	if o[0] == 1 {
		return 1
	}
	if len(o) < 2 || int(o[1]) < 2 || int(o[1]) > len(o) {
		return len(o)
	}
	return int(o[1])
}

// restore puts the saved fields back.
func (m *mutable) restore(pkt []byte, hl int) {
	if header.IPVersion(pkt) == 6 { // zero keeps the version nibble
		copy(pkt[:4], m.fixed[:4])
		pkt[7] = m.fixed[4]
		copy(pkt[header.IPv6Len:hl], m.ext[:])
		return
	}
	pkt[1], pkt[6], pkt[7], pkt[8], pkt[10], pkt[11] = m.fixed[0], m.fixed[1], m.fixed[2], m.fixed[3], m.fixed[4], m.fixed[5]
	copy(pkt[header.IPv4MinLen:hl], m.opts[:])
}
