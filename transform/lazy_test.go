package transform

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"
)

// TestAEADBuiltOnFirstPacket: an AEAD Protector holds only its key material
// until its first Seal or Open (either may come first: the inbound one opens
// first), then protects exactly as one built at once would; Close wipes the
// key material whether or not the cipher was ever built.
func TestAEADBuiltOnFirstPacket(t *testing.T) {
	for _, s := range []suite{
		{enc(EncrAESGCM16, 128), integ(IntegNone)},
		{enc(EncrAESGCM12, 256), integ(IntegNone)},
		{enc(EncrChaCha20Poly1305, 0), integ(IntegNone)},
	} {
		t.Run(s.String(), func(t *testing.T) {
			sender, receiver, idle := newSuite(t, s), newSuite(t, s), newSuite(t, s)
			for _, p := range []*Protector{sender, receiver, idle} {
				if e := p.eng.(*aeadEngine); e.a != nil {
					t.Fatal("the AEAD was built before the first packet")
				}
			}
			payload := fill(200, 7)
			pkt := espPacket(sender, payload, 1)
			if err := sender.Seal(pkt, 8, nil, nil); err != nil {
				t.Fatal(err)
			}
			if receiver.eng.(*aeadEngine).a != nil {
				t.Fatal("sealing with one Protector built another's AEAD")
			}
			if err := receiver.Open(pkt, 8, nil, nil); err != nil {
				t.Fatalf("first Open of a packet sealed by a first Seal: %v", err)
			}
			if got := pkt[8+receiver.IVSize() : 8+receiver.IVSize()+len(payload)]; !bytes.Equal(got, payload) {
				t.Fatal("payload differs after the round trip")
			}
			for _, p := range []*Protector{sender, receiver} {
				if p.eng.(*aeadEngine).a == nil {
					t.Fatal("no AEAD after a packet")
				}
			}
			later := espPacket(sender, payload, 2)
			for _, p := range []*Protector{sender, receiver, idle} {
				e := p.eng.(*aeadEngine)
				p.Close()
				if e.key != [maxAEADKeymat]byte{} || e.salt != [4]byte{} || e.a != nil {
					t.Fatal("Close left key material behind")
				}
			}
			// A closed Protector never builds its AEAD from the wiped key.
			if err := idle.Seal(later, 8, nil, nil); err == nil {
				t.Fatal("Seal after Close succeeded")
			}
			if idle.eng.(*aeadEngine).a != nil {
				t.Fatal("a closed Protector built its AEAD")
			}
		})
	}
}

// TestIdleGCMProtectorHeap bounds the heap of an AES-GCM Protector that has
// not protected a packet yet (a hub holds one per direction of each idle
// CHILD SA): its key material and bookkeeping, not a key schedule.
func TestIdleGCMProtectorHeap(t *testing.T) {
	const n = 2000
	key := fill(20, 3)
	ps := make([]*Protector, n)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range ps {
		p, err := NewProtector(enc(EncrAESGCM16, 128), integ(IntegNone), key, nil)
		if err != nil {
			t.Fatal(err)
		}
		ps[i] = p
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	per := float64(after.HeapAlloc-before.HeapAlloc) / n
	runtime.KeepAlive(ps)
	t.Logf("%.0f bytes of heap per idle AES-GCM Protector", per)
	// A built key schedule alone is 480 (crypto/aes: 2×240) to 616
	// (internal/aesgcm) bytes; the idle Protector is its struct (72
	// bytes, sharing its scratch pool) and its engine with the key
	// inline (80): about 150 since they stopped holding a pool and a key
	// slice each (216 before).
	if per > 168 {
		t.Errorf("an idle AES-GCM Protector holds %.0f bytes of heap, want at most 168", per)
	}
}

// TestSharedAuthError: Protectors of one transform share the error a
// forged packet gets, and it still names the transform and wraps
// ErrAuthFailed; another transform's names its own.
func TestSharedAuthError(t *testing.T) {
	open := func(s suite) error {
		t.Helper()
		p := newSuite(t, s)
		pkt := espPacket(p, fill(40, 1), 1)
		if err := p.Seal(pkt, 8, nil, nil); err != nil {
			t.Fatal(err)
		}
		pkt[len(pkt)-1] ^= 1
		return p.Open(pkt, 8, nil, nil)
	}
	gcm := suite{enc(EncrAESGCM16, 128), integ(IntegNone)}
	cbc := suite{enc(EncrAESCBC, 256), integ(IntegHMACSHA2_256_128)}
	e1, e2, e3 := open(gcm), open(gcm), open(cbc)
	for _, err := range []error{e1, e2, e3} {
		if !errors.Is(err, ErrAuthFailed) {
			t.Fatalf("forged packet: %v", err)
		}
	}
	if e1 != e2 {
		t.Error("two AES-GCM Protectors return different error values")
	}
	if e1 == e3 || !strings.Contains(e1.Error(), "gcm") || !strings.Contains(e3.Error(), "aes256") {
		t.Errorf("errors %q and %q do not name their transforms", e1, e3)
	}
}

// TestProtectorKeys: Keys gives back copies of exactly the key material a
// Protector was built from, for every suite and for integrity only, and
// nothing once the Protector is closed.
func TestProtectorKeys(t *testing.T) {
	check := func(t *testing.T, p *Protector, enc, ikey []byte) {
		t.Helper()
		e, i := p.Keys()
		if !bytes.Equal(e, enc) || !bytes.Equal(i, ikey) {
			t.Fatalf("Keys() = %x, %x; want %x, %x", e, i, enc, ikey)
		}
		if len(e) > 0 {
			e[0] ^= 0xff // a copy: the Protector's key stays
			if e2, _ := p.Keys(); !bytes.Equal(e2, enc) {
				t.Fatal("Keys returned the Protector's own key")
			}
		}
		p.Close()
		if e, i := p.Keys(); e != nil || i != nil {
			t.Fatal("Keys after Close returned key material")
		}
	}
	for _, s := range allSuites() {
		t.Run(s.String(), func(t *testing.T) {
			ek, err := KeymatLen(s.encr)
			if err != nil {
				t.Fatal(err)
			}
			ik, err := KeymatLen(s.integ)
			if err != nil {
				t.Fatal(err)
			}
			enc, ikey := fill(ek, 0x10), fill(ik, 0x40)
			if ek == 0 {
				enc = nil
			}
			if ik == 0 {
				ikey = nil
			}
			p, err := NewProtector(s.encr, s.integ, enc, ikey)
			if err != nil {
				t.Fatal(err)
			}
			check(t, p, enc, ikey)
		})
	}
	t.Run("auth-only", func(t *testing.T) {
		ikey := fill(32, 9)
		p, err := NewAuthProtector(integ(IntegHMACSHA2_256_128), ikey)
		if err != nil {
			t.Fatal(err)
		}
		check(t, p, nil, ikey)
	})
}
