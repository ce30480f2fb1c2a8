package esp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"testing"

	"github.com/ipsecgw/ipsecgw/header"
	"github.com/ipsecgw/ipsecgw/sad"
	"github.com/ipsecgw/ipsecgw/spd"
	"github.com/ipsecgw/ipsecgw/transform"
	"github.com/ipsecgw/ipsecgw/tun"
)

// suite is one cipher (+ integrity) combination with fixed keys.
type suite struct {
	name         string
	encr, integ  transform.Transform
	encKey, iKey []byte
}

func (s suite) protector(t testing.TB) *transform.Protector {
	t.Helper()
	p, err := transform.NewProtector(s.encr, s.integ, s.encKey, s.iKey)
	if err != nil {
		t.Fatalf("%s: %v", s.name, err)
	}
	return p
}

// fixedKey returns n deterministic key bytes that differ per seed.
func fixedKey(n int, seed byte) []byte {
	k := make([]byte, n)
	for i := range k {
		k[i] = seed + byte(i)*7
	}
	return k
}

// allSuites is every encryption transform the transform package offers
// (each AEAD alone, each cipher with HMAC-SHA2-256-128), NULL encryption
// with every integrity algorithm, and AES-CBC with every integrity
// algorithm.
func allSuites(t testing.TB) []suite {
	var out []suite
	add := func(e, i transform.Transform) {
		el, err := transform.KeymatLen(e)
		if err != nil {
			t.Fatal(err)
		}
		var ik []byte
		if i.ID != transform.IntegNone {
			il, err := transform.KeymatLen(i)
			if err != nil {
				t.Fatal(err)
			}
			ik = fixedKey(il, 0x51)
		}
		ei, _ := transform.Lookup(e)
		name := ei.Name
		if i.ID != transform.IntegNone {
			ii, _ := transform.Lookup(i)
			name += "+" + ii.Name
		}
		out = append(out, suite{name, e, i, fixedKey(el, 0x11), ik})
	}
	sha256 := transform.Transform{Type: transform.TypeINTEG, ID: transform.IntegHMACSHA2_256_128}
	none := transform.Transform{Type: transform.TypeINTEG, ID: transform.IntegNone}
	for _, e := range transform.Supported(transform.TypeENCR) {
		info, err := transform.Lookup(e)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case info.AEAD:
			add(e, none)
		case e.ID == transform.EncrNull || (e.ID == transform.EncrAESCBC && e.KeyLen == 128):
			for _, i := range transform.Supported(transform.TypeINTEG) {
				add(e, i)
			}
		default:
			add(e, sha256)
		}
	}
	return out
}

// ipv4Packet builds an inner IPv4/UDP packet of total length n (>= 28).
func ipv4Packet(n int, src, dst string, id uint16) []byte {
	p := make([]byte, n)
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:], uint16(n))
	binary.BigEndian.PutUint16(p[4:], id)
	p[8], p[9] = 64, 17
	a, b := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(p[12:], a[:])
	copy(p[16:], b[:])
	binary.BigEndian.PutUint16(p[20:], 1000)
	binary.BigEndian.PutUint16(p[22:], 2000)
	binary.BigEndian.PutUint16(p[24:], uint16(n-20))
	for i := 28; i < n; i++ {
		p[i] = byte(i)
	}
	return p
}

// ipv6Packet builds an inner IPv6/UDP packet of total length n (>= 48).
func ipv6Packet(n int, src, dst string) []byte {
	p := make([]byte, n)
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:], uint16(n-40))
	p[6], p[7] = 17, 64
	a, b := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	copy(p[8:], a[:])
	copy(p[24:], b[:])
	binary.BigEndian.PutUint16(p[40:], 1000)
	binary.BigEndian.PutUint16(p[42:], 2000)
	binary.BigEndian.PutUint16(p[44:], uint16(n-40))
	for i := 48; i < n; i++ {
		p[i] = byte(i)
	}
	// UDP over IPv6 needs a real checksum (tshark flags 0 as illegal).
	header.UDP(p[40:]).UpdateChecksum(header.IPv6(p).PseudoHeaderSum(header.ProtoUDP, n-40))
	return p
}

func newBuf(inner []byte) ([]byte, int) {
	buf := make([]byte, tun.Headroom+len(inner)+tun.Tailroom)
	copy(buf[tun.Headroom:], inner)
	return buf, tun.Headroom
}

