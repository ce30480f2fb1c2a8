package message

import (
	"bytes"
	"encoding/hex"
	"errors"
	"net/netip"
	"reflect"
	"testing"

	"github.com/ipsecgw/ipsecgw/transform"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// samplePayloads has one or more values of every payload type, exercising
// optional parts (SPIs, attributes, both TS families, empty CP values).
func samplePayloads() []Payload {
	return []Payload{
		SA{Proposals: []Proposal{
			{Number: 1, Protocol: ProtoIKE, Transforms: []Transform{
				{Transform: transform.Transform{Type: transform.TypeENCR, ID: transform.EncrAESCBC, KeyLen: 128}},
				{Transform: transform.Transform{Type: transform.TypeINTEG, ID: transform.IntegHMACSHA2_256_128}},
				{Transform: transform.Transform{Type: transform.TypePRF, ID: transform.PRFHMACSHA2_256}},
				{Transform: transform.Transform{Type: transform.TypeKE, ID: transform.KECurve25519}},
			}},
			{Number: 2, Protocol: ProtoESP, SPI: []byte{1, 2, 3, 4}, Transforms: []Transform{
				{Transform: transform.Transform{Type: transform.TypeENCR, ID: transform.EncrAESGCM16, KeyLen: 256},
					Attrs: []Attribute{{Type: 99, Data: []byte{7, 7}}, {Type: 98, TV: true, Value: 5}}},
				{Transform: transform.Transform{Type: transform.TypeESN, ID: transform.ESNNo}},
			}},
		}},
		KE{Group: transform.KECurve25519, Data: bytes.Repeat([]byte{0x42}, 32)},
		ID{Type: IDFQDN, Data: []byte("gw1.example.net")},
		ID{Responder: true, Type: IDIPv4Addr, Data: []byte{198, 51, 100, 2}},
		Cert{Encoding: CertX509Signature, Data: []byte{0x30, 0x82, 0x01}},
		CertReq{Encoding: CertX509Signature, Data: bytes.Repeat([]byte{0xaa}, 40)},
		Auth{Method: AuthSharedKeyMIC, Data: bytes.Repeat([]byte{1}, 32)},
		Nonce{Data: bytes.Repeat([]byte{9}, 32)},
		Notify{Type: NAT_DETECTION_SOURCE_IP, Data: bytes.Repeat([]byte{3}, 20)},
		Notify{Protocol: ProtoESP, Type: REKEY_SA, SPI: []byte{0xde, 0xad, 0xbe, 0xef}},
		Notify{Type: IKEV2_FRAGMENTATION_SUPPORTED},
		Delete{Protocol: ProtoESP, SPIs: []uint32{0x11111111, 0x22222222}},
		Delete{Protocol: ProtoIKE},
		VendorID{Data: []byte("ipsecgw")},
		TrafficSelectors{TS: []TrafficSelector{
			{Type: TSIPv4AddrRange, Protocol: 0, StartPort: 0, EndPort: 65535,
				Start: netip.MustParseAddr("10.1.0.0"), End: netip.MustParseAddr("10.1.255.255")},
			{Type: TSIPv6AddrRange, Protocol: 17, StartPort: 500, EndPort: 500,
				Start: netip.MustParseAddr("2001:db8::"), End: netip.MustParseAddr("2001:db8::ffff")},
			{Type: 10, Protocol: 0, Other: []byte{0, 4, 's', 'e', 'c', '!'}},
		}},
		TrafficSelectors{Responder: true, TS: []TrafficSelector{
			{Type: TSIPv4AddrRange, Protocol: 6, StartPort: 80, EndPort: 80,
				Start: netip.MustParseAddr("10.2.0.1"), End: netip.MustParseAddr("10.2.0.1")},
		}},
		Configuration{Type: CFGRequest, Attrs: []CPAttribute{
			{Type: InternalIP4Address}, {Type: InternalIP4DNS},
			{Type: InternalIP6Address, Value: make([]byte, 17)},
		}},
		EAP{Data: []byte{2, 7, 0, 6, 1, 'x'}},
	}
}

// parseAs decodes a payload body into the typed value for typ.
func parseAs(typ PayloadType, body []byte) (Payload, error) {
	switch typ {
	case PayloadSA:
		x, _, err := ParseSA(body)
		return x, err
	case PayloadKE:
		x, _, err := ParseKE(body)
		return x, err
	case PayloadIDi, PayloadIDr:
		x, _, err := ParseID(body)
		x.Responder = typ == PayloadIDr
		return x, err
	case PayloadCERT:
		x, _, err := ParseCert(body)
		return x, err
	case PayloadCERTREQ:
		x, _, err := ParseCertReq(body)
		return x, err
	case PayloadAUTH:
		x, _, err := ParseAuth(body)
		return x, err
	case PayloadNonce:
		x, _, err := ParseNonce(body)
		return x, err
	case PayloadN:
		x, _, err := ParseNotify(body)
		return x, err
	case PayloadD:
		x, _, err := ParseDelete(body)
		return x, err
	case PayloadV:
		x, _, err := ParseVendorID(body)
		return x, err
	case PayloadTSi, PayloadTSr:
		x, _, err := ParseTrafficSelectors(body)
		x.Responder = typ == PayloadTSr
		return x, err
	case PayloadCP:
		x, _, err := ParseConfiguration(body)
		return x, err
	case PayloadEAP:
		x, _, err := ParseEAP(body)
		return x, err
	}
	return RawPayload{Type: typ, Body: body}, nil
}

func TestPayloadRoundTrip(t *testing.T) {
	for _, p := range samplePayloads() {
		t.Run(p.PayloadType().String(), func(t *testing.T) {
			body := p.AppendTo([]byte{0xee}) // non-empty prefix: Append must not assume b is empty
			if body[0] != 0xee || len(body)-1 != p.Len() {
				t.Fatalf("Len() = %d, AppendTo wrote %d", p.Len(), len(body)-1)
			}
			got, err := parseAs(p.PayloadType(), body[1:])
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if !reflect.DeepEqual(got, p) {
				t.Fatalf("round trip:\n got %#v\nwant %#v", got, p)
			}
		})
	}
}

func TestMessageRoundTrip(t *testing.T) {
	h := Header{SPIi: 0x0102030405060708, MajorVersion: 2, Exchange: IKE_SA_INIT, Flags: FlagInitiator, MessageID: 0}
	ps := samplePayloads()
	b := AppendMessage(nil, h, ps...)
	if len(b) != MessageLen(ps...) {
		t.Fatalf("MessageLen %d, encoded %d", MessageLen(ps...), len(b))
	}
	m, n, err := ParseMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(b) || int(m.Header.Length) != len(b) || m.Header.NextPayload != PayloadSA {
		t.Fatalf("n=%d header=%+v", n, m.Header)
	}
	if len(m.Payloads) != len(ps) {
		t.Fatalf("%d payloads, want %d", len(m.Payloads), len(ps))
	}
	for i, rp := range m.Payloads {
		got, err := parseAs(rp.Type, rp.Body)
		if err != nil {
			t.Fatalf("payload %d: %v", i, err)
		}
		if !reflect.DeepEqual(got, ps[i]) {
			t.Fatalf("payload %d:\n got %#v\nwant %#v", i, got, ps[i])
		}
	}
	// Re-encoding the raw payloads reproduces the bytes exactly.
	raw := make([]Payload, len(m.Payloads))
	for i := range m.Payloads {
		raw[i] = m.Payloads[i]
	}
	h2 := m.Header
	if again := AppendMessage(nil, h2, raw...); !bytes.Equal(again, b) {
		t.Fatal("re-encoded raw payloads differ")
	}
}

// A hand-assembled IKE_SA_INIT request, independent of the encoder: header,
// SA with one IKE proposal (AES-CBC-128, SHA2-256, PRF-SHA2-256, x25519),
// KE, Nonce.
func TestParseHandAssembled(t *testing.T) {
	msg := unhex(t, ""+
		"0011223344556677"+"0000000000000000"+"21"+"20"+"22"+"08"+"00000000"+"00000088"+
		// SA: next KE(0x22), len 4+44=48
		"22000030"+
		"0000002c"+"01010004"+ // proposal: last, len 44, #1 IKE, spi 0, 4 transforms
		"0300000c"+"0100000c"+"800e0080"+ // ENCR AES-CBC keylen 128
		"03000008"+"0300000c"+ // INTEG 12
		"03000008"+"02000005"+ // PRF 5
		"00000008"+"0400001f"+ // KE 31
		// KE: next Nonce(0x28), len 8+32=40
		"28000028"+"001f0000"+hex.EncodeToString(bytes.Repeat([]byte{0x55}, 32))+
		// Nonce: last, len 4+16
		"00000014"+"000102030405060708090a0b0c0d0e0f")
	m, n, err := ParseMessage(msg)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0x88 || len(m.Payloads) != 3 {
		t.Fatalf("n=%d payloads=%d", n, len(m.Payloads))
	}
	if err := Validate(&m); err != nil {
		t.Fatal(err)
	}
	sa, _, err := ParseSA(m.Payloads[0].Body)
	if err != nil {
		t.Fatal(err)
	}
	want := []transform.Transform{
		{Type: transform.TypeENCR, ID: transform.EncrAESCBC, KeyLen: 128},
		{Type: transform.TypeINTEG, ID: transform.IntegHMACSHA2_256_128},
		{Type: transform.TypePRF, ID: transform.PRFHMACSHA2_256},
		{Type: transform.TypeKE, ID: transform.KECurve25519},
	}
	for i, tr := range sa.Proposals[0].Transforms {
		if tr.Transform != want[i] {
			t.Fatalf("transform %d = %v, want %v", i, tr.Transform, want[i])
		}
	}
	// The encoder reproduces the hand-assembled bytes.
	ke, _, _ := ParseKE(m.Payloads[1].Body)
	no, _, _ := ParseNonce(m.Payloads[2].Body)
	h := m.Header
	if got := AppendMessage(nil, h, sa, ke, no); !bytes.Equal(got, msg) {
		t.Fatalf("encoder output differs:\n got %x\nwant %x", got, msg)
	}
}

func TestParseErrors(t *testing.T) {
	good := AppendMessage(nil, Header{SPIi: 1, MajorVersion: 2, Exchange: IKE_SA_INIT, Flags: FlagInitiator},
		Nonce{Data: make([]byte, 16)}, VendorID{Data: []byte("x")})
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	cases := []struct {
		name   string
		msg    []byte
		notify NotifyType
		data   []byte
	}{
		{"short header", good[:20], INVALID_SYNTAX, nil},
		{"version 3", mod(func(b []byte) []byte { b[17] = 0x30; return b }), INVALID_MAJOR_VERSION, []byte{0x20}},
		{"IKEv1", mod(func(b []byte) []byte { b[17] = 0x10; return b }), INVALID_MAJOR_VERSION, []byte{0x20}},
		{"length beyond datagram", good[:len(good)-1], INVALID_SYNTAX, nil},
		{"length below header", mod(func(b []byte) []byte { b[27] = 10; b[26] = 0; return b }), INVALID_SYNTAX, nil},
		{"payload length 3", mod(func(b []byte) []byte { b[31] = 3; return b }), INVALID_SYNTAX, nil},
		{"payload past end", mod(func(b []byte) []byte { b[31] = 200; return b }), INVALID_SYNTAX, nil},
		{"trailing bytes", mod(func(b []byte) []byte {
			b = append(b, 0, 0, 0, 0)
			b[27] += 4
			return b
		}), INVALID_SYNTAX, nil},
		{"unknown critical", mod(func(b []byte) []byte { b[28] = 200; b[49] = 0x80; return b }), UNSUPPORTED_CRITICAL_PAYLOAD, []byte{200}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := ParseMessage(c.msg)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v is not *Error", err)
			}
			if e.Notify != c.notify || !bytes.Equal(e.Data, c.data) {
				t.Fatalf("got %v data %x, want %v data %x", e.Notify, e.Data, c.notify, c.data)
			}
			if !errors.Is(err, &Error{Notify: c.notify}) {
				t.Fatal("errors.Is by notify type failed")
			}
		})
	}
}

