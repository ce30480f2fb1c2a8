package checksum

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"testing"
)

// refSum is the reference: RFC 1071 written the obvious slow way. It adds
// initial 16 bits at a time, then the big-endian words of b (an odd last
// byte padded with a zero low byte), into a uint32 with end-around carry
// after every addition, and returns the 16-bit ones' complement sum.
func refSum(b []byte, initial uint64) uint16 {
	var s uint32
	add := func(w uint32) {
		s += w
		s = s&0xffff + s>>16
	}
	for ; initial != 0; initial >>= 16 {
		add(uint32(initial & 0xffff))
	}
	for i := 0; i+1 < len(b); i += 2 {
		add(uint32(b[i])<<8 | uint32(b[i+1]))
	}
	if len(b)%2 == 1 {
		add(uint32(b[len(b)-1]) << 8)
	}
	return uint16(s)
}

// impl is one way of computing the little-endian data sum that Sum
// finishes.
type impl struct {
	name string
	fn   func([]byte) uint64
}

// implementations lists the implementations this machine can run: the
// generic Go one, and the AVX2 one where there is AVX2 (Sum uses it only
// from avx2MinLen bytes; this calls it for every length).
func implementations() []impl {
	l := []impl{{"generic", sumGeneric}}
	if useAVX2 {
		l = append(l, impl{"avx2", sumAVX2})
	}
	return l
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// randInitial returns initial values of the kinds callers pass: zero,
// a folded sum, a few 32-bit values added together, or any 64-bit value.
func randInitial(r *rand.Rand) uint64 {
	switch r.IntN(4) {
	case 0:
		return 0
	case 1:
		return uint64(r.Uint32() & 0xffff)
	case 2:
		return uint64(r.Uint32()) + uint64(r.Uint32()) + uint64(r.Uint32())
	}
	return r.Uint64()
}

// check compares Sum, Checksum and every implementation with refSum for
// one input.
func check(t testing.TB, b []byte, initial uint64) {
	t.Helper()
	want := refSum(b, initial)
	s := Sum(b, initial)
	if s >= 1<<32 {
		t.Fatalf("len %d initial %#x: Sum = %#x, want < 2^32", len(b), initial, s)
	}
	if got := Fold(s); got != want {
		t.Fatalf("len %d initial %#x: Fold(Sum) = %#04x, want %#04x", len(b), initial, got, want)
	}
	if got := Checksum(b, initial); got != ^want {
		t.Fatalf("len %d initial %#x: Checksum = %#04x, want %#04x", len(b), initial, got, ^want)
	}
	for _, im := range implementations() {
		if got := Fold(finish(im.fn(b), initial)); got != want {
			t.Fatalf("%s: len %d initial %#x: %#04x, want %#04x", im.name, len(b), initial, got, want)
		}
	}
}

// TestSumAgainstReference covers every length up to 2100 at every start
// offset modulo 64 (so every alignment and every tail the vector code can
// see), with random initial values.
func TestSumAgainstReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const maxLen = 2100
	buf := randBytes(r, maxLen+64)
	for n := 0; n <= maxLen; n++ {
		for off := 0; off < 64; off++ {
			check(t, buf[off:off+n], randInitial(r))
		}
	}
}

func TestSumLong(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	// 1<<18 is the AVX2 code's chunk size (avx2MaxChunk); 600001 spans
	// several chunks plus an odd tail.
	buf := randBytes(r, 600001+64)
	for _, n := range []int{9000, 65534, 65535, 1<<18 - 1, 1 << 18, 1<<18 + 1, 600001} {
		for _, off := range []int{0, 1, 2, 3, 7, 31, 33, 63} {
			check(t, buf[off:off+n], randInitial(r))
			check(t, buf[off:off+n], 0)
		}
	}
}

