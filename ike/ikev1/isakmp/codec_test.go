package isakmp

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.NewReplacer(" ", "", "\n", "", "\t", "").Replace(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// parseAs decodes body as a payload of type typ.
func parseAs(typ PayloadType, body []byte) (Payload, error) {
	var p Payload
	var err error
	switch typ {
	case PayloadSA:
		p, _, err = ParseSA(body)
	case PayloadKE:
		p, _, err = ParseKE(body)
	case PayloadID:
		p, _, err = ParseID(body)
	case PayloadCERT:
		p, _, err = ParseCert(body)
	case PayloadCR:
		p, _, err = ParseCertReq(body)
	case PayloadHash:
		p, _, err = ParseHash(body)
	case PayloadSIG:
		p, _, err = ParseSignature(body)
	case PayloadNonce:
		p, _, err = ParseNonce(body)
	case PayloadN:
		p, _, err = ParseNotify(body)
	case PayloadD:
		p, _, err = ParseDelete(body)
	case PayloadVID:
		p, _, err = ParseVendorID(body)
	case PayloadNATD, PayloadNATDDraft:
		var x NATD
		x, _, err = ParseNATD(body)
		x.Draft = typ == PayloadNATDDraft
		p = x
	case PayloadNATOA, PayloadNATOADraft:
		var x NATOA
		x, _, err = ParseNATOA(body)
		x.Draft = typ == PayloadNATOADraft
		p = x
	default:
		p = RawPayload{Type: typ, Body: body}
	}
	if err != nil {
		return nil, err
	}
	return p, nil
}

// samplePayloads holds one value of every payload type, with every field
// set to something other than its zero value.
func samplePayloads() []Payload {
	return []Payload{
		SA{DOI: DOIIPsec, Situation: SitIdentityOnly, Proposals: []Proposal{
			{Number: 1, Protocol: ProtoISAKMP, Transforms: []Transform{
				{Number: 1, ID: KeyIKE, Attrs: []Attribute{BasicAttr(P1Encryption, uint16(EncrAESCBC)), BasicAttr(P1KeyLength, 256),
					BasicAttr(P1Hash, uint16(HashSHA2256)), BasicAttr(P1Group, 14), BasicAttr(P1AuthMethod, uint16(AuthPSK)),
					BasicAttr(P1LifeType, uint16(LifeSeconds)), NumAttr(P1LifeDuration, 86400)}},
				{Number: 2, ID: KeyIKE, Attrs: []Attribute{BasicAttr(P1Encryption, uint16(Encr3DESCBC)),
					BasicAttr(P1Hash, uint16(HashSHA)), BasicAttr(P1Group, 2), BasicAttr(P1AuthMethod, uint16(AuthPSK))}},
			}},
		}},
		SA{DOI: DOIIPsec, Situation: SitIdentityOnly, Proposals: []Proposal{
			{Number: 1, Protocol: ProtoESP, SPI: []byte{0xc0, 1, 2, 3}, Transforms: []Transform{
				{Number: 1, ID: ESPAESGCM16, Attrs: []Attribute{BasicAttr(P2KeyLength, 128), BasicAttr(P2EncapMode, uint16(EncapUDPTunnel)),
					BasicAttr(P2LifeType, uint16(LifeSeconds)), NumAttr(P2LifeDuration, 3600),
					BasicAttr(P2LifeType, uint16(LifeKilobytes)), NumAttr(P2LifeDuration, 1<<33)}},
			}},
			{Number: 2, Protocol: ProtoAH, SPI: []byte{0xc0, 1, 2, 4}, Transforms: []Transform{{Number: 1, ID: 3}}},
			{Number: 2, Protocol: ProtoESP, SPI: []byte{0xc0, 1, 2, 5}, Transforms: []Transform{
				{Number: 1, ID: ESP3DES, Attrs: []Attribute{BasicAttr(P2AuthAlgorithm, uint16(AuthAlgHMACSHA1))}}}},
		}},
		KE{Data: bytes.Repeat([]byte{0xab}, 32)},
		ID{Type: IDIPv4AddrSubnet, Protocol: 6, Port: 80, Data: []byte{10, 1, 0, 0, 255, 255, 0, 0}},
		ID{Type: IDFQDN, Data: []byte("gw.example.com")},
		Cert{Encoding: 4, Data: []byte{0x30, 0x82, 1, 2}},
		CertReq{Type: 4, Authority: []byte{0x30, 0x00}},
		Hash{Data: bytes.Repeat([]byte{0x11}, 20)},
		Signature{Data: []byte{1, 2, 3}},
		Nonce{Data: bytes.Repeat([]byte{0x22}, 16)},
		DPD(false, 0x0102030405060708, 0x1112131415161718, 7),
		InitialContact(1, 2),
		ResponderLifetime(ProtoESP, []byte{1, 2, 3, 4}, Lifetime{Seconds: 3600, Kilobytes: 100000}),
		DeleteESP(0xc0000001, 0xc0000002),
		DeleteISAKMP(1, 2),
		VendorID{Data: []byte(VendorDPD)},
		NATD{Hash: bytes.Repeat([]byte{0x33}, 20)},
		NATD{Draft: true, Hash: bytes.Repeat([]byte{0x44}, 16)},
		NATOA{Addr: netip.MustParseAddr("192.168.1.10")},
		NATOA{Draft: true, Addr: netip.MustParseAddr("2001:db8::1")},
	}
}

func TestRoundTripEveryPayload(t *testing.T) {
	for _, p := range samplePayloads() {
		b := p.AppendTo(nil)
		if len(b) != p.Len() {
			t.Errorf("%v: Len %d, encoded %d bytes", p.PayloadType(), p.Len(), len(b))
		}
		got, err := parseAs(p.PayloadType(), b)
		if err != nil {
			t.Fatalf("%v: %v", p.PayloadType(), err)
		}
		if !reflect.DeepEqual(got, p) {
			t.Errorf("%v: round trip\n got %#v\nwant %#v", p.PayloadType(), got, p)
		}
	}
}

// TestMessageRoundTrip encodes a message with every payload, decodes it
// and compares the payload chain.
func TestMessageRoundTrip(t *testing.T) {
	ps := samplePayloads()
	h := Header{CookieI: 0x0102030405060708, CookieR: 0x1112131415161718, Exchange: ExchangeIdentityProtection, Flags: FlagCommit, MessageID: 0}
	b := AppendMessage(nil, h, ps...)
	if len(b) != MessageLen(ps...) {
		t.Fatalf("MessageLen %d, encoded %d", MessageLen(ps...), len(b))
	}
	m, n, err := ParseMessage(append(b, 0xee, 0xee)) // bytes beyond Length are not the message's
	if err != nil {
		t.Fatal(err)
	}
	if n != len(b) || len(m.Raw) != len(b) || !bytes.Equal(m.Chain, b[HeaderLen:]) {
		t.Fatalf("n %d, raw %d, chain %d; want %d", n, len(m.Raw), len(m.Chain), len(b))
	}
	want := h
	want.NextPayload, want.Length = PayloadSA, uint32(len(b))
	if m.Header != want {
		t.Fatalf("header %+v, want %+v", m.Header, want)
	}
	if len(m.Payloads) != len(ps) {
		t.Fatalf("%d payloads, want %d", len(m.Payloads), len(ps))
	}
	for i, raw := range m.Payloads {
		got, err := parseAs(raw.Type, raw.Body)
		if err != nil {
			t.Fatalf("payload %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, ps[i]) {
			t.Errorf("payload %d: got %#v, want %#v", i, got, ps[i])
		}
	}
}

// TestHeaderBytes checks the header against the RFC 2408 §3.1 diagram
// field by field.
func TestHeaderBytes(t *testing.T) {
	h := Header{CookieI: 0x0102030405060708, CookieR: 0x090a0b0c0d0e0f10, Exchange: ExchangeQuickMode,
		Flags: FlagEncryption | FlagCommit, MessageID: 0xdeadbeef}
	b := AppendMessage(nil, h, Hash{Data: []byte{0xaa, 0xbb}})
	want := unhex(t, `0102030405060708 090a0b0c0d0e0f10
		08 10 20 03 deadbeef 00000022
		00 00 0006 aabb`)
	if !bytes.Equal(b, want) {
		t.Fatalf("encoded\n%x\nwant\n%x", b, want)
	}
}

// firewall1SA is the SA payload body of a Check Point Firewall-1 aggressive
// mode capture published with ike-scan's check-hash.c (the SAi_b of its
// HASH_R test vector): DOI IPsec, SIT_IDENTITY_ONLY, one ISAKMP proposal
// with one KEY_IKE transform of DES-CBC, MD5, PSK, group 2 and a life of
// 28800 seconds sent as a 4-byte TLV.
const firewall1SA = `00000001 00000001
	0000002c 01010001
	00000024 01010000 80010001 80020001 80030001 80040002 800b0001 000c0004 00007080`

func TestParseSAFromCapture(t *testing.T) {
	sa, n, err := ParseSA(unhex(t, firewall1SA))
	if err != nil {
		t.Fatal(err)
	}
	want := SA{DOI: DOIIPsec, Situation: SitIdentityOnly, Proposals: []Proposal{{Number: 1, Protocol: ProtoISAKMP,
		Transforms: []Transform{{Number: 1, ID: KeyIKE, Attrs: []Attribute{
			BasicAttr(P1Encryption, uint16(EncrDESCBC)), BasicAttr(P1Hash, uint16(HashMD5)), BasicAttr(P1AuthMethod, uint16(AuthPSK)),
			BasicAttr(P1Group, 2), BasicAttr(P1LifeType, uint16(LifeSeconds)), {Type: P1LifeDuration, Data: []byte{0, 0, 0x70, 0x80}}}}}}}}
	if n != 52 || !reflect.DeepEqual(sa, want) {
		t.Fatalf("got %#v (%d bytes)\nwant %#v", sa, n, want)
	}
	if !bytes.Equal(sa.AppendTo(nil), unhex(t, firewall1SA)) {
		t.Fatal("re-encoding differs from the capture")
	}
	// The capture's only transform is single DES, which is refused with
	// a reason.
	_, refused, err := Phase1Offers(sa)
	if !errors.Is(err, ErrNoProposalChosen) || len(refused) != 1 || !errors.Is(refused[0].Err, ErrAttributesNotSupported) ||
		!strings.Contains(refused[0].Err.Error(), "DES") {
		t.Fatalf("err %v, refused %v", err, refused)
	}
	d, ok := sa.Proposals[0].Transforms[0].Attrs[5].Uint()
	if !ok || d != 28800 {
		t.Fatalf("life duration %d %v", d, ok)
	}
}

// TestPayloadBytes checks hand-built bodies following the RFC diagrams.
func TestPayloadBytes(t *testing.T) {
	tests := []struct {
		name string
		p    Payload
		hex  string
	}{
		{"ID subnet tcp/80 (RFC 2407 §4.6.2)", ID{Type: IDIPv4AddrSubnet, Protocol: 6, Port: 80, Data: []byte{10, 1, 0, 0, 255, 255, 255, 0}},
			"04 06 0050 0a010000 ffffff00"},
		{"ID ipv4 udp/500 as Cisco sends it", ID{Type: IDIPv4Addr, Protocol: 17, Port: 500, Data: []byte{192, 168, 3, 101}},
			"01 11 01f4 c0a80365"},
		{"N R-U-THERE (RFC 3706 §5.1)", DPD(false, 0x0102030405060708, 0x1112131415161718, 0x01020304),
			"00000001 01 10 8d28 0102030405060708 1112131415161718 01020304"},
		{"N INITIAL-CONTACT (RFC 2407 §4.6.3.3)", InitialContact(1, 2),
			"00000001 01 10 6002 0000000000000001 0000000000000002"},
		{"D ESP (RFC 2408 §3.15)", DeleteESP(0xc1c2c3c4), "00000001 03 04 0001 c1c2c3c4"},
		{"D ISAKMP", DeleteISAKMP(1, 2), "00000001 01 10 0001 0000000000000001 0000000000000002"},
		{"NAT-OA ipv4 (RFC 3947 §5.2)", NATOA{Addr: netip.MustParseAddr("10.0.0.1")}, "01 000000 0a000001"},
		{"RESPONDER-LIFETIME (RFC 2407 §4.6.3.1)", ResponderLifetime(ProtoESP, []byte{9, 9, 9, 9}, Lifetime{Seconds: 86400}),
			"00000001 03 04 6000 09090909 80010001 00020004 00015180"},
		{"SA attribute TV and TLV (RFC 2408 §3.3)", SA{DOI: DOIIPsec, Situation: SitIdentityOnly, Proposals: []Proposal{{Number: 1,
			Protocol: ProtoESP, SPI: []byte{1, 2, 3, 4}, Transforms: []Transform{{Number: 1, ID: ESPAES, Attrs: []Attribute{
				BasicAttr(P2KeyLength, 256), NumAttr(P2LifeDuration, 0x12345678), NumAttr(P2LifeDuration, 1<<40)}}}}}},
			"00000001 00000001 0000002c 01030401 01020304 00000020 010c0000 80060100 00020004 12345678 00020008 0000010000000000"},
	}
	for _, tt := range tests {
		want := unhex(t, tt.hex)
		if got := tt.p.AppendTo(nil); !bytes.Equal(got, want) {
			t.Errorf("%s: encoded\n%x\nwant\n%x", tt.name, got, want)
		}
		got, err := parseAs(tt.p.PayloadType(), want)
		if err != nil || !reflect.DeepEqual(got, tt.p) {
			t.Errorf("%s: decoded %#v, %v", tt.name, got, err)
		}
	}
}

// TestMalformed feeds broken input to the parsers: every case must fail
// with the named notification, none may panic.
func TestMalformed(t *testing.T) {
	hdr := func(next byte, exch ExchangeType, flags byte, length uint32) string {
		return "0102030405060708 0000000000000000 " + hex.EncodeToString([]byte{next, 0x10, byte(exch), flags}) +
			" 00000000 " + hex.EncodeToString([]byte{byte(length >> 24), byte(length >> 16), byte(length >> 8), byte(length)})
	}
	msgs := []struct {
		name string
		hex  string
		want error
	}{
		{"empty", "", ErrPayloadMalformed},
		{"short header", "0102030405060708", ErrPayloadMalformed},
		{"zero initiator cookie", "0000000000000000 0000000000000000 00 10 02 00 00000000 0000001c", ErrInvalidCookie},
		{"IKEv2", "0102030405060708 0000000000000000 21 20 22 08 00000000 0000001c", ErrInvalidMajorVersion},
		{"minor version 1", "0102030405060708 0000000000000000 00 11 02 00 00000000 0000001c", ErrInvalidMinorVersion},
		{"reserved flag", hdr(0, ExchangeIdentityProtection, 0x08, 28), ErrInvalidFlags},
		{"length beyond datagram", hdr(0, ExchangeIdentityProtection, 0, 29), ErrPayloadMalformed},
		{"length below header", hdr(0, ExchangeIdentityProtection, 0, 27), ErrPayloadMalformed},
		{"next payload but no bytes", hdr(1, ExchangeIdentityProtection, 0, 28), ErrPayloadMalformed},
		{"truncated generic header", hdr(1, ExchangeIdentityProtection, 0, 30) + "0000", ErrPayloadMalformed},
		{"payload length 0", hdr(13, ExchangeIdentityProtection, 0, 32) + "00000000", ErrPayloadMalformed},
		{"payload length lies", hdr(13, ExchangeIdentityProtection, 0, 32) + "00000010", ErrPayloadMalformed},
		{"chain runs past the end", hdr(13, ExchangeIdentityProtection, 0, 32) + "0d000004", ErrPayloadMalformed},
		{"proposal as a payload", hdr(2, ExchangeIdentityProtection, 0, 32) + "00000004", ErrInvalidPayloadType},
		{"transform as a payload", hdr(13, ExchangeIdentityProtection, 0, 36) + "03000004 00000004", ErrInvalidPayloadType},
	}
	for _, tt := range msgs {
		_, _, err := ParseMessage(unhex(t, tt.hex))
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: error %v, want %v", tt.name, err, tt.want)
		}
	}

	bodies := []struct {
		name string
		typ  PayloadType
		hex  string
		want error
	}{
		{"SA short", PayloadSA, "000000010000", ErrPayloadMalformed},
		{"SA DOI 2", PayloadSA, "00000002 00000001 0000000c 01030000", ErrDOINotSupported},
		{"SA secrecy situation", PayloadSA, "00000001 00000002", ErrSituationNotSupported},
		{"SA without proposals", PayloadSA, "00000001 00000001", ErrBadProposalSyntax},
		{"proposal truncated", PayloadSA, "00000001 00000001 00000008", ErrPayloadMalformed},
		{"proposal length lies", PayloadSA, "00000001 00000001 0000ffff 01010001", ErrPayloadMalformed},
		{"proposal length 0", PayloadSA, "00000001 00000001 00000000 01010001", ErrPayloadMalformed},
		{"SPI size lies", PayloadSA, "00000001 00000001 0000000c 0103ff01 01020304", ErrPayloadMalformed},
		{"transform truncated", PayloadSA, "00000001 00000001 0000000c 01010001 00000008", ErrPayloadMalformed},
		{"transform length lies", PayloadSA, "00000001 00000001 00000010 01010001 00000020 01010000", ErrPayloadMalformed},
		{"absurd attribute length", PayloadSA, "00000001 00000001 00000014 01010001 0000000c 01010000 0001ffff", ErrPayloadMalformed},
		{"truncated attribute", PayloadSA, "00000001 00000001 00000012 01010001 0000000a 01010000 8001", ErrPayloadMalformed},
		{"transform count lies", PayloadSA, "00000001 00000001 00000010 01010002 00000008 01010000", ErrBadProposalSyntax},
		{"no transforms", PayloadSA, "00000001 00000001 00000008 01010000", ErrBadProposalSyntax},
		{"last proposal says more", PayloadSA, "00000001 00000001 02000010 01010001 00000008 01010000", ErrBadProposalSyntax},
		{"last transform says more", PayloadSA, "00000001 00000001 00000010 01010001 03000008 01010000", ErrBadProposalSyntax},
		{"proposal numbers decrease", PayloadSA, "00000001 00000001 02000010 02030001 00000008 010c0000 00000010 01030001 00000008 010c0000", ErrBadProposalSyntax},
		{"transform numbers repeat", PayloadSA, "00000001 00000001 00000018 01010002 03000008 01010000 00000008 01010000", ErrBadProposalSyntax},
		{"KE empty", PayloadKE, "", ErrPayloadMalformed},
		{"ID short", PayloadID, "010000", ErrPayloadMalformed},
		{"ID ipv4 of 5 bytes", PayloadID, "01000000 0a00000102", ErrInvalidIDInformation},
		{"ID ipv6 subnet short", PayloadID, "06000000 20010db8", ErrInvalidIDInformation},
		{"nonce of 7", PayloadNonce, "01020304050607", ErrPayloadMalformed},
		{"nonce of 257", PayloadNonce, strings.Repeat("ab", 257), ErrPayloadMalformed},
		{"HASH empty", PayloadHash, "", ErrPayloadMalformed},
		{"N short", PayloadN, "00000001 0101", ErrPayloadMalformed},
		{"N SPI lies", PayloadN, "00000001 0110 8d28 0102", ErrPayloadMalformed},
		{"N DOI 7", PayloadN, "00000007 0100 000e", ErrDOINotSupported},
		{"D count lies", PayloadD, "00000001 0304 0002 01020304", ErrPayloadMalformed},
		{"D SPIs of size 0", PayloadD, "00000001 0300 0001", ErrInvalidSPI},
		{"NAT-D empty", PayloadNATD, "", ErrPayloadMalformed},
		{"NAT-OA fqdn", PayloadNATOA, "02000000 61", ErrInvalidIDInformation},
		{"NAT-OA ipv6 short", PayloadNATOA, "05000000 0a000001", ErrPayloadMalformed},
		{"CERT empty", PayloadCERT, "", ErrPayloadMalformed},
		{"CR empty", PayloadCR, "", ErrPayloadMalformed},
	}
	for _, tt := range bodies {
		_, err := parseAs(tt.typ, unhex(t, tt.hex))
		if !errors.Is(err, tt.want) {
			t.Errorf("%s: error %v, want %v", tt.name, err, tt.want)
		}
		var e *Error
		if errors.As(err, &e) && e.Offset >= 0 && e.Offset > len(tt.hex) {
			t.Errorf("%s: offset %d beyond the input", tt.name, e.Offset)
		}
	}
}

func TestUnknownPayloadsSkippedAndPaddingIgnored(t *testing.T) {
	h := Header{CookieI: 1, Exchange: ExchangeIdentityProtection}
	b := AppendMessage(nil, h, VendorID{Data: []byte("a")}, RawPayload{Type: 99, Body: []byte{1, 2, 3}}, Nonce{Data: make([]byte, 8)})
	// Libreswan pads unencrypted messages to four bytes by default.
	b = append(b, 0, 0, 0)
	b[27] += 3
	m, _, err := ParseMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Payloads) != 2 || m.Payloads[0].Type != PayloadVID || m.Payloads[1].Type != PayloadNonce {
		t.Fatalf("payloads %+v", m.Payloads)
	}
	if len(m.Chain) != len(m.Body)-3 {
		t.Fatalf("chain %d bytes of a %d-byte body", len(m.Chain), len(m.Body))
	}
}

