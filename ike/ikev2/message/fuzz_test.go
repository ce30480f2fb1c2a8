package message

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/ipsecgw/ipsecgw/transform"
)

// The fuzz targets check, for arbitrary input: no panic and no read outside
// the buffer (the race-free Go runtime turns any such read into a panic),
// and for every input that decodes, decode(encode(x)) == x and a stable
// encoding. Seed corpora live in testdata/fuzz/<target>/ (written by
// TestWriteFuzzSeeds with IKE_WRITE_FUZZ_SEEDS=1) and are extended by
// f.Add below.

func seedMessages(t testing.TB) [][]byte {
	out, _ := testProtectors(t)
	h := Header{SPIi: 0x0102030405060708, SPIr: 0x1112131415161718, MajorVersion: 2, Exchange: IKE_SA_INIT, Flags: FlagInitiator}
	var seeds [][]byte
	seeds = append(seeds, AppendMessage(nil, h, samplePayloads()...))
	h.Exchange, h.MessageID = IKE_AUTH, 1
	b, err := AppendEncrypted(nil, h, out, samplePayloads()...)
	if err != nil {
		t.Fatal(err)
	}
	seeds = append(seeds, b)
	frags, err := AppendFragments(nil, h, out, 300, samplePayloads()...)
	if err != nil {
		t.Fatal(err)
	}
	seeds = append(seeds, frags[0], frags[len(frags)-1])
	// IKE_FOLLOWUP_KE (RFC 9370 §2.2.4): an ML-KEM-768 key exchange with
	// its link, the request and the last response (no link).
	h.Exchange, h.MessageID = IKE_FOLLOWUP_KE, 2
	link := Notify{Type: ADDITIONAL_KEY_EXCHANGE, Data: []byte{1, 2, 3, 4, 5, 6, 7, 8}}
	for _, ps := range [][]Payload{{KE{Group: transform.KEMLKEM768, Data: make([]byte, 1184)}, link}, {KE{Group: transform.KEMLKEM768, Data: make([]byte, 1088)}}} {
		b, err := AppendEncrypted(nil, h, out, ps...)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b)
		h.Flags |= FlagResponse
	}
	return seeds
}

func FuzzMessage(f *testing.F) {
	for _, s := range seedMessages(f) {
		f.Add(s)
	}
	_, in := testProtectors(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		b = append([]byte(nil), b...) // Decrypt works in place; leave the engine's input alone
		m, n, err := ParseMessage(b)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %T is not *Error", err)
			}
			return
		}
		_ = Validate(&m)
		raw := make([]Payload, len(m.Payloads))
		for i := range m.Payloads {
			raw[i] = m.Payloads[i]
		}
		// The SK/SKF payload's Next Payload is the first inner type,
		// which AppendMessage cannot express; re-encode only
		// unencrypted messages.
		if _, enc := m.Encrypted(); !enc {
			b2 := AppendMessage(nil, m.Header, raw...)
			m2, n2, err := ParseMessage(b2)
			if err != nil {
				t.Fatalf("re-encoded message does not parse: %v", err)
			}
			if n2 != len(b2) || !reflect.DeepEqual(m2.Payloads, m.Payloads) {
				t.Fatalf("payloads changed in round trip")
			}
			// Skipped unknown payloads change Next Payload and
			// Length; everything else must survive.
			h1, h2 := m.Header, m2.Header
			if want := firstType(raw, PayloadNone); h2.NextPayload != want {
				t.Fatalf("re-encoded Next Payload %v, want %v", h2.NextPayload, want)
			}
			h1.Length, h2.Length = 0, 0
			h1.NextPayload, h2.NextPayload = 0, 0
			if h1 != h2 {
				t.Fatalf("header changed: %+v vs %+v", h1, h2)
			}
			if n2 > n {
				t.Fatalf("re-encoding grew from %d to %d bytes", n, n2)
			}
		}
		for _, p := range m.Payloads {
			_, _ = parseAs(p.Type, p.Body)
		}
		// Decrypting garbage must fail cleanly.
		if sk, ok := m.Encrypted(); ok {
			if sk.Type == PayloadSK {
				_ = Decrypt(&m, in)
			} else {
				_, _, _ = DecryptFragment(&m, in)
			}
		}
	})
}

// roundTrip decodes body as typ; if that works, it re-encodes, decodes again
// and requires the same value and a stable encoding.
func roundTrip(t *testing.T, typ PayloadType, body []byte) {
	x, err := parseAs(typ, body)
	if err != nil {
		if _, ok := err.(*Error); !ok {
			t.Fatalf("error %T is not *Error", err)
		}
		return
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
	f.Fuzz(func(t *testing.T, b []byte) { roundTrip(t, PayloadSA, b) })
}

func FuzzTrafficSelectors(f *testing.F) {
	for _, s := range seedBodies(PayloadTSi, PayloadTSr) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) { roundTrip(t, PayloadTSi, b) })
}