func TestUnknownNonCriticalSkipped(t *testing.T) {
	b := AppendMessage(nil, Header{MajorVersion: 2, Exchange: IKE_SA_INIT},
		RawPayload{Type: 200, Body: []byte{1, 2, 3}}, Nonce{Data: make([]byte, 16)})
	m, _, err := ParseMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Payloads) != 1 || m.Payloads[0].Type != PayloadNonce {
		t.Fatalf("payloads %+v", m.Payloads)
	}
	b = AppendMessage(nil, Header{MajorVersion: 2, Exchange: IKE_SA_INIT},
		RawPayload{Type: 200, Critical: true, Body: []byte{1, 2, 3}}, Nonce{Data: make([]byte, 16)})
	if _, _, err := ParseMessage(b); !errors.Is(err, ErrUnsupportedCriticalPayload) {
		t.Fatalf("critical unknown: %v", err)
	}
}

func TestPayloadBodyErrors(t *testing.T) {
	cases := []struct {
		name  string
		parse func([]byte) error
		body  string
	}{
		{"SA empty", func(b []byte) error { _, _, e := ParseSA(b); return e }, ""},
		{"SA proposal too long", func(b []byte) error { _, _, e := ParseSA(b); return e }, "00000010" + "01010000"},
		{"SA offer starting at 2", func(b []byte) error { _, _, e := ParseSA(b); return e }, "02000008" + "02010000" + "00000008" + "03010000"},
		{"SA bad last substruc", func(b []byte) error { _, _, e := ParseSA(b); return e }, "02000008" + "01010000"},
		{"SA count mismatch", func(b []byte) error { _, _, e := ParseSA(b); return e }, "00000008" + "01010001"},
		{"SA SPI size 3", func(b []byte) error { _, _, e := ParseSA(b); return e }, "0000000b" + "01010300" + "aabbcc"},
		{"SA attr overrun", func(b []byte) error { _, _, e := ParseSA(b); return e }, "00000014" + "01010001" + "0000000c" + "01000001" + "000e0009"},
		{"KE short", func(b []byte) error { _, _, e := ParseKE(b); return e }, "001f00"},
		{"ID IPv4 wrong length", func(b []byte) error { _, _, e := ParseID(b); return e }, "01000000c633"},
		{"Nonce 15", func(b []byte) error { _, _, e := ParseNonce(b); return e }, "000102030405060708090a0b0c0d0e"},
		{"Notify SPI overrun", func(b []byte) error { _, _, e := ParseNotify(b); return e }, "03044000" + "aabb"},
		{"Delete IKE with SPI", func(b []byte) error { _, _, e := ParseDelete(b); return e }, "01000001"},
		{"Delete count mismatch", func(b []byte) error { _, _, e := ParseDelete(b); return e }, "03040002" + "11223344"},
		{"TS zero", func(b []byte) error { _, _, e := ParseTrafficSelectors(b); return e }, "00000000"},
		{"TS v4 length 15", func(b []byte) error { _, _, e := ParseTrafficSelectors(b); return e }, "01000000" + "0700000f" + "0000ffff" + "0a000000" + "0a0000"},
		{"TS count too high", func(b []byte) error { _, _, e := ParseTrafficSelectors(b); return e }, "02000000" + "07000010" + "0000ffff" + "0a000000" + "0a0000ff"},
		{"CP attr overrun", func(b []byte) error { _, _, e := ParseConfiguration(b); return e }, "01000000" + "00010004" + "0a00"},
		{"EAP length", func(b []byte) error { _, _, e := ParseEAP(b); return e }, "01010009" + "01"},
		{"SKF number 0", func(b []byte) error { _, _, e := ParseFragmentHeader(b); return e }, "00000002"},
		{"SKF number > total", func(b []byte) error { _, _, e := ParseFragmentHeader(b); return e }, "00030002"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := c.parse(unhex(t, c.body))
			if !errors.Is(err, ErrInvalidSyntax) {
				t.Fatalf("got %v, want INVALID_SYNTAX", err)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	sa := SA{Proposals: []Proposal{{Number: 1, Protocol: ProtoIKE}}}
	ke := KE{Group: 31, Data: make([]byte, 32)}
	no := Nonce{Data: make([]byte, 16)}
	nat := Notify{Type: NAT_DETECTION_SOURCE_IP, Data: make([]byte, 20)}
	hdr := func(ex ExchangeType, resp bool) Header {
		h := Header{MajorVersion: 2, Exchange: ex, Flags: FlagInitiator}
		if resp {
			h.Flags = FlagResponse
		}
		return h
	}
	cases := []struct {
		name   string
		h      Header
		outer  []Payload
		inner  []Payload // nil: no SK payload
		wantOK bool
	}{
		{"init request", hdr(IKE_SA_INIT, false), []Payload{sa, ke, no, nat, VendorID{}}, nil, true},
		{"init request without KE", hdr(IKE_SA_INIT, false), []Payload{sa, no}, nil, false},
		{"init request two SA", hdr(IKE_SA_INIT, false), []Payload{sa, sa, ke, no}, nil, false},
		{"init request with IDi", hdr(IKE_SA_INIT, false), []Payload{sa, ke, no, ID{}}, nil, false},
		{"init request CERTREQ", hdr(IKE_SA_INIT, false), []Payload{sa, ke, no, CertReq{}}, nil, false},
		{"init response CERTREQ", hdr(IKE_SA_INIT, true), []Payload{sa, ke, no, CertReq{}}, nil, true},
		{"init response INVALID_KE_PAYLOAD only", hdr(IKE_SA_INIT, true), []Payload{Notify{Type: INVALID_KE_PAYLOAD, Data: []byte{0, 19}}}, nil, true},
		{"init response COOKIE only", hdr(IKE_SA_INIT, true), []Payload{Notify{Type: COOKIE, Data: make([]byte, 16)}}, nil, true},
		{"init response NAT-D only", hdr(IKE_SA_INIT, true), []Payload{nat}, nil, false},
		{"auth request", hdr(IKE_AUTH, false), nil, []Payload{ID{}, Auth{}, sa, TrafficSelectors{}, TrafficSelectors{Responder: true}}, true},
		{"auth request KE inside", hdr(IKE_AUTH, false), nil, []Payload{ID{}, Auth{}, ke}, false},
		{"auth request unencrypted", hdr(IKE_AUTH, false), []Payload{ID{}, Auth{}}, nil, false},
		{"auth request two AUTH", hdr(IKE_AUTH, false), nil, []Payload{ID{}, Auth{}, Auth{}}, false},
		{"auth response IDi", hdr(IKE_AUTH, true), nil, []Payload{ID{}}, false},
		{"child request no nonce", hdr(CREATE_CHILD_SA, false), nil, []Payload{sa, ke}, false},
		{"child request", hdr(CREATE_CHILD_SA, false), nil, []Payload{sa, no, ke, Notify{Type: REKEY_SA, Protocol: ProtoESP, SPI: []byte{1, 2, 3, 4}}}, true},
		{"child response NO_PROPOSAL_CHOSEN", hdr(CREATE_CHILD_SA, true), nil, []Payload{Notify{Type: NO_PROPOSAL_CHOSEN}}, true},
		{"informational empty", hdr(INFORMATIONAL, false), nil, []Payload{}, true},
		{"informational delete", hdr(INFORMATIONAL, false), nil, []Payload{Delete{Protocol: ProtoIKE}}, true},
		{"informational SA", hdr(INFORMATIONAL, false), nil, []Payload{sa}, false},
		{"unknown exchange", hdr(99, false), []Payload{no}, nil, false},
	}
	out, in := testProtectors(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var b []byte
			if c.inner != nil {
				var err error
				b, err = AppendEncrypted(nil, c.h, out, c.inner...)
				if err != nil {
					t.Fatal(err)
				}
			} else {
				b = AppendMessage(nil, c.h, c.outer...)
			}
			m, _, err := ParseMessage(b)
			if err != nil {
				t.Fatal(err)
			}
			if c.inner != nil {
				// The outer check passes before decryption whenever the
				// SK payload is there.
				if err := Validate(&m); err != nil {
					t.Fatalf("outer validation: %v", err)
				}
				if err := Decrypt(&m, in); err != nil {
					t.Fatal(err)
				}
			}
			err = Validate(&m)
			if (err == nil) != c.wantOK {
				t.Fatalf("Validate = %v, want ok=%v", err, c.wantOK)
			}
			if err != nil && !errors.Is(err, ErrInvalidSyntax) {
				t.Fatalf("error %v is not INVALID_SYNTAX", err)
			}
		})
	}
}

func TestNotifyNames(t *testing.T) {
	for typ, name := range map[NotifyType]string{
		NAT_DETECTION_SOURCE_IP: "NAT_DETECTION_SOURCE_IP", COOKIE: "COOKIE", INVALID_KE_PAYLOAD: "INVALID_KE_PAYLOAD",
		IKEV2_FRAGMENTATION_SUPPORTED: "IKEV2_FRAGMENTATION_SUPPORTED", 60000: "NOTIFY(60000)",
	} {
		if typ.String() != name {
			t.Errorf("%d: %q, want %q", typ, typ.String(), name)
		}
	}
	if !INVALID_SYNTAX.IsError() || COOKIE.IsError() {
		t.Error("IsError")
	}
	// Spot checks of IANA numbers (RFC 7296 §3.10.1, RFC 7383, RFC 7427).
	if NAT_DETECTION_DESTINATION_IP != 16389 || USE_TRANSPORT_MODE != 16391 || IKEV2_FRAGMENTATION_SUPPORTED != 16430 ||
		SIGNATURE_HASH_ALGORITHMS != 16431 || MOBIKE_SUPPORTED != 16396 || NON_FIRST_FRAGMENTS_ALSO != 16395 {
		t.Error("IANA numbers changed")
	}
}