// TestSumExtremes checks inputs that make every word 0xffff (the most
// carries, and the largest values the vector lanes can accumulate) and
// inputs of zeros, whose sum must fold to 0, not 0xffff.
func TestSumExtremes(t *testing.T) {
	ones := bytes.Repeat([]byte{0xff}, 600001)
	zeros := make([]byte, 65535)
	for _, n := range []int{1, 2, 31, 32, 33, 64, 127, 128, 129, 1400, 9000, 65534, 65535, 1 << 18, 1<<18 + 2, 600001} {
		check(t, ones[:n], 0)
		check(t, ones[:n], 0xffffffffffffffff)
		if n <= len(zeros) {
			check(t, zeros[:n], 0)
			check(t, zeros[:n], 0xffff)
		}
	}
	if got := Fold(Sum(zeros, 0)); got != 0 {
		t.Errorf("Fold(Sum(zeros)) = %#04x, want 0", got)
	}
	if got := Checksum(zeros, 0); got != 0xffff {
		t.Errorf("Checksum(zeros) = %#04x, want 0xffff", got)
	}
	// 65535 bytes of 0xff: 32767 words 0xffff and a last 0xff00.
	if got := Fold(Sum(ones[:65535], 0)); got != 0xff00 {
		t.Errorf("Fold(Sum(65535 x 0xff)) = %#04x, want 0xff00", got)
	}
}

// TestChain splits buffers at random even positions and checks that
// chaining Sum over the pieces gives the sum of the whole.
func TestChain(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for range 2000 {
		n := r.IntN(3000)
		if r.IntN(10) == 0 {
			n = 65535 - r.IntN(2)
		}
		b := randBytes(r, n)
		initial := randInitial(r)
		want := refSum(b, initial)
		if got := Fold(Sum(b, initial)); got != want {
			t.Fatalf("len %d: Fold(Sum) = %#04x, want %#04x", n, got, want)
		}
		s := initial
		rest := b
		for len(rest) > 0 {
			k := len(rest)
			if r.IntN(4) != 0 {
				k = 2 * r.IntN(len(rest)/2+1) // even, possibly 0
			}
			s = Sum(rest[:k], s)
			rest = rest[k:]
			// Callers add their own words between pieces too. These
			// three add up to 0x1234 + 0xedcc + 0xfffe = 2*0xffff,
			// which changes nothing modulo 0xffff (but would turn a
			// zero sum into 0xffff, hence want != 0).
			if want != 0 && r.IntN(3) == 0 {
				s += 0x1234
				s = Sum([]byte{0xed, 0xcc}, s)
				s += 0xfffe
			}
		}
		if got := Fold(s); got != want {
			t.Fatalf("len %d: chained Fold = %#04x, want %#04x", n, got, want)
		}
	}
}

func TestFold(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, x := range []uint64{0, 1, 0xffff, 0x10000, 0x1fffe, 0x1ffff, 0x10000ffff, 0xffffffff00010000, 0xffffffff, 1 << 32, 0xffffffffffffffff, 0xffff0000ffff0000, 0x8000000000000000} {
		if got, want := Fold(x), refSum(nil, x); got != want {
			t.Errorf("Fold(%#x) = %#04x, want %#04x", x, got, want)
		}
	}
	for range 100000 {
		x := r.Uint64() >> r.IntN(64)
		if got, want := Fold(x), refSum(nil, x); got != want {
			t.Fatalf("Fold(%#x) = %#04x, want %#04x", x, got, want)
		}
	}
}

