package ah

import (
	"bytes"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"hash"
	"net/netip"
	"testing"

	"github.com/ipsecgw/ipsecgw/transform"
)

// The tests build the expected packets byte by byte here, independently of
// the header package and of SealTunnel, and compute the ICVs with
// crypto/hmac directly.

type alg struct {
	name string
	id   transform.ID
	h    func() hash.Hash // HMAC's hash, or nil with cbcMAC
	key  int
	icv  int
	// cbcMAC, for the AES MACs, is this test's own implementation
	// (aesmac_test.go), computing the untruncated MAC of a message.
	cbcMAC func(key, msg []byte) []byte
}

var algs = []alg{
	{"hmac-md5-96", transform.IntegHMACMD5_96, md5.New, 16, 12, nil},
	{"hmac-sha1-96", transform.IntegHMACSHA1_96, sha1.New, 20, 12, nil},
	{"hmac-sha2-256-128", transform.IntegHMACSHA2_256_128, sha256.New, 32, 16, nil},
	{"hmac-sha2-384-192", transform.IntegHMACSHA2_384_192, sha512.New384, 48, 24, nil},
	{"hmac-sha2-512-256", transform.IntegHMACSHA2_512_256, sha512.New, 64, 32, nil},
	{"aes-xcbc-mac-96", transform.IntegAESXCBC96, nil, 16, 12, xcbcMAC},
	{"aes-cmac-96", transform.IntegAESCMAC96, nil, 16, 12, cmacMAC},
}

func (a alg) keyBytes() []byte {
	k := make([]byte, a.key)
	for i := range k {
		k[i] = byte(0xa0 + i)
	}
	return k
}