func TestSealOpenRoundTripAllSuites(t *testing.T) {
	inners := map[string][]byte{
		"v4-28":   ipv4Packet(28, "10.1.0.2", "10.2.0.2", 1),
		"v4-1400": ipv4Packet(1400, "10.1.0.2", "10.2.0.2", 2),
		"v6-61":   ipv6Packet(61, "fd00:1::2", "fd00:2::2"),
	}
	for _, s := range allSuites(t) {
		for _, esn := range []bool{false, true} {
			for name, inner := range inners {
				t.Run(fmt.Sprintf("%s/esn=%v/%s", s.name, esn, name), func(t *testing.T) {
					tx, rx := s.protector(t), s.protector(t)
					seq := uint64(0x1_0000_0005)
					if !esn {
						seq = 5
					}
					buf, off := newBuf(inner)
					start, pkt, err := SealPacket(tx, 0x1234, seq, esn, buf, off, len(inner))
					if err != nil {
						t.Fatal(err)
					}
					if start != off-HeadLen(tx) || len(pkt) != HeadLen(tx)+len(inner)+TailLen(tx, len(inner)) {
						t.Fatalf("layout start %d len %d", start, len(pkt))
					}
					if (len(pkt)-HeadLen(tx)-tx.ICVSize())%max(tx.BlockSize(), 4) != 0 {
						t.Fatalf("payload not aligned to %d", max(tx.BlockSize(), 4))
					}
					if spi, lo, _ := ParseHeader(pkt); spi != 0x1234 || lo != uint32(seq) {
						t.Fatalf("header spi %x seq %x", spi, lo)
					}
					if s.encr.ID != transform.EncrNull && len(inner) >= 60 && bytes.Contains(pkt, inner[28:60]) {
						t.Fatal("plaintext visible in ESP packet")
					}
					// Tampering with any byte (header, IV, ciphertext, ICV) fails the ICV.
					for _, i := range []int{0, 5, HeaderLen, len(pkt) / 2, len(pkt) - 1} {
						bad := append(make([]byte, 0, len(pkt)+Spare), pkt...)
						bad[i] ^= 0x80
						if _, _, _, err := OpenPacket(rx, seq, esn, bad); !errors.Is(err, ErrAuth) {
							t.Fatalf("tampered byte %d: %v", i, err)
						}
					}
					if esn {
						// Wrong high bits: the ICV covers them.
						cp := append(make([]byte, 0, len(pkt)+Spare), pkt...)
						if _, _, _, err := OpenPacket(rx, seq+1<<32, esn, cp); !errors.Is(err, ErrAuth) {
							t.Fatalf("wrong seq hi: %v", err)
						}
					}
					o, n, next, err := OpenPacket(rx, seq, esn, pkt)
					if err != nil {
						t.Fatal(err)
					}
					want := byte(NextIPv4)
					if inner[0]>>4 == 6 {
						want = NextIPv6
					}
					if next != want || !bytes.Equal(pkt[o:o+n], inner) {
						t.Fatalf("next %d, inner mismatch", next)
					}
				})
			}
		}
	}
}

// TestPaddingChecked builds packets whose (authentic) padding is wrong and
// checks that OpenPacket rejects them after authentication.
func TestPaddingChecked(t *testing.T) {
	s := allSuites(t)[0] // AES-GCM-16
	inner := ipv4Packet(30, "10.1.0.2", "10.2.0.2", 1)
	cases := []struct {
		name    string
		mangle  func(plain []byte) // plain = inner|pad|padlen|next
		wantErr error
	}{
		{"pad byte", func(p []byte) { p[30] = 9 }, ErrPadding},
		{"pad length too long", func(p []byte) { p[len(p)-2] = 200 }, ErrPadding},
		{"next header 6", func(p []byte) { p[len(p)-1] = 6 }, ErrNextHeader},
		{"next header 41 for v4", func(p []byte) { p[len(p)-1] = NextIPv6 }, ErrNextHeader},
		{"dummy", func(p []byte) { p[len(p)-1] = NextDummy }, ErrDummy},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tx, rx := s.protector(t), s.protector(t)
			buf, off := newBuf(inner)
			// Frame by hand: header, IV, inner, padding, mangle, then seal.
			hl := HeadLen(tx)
			pad := padLen(tx, len(inner))
			end := off + len(inner) + pad + 2 + tx.ICVSize()
			pkt := buf[off-hl : end]
			binary.BigEndian.PutUint32(pkt, 0x999)
			binary.BigEndian.PutUint32(pkt[4:], 1)
			if err := tx.IV(pkt[8:hl], 1); err != nil {
				t.Fatal(err)
			}
			plain := pkt[hl : len(pkt)-tx.ICVSize()]
			for i := range pad {
				plain[len(inner)+i] = byte(i + 1)
			}
			plain[len(plain)-2], plain[len(plain)-1] = byte(pad), NextIPv4
			c.mangle(plain)
			if err := tx.Seal(pkt, HeaderLen, nil, nil); err != nil {
				t.Fatal(err)
			}
			if _, _, _, err := OpenPacket(rx, 1, false, pkt); !errors.Is(err, c.wantErr) {
				t.Fatalf("got %v, want %v", err, c.wantErr)
			}
		})
	}
}

