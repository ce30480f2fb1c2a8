package message

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/ipsecgw/ipsecgw/transform"
)

// TestIntermediateAuthData: the authenticated data of an IKE_INTERMEDIATE
// message (RFC 9242 §3.3.2) is the same for the sender (from its
// payloads) and the receiver (from the decrypted message, whole or
// reassembled from fragments), and counts only the plaintext.
func TestIntermediateAuthData(t *testing.T) {
	out, in := testProtectors(t)
	h := Header{SPIi: 1, SPIr: 2, MajorVersion: 2, Exchange: IKE_INTERMEDIATE, Flags: FlagInitiator, MessageID: 1}
	inner := []Payload{KE{Group: transform.KEMLKEM768, Data: bytes.Repeat([]byte{7}, 1184)}, Notify{Type: 40000}}
	want := IntermediateAuthDataOf(h, inner...)
	plainLen := KE{Data: make([]byte, 1184)}.Len() + Notify{Type: 40000}.Len() + 2*GenericHeaderLen
	if len(want) != HeaderLen+GenericHeaderLen+plainLen {
		t.Fatalf("%d bytes, want %d", len(want), HeaderLen+GenericHeaderLen+plainLen)
	}
	if PayloadType(want[16]) != PayloadSK || binary.BigEndian.Uint32(want[24:]) != uint32(len(want)) ||
		PayloadType(want[HeaderLen]) != PayloadKE || int(binary.BigEndian.Uint16(want[HeaderLen+2:])) != GenericHeaderLen+plainLen {
		t.Errorf("header fields: % x", want[:HeaderLen+GenericHeaderLen])
	}

	pkt, err := AppendEncrypted(nil, h, out, inner...)
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := ParseMessage(pkt)
	if err != nil {
		t.Fatal(err)
	}
	if err := Decrypt(&m, in); err != nil {
		t.Fatal(err)
	}
	if got := IntermediateAuthDataOfMessage(&m); !bytes.Equal(got, want) {
		t.Error("receiver's data differs from the sender's")
	}

	frags, err := AppendFragments(nil, h, out, 500, inner...)
	if err != nil || len(frags) < 3 {
		t.Fatalf("%d fragments, %v", len(frags), err)
	}
	var r Reassembly
	var last Message
	for _, f := range frags {
		fm, _, err := ParseMessage(f)
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
		last = fm
	}
	if err := r.Complete(&last); err != nil {
		t.Fatal(err)
	}
	if got := IntermediateAuthDataOfMessage(&last); !bytes.Equal(got, want) {
		t.Error("data of the reassembled message differs from the sender's")
	}

	// The chain depends on every link and on the key.
	f, err := transform.NewPRF(transform.PRFHMACSHA2_256)
	if err != nil {
		t.Fatal(err)
	}
	a := ChainIntAuth(f, []byte("k1"), nil, want)
	b := ChainIntAuth(f, []byte("k1"), a, want)
	if bytes.Equal(a, b) || bytes.Equal(a, ChainIntAuth(f, []byte("k2"), nil, want)) || len(a) != f.Size() {
		t.Error("IntAuth chain links do not depend on their inputs")
	}
	if got := IntAuth(a, b, 3); len(got) != 2*f.Size()+4 || binary.BigEndian.Uint32(got[len(got)-4:]) != 3 {
		t.Errorf("IntAuth % x", got)
	}
}
