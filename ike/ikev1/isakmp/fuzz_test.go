package isakmp

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// The fuzz targets check, for arbitrary input: no panic and no read
// outside the buffer, errors always of type *Error, and for every input
// that decodes, decode(encode(x)) == x with a stable encoding; the
// mapping functions on top (offers, answers, selector and identity
// conversions) must not panic either. Seed corpora live in
// testdata/fuzz/<target>/ (written by TestWriteFuzzSeeds with
// ISAKMP_WRITE_FUZZ_SEEDS=1) and are extended by f.Add below.

func checkErr(t *testing.T, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %T is not *Error: %v", err, err)
	}
}

// roundTrip decodes body as typ; if that works, it re-encodes, decodes
// again and requires the same value and a stable encoding.
func roundTrip(t *testing.T, typ PayloadType, body []byte) (Payload, bool) {
	x, err := parseAs(typ, body)
	if err != nil {
		checkErr(t, err)
		return nil, false
	}
	b2 := x.AppendTo(nil)
	if len(b2) != x.Len() {
		t.Fatalf("%v: Len %d, encoded %d", typ, x.Len(), len(b2))
	}
	x2, err := parseAs(typ, b2)
	if err != nil {
		t.Fatalf("%v: re-encoded body does not parse: %v", typ, err)
	}
	if !reflect.DeepEqual(x, x2) {
		t.Fatalf("%v: round trip\n got %#v\nwant %#v", typ, x2, x)
	}
	if b3 := x2.AppendTo(nil); !bytes.Equal(b2, b3) {
		t.Fatalf("%v: encoding not stable", typ)
	}
	return x, true
}

func seedMessages() [][]byte {
	h := Header{CookieI: 0x0102030405060708, CookieR: 0x1112131415161718, Exchange: ExchangeIdentityProtection}
	var out [][]byte
	out = append(out, AppendMessage(nil, h, samplePayloads()...))
	h.Exchange, h.MessageID = ExchangeQuickMode, 77
	b, _ := AppendHashedMessage(nil, h, 20, func([]byte) []byte { return make([]byte, 20) },
		samplePayloads()[1], Nonce{Data: make([]byte, 16)}, ID{Type: IDIPv4AddrSubnet, Data: make([]byte, 8)})
	out = append(out, b)
	h.Exchange, h.Flags = ExchangeInformational, FlagEncryption
	out = append(out, append(AppendHeader(nil, Header{CookieI: 1, CookieR: 2, NextPayload: PayloadHash,
		Exchange: ExchangeInformational, Flags: FlagEncryption, MessageID: 5, Length: 44}), make([]byte, 16)...))
	return out
}

func FuzzParseMessage(f *testing.F) {
	for _, s := range seedMessages() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, n, err := ParseMessage(b)
		if err != nil {
			checkErr(t, err)
			return
		}
		if n > len(b) || len(m.Raw) != n {
			t.Fatalf("consumed %d of %d", n, len(b))
		}
		if err := Validate(&m); err != nil {
			checkErr(t, err)
		}
		if m.Encrypted() {
			// Whatever the engine decrypts goes through
			// SetPlaintext: feed it the body as if it were
			// plaintext.
			if err := m.SetPlaintext(m.Body); err != nil {
				checkErr(t, err)
				return
			}
			_ = Validate(&m)
		}
		_, _ = m.AfterHash()
		payloads := make([]Payload, len(m.Payloads))
		for i, p := range m.Payloads {
			payloads[i] = p
			_, _ = parseAs(p.Type, p.Body)
		}
		h := m.Header
		b2 := AppendMessage(nil, h, payloads...)
		m2, n2, err := ParseMessage(b2)
		if m.Encrypted() {
			if err == nil {
				if err := m2.SetPlaintext(m2.Body); err != nil {
					t.Fatalf("re-encoded plaintext does not parse: %v", err)
				}
			}
		}
		if err != nil {
			t.Fatalf("re-encoded message does not parse: %v", err)
		}
		if n2 != len(b2) || !reflect.DeepEqual(m2.Payloads, m.Payloads) {
			t.Fatalf("payloads changed in round trip")
		}
		// Skipped payloads and padding change Next Payload and
		// Length; everything else of the header must survive.
		h1, h2 := m.Header, m2.Header
		h1.NextPayload, h2.NextPayload, h1.Length, h2.Length = 0, 0, 0, 0
		if h1 != h2 || n2 > n {
			t.Fatalf("header %+v became %+v (%d > %d bytes)", m.Header, m2.Header, n2, n)
		}
	})
}

func seedBodies(typ ...PayloadType) [][]byte {
	var out [][]byte
	for _, p := range samplePayloads() {
		for _, t := range typ {
			if p.PayloadType() == t {
				out = append(out, p.AppendTo(nil))
			}
		}
	}
	return out
}

