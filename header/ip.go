package header

// IP protocol numbers (IANA "Assigned Internet Protocol Numbers"), as found
// in the IPv4 Protocol field and in the Next Header field of IPv6 and its
// extension headers. They are untyped constants so that they compare with
// the uint8 protocol fields of other packages without conversion.
const (
	ProtoHopByHop = 0 // IPv6 Hop-by-Hop Options header (RFC 8200 §4.3)
	ProtoICMP     = 1
	ProtoIPv4     = 4 // IPv4 in IP: a tunnel-mode ESP Next Header (RFC 4303 §2.6)
	ProtoTCP      = 6
	ProtoUDP      = 17
	ProtoDCCP     = 33
	ProtoIPv6     = 41 // IPv6 in IP: likewise
	ProtoRouting  = 43 // IPv6 Routing header (RFC 8200 §4.4)
	ProtoFragment = 44 // IPv6 Fragment header (RFC 8200 §4.5)
	ProtoGRE      = 47
	ProtoESP      = 50
	ProtoAH       = 51
	ProtoICMPv6   = 58
	ProtoNoNext   = 59 // IPv6 No Next Header (RFC 8200 §4.7); ESP's dummy packet
	ProtoDestOpts = 60 // IPv6 Destination Options header (RFC 8200 §4.6)
	ProtoSCTP     = 132
	ProtoUDPLite  = 136
)

// IPVersion returns the version field of the IP packet b (4 or 6 for the
// packets we handle), or 0 if b is empty.
func IPVersion(b []byte) int {
	if len(b) == 0 {
		return 0
	}
	return int(b[0] >> 4)
}

// Addrs returns the source and destination address of the IPv4 (v6 false)
// or IPv6 packet ip, as slices of ip (4 or 16 bytes). ip must hold the
// fixed header of its family.
func Addrs(ip []byte, v6 bool) (src, dst []byte) {
	if v6 {
		return IPv6(ip).Src(), IPv6(ip).Dst()
	}
	return IPv4(ip).Src(), IPv4(ip).Dst()
}
