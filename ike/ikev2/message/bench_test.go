package message

import (
	"net/netip"
	"testing"
)

// typicalAuth is the payload list of a typical IKE_AUTH request with PSK
// authentication, a config request, one ESP proposal and one selector each
// way (what strongSwan's swanctl sends for a road-warrior connection).
func typicalAuth() []Payload {
	s := suiteCBC
	return []Payload{
		ID{Type: IDFQDN, Data: []byte("moon.example.net")},
		Notify{Type: INITIAL_CONTACT},
		ID{Responder: true, Type: IDFQDN, Data: []byte("sun.example.net")},
		Auth{Method: AuthSharedKeyMIC, Data: make([]byte, 32)},
		Configuration{Type: CFGRequest, Attrs: []CPAttribute{{Type: InternalIP4Address}, {Type: InternalIP4DNS}}},
		SA{Proposals: []Proposal{s.espProposal(0xc1000001)}},
		TrafficSelectors{TS: []TrafficSelector{{Type: TSIPv4AddrRange, EndPort: 65535,
			Start: netip.MustParseAddr("10.1.0.0"), End: netip.MustParseAddr("10.1.255.255")}}},
		TrafficSelectors{Responder: true, TS: []TrafficSelector{{Type: TSIPv4AddrRange, EndPort: 65535,
			Start: netip.MustParseAddr("10.2.0.0"), End: netip.MustParseAddr("10.2.255.255")}}},
		Notify{Type: ESP_TFC_PADDING_NOT_SUPPORTED},
		Notify{Type: MOBIKE_SUPPORTED},
	}
}

var authHeader = Header{SPIi: 1, SPIr: 2, MajorVersion: 2, Exchange: IKE_AUTH, Flags: FlagInitiator, MessageID: 1}

// decodeAll decodes every inner payload to its typed value, as the IKE_AUTH
// handler would.
func decodeAll(ps []RawPayload) error {
	for _, p := range ps {
		var err error
		switch p.Type {
		case PayloadIDi, PayloadIDr:
			_, _, err = ParseID(p.Body)
		case PayloadN:
			_, _, err = ParseNotify(p.Body)
		case PayloadAUTH:
			_, _, err = ParseAuth(p.Body)
		case PayloadCP:
			_, _, err = ParseConfiguration(p.Body)
		case PayloadSA:
			_, _, err = ParseSA(p.Body)
		case PayloadTSi, PayloadTSr:
			_, _, err = ParseTrafficSelectors(p.Body)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkEncodeIKEAuth: build, pad, encrypt (AES-CBC-128) and MAC
// (HMAC-SHA2-256-128) a typical IKE_AUTH request into a reused buffer.
func BenchmarkEncodeIKEAuth(b *testing.B) {
	out, _ := testProtectors(b)
	ps := typicalAuth()
	buf := make([]byte, 0, 2048)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		buf, err = AppendEncrypted(buf[:0], authHeader, out, ps...)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkEncodeIKEAuthPlain is the codec alone: the same payloads
// without encryption.
func BenchmarkEncodeIKEAuthPlain(b *testing.B) {
	ps := typicalAuth()
	buf := make([]byte, 0, 2048)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendMessage(buf[:0], authHeader, ps...)
	}
	b.SetBytes(int64(len(buf)))
}

// BenchmarkDecodeIKEAuth: parse, verify, decrypt, validate and decode every
// payload of a typical IKE_AUTH request. The message is copied first each
// time because decryption works in place.
func BenchmarkDecodeIKEAuth(b *testing.B) {
	out, in := testProtectors(b)
	msg, err := AppendEncrypted(nil, authHeader, out, typicalAuth()...)
	if err != nil {
		b.Fatal(err)
	}
	work := make([]byte, len(msg))
	var m Message
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		copy(work, msg)
		if _, err := ParseMessageInto(&m, work); err != nil {
			b.Fatal(err)
		}
		if err := Decrypt(&m, in); err != nil {
			b.Fatal(err)
		}
		if err := Validate(&m); err != nil {
			b.Fatal(err)
		}
		if err := decodeAll(m.Inner); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeIKEAuthPlain is the codec alone.
func BenchmarkDecodeIKEAuthPlain(b *testing.B) {
	msg := AppendMessage(nil, authHeader, typicalAuth()...)
	var m Message
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		if _, err := ParseMessageInto(&m, msg); err != nil {
			b.Fatal(err)
		}
		if err := decodeAll(m.Payloads); err != nil {
			b.Fatal(err)
		}
	}
}

// Framing a message into a reused Message allocates nothing, and neither
// does decrypting it: payload bodies alias the buffer.
func TestParseAndDecryptDoNotAllocate(t *testing.T) {
	out, in := testProtectors(t)
	msg, err := AppendEncrypted(nil, authHeader, out, typicalAuth()...)
	if err != nil {
		t.Fatal(err)
	}
	work := make([]byte, len(msg))
	var m Message
	copy(work, msg)
	if _, err := ParseMessageInto(&m, work); err != nil { // warm up the slices
		t.Fatal(err)
	}
	if err := Decrypt(&m, in); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		copy(work, msg)
		if _, err := ParseMessageInto(&m, work); err != nil {
			t.Fatal(err)
		}
		if err := Decrypt(&m, in); err != nil {
			t.Fatal(err)
		}
		if err := Validate(&m); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("parse+decrypt+validate allocates %.1f times per message", allocs)
	}
}
