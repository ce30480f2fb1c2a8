package message

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/ipsecgw/ipsecgw/transform"
)

var (
	aesCBC128   = transform.Transform{Type: transform.TypeENCR, ID: transform.EncrAESCBC, KeyLen: 128}
	aesGCM16128 = transform.Transform{Type: transform.TypeENCR, ID: transform.EncrAESGCM16, KeyLen: 128}
	sha256128   = transform.Transform{Type: transform.TypeINTEG, ID: transform.IntegHMACSHA2_256_128}
	integNone   = transform.Transform{Type: transform.TypeINTEG, ID: transform.IntegNone}
)

// testProtectors returns a matching pair (sender, receiver) for AES-CBC-128
// with HMAC-SHA2-256-128 and fixed keys.
func testProtectors(t testing.TB) (out, in *transform.Protector) {
	return protectorPair(t, aesCBC128, sha256128)
}

func protectorPair(t testing.TB, encr, integ transform.Transform) (out, in *transform.Protector) {
	t.Helper()
	el, err := transform.KeymatLen(encr)
	if err != nil {
		t.Fatal(err)
	}
	ek := bytes.Repeat([]byte{0x11}, el)
	var ak []byte
	if integ.ID != transform.IntegNone {
		al, err := transform.KeymatLen(integ)
		if err != nil {
			t.Fatal(err)
		}
		ak = bytes.Repeat([]byte{0x22}, al)
	}
	out, err = transform.NewProtector(encr, integ, ek, ak)
	if err != nil {
		t.Fatal(err)
	}
	in, err = transform.NewProtector(encr, integ, ek, ak)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { out.Close(); in.Close() })
	return out, in
}

func TestEncryptedRoundTrip(t *testing.T) {
	for _, c := range []struct {
		name        string
		encr, integ transform.Transform
	}{
		{"aes-cbc-128/sha256-128", aesCBC128, sha256128},
		{"aes-gcm16-128", aesGCM16128, integNone},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, in := protectorPair(t, c.encr, c.integ)
			inner := samplePayloads()
			h := Header{SPIi: 1, SPIr: 2, MajorVersion: 2, Exchange: IKE_AUTH, Flags: FlagInitiator, MessageID: 1}
			b, err := AppendEncrypted([]byte("prefix"), h, out, inner...)
			if err != nil {
				t.Fatal(err)
			}
			b = b[len("prefix"):]
			m, n, err := ParseMessage(b)
			if err != nil {
				t.Fatal(err)
			}
			if n != len(b) || m.Header.NextPayload != PayloadSK || m.InnerNext != inner[0].PayloadType() {
				t.Fatalf("header %+v innerNext %v", m.Header, m.InnerNext)
			}
			if err := Decrypt(&m, in); err != nil {
				t.Fatal(err)
			}
			if len(m.Inner) != len(inner) {
				t.Fatalf("%d inner payloads, want %d", len(m.Inner), len(inner))
			}
			for i, rp := range m.Inner {
				got, err := parseAs(rp.Type, rp.Body)
				if err != nil || !reflect.DeepEqual(got, inner[i]) {
					t.Fatalf("inner %d: %v\n got %#v\nwant %#v", i, err, got, inner[i])
				}
			}
		})
	}
}

// Every single-bit change of a protected message must be caught by the
// integrity check (or the framing) before anything is decrypted.
func TestEncryptedTamper(t *testing.T) {
	for _, c := range []struct {
		name        string
		encr, integ transform.Transform
	}{
		{"cbc", aesCBC128, sha256128},
		{"gcm", aesGCM16128, integNone},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, in := protectorPair(t, c.encr, c.integ)
			h := Header{SPIi: 1, SPIr: 2, MajorVersion: 2, Exchange: INFORMATIONAL, MessageID: 7}
			orig, err := AppendEncrypted(nil, h, out, Delete{Protocol: ProtoESP, SPIs: []uint32{1}})
			if err != nil {
				t.Fatal(err)
			}
			for i := range orig {
				b := append([]byte(nil), orig...)
				b[i] ^= 0x01
				m, _, err := ParseMessage(b)
				if err != nil {
					continue // framing caught it
				}
				if _, ok := m.Encrypted(); !ok {
					continue
				}
				err = Decrypt(&m, in)
				if err == nil {
					t.Fatalf("flip of byte %d accepted", i)
				}
				// Changes in the header fields that ParseMessage does
				// not check (SPIs, message ID, flags) and in the
				// encrypted part must fail the integrity check.
				if !errors.Is(err, ErrIntegrity) && !errors.Is(err, ErrInvalidSyntax) {
					t.Fatalf("flip of byte %d: %v", i, err)
				}
			}
		})
	}
}