func TestSealNeedsRoom(t *testing.T) {
	s := allSuites(t)[0]
	p := s.protector(t)
	inner := ipv4Packet(100, "10.1.0.2", "10.2.0.2", 1)
	buf := append(make([]byte, 4), inner...)
	if _, _, err := SealPacket(p, 0x1000, 1, false, buf, 4, len(inner)); !errors.Is(err, ErrNoRoom) {
		t.Fatalf("no headroom: %v", err)
	}
	buf = append(make([]byte, 64), inner...)
	if _, _, err := SealPacket(p, 0x1000, 1, false, buf[:len(buf):len(buf)], 64, len(inner)); !errors.Is(err, ErrNoRoom) {
		t.Fatalf("no tailroom: %v", err)
	}
	bad, off := newBuf([]byte{0x20, 1, 2, 3})
	if _, _, err := SealPacket(p, 0x1000, 1, false, bad, off, 4); !errors.Is(err, ErrInnerPacket) {
		t.Fatalf("not IP: %v", err)
	}
	if _, _, _, err := OpenPacket(p, 1, false, make([]byte, 10, 30)); !errors.Is(err, ErrShort) {
		t.Fatalf("short: %v", err)
	}
}

// saPair returns an outbound SA (gateway 1) and the matching inbound SA
// (gateway 2) with the same keys, protecting 10.1.0.0/16 <-> 10.2.0.0/16.
func saPair(t testing.TB, s suite, spi uint32, esn bool) (out, in *sad.SA) {
	t.Helper()
	l := netip.MustParseAddrPort("198.51.100.1:4500")
	r := netip.MustParseAddrPort("198.51.100.2:4500")
	sel1 := spd.Selector{Local: spd.MustPrefixRange("10.1.0.0/16"), Remote: spd.MustPrefixRange("10.2.0.0/16"),
		LocalPorts: spd.PortRange{From: 0, To: 0xffff}, RemotePorts: spd.PortRange{From: 0, To: 0xffff}}
	sel2 := spd.Selector{Local: sel1.Remote, Remote: sel1.Local, LocalPorts: sel1.LocalPorts, RemotePorts: sel1.RemotePorts}
	var err error
	out, err = sad.New(sad.Config{SPI: spi, Dir: sad.Outbound, Local: l, Remote: r, UDPEncap: true,
		Selectors: []spd.Selector{sel1}, Cipher: s.protector(t), ESN: esn, PolicyID: 1})
	if err != nil {
		t.Fatal(err)
	}
	in, err = sad.New(sad.Config{SPI: spi, Dir: sad.Inbound, Local: r, Remote: l, UDPEncap: true,
		Selectors: []spd.Selector{sel2}, Cipher: s.protector(t), ESN: esn, PolicyID: 1})
	if err != nil {
		t.Fatal(err)
	}
	return out, in
}

func TestSAOpenReplaySelectorsAndSequence(t *testing.T) {
	s := allSuites(t)[0]
	out, in := saPair(t, s, 0x4242, true)
	tab := sad.NewTable(sad.Options{})
	if err := tab.InstallInbound(in); err != nil {
		t.Fatal(err)
	}
	ot := sad.NewTable(sad.Options{})
	if err := ot.InstallOutbound(out); err != nil {
		t.Fatal(err)
	}
	seal := func(inner []byte) []byte {
		buf, off := newBuf(inner)
		_, pkt, r := Seal(out, buf, off, len(inner))
		if r != sad.NotDropped {
			t.Fatalf("seal: %v", r)
		}
		return pkt
	}
	inner := ipv4Packet(200, "10.1.0.2", "10.2.0.2", 1)
	pkt := seal(inner)
	keep := append(make([]byte, 0, len(pkt)+Spare), pkt...)
	if _, off, n, r := Open(tab, pkt); r != sad.NotDropped || !bytes.Equal(pkt[off:off+n], inner) {
		t.Fatalf("open: %v", r)
	}
	if _, _, _, r := Open(tab, keep); r != sad.DropReplay {
		t.Fatalf("replayed packet: %v", r)
	}
	// Forged packet with a fresh sequence number: auth failure, and the
	// window must not advance (the real packet 2 still passes).
	p2 := seal(inner)
	forged := append(make([]byte, 0, len(p2)+Spare), p2...)
	forged[len(forged)-1] ^= 1
	if _, _, _, r := Open(tab, forged); r != sad.DropAuthFailed {
		t.Fatalf("forged: %v", r)
	}
	if _, _, _, r := Open(tab, p2); r != sad.NotDropped {
		t.Fatalf("packet 2 after forgery: %v", r)
	}
	// Inner packet outside the selectors.
	if _, _, _, r := Open(tab, seal(ipv4Packet(60, "10.9.0.2", "10.2.0.2", 3))); r != sad.DropSelectorMismatch {
		t.Fatalf("selector: %v", r)
	}
	bad := seal(inner)
	binary.BigEndian.PutUint32(bad, 0x7777)
	if _, _, _, r := Open(tab, bad); r != sad.DropNoSA {
		t.Fatalf("unknown SPI: %v", r)
	}
	if _, _, _, r := Open(tab, bad[:5]); r != sad.DropMalformed {
		t.Fatalf("short: %v", r)
	}
	st := in.Stats()
	// The selector-mismatch packet was authentic, so it is accounted
	// (and recorded in the window) before the selector check drops it.
	if st.Packets != 3 || st.Drops[sad.DropReplay] != 1 || st.Drops[sad.DropAuthFailed] != 1 || st.Drops[sad.DropSelectorMismatch] != 1 {
		t.Fatalf("inbound stats %+v", st)
	}
}