func FuzzSA(f *testing.F) {
	for _, s := range seedBodies(PayloadSA) {
		f.Add(s)
	}
	f.Add(unhex(f, firewall1SA))
	f.Fuzz(func(t *testing.T, b []byte) {
		x, ok := roundTrip(t, PayloadSA, b)
		if !ok {
			return
		}
		sa := x.(SA)
		o1, r1, err := Phase1Offers(sa)
		if err != nil {
			checkErr(t, err)
		}
		o2, r2, err := Phase2Offers(sa)
		if err != nil {
			checkErr(t, err)
		}
		for _, r := range append(r1, r2...) {
			checkErr(t, r.Err)
		}
		// Every offer can be answered, and the answer is accepted
		// by the initiator's check.
		for _, o := range o1 {
			a, err := sa.Answer(o.ProposalNumber, o.TransformNumber, nil)
			if err != nil {
				continue // a bundle: several proposal payloads share the number
			}
			if _, err := Phase1Answer(sa, a); err != nil {
				t.Fatalf("answer to offer %+v refused: %v", o, err)
			}
		}
		for _, o := range o2 {
			a, err := sa.Answer(o.ProposalNumber, o.TransformNumber, []byte{1, 2, 3, 4})
			if err != nil {
				continue
			}
			if _, err := Phase2Answer(sa, a); err != nil {
				t.Fatalf("answer to offer %+v refused: %v", o, err)
			}
		}
	})
}

func FuzzID(f *testing.F) {
	for _, s := range seedBodies(PayloadID) {
		f.Add(s)
	}
	f.Add(ID{Type: IDIPv6AddrRange, Data: make([]byte, 32)}.AppendTo(nil))
	f.Fuzz(func(t *testing.T, b []byte) {
		x, ok := roundTrip(t, PayloadID, b)
		if !ok {
			return
		}
		id := x.(ID)
		if ts, err := id.TS(); err == nil {
			back, err := IDFromTS(ts)
			if err != nil {
				t.Fatalf("selector %v from %v does not encode: %v", ts, id, err)
			}
			ts2, err := back.TS()
			if err != nil || ts2 != ts {
				t.Fatalf("selector %v became %v (%v)", ts, ts2, err)
			}
		} else {
			checkErr(t, err)
		}
		if ident, err := id.Identity(); err == nil {
			back, err := IDFromIdentity(ident)
			if err != nil {
				t.Fatalf("identity %v from %v does not encode: %v", ident, id, err)
			}
			if ident2, err := back.Identity(); err != nil || !ident2.Equal(ident) {
				t.Fatalf("identity %v became %v (%v)", ident, ident2, err)
			}
		} else {
			checkErr(t, err)
		}
	})
}

func FuzzNotifyDelete(f *testing.F) {
	for _, s := range seedBodies(PayloadN) {
		f.Add(append([]byte{0}, s...))
	}
	for _, s := range seedBodies(PayloadD) {
		f.Add(append([]byte{1}, s...))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		if b[0]&1 == 0 {
			x, ok := roundTrip(t, PayloadN, b[1:])
			if !ok {
				return
			}
			n := x.(Notify)
			_, _ = n.DPDSequence()
			if _, err := n.ResponderLifetime(); err != nil {
				checkErr(t, err)
			}
			_, _, _ = Cookies(n.SPI)
			return
		}
		x, ok := roundTrip(t, PayloadD, b[1:])
		if ok {
			_, _ = x.(Delete).ESPSPIs()
		}
	})
}

// simpleTypes are the payloads with flat bodies; FuzzSimplePayloads picks
// one with the first input byte.
var simpleTypes = []PayloadType{PayloadKE, PayloadCERT, PayloadCR, PayloadHash, PayloadSIG, PayloadNonce, PayloadVID,
	PayloadNATD, PayloadNATDDraft, PayloadNATOA, PayloadNATOADraft}

func FuzzSimplePayloads(f *testing.F) {
	for i, typ := range simpleTypes {
		for _, s := range seedBodies(typ) {
			f.Add(append([]byte{byte(i)}, s...))
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) == 0 {
			return
		}
		typ := simpleTypes[int(b[0])%len(simpleTypes)]
		if x, ok := roundTrip(t, typ, b[1:]); ok && typ == PayloadVID {
			_ = ClassifyVendorID(x.(VendorID).Data)
		}
	})
}

// TestWriteFuzzSeeds regenerates the committed seed corpora from the
// sample payloads when ISAKMP_WRITE_FUZZ_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("ISAKMP_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set ISAKMP_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz")
	}
	write := func(target string, i int, b []byte) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		s := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%02d", i)), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range seedMessages() {
		write("FuzzParseMessage", i, s)
	}
	for i, s := range seedBodies(PayloadSA) {
		write("FuzzSA", i, s)
	}
	for i, s := range seedBodies(PayloadID) {
		write("FuzzID", i, s)
	}
	n := 0
	for _, s := range seedBodies(PayloadN) {
		write("FuzzNotifyDelete", n, append([]byte{0}, s...))
		n++
	}
	for _, s := range seedBodies(PayloadD) {
		write("FuzzNotifyDelete", n, append([]byte{1}, s...))
		n++
	}
	n = 0
	for i, typ := range simpleTypes {
		for _, s := range seedBodies(typ) {
			write("FuzzSimplePayloads", n, append([]byte{byte(i)}, s...))
			n++
		}
	}
}