func FuzzConfiguration(f *testing.F) {
	for _, s := range seedBodies(PayloadCP) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) { roundTrip(t, PayloadCP, b) })
}

// simpleTypes are the payloads with flat bodies; FuzzSimplePayloads picks
// one with the first input byte.
var simpleTypes = []PayloadType{PayloadKE, PayloadIDi, PayloadIDr, PayloadCERT, PayloadCERTREQ, PayloadAUTH,
	PayloadNonce, PayloadN, PayloadD, PayloadV, PayloadEAP}

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
		roundTrip(t, simpleTypes[int(b[0])%len(simpleTypes)], b[1:])
	})
}

// FuzzEncrypted: any inner payload chain survives protection, including
// fragmentation at a size picked by the input.
func FuzzEncrypted(f *testing.F) {
	inner := appendChain(nil, samplePayloads(), PayloadNone)
	f.Add(byte(PayloadSA), uint16(300), inner)
	f.Add(byte(PayloadV), uint16(100), []byte("vendor"))
	out, in := testProtectors(f)
	f.Fuzz(func(t *testing.T, first byte, size uint16, chain []byte) {
		ps, _, err := parseChain(nil, chain, PayloadType(first), 0, false)
		if err != nil || len(chain) > 4000 {
			return
		}
		payloads := make([]Payload, len(ps))
		for i := range ps {
			payloads[i] = ps[i]
		}
		h := Header{SPIi: 1, SPIr: 2, MajorVersion: 2, Exchange: INFORMATIONAL, MessageID: 3}
		b, err := AppendEncrypted(nil, h, out, payloads...)
		if err != nil {
			t.Fatal(err)
		}
		m, _, err := ParseMessage(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := Decrypt(&m, in); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(m.Inner, ps) && !(len(m.Inner) == 0 && len(ps) == 0) {
			t.Fatalf("inner payloads changed")
		}
		frags, err := AppendFragments(nil, h, out, int(size%1500)+100, payloads...)
		if err != nil {
			t.Fatal(err)
		}
		var r Reassembly
		for _, fb := range frags {
			fm, _, err := ParseMessage(fb)
			if err != nil {
				t.Fatal(err)
			}
			fh, part, err := DecryptFragment(&fm, in)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := r.Add(&fm, fh, part); err != nil {
				t.Fatal(err)
			}
		}
		got, err := r.Payloads(nil)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, ps) && !(len(got) == 0 && len(ps) == 0) {
			t.Fatalf("fragmented inner payloads changed")
		}
	})
}

// TestWriteFuzzSeeds regenerates the committed seed corpora from the
// sample payloads when IKE_WRITE_FUZZ_SEEDS=1.
func TestWriteFuzzSeeds(t *testing.T) {
	if os.Getenv("IKE_WRITE_FUZZ_SEEDS") == "" {
		t.Skip("set IKE_WRITE_FUZZ_SEEDS=1 to rewrite testdata/fuzz")
	}
	write := func(target string, i int, args ...any) {
		dir := filepath.Join("testdata", "fuzz", target)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		s := "go test fuzz v1\n"
		for _, a := range args {
			switch v := a.(type) {
			case []byte:
				s += fmt.Sprintf("[]byte(%q)\n", v)
			case byte:
				s += fmt.Sprintf("byte(%q)\n", v)
			case uint16:
				s += fmt.Sprintf("uint16(%d)\n", v)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("seed%02d", i)), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i, s := range seedMessages(t) {
		write("FuzzMessage", i, s)
	}
	for i, s := range seedBodies(PayloadSA) {
		write("FuzzSA", i, s)
	}
	for i, s := range seedBodies(PayloadTSi, PayloadTSr) {
		write("FuzzTrafficSelectors", i, s)
	}
	for i, s := range seedBodies(PayloadCP) {
		write("FuzzConfiguration", i, s)
	}
	n := 0
	for i, typ := range simpleTypes {
		for _, s := range seedBodies(typ) {
			write("FuzzSimplePayloads", n, append([]byte{byte(i)}, s...))
			n++
		}
	}
	write("FuzzEncrypted", 0, byte(PayloadSA), uint16(300), appendChain(nil, samplePayloads(), PayloadNone))
	write("FuzzEncrypted", 1, byte(PayloadD), uint16(120), Delete{Protocol: ProtoIKE}.AppendTo([]byte{0, 0, 0, 8}))
}