// TestKnownAnswers checks published values, independent of refSum.
func TestKnownAnswers(t *testing.T) {
	// RFC 1071 section 3 example.
	rfc := []byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}
	if got := Fold(Sum(rfc, 0)); got != 0xddf2 {
		t.Errorf("RFC 1071 example: sum %#04x, want 0xddf2", got)
	}
	if got := Checksum(rfc, 0); got != 0x220d {
		t.Errorf("RFC 1071 example: checksum %#04x, want 0x220d", got)
	}
	if got := Fold(Sum([]byte{0x12, 0x34}, 0)); got != 0x1234 {
		t.Errorf("Fold(Sum(12 34)) = %#04x, want 0x1234", got)
	}
	if got := Fold(Sum([]byte{0x12}, 0)); got != 0x1200 {
		t.Errorf("Fold(Sum(12)) = %#04x, want 0x1200", got)
	}

	// An IPv4 header (UDP, 192.168.0.1 -> 192.168.0.199) whose header
	// checksum is 0xb861; with the checksum in place the header sums to
	// 0xffff, so the checksum over it is 0.
	ip := []byte{
		0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
		0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
	}
	if got := Checksum(ip, 0); got != 0xb861 {
		t.Errorf("IPv4 header checksum %#04x, want 0xb861", got)
	}
	binary.BigEndian.PutUint16(ip[10:], 0xb861)
	if got := Checksum(ip, 0); got != 0 {
		t.Errorf("IPv4 header with checksum: %#04x, want 0", got)
	}

	// UDP 192.0.2.1:12345 -> 198.51.100.1:9999, no payload: checksum
	// 0xbc5f according to Wireshark (gopacket layers/tcpip_test.go).
	udp := []byte{0x30, 0x39, 0x27, 0x0f, 0x00, 0x08, 0x00, 0x00}
	ph := PseudoHeaderSum(17, []byte{192, 0, 2, 1}, []byte{198, 51, 100, 1}, len(udp))
	if got := Checksum(udp, ph); got != 0xbc5f {
		t.Errorf("UDP checksum %#04x, want 0xbc5f", got)
	}
}