func TestEncryptedBodyUntouched(t *testing.T) {
	h := Header{CookieI: 1, CookieR: 2, Exchange: ExchangeIdentityProtection, Flags: FlagEncryption, NextPayload: PayloadID}
	cipher := bytes.Repeat([]byte{0x5a}, 48)
	h.Length = uint32(HeaderLen + len(cipher))
	b := append(AppendHeader(nil, h), cipher...)
	m, _, err := ParseMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	if !m.Encrypted() || m.Decrypted || len(m.Payloads) != 0 || !bytes.Equal(m.Body, cipher) {
		t.Fatalf("encrypted message decoded: %+v", m)
	}
	if err := Validate(&m); err != nil {
		t.Fatalf("header checks of an encrypted main mode message: %v", err)
	}
	// The engine decrypts in place and hands over the plaintext.
	plain := AppendPayloads(nil, ID{Type: IDFQDN, Data: []byte("a")}, Hash{Data: make([]byte, 20)})
	copy(m.Body, plain)
	if err := m.SetPlaintext(m.Body); err != nil {
		t.Fatal(err)
	}
	if !m.Decrypted || len(m.Payloads) != 2 || len(m.Chain) != len(plain) {
		t.Fatalf("after SetPlaintext: %+v", m)
	}
	if err := Validate(&m); err != nil {
		t.Fatal(err)
	}
	var plainMsg Message
	if _, err := ParseMessageInto(&plainMsg, AppendMessage(nil, Header{CookieI: 1}, Nonce{Data: make([]byte, 8)})); err != nil {
		t.Fatal(err)
	}
	if plainMsg.SetPlaintext(nil) == nil {
		t.Fatal("SetPlaintext accepted an unencrypted message")
	}
}

