package message

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/ipsecgw/ipsecgw/transform"
)

// suite is one IKE SA's negotiated algorithms.
type suite struct {
	name        string
	encr, integ transform.Transform
	prf         transform.ID
	ke          transform.ID
	// wireshark's names for the decryption table (packet-isakmp.c, as
	// strongSwan's save-keys plugin writes them)
	wsEncr, wsInteg string
}

var (
	suiteCBC = suite{"aes128-sha256-x25519", aesCBC128, sha256128, transform.PRFHMACSHA2_256, transform.KECurve25519,
		"AES-CBC-128 [RFC3602]", "HMAC_SHA2_256_128 [RFC4868]"}
	suiteGCM = suite{"aes128gcm16-prfsha256-ecp256", aesGCM16128, integNone, transform.PRFHMACSHA2_256, transform.KEECP256,
		"AES-GCM-128 with 16 octet ICV [RFC5282]", "NONE [RFC4306]"}
)

func (s suite) ikeProposal(spi []byte) Proposal {
	ts := []Transform{{Transform: s.encr}}
	if s.integ.ID != transform.IntegNone {
		ts = append(ts, Transform{Transform: s.integ})
	}
	ts = append(ts,
		Transform{Transform: transform.Transform{Type: transform.TypePRF, ID: s.prf}},
		Transform{Transform: transform.Transform{Type: transform.TypeKE, ID: s.ke}})
	return Proposal{Number: 1, Protocol: ProtoIKE, SPI: spi, Transforms: ts}
}

func (s suite) espProposal(spi uint32) Proposal {
	ts := []Transform{{Transform: s.encr}}
	if s.integ.ID != transform.IntegNone {
		ts = append(ts, Transform{Transform: s.integ})
	}
	ts = append(ts, Transform{Transform: transform.Transform{Type: transform.TypeESN, ID: transform.ESNNo}})
	return Proposal{Number: 1, Protocol: ProtoESP, SPI: []byte{byte(spi >> 24), byte(spi >> 16), byte(spi >> 8), byte(spi)}, Transforms: ts}
}

// exchange is a complete, consistent IKE_SA_INIT + IKE_AUTH (+ one
// INFORMATIONAL) run between two documentation addresses, produced by our
// encoder and key schedule, with each side parsing and checking the other's
// messages.
type exchange struct {
	s                  suite
	spii, spir         uint64
	keys               IKEKeys
	msgs               [][]byte // in order: init req, init resp, auth req, auth resp, info req, info resp
	fromInitiator      []bool
	innerTypes         [][]PayloadType // payload types inside SK per message (nil for IKE_SA_INIT)
	outerTypes         [][]PayloadType
	initAddr, respAddr netip.AddrPort
	gir, ni, nr        []byte
	fragmented         []PayloadType // inner payloads of the fragmented message
}

var psk = []byte("a pre-shared key for tests only")