// Captured packets (from gopacket's layers/decode_test.go, captured with
// tcpdump), without their Ethernet headers.
var (
	// IPv4 TCP: 172.17.81.73:50679 -> 173.222.254.225:80, an HTTP GET
	// (400 bytes of TCP header and payload), TCP checksum 0x9a8f.
	capturedTCP4 = []byte{
		0x45, 0x00, 0x01, 0xa4, 0x39, 0xdf, 0x40, 0x00, 0x40, 0x06,
		0x55, 0x5a, 0xac, 0x11, 0x51, 0x49, 0xad, 0xde, 0xfe, 0xe1, 0xc5, 0xf7,
		0x00, 0x50, 0xc5, 0x7e, 0x0e, 0x48, 0x49, 0x07, 0x42, 0x32, 0x80, 0x18,
		0x00, 0x73, 0x9a, 0x8f, 0x00, 0x00, 0x01, 0x01, 0x08, 0x0a, 0x03, 0x77,
		0x37, 0x9c, 0x42, 0x77, 0x5e, 0x3a, 0x47, 0x45, 0x54, 0x20, 0x2f, 0x20,
		0x48, 0x54, 0x54, 0x50, 0x2f, 0x31, 0x2e, 0x31, 0x0d, 0x0a, 0x48, 0x6f,
		0x73, 0x74, 0x3a, 0x20, 0x77, 0x77, 0x77, 0x2e, 0x66, 0x69, 0x73, 0x68,
		0x2e, 0x63, 0x6f, 0x6d, 0x0d, 0x0a, 0x43, 0x6f, 0x6e, 0x6e, 0x65, 0x63,
		0x74, 0x69, 0x6f, 0x6e, 0x3a, 0x20, 0x6b, 0x65, 0x65, 0x70, 0x2d, 0x61,
		0x6c, 0x69, 0x76, 0x65, 0x0d, 0x0a, 0x55, 0x73, 0x65, 0x72, 0x2d, 0x41,
		0x67, 0x65, 0x6e, 0x74, 0x3a, 0x20, 0x4d, 0x6f, 0x7a, 0x69, 0x6c, 0x6c,
		0x61, 0x2f, 0x35, 0x2e, 0x30, 0x20, 0x28, 0x58, 0x31, 0x31, 0x3b, 0x20,
		0x4c, 0x69, 0x6e, 0x75, 0x78, 0x20, 0x78, 0x38, 0x36, 0x5f, 0x36, 0x34,
		0x29, 0x20, 0x41, 0x70, 0x70, 0x6c, 0x65, 0x57, 0x65, 0x62, 0x4b, 0x69,
		0x74, 0x2f, 0x35, 0x33, 0x35, 0x2e, 0x32, 0x20, 0x28, 0x4b, 0x48, 0x54,
		0x4d, 0x4c, 0x2c, 0x20, 0x6c, 0x69, 0x6b, 0x65, 0x20, 0x47, 0x65, 0x63,
		0x6b, 0x6f, 0x29, 0x20, 0x43, 0x68, 0x72, 0x6f, 0x6d, 0x65, 0x2f, 0x31,
		0x35, 0x2e, 0x30, 0x2e, 0x38, 0x37, 0x34, 0x2e, 0x31, 0x32, 0x31, 0x20,
		0x53, 0x61, 0x66, 0x61, 0x72, 0x69, 0x2f, 0x35, 0x33, 0x35, 0x2e, 0x32,
		0x0d, 0x0a, 0x41, 0x63, 0x63, 0x65, 0x70, 0x74, 0x3a, 0x20, 0x74, 0x65,
		0x78, 0x74, 0x2f, 0x68, 0x74, 0x6d, 0x6c, 0x2c, 0x61, 0x70, 0x70, 0x6c,
		0x69, 0x63, 0x61, 0x74, 0x69, 0x6f, 0x6e, 0x2f, 0x78, 0x68, 0x74, 0x6d,
		0x6c, 0x2b, 0x78, 0x6d, 0x6c, 0x2c, 0x61, 0x70, 0x70, 0x6c, 0x69, 0x63,
		0x61, 0x74, 0x69, 0x6f, 0x6e, 0x2f, 0x78, 0x6d, 0x6c, 0x3b, 0x71, 0x3d,
		0x30, 0x2e, 0x39, 0x2c, 0x2a, 0x2f, 0x2a, 0x3b, 0x71, 0x3d, 0x30, 0x2e,
		0x38, 0x0d, 0x0a, 0x41, 0x63, 0x63, 0x65, 0x70, 0x74, 0x2d, 0x45, 0x6e,
		0x63, 0x6f, 0x64, 0x69, 0x6e, 0x67, 0x3a, 0x20, 0x67, 0x7a, 0x69, 0x70,
		0x2c, 0x64, 0x65, 0x66, 0x6c, 0x61, 0x74, 0x65, 0x2c, 0x73, 0x64, 0x63,
		0x68, 0x0d, 0x0a, 0x41, 0x63, 0x63, 0x65, 0x70, 0x74, 0x2d, 0x4c, 0x61,
		0x6e, 0x67, 0x75, 0x61, 0x67, 0x65, 0x3a, 0x20, 0x65, 0x6e, 0x2d, 0x55,
		0x53, 0x2c, 0x65, 0x6e, 0x3b, 0x71, 0x3d, 0x30, 0x2e, 0x38, 0x0d, 0x0a,
		0x41, 0x63, 0x63, 0x65, 0x70, 0x74, 0x2d, 0x43, 0x68, 0x61, 0x72, 0x73,
		0x65, 0x74, 0x3a, 0x20, 0x49, 0x53, 0x4f, 0x2d, 0x38, 0x38, 0x35, 0x39,
		0x2d, 0x31, 0x2c, 0x75, 0x74, 0x66, 0x2d, 0x38, 0x3b, 0x71, 0x3d, 0x30,
		0x2e, 0x37, 0x2c, 0x2a, 0x3b, 0x71, 0x3d, 0x30, 0x2e, 0x33, 0x0d, 0x0a,
		0x0d, 0x0a,
	}

	// IPv6 ICMPv6 neighbor solicitation fe80::21f:caff:feb3:75c0 ->
	// 2620:0:1005:0:26be:5ff:fe27:b17 (32 bytes), checksum 0x1eba. ICMPv6
	// uses the same pseudo-header as TCP and UDP.
	capturedICMP6 = []byte{
		0x6e, 0x00, 0x00, 0x00, 0x00, 0x20, 0x3a, 0xff, 0xfe, 0x80, 0x00, 0x00,
		0x00, 0x00, 0x00, 0x00, 0x02, 0x1f, 0xca, 0xff, 0xfe, 0xb3, 0x75, 0xc0,
		0x26, 0x20, 0x00, 0x00, 0x10, 0x05, 0x00, 0x00, 0x26, 0xbe, 0x05, 0xff,
		0xfe, 0x27, 0x0b, 0x17, 0x87, 0x00, 0x1e, 0xba, 0x00, 0x00, 0x00, 0x00,
		0x26, 0x20, 0x00, 0x00, 0x10, 0x05, 0x00, 0x00, 0x26, 0xbe, 0x05, 0xff,
		0xfe, 0x27, 0x0b, 0x17, 0x01, 0x01, 0x00, 0x1f, 0xca, 0xb3, 0x75, 0xc0,
	}
)