func TestAppendHashedMessage(t *testing.T) {
	rest := []Payload{Nonce{Data: make([]byte, 16)}, ID{Type: IDIPv4Addr, Data: []byte{1, 2, 3, 4}}}
	h := Header{CookieI: 1, CookieR: 2, Exchange: ExchangeQuickMode, MessageID: 7}
	var seen []byte
	b, err := AppendHashedMessage(nil, h, 4, func(r []byte) []byte {
		seen = append([]byte(nil), r...)
		return []byte{9, 8, 7, 6}
	}, rest...)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(seen, AppendPayloads(nil, rest...)) {
		t.Fatal("hash function did not get the encoded payloads after HASH")
	}
	m, _, err := ParseMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	hp, ok := m.First(PayloadHash)
	if !ok || !bytes.Equal(hp.Body, []byte{9, 8, 7, 6}) {
		t.Fatalf("first payload %+v", m.Payloads)
	}
	after, err := m.AfterHash()
	if err != nil || !bytes.Equal(after, seen) {
		t.Fatalf("AfterHash %x, %v", after, err)
	}
	if _, err := AppendHashedMessage(nil, h, 4, func([]byte) []byte { return []byte{1} }, rest...); err == nil {
		t.Fatal("a hash of the wrong length was accepted")
	}
	m2, _, _ := ParseMessage(AppendMessage(nil, h, rest...))
	if _, err := m2.AfterHash(); !errors.Is(err, ErrInvalidHashInformation) {
		t.Fatalf("AfterHash without HASH: %v", err)
	}
}