func TestFragmentsRoundTrip(t *testing.T) {
	for _, c := range []struct {
		name        string
		encr, integ transform.Transform
	}{
		{"cbc", aesCBC128, sha256128},
		{"gcm", aesGCM16128, integNone},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, in := protectorPair(t, c.encr, c.integ)
			inner := samplePayloads()
			h := Header{SPIi: 1, SPIr: 2, MajorVersion: 2, Exchange: IKE_AUTH, Flags: FlagInitiator, MessageID: 1}
			frags, err := AppendFragments(nil, h, out, 200, inner...)
			if err != nil {
				t.Fatal(err)
			}
			if len(frags) < 3 {
				t.Fatalf("only %d fragments", len(frags))
			}
			var r Reassembly
			// Deliver in reverse order, with a duplicate.
			order := []int{}
			for i := len(frags) - 1; i >= 0; i-- {
				order = append(order, i)
			}
			order = append(order, 0)
			done := false
			for _, i := range order {
				if len(frags[i]) > 200 {
					t.Fatalf("fragment %d is %d bytes", i, len(frags[i]))
				}
				m, _, err := ParseMessage(append([]byte(nil), frags[i]...))
				if err != nil {
					t.Fatal(err)
				}
				if err := Validate(&m); err != nil {
					t.Fatal(err)
				}
				f, part, err := DecryptFragment(&m, in)
				if err != nil {
					t.Fatal(err)
				}
				if int(f.Number) != i+1 || int(f.Total) != len(frags) {
					t.Fatalf("fragment %d header %+v", i, f)
				}
				done, err = r.Add(&m, f, part)
				if err != nil {
					t.Fatal(err)
				}
			}
			if !done {
				t.Fatal("reassembly incomplete")
			}
			last, _, err := ParseMessage(append([]byte(nil), frags[len(frags)-1]...))
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Complete(&last); err != nil {
				t.Fatal(err)
			}
			// The sample payloads include KE, which IKE_AUTH does
			// not allow: the table applies to reassembled messages.
			if err := Validate(&last); !errors.Is(err, ErrInvalidSyntax) {
				t.Fatalf("reassembled message validated: %v", err)
			}
			ps := last.Inner
			for i, rp := range ps {
				got, err := parseAs(rp.Type, rp.Body)
				if err != nil || !reflect.DeepEqual(got, inner[i]) {
					t.Fatalf("inner %d: %v", i, err)
				}
			}
		})
	}
}

func TestReassemblyErrors(t *testing.T) {
	var m Message
	var r Reassembly
	if err := r.Complete(&m); !errors.Is(err, ErrInvalidSyntax) {
		t.Fatalf("empty reassembly: %v", err)
	}
	if done, err := r.Add(&m, FragmentHeader{Number: 1, Total: 2}, []byte{1}); done || err != nil {
		t.Fatal(done, err)
	}
	if _, err := r.Add(&m, FragmentHeader{Number: 2, Total: 3}, []byte{1}); !errors.Is(err, ErrInvalidSyntax) {
		t.Fatalf("changed total: %v", err)
	}
	if err := r.Complete(&m); !errors.Is(err, ErrInvalidSyntax) {
		t.Fatalf("incomplete reassembly: %v", err)
	}
	if _, err := r.Add(&m, FragmentHeader{Number: 2, Total: 2}, make([]byte, MaxReassembled)); !errors.Is(err, ErrInvalidSyntax) {
		t.Fatalf("oversized reassembly: %v", err)
	}
	// A fragment whose content is garbage under the wrong key is
	// rejected by the integrity check before reassembly.
	out, _ := testProtectors(t)
	_, wrong := protectorPair(t, aesGCM16128, integNone)
	h := Header{SPIi: 1, SPIr: 2, MajorVersion: 2, Exchange: INFORMATIONAL, MessageID: 9}
	frags, err := AppendFragments(nil, h, out, 150, VendorID{Data: make([]byte, 200)})
	if err != nil {
		t.Fatal(err)
	}
	fm, _, err := ParseMessage(frags[0])
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := DecryptFragment(&fm, wrong); !errors.Is(err, ErrIntegrity) {
		t.Fatalf("wrong key: %v", err)
	}
}

// TestFragmentFieldsAfterIntegrity: the fragment fields are judged only
// once the ICV checked out. A forged fragment with impossible fields is
// dropped silently (ErrIntegrity), never INVALID_SYNTAX, which a receiver
// answers for the whole message ID; an authentic one with impossible
// fields is INVALID_SYNTAX; one too short to hold the fields is dropped.
func TestFragmentFieldsAfterIntegrity(t *testing.T) {
	out, in := testProtectors(t)
	h := Header{SPIi: 1, SPIr: 2, MajorVersion: 2, Exchange: INFORMATIONAL, MessageID: 4}
	sealed := func(f FragmentHeader) []byte {
		hh := h
		hh.NextPayload = PayloadSKF
		b := AppendHeader(nil, hh)
		b, skf := appendGeneric(b, PayloadV, false)
		b = AppendFragmentHeader(b, f)
		ivOff := len(b)
		b = append(b, make([]byte, out.IVSize())...)
		ptStart := len(b)
		b = appendChain(b, []Payload{VendorID{Data: []byte("part")}}, PayloadNone)
		b, err := seal(b, 0, skf, ivOff, ptStart, out)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	decrypt := func(b []byte) error {
		m, _, err := ParseMessage(b)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = DecryptFragment(&m, in)
		return err
	}
	for _, f := range []FragmentHeader{{Number: 3, Total: 2}, {Number: 0, Total: 2}} {
		if err := decrypt(sealed(f)); !errors.Is(err, ErrInvalidSyntax) {
			t.Errorf("authentic fragment %d/%d: %v, want INVALID_SYNTAX", f.Number, f.Total, err)
		}
		forged := sealed(f)
		forged[len(forged)-1] ^= 1
		if err := decrypt(forged); !errors.Is(err, ErrIntegrity) {
			t.Errorf("forged fragment %d/%d: %v, want a silent drop", f.Number, f.Total, err)
		}
	}
	short := AppendMessage(nil, h, RawPayload{Type: PayloadSKF, Body: []byte{0, 1}})
	if err := decrypt(short); !errors.Is(err, ErrIntegrity) {
		t.Errorf("SKF shorter than its fields: %v, want a silent drop", err)
	}
	if err := decrypt(sealed(FragmentHeader{Number: 2, Total: 2})); err != nil {
		t.Errorf("valid fragment: %v", err)
	}
}