func runExchange(t testing.TB, s suite, spii, spir uint64) *exchange {
	t.Helper()
	x := &exchange{s: s, spii: spii, spir: spir,
		initAddr: netip.MustParseAddrPort("198.51.100.1:500"), respAddr: netip.MustParseAddrPort("198.51.100.2:500")}
	f := mustPRF(t, s.prf)
	add := func(b []byte, fromI bool, outer, inner []PayloadType) {
		x.msgs = append(x.msgs, b)
		x.fromInitiator = append(x.fromInitiator, fromI)
		x.outerTypes = append(x.outerTypes, outer)
		x.innerTypes = append(x.innerTypes, inner)
	}
	types := func(ps []Payload) []PayloadType {
		var out []PayloadType
		for _, p := range ps {
			out = append(out, p.PayloadType())
		}
		return out
	}

	// IKE_SA_INIT request.
	keI, err := transform.NewKeyExchange(s.ke)
	if err != nil {
		t.Fatal(err)
	}
	defer keI.Close()
	ni := bytes.Repeat([]byte{0x4e}, 32)
	natS := NATDetectionHash(spii, 0, x.initAddr)
	natD := NATDetectionHash(spii, 0, x.respAddr)
	req := []Payload{
		SA{Proposals: []Proposal{s.ikeProposal(nil)}},
		KE{Group: s.ke, Data: keI.PublicKey()},
		Nonce{Data: ni},
		Notify{Type: NAT_DETECTION_SOURCE_IP, Data: natS[:]},
		Notify{Type: NAT_DETECTION_DESTINATION_IP, Data: natD[:]},
		Notify{Type: IKEV2_FRAGMENTATION_SUPPORTED},
		Notify{Type: SIGNATURE_HASH_ALGORITHMS, Data: []byte{0, 2, 0, 3, 0, 4}},
		VendorID{Data: []byte("ipsecgw test")},
	}
	initReq := AppendMessage(nil, Header{SPIi: spii, MajorVersion: 2, Exchange: IKE_SA_INIT, Flags: FlagInitiator}, req...)
	add(initReq, true, types(req), nil)

	// Responder parses and answers.
	m, _, err := ParseMessage(append([]byte(nil), initReq...))
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(&m); err != nil {
		t.Fatal(err)
	}
	var peerKE KE
	var peerNi Nonce
	for _, p := range m.Payloads {
		switch p.Type {
		case PayloadKE:
			peerKE, _, err = ParseKE(p.Body)
		case PayloadNonce:
			peerNi, _, err = ParseNonce(p.Body)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	keR, err := transform.NewKeyExchange(peerKE.Group)
	if err != nil {
		t.Fatal(err)
	}
	defer keR.Close()
	girR, err := keR.SharedSecret(peerKE.Data)
	if err != nil {
		t.Fatal(err)
	}
	nr := bytes.Repeat([]byte{0x52}, 32)
	natS = NATDetectionHash(spii, spir, x.respAddr)
	natD = NATDetectionHash(spii, spir, x.initAddr)
	resp := []Payload{
		SA{Proposals: []Proposal{s.ikeProposal(nil)}},
		KE{Group: s.ke, Data: keR.PublicKey()},
		Nonce{Data: nr},
		Notify{Type: NAT_DETECTION_SOURCE_IP, Data: natS[:]},
		Notify{Type: NAT_DETECTION_DESTINATION_IP, Data: natD[:]},
		CertReq{Encoding: CertX509Signature, Data: bytes.Repeat([]byte{0xca}, 20)},
		Notify{Type: IKEV2_FRAGMENTATION_SUPPORTED},
	}
	initResp := AppendMessage(nil, Header{SPIi: spii, SPIr: spir, MajorVersion: 2, Exchange: IKE_SA_INIT, Flags: FlagResponse}, resp...)
	add(initResp, false, types(resp), nil)
	keysR, err := DeriveIKEKeys(f, s.encr, s.integ, SKEYSEED(f, peerNi.Data, nr, girR), peerNi.Data, nr, spii, spir)
	if err != nil {
		t.Fatal(err)
	}

	// Initiator parses the response and derives the same keys.
	m, _, err = ParseMessage(append([]byte(nil), initResp...))
	if err != nil {
		t.Fatal(err)
	}
	if err := Validate(&m); err != nil {
		t.Fatal(err)
	}
	var respKE KE
	for _, p := range m.Payloads {
		if p.Type == PayloadKE {
			respKE, _, _ = ParseKE(p.Body)
		}
	}
	girI, err := keI.SharedSecret(respKE.Data)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := DeriveIKEKeys(f, s.encr, s.integ, SKEYSEED(f, ni, nr, girI), ni, nr, spii, spir)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(keys.all, keysR.all) {
		t.Fatal("initiator and responder derived different keys")
	}
	x.keys = keys
	x.gir, x.ni, x.nr = girI, ni, nr
	iOut, iIn, err := keys.Protectors(s.encr, s.integ, true)
	if err != nil {
		t.Fatal(err)
	}
	rOut, rIn, err := keysR.Protectors(s.encr, s.integ, false)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { iOut.Close(); iIn.Close(); rOut.Close(); rIn.Close() }()

	// IKE_AUTH request.
	idi := ID{Type: IDFQDN, Data: []byte("moon.example.net")}
	idiBody := AppendID(nil, idi)
	authI := PSKAuth(f, psk, SignedOctets(f, keys.SKpi, initReq, nr, idiBody))
	tsi := TrafficSelectors{TS: []TrafficSelector{{Type: TSIPv4AddrRange, EndPort: 65535,
		Start: netip.MustParseAddr("10.1.0.0"), End: netip.MustParseAddr("10.1.255.255")}}}
	tsr := TrafficSelectors{Responder: true, TS: []TrafficSelector{{Type: TSIPv4AddrRange, EndPort: 65535,
		Start: netip.MustParseAddr("10.2.0.0"), End: netip.MustParseAddr("10.2.255.255")}}}
	authReq := []Payload{
		idi,
		Notify{Type: INITIAL_CONTACT},
		ID{Responder: true, Type: IDFQDN, Data: []byte("sun.example.net")},
		Auth{Method: AuthSharedKeyMIC, Data: authI},
		Configuration{Type: CFGRequest, Attrs: []CPAttribute{{Type: InternalIP4Address}, {Type: InternalIP4DNS}}},
		SA{Proposals: []Proposal{s.espProposal(0xc1000001)}},
		tsi, tsr,
		Notify{Type: ESP_TFC_PADDING_NOT_SUPPORTED},
		Notify{Type: MOBIKE_SUPPORTED},
	}
	b, err := AppendEncrypted(nil, Header{SPIi: spii, SPIr: spir, MajorVersion: 2, Exchange: IKE_AUTH, Flags: FlagInitiator, MessageID: 1}, iOut, authReq...)
	if err != nil {
		t.Fatal(err)
	}
	add(b, true, []PayloadType{PayloadSK}, types(authReq))

	// Responder decrypts and verifies AUTH from the bytes it received.
	m, _, err = ParseMessage(append([]byte(nil), b...))
	if err != nil {
		t.Fatal(err)
	}
	if err := Decrypt(&m, rIn); err != nil {
		t.Fatal(err)
	}
	if err := Validate(&m); err != nil {
		t.Fatal(err)
	}
	var gotIDi []byte
	var gotAuth Auth
	for _, p := range m.Inner {
		switch p.Type {
		case PayloadIDi:
			gotIDi = p.Body
		case PayloadAUTH:
			gotAuth, _, _ = ParseAuth(p.Body)
		}
	}
	if !VerifyPSKAuth(f, psk, SignedOctets(f, keysR.SKpi, initReq, nr, gotIDi), gotAuth.Data) {
		t.Fatal("responder rejects the initiator's AUTH")
	}

	// IKE_AUTH response.
	idr := ID{Responder: true, Type: IDFQDN, Data: []byte("sun.example.net")}
	authR := PSKAuth(f, psk, SignedOctets(f, keysR.SKpr, initResp, ni, AppendID(nil, idr)))
	authResp := []Payload{
		idr,
		Auth{Method: AuthSharedKeyMIC, Data: authR},
		Configuration{Type: CFGReply, Attrs: []CPAttribute{{Type: InternalIP4Address, Value: []byte{10, 1, 0, 5}}}},
		SA{Proposals: []Proposal{s.espProposal(0xc2000002)}},
		tsi, tsr,
	}
	b, err = AppendEncrypted(nil, Header{SPIi: spii, SPIr: spir, MajorVersion: 2, Exchange: IKE_AUTH, Flags: FlagResponse, MessageID: 1}, rOut, authResp...)
	if err != nil {
		t.Fatal(err)
	}
	add(b, false, []PayloadType{PayloadSK}, types(authResp))
	m, _, err = ParseMessage(append([]byte(nil), b...))
	if err != nil {
		t.Fatal(err)
	}
	if err := Decrypt(&m, iIn); err != nil {
		t.Fatal(err)
	}
	if err := Validate(&m); err != nil {
		t.Fatal(err)
	}

	// INFORMATIONAL: delete the CHILD_SA, empty response.
	info := []Payload{Delete{Protocol: ProtoESP, SPIs: []uint32{0xc1000001}}}
	b, err = AppendEncrypted(nil, Header{SPIi: spii, SPIr: spir, MajorVersion: 2, Exchange: INFORMATIONAL, Flags: FlagInitiator, MessageID: 2}, iOut, info...)
	if err != nil {
		t.Fatal(err)
	}
	add(b, true, []PayloadType{PayloadSK}, types(info))
	b, err = AppendEncrypted(nil, Header{SPIi: spii, SPIr: spir, MajorVersion: 2, Exchange: INFORMATIONAL, Flags: FlagResponse, MessageID: 2}, rOut,
		Delete{Protocol: ProtoESP, SPIs: []uint32{0xc2000002}})
	if err != nil {
		t.Fatal(err)
	}
	add(b, false, []PayloadType{PayloadSK}, []PayloadType{PayloadD})

	// A fragmented INFORMATIONAL request (RFC 7383) big enough to need
	// three fragments of at most 200 bytes, and its (unfragmented) empty
	// response.
	big := []Payload{Notify{Type: SET_WINDOW_SIZE, Data: []byte{0, 0, 0, 4}}, VendorID{Data: bytes.Repeat([]byte{0x56}, 300)}}
	frags, err := AppendFragments(nil, Header{SPIi: spii, SPIr: spir, MajorVersion: 2, Exchange: INFORMATIONAL, Flags: FlagInitiator, MessageID: 3}, iOut, 200, big...)
	if err != nil {
		t.Fatal(err)
	}
	for i, fb := range frags {
		var inner []PayloadType
		if i == len(frags)-1 {
			inner = types(big) // reassembled with the last fragment
		}
		add(fb, true, []PayloadType{PayloadSKF}, inner)
	}
	if len(frags) != 3 {
		t.Fatalf("%d fragments, want 3", len(frags))
	}
	x.fragmented = types(big)
	b, err = AppendEncrypted(nil, Header{SPIi: spii, SPIr: spir, MajorVersion: 2, Exchange: INFORMATIONAL, Flags: FlagResponse, MessageID: 3}, rOut)
	if err != nil {
		t.Fatal(err)
	}
	add(b, false, []PayloadType{PayloadSK}, nil)
	return x
}

// TestFullExchange runs the whole IKE_SA_INIT key schedule end to end
// (real key exchange, nonces, SPIs) and recomputes it independently of
// keys.go and of package transform, straight from RFC 7296 §2.13/§2.14 with
// crypto/hmac, checking every key's value and size.
func TestFullExchange(t *testing.T) {
	for _, c := range []struct {
		s          suite
		d, a, e, p int // SK_d, SK_a*, SK_e*, SK_p* sizes
	}{
		{suiteCBC, 32, 32, 16, 32},
		{suiteGCM, 32, 0, 20, 32}, // AES-GCM: no SK_a, 16-byte key + 4-byte salt
	} {
		t.Run(c.s.name, func(t *testing.T) {
			const spii, spir = 0x1111222233334444, 0x5555666677778888
			x := runExchange(t, c.s, spii, spir)
			if len(x.msgs) != 10 {
				t.Fatalf("%d messages", len(x.msgs))
			}
			mac := func(k []byte, d ...[]byte) []byte {
				m := hmac.New(sha256.New, k)
				for _, b := range d {
					m.Write(b)
				}
				return m.Sum(nil)
			}
			seed := mac(append(append([]byte(nil), x.ni...), x.nr...), x.gir)
			spis := binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(nil, spii), spir)
			var stream, prev []byte
			for i := byte(1); len(stream) < 3*c.d+2*c.a+2*c.e; i++ {
				prev = mac(seed, prev, x.ni, x.nr, spis, []byte{i})
				stream = append(stream, prev...)
			}
			want := map[string][]byte{}
			off := 0
			for _, k := range []struct {
				name string
				n    int
			}{{"SK_d", c.d}, {"SK_ai", c.a}, {"SK_ar", c.a}, {"SK_ei", c.e}, {"SK_er", c.e}, {"SK_pi", c.p}, {"SK_pr", c.p}} {
				want[k.name] = stream[off : off+k.n]
				off += k.n
			}
			got := map[string][]byte{"SK_d": x.keys.SKd, "SK_ai": x.keys.SKai, "SK_ar": x.keys.SKar,
				"SK_ei": x.keys.SKei, "SK_er": x.keys.SKer, "SK_pi": x.keys.SKpi, "SK_pr": x.keys.SKpr}
			for name, w := range want {
				if !bytes.Equal(got[name], w) {
					t.Errorf("%s differs from the independent computation (len %d, want %d)", name, len(got[name]), len(w))
				}
			}
		})
	}
}