func TestCapturedPackets(t *testing.T) {
	// IPv4 TCP.
	p := bytes.Clone(capturedTCP4)
	ihl := int(p[0]&0x0f) * 4
	if got := Checksum(p[:ihl], 0); got != 0 {
		t.Errorf("TCP/IPv4: IP header checksum verifies to %#04x, want 0", got)
	}
	tcp := p[ihl:binary.BigEndian.Uint16(p[2:4])]
	ph := PseudoHeaderSum(p[9], p[12:16], p[16:20], len(tcp))
	if got := Checksum(tcp, ph); got != 0 {
		t.Errorf("TCP/IPv4: TCP checksum verifies to %#04x, want 0", got)
	}
	// Recompute it from scratch, the way the offload code does.
	binary.BigEndian.PutUint16(tcp[16:18], 0)
	if got := Checksum(tcp, ph); got != 0x9a8f {
		t.Errorf("TCP/IPv4: TCP checksum %#04x, want 0x9a8f", got)
	}

	// IPv6 ICMPv6.
	p = bytes.Clone(capturedICMP6)
	icmp := p[40 : 40+binary.BigEndian.Uint16(p[4:6])]
	ph = PseudoHeaderSum(p[6], p[8:24], p[24:40], len(icmp))
	if got := Checksum(icmp, ph); got != 0 {
		t.Errorf("ICMPv6: checksum verifies to %#04x, want 0", got)
	}
	binary.BigEndian.PutUint16(icmp[2:4], 0)
	if got := Checksum(icmp, ph); got != 0x1eba {
		t.Errorf("ICMPv6: checksum %#04x, want 0x1eba", got)
	}
}

// refPseudoHeader lays the pseudo-header out in bytes as the RFCs draw it.
func refPseudoHeader(proto uint8, src, dst []byte, length int) []byte {
	var h []byte
	h = append(h, src...)
	h = append(h, dst...)
	if len(src) == 4 { // RFC 768 / RFC 9293
		h = append(h, 0, proto)
		h = binary.BigEndian.AppendUint16(h, uint16(length))
	} else { // RFC 8200 section 8.1
		h = binary.BigEndian.AppendUint32(h, uint32(length))
		h = append(h, 0, 0, 0, proto)
	}
	return h
}

func TestPseudoHeaderSum(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	for i := range 20000 {
		alen := 4
		maxLen := uint64(0xffff)
		if i%2 == 1 {
			alen = 16
			maxLen = min(1<<32-1, math.MaxInt) // IPv6 jumbograms, where int is that large
		}
		src, dst := randBytes(r, alen), randBytes(r, alen)
		proto := uint8(r.Uint32())
		length := int(r.Uint64N(maxLen + 1))
		if i < 8 {
			length = int(maxLen) // the largest values
			for j := range src {
				src[j], dst[j] = 0xff, 0xff
			}
		}
		ph := PseudoHeaderSum(proto, src, dst, length)
		if ph >= 1<<32 {
			t.Fatalf("PseudoHeaderSum = %#x, want < 2^32", ph)
		}
		want := refSum(refPseudoHeader(proto, src, dst, length), 0)
		if got := Fold(ph); got != want {
			t.Fatalf("IPv%d proto %d length %d: %#04x, want %#04x", map[int]int{4: 4, 16: 6}[alen], proto, length, got, want)
		}
		// And with data after it.
		data := randBytes(r, r.IntN(200))
		if got, want := Checksum(data, ph), ^refSum(append(refPseudoHeader(proto, src, dst, length), data...), 0); got != want {
			t.Fatalf("pseudo-header + %d bytes: %#04x, want %#04x", len(data), got, want)
		}
	}
}

func TestAllocs(t *testing.T) {
	b := make([]byte, 1400)
	src, dst := make([]byte, 16), make([]byte, 16)
	var sink uint64
	allocs := testing.AllocsPerRun(100, func() {
		ph := PseudoHeaderSum(6, src, dst, len(b))
		sink += Sum(b, ph) + uint64(Checksum(b, ph)) + uint64(Fold(ph))
	})
	if allocs != 0 {
		t.Errorf("%v allocations per run, want 0", allocs)
	}
	_ = sink
}