func TestAttributeUint(t *testing.T) {
	tests := []struct {
		a    Attribute
		v    uint64
		ok   bool
		name string
	}{
		{BasicAttr(1, 0x7080), 28800, true, "TV"},
		{Attribute{Type: 2, Data: []byte{0, 1, 0x51, 0x80}}, 86400, true, "TLV 4"},
		{Attribute{Type: 2, Data: []byte{1, 0, 0, 0, 0, 0, 0, 0}}, 1 << 56, true, "TLV 8"},
		{Attribute{Type: 2, Data: append(make([]byte, 8), 1, 2)}, 0x102, true, "TLV 10 with leading zeros"},
		{Attribute{Type: 2, Data: append([]byte{1}, make([]byte, 8)...)}, 0, false, "TLV 9, 72 bits"},
		{Attribute{Type: 2}, 0, false, "TLV empty"},
	}
	for _, tt := range tests {
		v, ok := tt.a.Uint()
		if v != tt.v || ok != tt.ok {
			t.Errorf("%s: %d %v, want %d %v", tt.name, v, ok, tt.v, tt.ok)
		}
	}
	for _, v := range []uint64{0, 0xffff, 0x10000, 0xffffffff, 1 << 32, 1<<64 - 1} {
		if got, ok := NumAttr(2, v).Uint(); !ok || got != v {
			t.Errorf("NumAttr(%d) reads back %d %v", v, got, ok)
		}
	}
}

func TestErrorsIsAndText(t *testing.T) {
	_, _, err := ParseSA(unhex(t, "00000001 00000001 0000ffff 01010001"))
	var e *Error
	if !errors.As(err, &e) || e.Notify != PAYLOAD_MALFORMED || e.Offset != 10 {
		t.Fatalf("%#v", err)
	}
	if errors.Is(err, ErrBadProposalSyntax) || !errors.Is(err, ErrPayloadMalformed) {
		t.Fatal("errors.Is matches by notification type")
	}
	if s := err.Error(); !strings.Contains(s, "PAYLOAD-MALFORMED") || !strings.Contains(s, "offset 10") {
		t.Fatalf("text %q", s)
	}
	if s := (&Error{Notify: NotifyNone, Offset: -1, Reason: "x"}).Error(); !strings.Contains(s, "dropped") {
		t.Fatalf("text %q", s)
	}
}
