package isakmp

import (
	"errors"
	"net/netip"
	"testing"
)

// decrypted builds a message of the exchange as it looks after
// decryption (or unencrypted when flags lacks E).
func decrypted(t *testing.T, ex ExchangeType, flags uint8, mid uint32, ps ...Payload) *Message {
	t.Helper()
	h := Header{CookieI: 1, CookieR: 2, Exchange: ex, MessageID: mid}
	b := AppendMessage(nil, h, ps...)
	m, _, err := ParseMessage(b)
	if err != nil {
		t.Fatal(err)
	}
	if flags&FlagEncryption != 0 {
		m.Header.Flags |= FlagEncryption
		m.Decrypted = true
	}
	m.Header.Flags |= flags &^ FlagEncryption
	return &m
}

func TestValidate(t *testing.T) {
	sa := samplePayloads()[0]
	ke := KE{Data: make([]byte, 8)}
	nonce := Nonce{Data: make([]byte, 16)}
	id := ID{Type: IDFQDN, Data: []byte("a")}
	hash := Hash{Data: make([]byte, 20)}
	vid := VendorID{Data: []byte(VendorDPD)}
	natd := NATD{Hash: make([]byte, 20)}
	const E = FlagEncryption
	tests := []struct {
		name string
		m    *Message
		want error // nil: valid
	}{
		{"main mode 1", decrypted(t, ExchangeIdentityProtection, 0, 0, sa, vid, vid), nil},
		{"main mode 3 with NAT-D", decrypted(t, ExchangeIdentityProtection, 0, 0, ke, nonce, natd, natd), nil},
		{"main mode 3 with draft NAT-D", decrypted(t, ExchangeIdentityProtection, 0, 0, ke, nonce, NATD{Draft: true, Hash: make([]byte, 16)}), nil},
		{"main mode 5", decrypted(t, ExchangeIdentityProtection, E, 0, id, hash, InitialContact(1, 2)), nil},
		{"main mode 5 in clear", decrypted(t, ExchangeIdentityProtection, 0, 0, id, hash), ErrInvalidPayloadType},
		{"main mode with two SAs", decrypted(t, ExchangeIdentityProtection, 0, 0, sa, sa), ErrPayloadMalformed},
		{"main mode with a delete", decrypted(t, ExchangeIdentityProtection, E, 0, DeleteESP(1)), ErrInvalidPayloadType},
		{"main mode with a message ID", decrypted(t, ExchangeIdentityProtection, 0, 5, sa), ErrInvalidMessageID},
		{"aggressive 1", decrypted(t, ExchangeAggressive, 0, 0, sa, ke, nonce, id, vid), nil},
		{"aggressive 2", decrypted(t, ExchangeAggressive, 0, 0, sa, ke, nonce, id, hash, natd, natd), nil},
		{"aggressive 3 in clear", decrypted(t, ExchangeAggressive, 0, 0, hash), nil},
		{"aggressive 3 encrypted", decrypted(t, ExchangeAggressive, E, 0, hash, natd, natd), nil},
		{"quick mode 1", decrypted(t, ExchangeQuickMode, E, 9, hash, sa, nonce, ke, id, id), nil},
		{"quick mode with NAT-OA", decrypted(t, ExchangeQuickMode, E, 9, hash, sa, nonce, id, id, NATOA{Addr: netip.MustParseAddr("10.0.0.1")}, NATOA{Addr: netip.MustParseAddr("10.0.0.2")}), nil},
		{"quick mode 3", decrypted(t, ExchangeQuickMode, E, 9, hash), nil},
		{"quick mode in clear", decrypted(t, ExchangeQuickMode, 0, 9, hash, sa, nonce), ErrDrop},
		{"quick mode without HASH first", decrypted(t, ExchangeQuickMode, E, 9, sa, hash, nonce), ErrInvalidHashInformation},
		{"quick mode with three IDs", decrypted(t, ExchangeQuickMode, E, 9, hash, sa, nonce, id, id, id), ErrPayloadMalformed},
		{"quick mode with message ID 0", decrypted(t, ExchangeQuickMode, E, 0, hash), ErrInvalidMessageID},
		{"quick mode with NAT-D", decrypted(t, ExchangeQuickMode, E, 9, hash, natd), ErrInvalidPayloadType},
		{"informational delete", decrypted(t, ExchangeInformational, E, 3, hash, DeleteISAKMP(1, 2)), nil},
		{"informational DPD", decrypted(t, ExchangeInformational, E, 3, hash, DPD(false, 1, 2, 1)), nil},
		{"informational error in clear", decrypted(t, ExchangeInformational, 0, 0, Notify{DOI: 1, Protocol: ProtoISAKMP, Type: NO_PROPOSAL_CHOSEN}), nil},
		{"informational delete in clear", decrypted(t, ExchangeInformational, 0, 0, DeleteISAKMP(1, 2)), ErrInvalidPayloadType},
		{"informational without HASH", decrypted(t, ExchangeInformational, E, 3, DPD(false, 1, 2, 1)), ErrInvalidHashInformation},
		{"informational with SA", decrypted(t, ExchangeInformational, E, 3, hash, sa), ErrInvalidPayloadType},
		{"authentication-only flag", decrypted(t, ExchangeInformational, FlagAuthOnly, 3, hash, DeleteESP(1)), ErrInvalidFlags},
		{"transaction", decrypted(t, ExchangeTransaction, E, 3, hash), ErrUnsupportedExchangeType},
		{"new group mode", decrypted(t, ExchangeNewGroup, E, 3, hash), ErrUnsupportedExchangeType},
		{"IKEv2 exchange number", decrypted(t, 34, 0, 0, sa), ErrInvalidExchangeType},
	}
	for _, tt := range tests {
		err := Validate(tt.m)
		switch {
		case tt.want == nil && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != nil && !errors.Is(err, tt.want):
			t.Errorf("%s: error %v, want %v", tt.name, err, tt.want)
		}
	}
}

// TestValidateBeforeDecryption: an encrypted message whose payloads are
// not known yet passes on its header alone, but a clear quick mode
// message or a bad exchange type is refused at once.
func TestValidateBeforeDecryption(t *testing.T) {
	m := decrypted(t, ExchangeQuickMode, FlagEncryption, 9, RawPayload{Type: PayloadSA, Body: []byte{1}})
	m.Decrypted = false
	if err := Validate(m); err != nil {
		t.Fatalf("encrypted quick mode before decryption: %v", err)
	}
	m.Header.Exchange = 99
	if err := Validate(m); !errors.Is(err, ErrInvalidExchangeType) {
		t.Fatalf("unknown exchange: %v", err)
	}
}