func FuzzSum(f *testing.F) {
	f.Add([]byte{0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7}, uint64(0), uint16(0))
	f.Add(bytes.Repeat([]byte{0xff}, 301), uint64(0xffffffffffffffff), uint16(128))
	f.Add(make([]byte, 200), uint64(0), uint16(33))
	f.Fuzz(func(t *testing.T, b []byte, initial uint64, split uint16) {
		check(t, b, initial)
		// Chain at an even split point.
		k := int(split) &^ 1
		if k > len(b) {
			k = len(b) &^ 1
		}
		if got, want := Fold(Sum(b[k:], Sum(b[:k], initial))), refSum(b, initial); got != want {
			t.Fatalf("split at %d of %d: %#04x, want %#04x", k, len(b), got, want)
		}
	})
}

// baselineSum is the usual portable way, written here only to benchmark
// against: one add-with-carry chain over native-order 64-bit words (what
// the wireguard-go TUN code we replaced does), so one word per cycle at
// best. The native-order sum is byte-swapped into our big-endian
// convention at the end.
func baselineSum(b []byte, initial uint64) uint64 {
	var acc, carry uint64
	for ; len(b) >= 32; b = b[32:] {
		acc, carry = bits.Add64(acc, binary.NativeEndian.Uint64(b[0:8]), carry)
		acc, carry = bits.Add64(acc, binary.NativeEndian.Uint64(b[8:16]), carry)
		acc, carry = bits.Add64(acc, binary.NativeEndian.Uint64(b[16:24]), carry)
		acc, carry = bits.Add64(acc, binary.NativeEndian.Uint64(b[24:32]), carry)
	}
	for ; len(b) >= 8; b = b[8:] {
		acc, carry = bits.Add64(acc, binary.NativeEndian.Uint64(b), carry)
	}
	// The tail, zero-padded: an odd last byte sits at an even offset, so
	// it becomes the high byte of its big-endian word.
	var tail [8]byte
	copy(tail[:], b)
	acc, carry = bits.Add64(acc, binary.NativeEndian.Uint64(tail[:]), carry)
	acc += carry // acc ≤ 2^64-2 after a carry out, so this cannot wrap
	acc = acc>>32 + acc&0xffffffff
	acc = acc>>32 + acc&0xffffffff
	acc = acc>>16 + acc&0xffff
	acc = acc>>16 + acc&0xffff
	var w [2]byte
	binary.NativeEndian.PutUint16(w[:], uint16(acc))
	return initial + uint64(binary.BigEndian.Uint16(w[:]))
}

// TestBaseline makes sure the benchmark baseline computes the same thing.
func TestBaseline(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 14))
	for range 2000 {
		b := randBytes(r, r.IntN(2000))
		if got, want := Fold(baselineSum(b, 0)), refSum(b, 0); got != want {
			t.Fatalf("len %d: baseline %#04x, want %#04x", len(b), got, want)
		}
	}
}

var benchSizes = []int{40, 1400, 8192, 65535}

var benchSink uint64

func benchmark(b *testing.B, fn func([]byte) uint64) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			// Start one byte into the buffer: packets in TUN buffers are
			// not necessarily 8- or 32-byte aligned.
			buf := randBytes(rand.New(rand.NewPCG(1, uint64(n))), n+1)[1:]
			b.SetBytes(int64(n))
			for b.Loop() {
				benchSink += fn(buf)
			}
		})
	}
}

// BenchmarkSum is what callers get: the dispatching Sum.
func BenchmarkSum(b *testing.B) {
	benchmark(b, func(p []byte) uint64 { return Sum(p, 0) })
}

func BenchmarkGeneric(b *testing.B) {
	benchmark(b, func(p []byte) uint64 { return finish(sumGeneric(p), 0) })
}

func BenchmarkBaseline(b *testing.B) {
	benchmark(b, func(p []byte) uint64 { return baselineSum(p, 0) })
}
