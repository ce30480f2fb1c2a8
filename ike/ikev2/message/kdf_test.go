package message

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/netip"
	"testing"

	"github.com/ipsecgw/ipsecgw/transform"
)

func mustPRF(t testing.TB, id transform.ID) transform.PRF {
	t.Helper()
	f, err := transform.NewPRF(id)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// IKEv2 KDF known answers in the layout of the NIST CAVP "IKEv2 KDF" test
// (SP 800-135 §5.2 component test): SKEYSEED = prf(Ni|Nr, g^ir), DKM =
// prf+(SKEYSEED, Ni|Nr|SPIi|SPIr), DKM(Child SA) = prf+(SK_d, Ni|Nr),
// DKM(Child SA D-H) = prf+(SK_d, g^ir(new)|Ni|Nr), SKEYSEED(Rekey) =
// prf(SK_d, g^ir(new)|Ni|Nr), where SK_d is the first PRF-output-size bytes
// of DKM.
//
// Source: the SHA-1 sample vector (DKM length 1056 bits) quoted with its
// inputs in libreswan's CAVS driver, programs/ikev2_cavs/ikev2_cavs.c
// (libreswan/libreswan), which reproduces the NIST sample file.
var cavsVectors = []struct {
	source                                       string
	prf                                          transform.ID
	gir, girNew, ni, nr, spii, spir              string
	skeyseed, dkm, dkmChild, dkmChildDH, rekeyed string
}{{
	source: "NIST CAVP IKEv2 KDF sample, SHA-1, via libreswan ikev2_cavs.c",
	prf:    transform.PRFHMACSHA1,
	gir:    "4b2c1f971981a8ad8d0abeafabf38cf75fc8349c148142465ed9c8b516b8be52",
	girNew: "863f3c9d06efd39d2b907b97f8699e5dd5251ef64a2a176f36ee40c87d4f9330",
	ni:     "32b50d5f4a3763f3", nr: "9206a04b26564cb1",
	spii: "34c9e7c188868785", spir: "3ff77d760d2b2199",
	skeyseed:   "a9a7b222b59f8f48645f28a1db5b5f5d7479cba7",
	dkm:        "a14293677cc80ff8f9cc0eee30d895da9d8f405666e30ef0dfcb63c634a46002a2a63080e514a062768b76606f9fa5e992204fc5a670bde3f10d6b027113936a5c55b648a194ae587b0088d52204b702c979fa280870d2ed41efa9c549fd11198af1670b143d384bd275c5f594cf266b05ebadca855e4249520a441a81157435a7a56cc4",
	dkmChild:   "8059e3ee8810e6c3a91bc8bcd2a7a41151b8d0e6ae239c7b38093ad85ef4c5811a8e7b5d1cdabd9560b2d5e092d1f24e2d4b85eccdf0ad0dc9abd94b51ee71814ca6dbc8bb51b6309f5b9545c7eb35cf5580b1e521a8fe20754a2d883ba0c2cf285f524aea6545b33106bc03e614296d319d41d4b50b3f510b1c0a22f3e664994d234cb4",
	dkmChildDH: "bb43244c1860ad65ee1e211ffe8bb3661750c8f89cb9f547df7f4fa61d37301628190e38c66232eab4b3ab14c400a5197dd3730ed4820a8a10394d51e1c0400052f63ebd36b0e7ef53aaed31eba4a5080d7d4b5666023a8bbb5ffb7857240f9a05884d1b7d2f933708450b7b3288f1fc863ab49fa901227cffc06e27899c7054d56fd74c",
	rekeyed:    "63e81194946ebd05df7df5ebf5d8750056bf1f1d",
}}

func TestCAVSIKEv2KDF(t *testing.T) {
	for _, v := range cavsVectors {
		t.Run(v.source, func(t *testing.T) {
			f := mustPRF(t, v.prf)
			gir, girNew := unhex(t, v.gir), unhex(t, v.girNew)
			ni, nr, spii, spir := unhex(t, v.ni), unhex(t, v.nr), unhex(t, v.spii), unhex(t, v.spir)

			seed := SKEYSEED(f, ni, nr, gir)
			if !bytes.Equal(seed, unhex(t, v.skeyseed)) {
				t.Fatalf("SKEYSEED %x", seed)
			}
			want := unhex(t, v.dkm)
			dkm, err := PRFPlus(f, seed, len(want), ni, nr, spii, spir)
			if err != nil || !bytes.Equal(dkm, want) {
				t.Fatalf("DKM %x %v", dkm, err)
			}
			skd := dkm[:f.Size()]
			want = unhex(t, v.dkmChild)
			child, err := PRFPlus(f, skd, len(want), ni, nr)
			if err != nil || !bytes.Equal(child, want) {
				t.Fatalf("DKM(Child SA) %x %v", child, err)
			}
			want = unhex(t, v.dkmChildDH)
			childDH, err := PRFPlus(f, skd, len(want), girNew, ni, nr)
			if err != nil || !bytes.Equal(childDH, want) {
				t.Fatalf("DKM(Child SA D-H) %x %v", childDH, err)
			}
			if re := RekeySKEYSEED(f, skd, girNew, ni, nr); !bytes.Equal(re, unhex(t, v.rekeyed)) {
				t.Fatalf("SKEYSEED(Rekey) %x", re)
			}

			// The structured derivations slice the same streams.
			spiI, spiR := binary.BigEndian.Uint64(spii), binary.BigEndian.Uint64(spir)
			keys, err := DeriveIKEKeys(f, aesCBC128, transform.Transform{Type: transform.TypeINTEG, ID: transform.IntegHMACSHA1_96}, seed, ni, nr, spiI, spiR)
			if err != nil {
				t.Fatal(err)
			}
			// SHA-1: SK_d 20, SK_a 20+20, SK_e 16+16, SK_p 20+20.
			flat := bytes.Join([][]byte{keys.SKd, keys.SKai, keys.SKar, keys.SKei, keys.SKer, keys.SKpi, keys.SKpr}, nil)
			if len(flat) != 132 || !bytes.Equal(flat, dkm[:132]) {
				t.Fatalf("IKE keys (%d bytes) are not the DKM stream", len(flat))
			}
			ck, err := DeriveChildKeys(f, keys.SKd, aesCBC128, transform.Transform{Type: transform.TypeINTEG, ID: transform.IntegHMACSHA1_96}, girNew, ni, nr)
			if err != nil {
				t.Fatal(err)
			}
			flat = bytes.Join([][]byte{ck.EncrI, ck.IntegI, ck.EncrR, ck.IntegR}, nil)
			if len(flat) != 2*(16+20) || !bytes.Equal(flat, childDH[:len(flat)]) {
				t.Fatal("child keys are not the DKM(Child SA D-H) stream in order encr_i, integ_i, encr_r, integ_r")
			}
			if s := fmt.Sprintf("%v %+v %#v", keys, keys, ck); bytes.Contains([]byte(s), []byte(fmt.Sprintf("%x", keys.SKd[:4]))) {
				t.Fatal("key bytes printed")
			}
			// Zero wipes the backing arrays the slices handed out share.
			held := [][]byte{keys.SKd, keys.SKai, keys.SKei, keys.SKpr, ck.EncrI, ck.IntegR}
			keys.Zero()
			ck.Zero()
			for _, k := range held {
				if !bytes.Equal(k, make([]byte, len(k))) {
					t.Fatal("Zero left key bytes behind")
				}
			}
			if keys.SKd != nil || ck.EncrI != nil {
				t.Fatal("Zero left the slices in place")
			}
		})
	}
}

// prf+ against its definition (RFC 7296 §2.13), computed with crypto/hmac
// directly.
func TestPRFPlusDefinition(t *testing.T) {
	key := []byte("key")
	s1, s2 := []byte("seed-"), []byte("part2")
	got, err := PRFPlus(mustPRF(t, transform.PRFHMACSHA2_256), key, 100, s1, s2)
	if err != nil {
		t.Fatal(err)
	}
	var want, prev []byte
	for i := byte(1); len(want) < 100; i++ {
		m := hmac.New(sha256.New, key)
		m.Write(prev)
		m.Write(s1)
		m.Write(s2)
		m.Write([]byte{i})
		prev = m.Sum(nil)
		want = append(want, prev...)
	}
	if !bytes.Equal(got, want[:100]) {
		t.Fatalf("prf+ %x\nwant %x", got, want[:100])
	}
	if _, err := PRFPlus(mustPRF(t, transform.PRFHMACSHA1), key, 255*20+1, s1); err == nil {
		t.Fatal("prf+ beyond 255 blocks accepted")
	}
}

// Key sizes follow the negotiated transforms (RFC 7296 §2.14), including
// AEAD (no SK_a, salt in SK_e) and the fixed-key AES-XCBC PRF.
func TestDeriveIKEKeySizes(t *testing.T) {
	seed := bytes.Repeat([]byte{1}, 32)
	ni, nr := bytes.Repeat([]byte{2}, 32), bytes.Repeat([]byte{3}, 32)
	for _, c := range []struct {
		prf         transform.ID
		encr, integ transform.Transform
		d, a, e     int
	}{
		{transform.PRFHMACSHA2_256, aesCBC128, sha256128, 32, 32, 16},
		{transform.PRFHMACSHA2_384, aesGCM16128, integNone, 48, 0, 20},
		{transform.PRFHMACSHA2_512, transform.Transform{Type: transform.TypeENCR, ID: transform.EncrAESCBC, KeyLen: 256},
			transform.Transform{Type: transform.TypeINTEG, ID: transform.IntegHMACSHA2_512_256}, 64, 64, 32},
		{transform.PRFAES128XCBC, aesCBC128, transform.Transform{Type: transform.TypeINTEG, ID: transform.IntegAESXCBC96}, 16, 16, 16},
	} {
		f := mustPRF(t, c.prf)
		k, err := DeriveIKEKeys(f, c.encr, c.integ, seed, ni, nr, 1, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(k.SKd) != c.d || len(k.SKpi) != c.d || len(k.SKpr) != c.d || len(k.SKai) != c.a || len(k.SKar) != c.a || len(k.SKei) != c.e || len(k.SKer) != c.e {
			t.Errorf("%v/%v/%v: sizes d=%d a=%d e=%d", c.prf, c.encr, c.integ, len(k.SKd), len(k.SKai), len(k.SKei))
		}
		out, in, err := k.Protectors(c.encr, c.integ, true)
		if err != nil {
			t.Fatalf("protectors: %v", err)
		}
		out.Close()
		in.Close()
	}
}

// For AES-XCBC the SKEYSEED key is the first 8 bytes of each nonce (RFC
// 7296 §2.14).
func TestSKEYSEEDFixedKeyPRF(t *testing.T) {
	f := mustPRF(t, transform.PRFAES128XCBC)
	ni, nr := bytes.Repeat([]byte{0xa1}, 32), bytes.Repeat([]byte{0xb2}, 32)
	gir := []byte("shared secret")
	got := SKEYSEED(f, ni, nr, gir)
	key := append(append([]byte(nil), ni[:8]...), nr[:8]...)
	k := f.New(key)
	k.Write(gir)
	if want := k.Sum(nil); !bytes.Equal(got, want) {
		t.Fatalf("SKEYSEED %x want %x", got, want)
	}
}

// PSK AUTH (RFC 7296 §2.15) against the formula computed with crypto/hmac.
func TestPSKAuth(t *testing.T) {
	f := mustPRF(t, transform.PRFHMACSHA2_256)
	psk := []byte("correct horse battery staple")
	msg1 := []byte("the initiator's IKE_SA_INIT bytes")
	nr := bytes.Repeat([]byte{7}, 32)
	skpi := bytes.Repeat([]byte{8}, 32)
	idBody := append([]byte{byte(IDFQDN), 0, 0, 0}, "gw1.example.net"...)

	so := SignedOctets(f, skpi, msg1, nr, idBody)
	mac := func(k []byte, d ...[]byte) []byte {
		m := hmac.New(sha256.New, k)
		for _, x := range d {
			m.Write(x)
		}
		return m.Sum(nil)
	}
	wantSO := append(append(append([]byte(nil), msg1...), nr...), mac(skpi, idBody)...)
	if !bytes.Equal(so, wantSO) {
		t.Fatal("signed octets")
	}
	want := mac(mac(psk, []byte("Key Pad for IKEv2")), wantSO)
	if got := PSKAuth(f, psk, so); !bytes.Equal(got, want) {
		t.Fatalf("AUTH %x want %x", got, want)
	}
	if !VerifyPSKAuth(f, psk, so, want) || VerifyPSKAuth(f, []byte("wrong"), so, want) {
		t.Fatal("VerifyPSKAuth")
	}
}

func TestNATDetectionHash(t *testing.T) {
	for _, ap := range []netip.AddrPort{
		netip.MustParseAddrPort("198.51.100.1:500"),
		netip.MustParseAddrPort("[::ffff:198.51.100.1]:500"), // mapped form hashes as IPv4
		netip.MustParseAddrPort("[2001:db8::1]:4500"),
	} {
		got := NATDetectionHash(0x0102030405060708, 0, ap)
		var b []byte
		b = binary.BigEndian.AppendUint64(b, 0x0102030405060708)
		b = binary.BigEndian.AppendUint64(b, 0)
		b = append(b, ap.Addr().Unmap().AsSlice()...)
		b = binary.BigEndian.AppendUint16(b, ap.Port())
		if want := sha1.Sum(b); got != want {
			t.Errorf("%v: %x want %x", ap, got, want)
		}
	}
	if len(netip.MustParseAddr("198.51.100.1").AsSlice()) != 4 {
		t.Fatal("IPv4 must hash as 4 bytes")
	}
}

// keySuites are an encrypt-then-MAC and an AEAD IKE suite, the two ways
// IKEKeys lays out its keys.
var keySuites = []struct{ encr, integ transform.Transform }{{aesCBC128, sha256128}, {aesGCM16128, integNone}}

// deriveSuite derives IKE SA keys for a suite from fixed inputs.
func deriveSuite(t *testing.T, encr, integ transform.Transform) IKEKeys {
	t.Helper()
	seed := bytes.Repeat([]byte{1}, 32)
	ni, nr := bytes.Repeat([]byte{2}, 32), bytes.Repeat([]byte{3}, 32)
	k, err := DeriveIKEKeys(mustPRF(t, transform.PRFHMACSHA2_256), encr, integ, seed, ni, nr, 1, 2)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Protector builds one direction of what Protectors builds: what either
// side seals outbound, the other side's inbound protector opens, and its
// own inbound one (the peer's keys) rejects. Zero leaves no keys to build
// from.
func TestIKEKeysProtectorDirections(t *testing.T) {
	for _, c := range keySuites {
		k := deriveSuite(t, c.encr, c.integ)
		if !k.Derived() {
			t.Fatal("derived keys report none")
		}
		build := func(initiator, outbound bool) *transform.Protector {
			p, err := k.Protector(c.encr, c.integ, initiator, outbound)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(p.Close)
			return p
		}
		for _, initiator := range []bool{true, false} {
			h := Header{SPIi: 1, SPIr: 2, MajorVersion: 2, Exchange: INFORMATIONAL, MessageID: 3}
			b, err := AppendEncrypted(nil, h, build(initiator, true), samplePayloads()...)
			if err != nil {
				t.Fatal(err)
			}
			open := func(p *transform.Protector) error {
				m, _, err := ParseMessage(append([]byte(nil), b...))
				if err != nil {
					t.Fatal(err)
				}
				return Decrypt(&m, p)
			}
			if err := open(build(!initiator, false)); err != nil {
				t.Errorf("%v initiator=%v: the peer's inbound protector does not open our outbound message: %v", c.encr, initiator, err)
			}
			if err := open(build(initiator, false)); err == nil {
				t.Errorf("%v initiator=%v: our inbound protector opened our own outbound message", c.encr, initiator)
			}
		}
		k.Zero()
		if k.Derived() {
			t.Error("zeroed keys still report key material")
		}
	}
}

// DropAuthKeys keeps SK_d, SK_a and SK_e, byte for byte, in an allocation
// of just their size (what an established SA holds), forgets SK_pi and
// SK_pr, and wipes the array they all shared.
func TestIKEKeysDropAuthKeys(t *testing.T) {
	for _, c := range keySuites {
		k := deriveSuite(t, c.encr, c.integ)
		want := [][]byte{bytes.Clone(k.SKd), bytes.Clone(k.SKai), bytes.Clone(k.SKar), bytes.Clone(k.SKei), bytes.Clone(k.SKer)}
		old := k.all[:cap(k.all)]
		k.DropAuthKeys()
		got := [][]byte{k.SKd, k.SKai, k.SKar, k.SKei, k.SKer}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Errorf("%v: key %d changed: %x want %x", c.encr, i, got[i], want[i])
			}
		}
		if k.SKpi != nil || k.SKpr != nil {
			t.Errorf("%v: SK_pi/SK_pr kept", c.encr)
		}
		if n := len(want[0]) + len(want[1]) + len(want[2]) + len(want[3]) + len(want[4]); cap(k.all) != n {
			t.Errorf("%v: %d bytes held for %d bytes of keys", c.encr, cap(k.all), n)
		}
		if !k.Derived() {
			t.Errorf("%v: keys report none after DropAuthKeys", c.encr)
		}
		if !bytes.Equal(old, make([]byte, len(old))) {
			t.Errorf("%v: the old key array is not wiped", c.encr)
		}
		k.DropAuthKeys() // nothing left to drop: a no-op
		if !bytes.Equal(k.SKei, want[3]) {
			t.Errorf("%v: a second DropAuthKeys changed the keys", c.encr)
		}
	}
}