func (a alg) protector(t testing.TB) *transform.Protector {
	t.Helper()
	p, err := transform.NewAuthProtector(transform.Transform{Type: transform.TypeINTEG, ID: a.id}, a.keyBytes())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func (a alg) mac(parts ...[]byte) []byte {
	if a.cbcMAC != nil {
		return a.cbcMAC(a.keyBytes(), bytes.Join(parts, nil))[:a.icv]
	}
	m := hmac.New(a.h, a.keyBytes())
	for _, p := range parts {
		m.Write(p)
	}
	return m.Sum(nil)[:a.icv]
}

var (
	src4, dst4 = netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("198.51.100.2")
	src6, dst6 = netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("2001:db8:1::2")
)

// inner4 is an ICMP echo request from 10.1.0.10 to 10.2.0.10, inner6 an
// ICMPv6 one; their checksums do not matter to AH.
func inner4(n int) []byte {
	p := make([]byte, 28+n)
	p[0], p[8], p[9] = 0x45, 63, 1
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	copy(p[12:], []byte{10, 1, 0, 10, 10, 2, 0, 10})
	p[20] = 8
	for i := range n {
		p[28+i] = byte(i)
	}
	return p
}

func inner6(n int) []byte {
	p := make([]byte, 48+n)
	p[0], p[6], p[7] = 0x60, 58, 63
	binary.BigEndian.PutUint16(p[4:], uint16(8+n))
	p[8], p[9], p[23] = 0xfd, 0x01, 0x10
	p[24], p[25], p[39] = 0xfd, 0x02, 0x10
	p[40] = 128
	for i := range n {
		p[48+i] = byte(i)
	}
	return p
}

// expectTunnel4 builds the packet RFC 4302 prescribes for inner over IPv4:
// outer header, AH header, inner; the ICV over the outer header with TOS,
// flags/offset, TTL and checksum zero, the AH header with a zero ICV, the
// inner packet and, with ESN, the high sequence bits.
func expectTunnel4(a alg, spi uint32, seq uint64, esn bool, inner []byte, next byte) []byte {
	al := 12 + a.icv // a multiple of 4 for every ICV size
	total := 20 + al + len(inner)
	id := uint16(seq)
	if id == 0 {
		id = uint16(seq>>16) | 1
	}
	ip := []byte{0x45, 0, byte(total >> 8), byte(total), byte(id >> 8), byte(id), 0, 0, 0, 51, 0, 0}
	ip = append(ip, src4.AsSlice()...)
	ip = append(ip, dst4.AsSlice()...)
	ahh := []byte{next, byte(al/4 - 2), 0, 0}
	ahh = binary.BigEndian.AppendUint32(ahh, spi)
	ahh = binary.BigEndian.AppendUint32(ahh, uint32(seq))
	ahh = append(ahh, make([]byte, a.icv)...)
	var parts [][]byte
	parts = append(parts, ip, ahh, inner)
	if esn {
		parts = append(parts, binary.BigEndian.AppendUint32(nil, uint32(seq>>32)))
	}
	icv := a.mac(parts...)
	// The sent header: DF, TTL 64 and its checksum.
	ip[6], ip[8] = 0x40, 64
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(ip[i])<<8 | uint32(ip[i+1])
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(ip[10:], ^uint16(sum))
	copy(ahh[12:], icv)
	return bytes.Join([][]byte{ip, ahh, inner}, nil)
}

// expectTunnel6 is expectTunnel4 over IPv6: traffic class, flow label and
// hop limit are the mutable fields, and the AH header is padded to a
// multiple of 8 bytes with zeros.
func expectTunnel6(a alg, spi uint32, seq uint64, esn bool, inner []byte, next byte) []byte {
	al := (12 + a.icv + 7) &^ 7
	ip := []byte{0x60, 0, 0, 0, byte((al + len(inner)) >> 8), byte(al + len(inner)), 51, 0}
	ip = append(ip, src6.AsSlice()...)
	ip = append(ip, dst6.AsSlice()...)
	ahh := []byte{next, byte(al/4 - 2), 0, 0}
	ahh = binary.BigEndian.AppendUint32(ahh, spi)
	ahh = binary.BigEndian.AppendUint32(ahh, uint32(seq))
	ahh = append(ahh, make([]byte, al-12)...)
	parts := [][]byte{ip, ahh, inner}
	if esn {
		parts = append(parts, binary.BigEndian.AppendUint32(nil, uint32(seq>>32)))
	}
	icv := a.mac(parts...)
	ip[7] = 64
	copy(ahh[12:], icv)
	return bytes.Join([][]byte{ip, ahh, inner}, nil)
}

const headroom = 128

func place(inner []byte) ([]byte, int) {
	buf := make([]byte, headroom+len(inner)+64)
	copy(buf[headroom:], inner)
	return buf[:headroom+len(inner)], headroom
}

func TestSealTunnelKnownAnswer(t *testing.T) {
	const spi = 0xc0ffee01
	for _, a := range algs {
		p := a.protector(t)
		for _, esn := range []bool{false, true} {
			for _, seq := range []uint64{1, 0x10000, 0x1_0000_0005} {
				if seq > 0xffffffff && !esn {
					continue
				}
				for _, v6 := range []bool{false, true} {
					for _, inner := range [][]byte{inner4(37), inner6(100)} {
						next := byte(4)
						if inner[0]>>4 == 6 {
							next = 41
						}
						src, dst, want := src4, dst4, expectTunnel4(a, spi, seq, esn, inner, next)
						if v6 {
							src, dst, want = src6, dst6, expectTunnel6(a, spi, seq, esn, inner, next)
						}
						buf, off := place(inner)
						_, pkt, err := SealTunnel(p, spi, seq, esn, src, dst, buf, off, len(inner))
						if err != nil {
							t.Fatal(err)
						}
						if !bytes.Equal(pkt, want) {
							t.Fatalf("%s esn=%v seq=%#x v6=%v:\n got %x\nwant %x", a.name, esn, seq, v6, pkt, want)
						}
						off2, n, err := OpenTunnel(p, seq, esn, pkt)
						if err != nil || !bytes.Equal(pkt[off2:off2+n], inner) {
							t.Fatalf("%s: OpenTunnel: %v", a.name, err)
						}
						if !bytes.Equal(pkt, want) {
							t.Fatalf("%s: OpenTunnel changed the packet", a.name)
						}
					}
				}
			}
		}
	}
}

// TestOpenMutableAndImmutable flips every byte of a sealed packet: the
// mutable header fields may change in transit (a router decrements the
// TTL), everything else must make the ICV fail.
func TestOpenMutableAndImmutable(t *testing.T) {
	a := algs[2]
	p := a.protector(t)
	for _, v6 := range []bool{false, true} {
		inner := inner4(20)
		src, dst := src4, dst4
		mutable := map[int]bool{1: true, 6: true, 7: true, 8: true, 10: true, 11: true}
		if v6 {
			src, dst = src6, dst6
			mutable = map[int]bool{1: true, 2: true, 3: true, 7: true}
		}
		buf, off := place(inner)
		_, pkt, err := SealTunnel(p, 0x1234, 7, true, src, dst, buf, off, len(inner))
		if err != nil {
			t.Fatal(err)
		}
		for i := range pkt {
			if !v6 && (i == 0 || (i >= 2 && i <= 3) || i == 9) {
				continue // version/IHL, length, protocol: Parse refuses before the ICV
			}
			if v6 && (i == 0 || i == 4 || i == 5 || i == 6) {
				continue
			}
			flip := byte(0x10)
			if !v6 && i == 6 {
				flip = 0x40 // DF; a fragment offset would make it a fragment, refused before the ICV
			}
			if !v6 && i == 7 {
				continue
			}
			pkt[i] ^= flip
			_, _, err := OpenTunnel(p, 7, true, pkt)
			pkt[i] ^= flip
			if mutable[i] && err != nil {
				t.Errorf("v6=%v: changing mutable byte %d: %v", v6, i, err)
			}
			if !mutable[i] && err == nil {
				t.Errorf("v6=%v: changing immutable byte %d was accepted", v6, i)
			}
		}
		if _, _, err := OpenTunnel(p, 7|1<<32, true, pkt); !errors.Is(err, ErrAuth) {
			t.Errorf("v6=%v: wrong ESN high bits: %v, want ErrAuth", v6, err)
		}
		if _, _, err := OpenTunnel(p, 7, true, pkt); err != nil {
			t.Errorf("v6=%v: the restored packet does not verify: %v", v6, err)
		}
	}
}

// TestIPv4Options: mutable options (Record Route) are zeroed for the ICV,
// immutable ones (Router Alert) authenticated, source routes refused.
func TestIPv4Options(t *testing.T) {
	a := algs[0]
	p := a.protector(t)
	inner := inner4(8)
	buf, off := place(inner)
	_, sealed, err := SealTunnel(p, 0x5555, 3, false, src4, dst4, buf, off, len(inner))
	if err != nil {
		t.Fatal(err)
	}
	// Rebuild the packet with 12 bytes of options: Router Alert (4),
	// Record Route with one slot (7+1 pad to... 7 bytes) and EOL.
	opts := []byte{148, 4, 0, 0, 7, 7, 4, 0, 0, 0, 0, 0}
	build := func(opts []byte) []byte {
		hdr := append([]byte(nil), sealed[:20]...)
		hdr[0] = 0x40 | byte((20+len(opts))/4)
		total := len(sealed) + len(opts)
		binary.BigEndian.PutUint16(hdr[2:], uint16(total))
		pkt := bytes.Join([][]byte{hdr, opts, sealed[20:]}, nil)
		// Recompute the ICV independently over the zeroed form.
		z := append([]byte(nil), pkt...)
		z[1], z[6], z[7], z[8], z[10], z[11] = 0, 0, 0, 0, 0, 0
		clear(z[24:31]) // Record Route: mutable, zeroed whole
		hl := 20 + len(opts)
		clear(z[hl+12 : hl+12+a.icv])
		copy(pkt[hl+12:], a.mac(z))
		return pkt
	}
	pkt := build(opts)
	if _, _, err := OpenTunnel(p, 3, false, pkt); err != nil {
		t.Fatalf("packet with Router Alert and Record Route: %v", err)
	}
	pkt[27] ^= 1 // inside Record Route: mutable
	if _, _, err := OpenTunnel(p, 3, false, pkt); err != nil {
		t.Errorf("changed Record Route: %v", err)
	}
	pkt[22] ^= 1 // Router Alert value: immutable
	if _, _, err := OpenTunnel(p, 3, false, pkt); !errors.Is(err, ErrAuth) {
		t.Errorf("changed Router Alert: %v, want ErrAuth", err)
	}
	lsrr := build([]byte{131, 7, 4, 0, 0, 0, 0, 0})
	if _, _, err := OpenTunnel(p, 3, false, lsrr); !errors.Is(err, ErrOption) {
		t.Errorf("loose source route: %v, want ErrOption", err)
	}
}

func TestTransportMode(t *testing.T) {
	for _, a := range algs {
		p := a.protector(t)
		for _, orig := range [][]byte{inner4(50), inner6(50)} {
			v6 := orig[0]>>4 == 6
			buf, off := place(orig)
			_, pkt, err := SealTransport(p, 0x777, 9, false, buf, off, len(orig))
			if err != nil {
				t.Fatal(err)
			}
			// Independent expectation: IP header with protocol 51 and the
			// longer length, AH (Next Header = the original protocol), the
			// upper-layer payload.
			hl, proto := 20, orig[9]
			if v6 {
				hl, proto = 40, orig[6]
			}
			al := 12 + a.icv
			if v6 {
				al = (al + 7) &^ 7
			}
			if len(pkt) != len(orig)+al || pkt[hl] != proto || !bytes.Equal(pkt[hl+al:], orig[hl:]) {
				t.Fatalf("%s v6=%v: transport packet %x", a.name, v6, pkt)
			}
			z := append([]byte(nil), pkt...)
			if v6 {
				if z[6] != 51 || int(binary.BigEndian.Uint16(z[4:])) != len(z)-40 {
					t.Fatalf("%s: IPv6 header not updated", a.name)
				}
				z[1], z[2], z[3], z[7] = 0, 0, 0, 0
			} else {
				if z[9] != 51 || int(binary.BigEndian.Uint16(z[2:])) != len(z) {
					t.Fatalf("%s: IPv4 header not updated", a.name)
				}
				z[1], z[6], z[7], z[8], z[10], z[11] = 0, 0, 0, 0, 0, 0
			}
			clear(z[hl+12 : hl+al])
			if want := a.mac(z); !bytes.Equal(pkt[hl+12:hl+12+a.icv], want) {
				t.Fatalf("%s v6=%v: ICV %x, want %x", a.name, v6, pkt[hl+12:hl+12+a.icv], want)
			}
			o, n, next, err := Open(p, 9, false, pkt)
			if err != nil {
				t.Fatal(err)
			}
			s := RemoveTransport(pkt, o, n, next)
			got := pkt[s : o+n]
			want := append([]byte(nil), orig...)
			if !v6 {
				// The checksum was recomputed; the original's was zero.
				binary.BigEndian.PutUint16(want[10:], binary.BigEndian.Uint16(got[10:]))
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s v6=%v: after RemoveTransport\n got %x\nwant %x", a.name, v6, got, want)
			}
		}
	}
}

func TestOpenRejects(t *testing.T) {
	a := algs[1]
	p := a.protector(t)
	other := algs[2].protector(t)
	inner := inner4(10)
	buf, off := place(inner)
	_, pkt, err := SealTunnel(p, 0x999, 1, false, src4, dst4, buf, off, len(inner))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := OpenTunnel(other, 1, false, pkt); !errors.Is(err, ErrLength) {
		t.Errorf("ICV size of another algorithm: %v, want ErrLength", err)
	}
	for n := range len(pkt) - 1 {
		c := append([]byte(nil), pkt[:n]...)
		if _, _, err := OpenTunnel(p, 1, false, c); err == nil {
			t.Fatalf("truncated to %d bytes: accepted", n)
		}
	}
	bad := append([]byte(nil), pkt...)
	bad[20] = 41 // Next Header says IPv6, the inner packet is IPv4 (and the ICV fails first)
	if _, _, err := OpenTunnel(p, 1, false, bad); err == nil {
		t.Error("wrong Next Header accepted")
	}
}

func TestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector makes sync.Pool allocate")
	}
	p := algs[2].protector(t)
	inner := inner4(1400)
	buf, off := place(inner)
	allocs := testing.AllocsPerRun(200, func() {
		copy(buf[off:], inner)
		_, pkt, err := SealTunnel(p, 0x4242, 5, true, src4, dst4, buf, off, len(inner))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := OpenTunnel(p, 5, true, pkt); err != nil {
			t.Fatal(err)
		}
		pkt[40] ^= 1
		if _, _, err := OpenTunnel(p, 5, true, pkt); !errors.Is(err, ErrAuth) {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%v allocations per seal+open+forgery", allocs)
	}
}
