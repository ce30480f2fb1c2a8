package isakmp

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/ipsecgw/ipsecgw/config"
	"github.com/ipsecgw/ipsecgw/ike/shared"
	"github.com/ipsecgw/ipsecgw/transform"
)

func proposals(t *testing.T, proto config.Protocol, s string) []config.Proposal {
	t.Helper()
	ps, _, err := config.ParseProposals(proto, s)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func tf(typ transform.Type, id transform.ID, keyLen uint16) transform.Transform {
	return transform.Transform{Type: typ, ID: id, KeyLen: keyLen}
}

// TestPhase1RoundTrip goes the whole way: configured proposals to the SA
// payload an initiator sends, to the responder's offers, through
// shared.Select, to the responder's answer and the initiator's check of
// it.
func TestPhase1RoundTrip(t *testing.T) {
	ps := proposals(t, config.ProtoIKE, "aes256-sha256-modp2048-ecp256,3des-md5-modp1024,aes128gcm16-prfsha256-ecp256!")
	life := Lifetime{Seconds: 28800}
	sa, err := Phase1SA(ps, AuthPSK, life)
	if err != nil {
		t.Fatal(err)
	}
	// aes256 x sha256 x {modp2048, ecp256}, then 3des x md5 x modp1024;
	// AES-GCM has no IKEv1 phase 1 form.
	if len(sa.Proposals) != 1 || len(sa.Proposals[0].Transforms) != 3 {
		t.Fatalf("SA %+v", sa)
	}
	wire := sa.AppendTo(nil)
	parsed, _, err := ParseSA(wire)
	if err != nil || !reflect.DeepEqual(parsed, sa) {
		t.Fatalf("SA does not round-trip: %v", err)
	}
	offers, refused, err := Phase1Offers(parsed)
	if err != nil || len(refused) != 0 || len(offers) != 3 {
		t.Fatalf("offers %+v refused %+v err %v", offers, refused, err)
	}
	want := []shared.Proposal{
		{Number: 1, Protocol: shared.ProtoIKE, Transforms: []transform.Transform{tf(1, transform.EncrAESCBC, 256),
			tf(2, transform.PRFHMACSHA2_256, 0), tf(3, transform.IntegHMACSHA2_256_128, 0), tf(4, transform.KEMODP2048, 0)}},
		{Number: 2, Protocol: shared.ProtoIKE, Transforms: []transform.Transform{tf(1, transform.EncrAESCBC, 256),
			tf(2, transform.PRFHMACSHA2_256, 0), tf(3, transform.IntegHMACSHA2_256_128, 0), tf(4, transform.KEECP256, 0)}},
		{Number: 3, Protocol: shared.ProtoIKE, Transforms: []transform.Transform{tf(1, transform.Encr3DES, 0),
			tf(2, transform.PRFHMACMD5, 0), tf(3, transform.IntegHMACMD5_96, 0), tf(4, transform.KEMODP1024, 0)}},
	}
	if got := Proposals1(offers); !reflect.DeepEqual(got, want) {
		t.Fatalf("proposals\n got %+v\nwant %+v", got, want)
	}
	for i, o := range offers {
		if o.Auth != AuthPSK || o.Life != life || o.ProposalNumber != 1 || o.TransformNumber != uint8(i+1) {
			t.Errorf("offer %d: %+v", i, o)
		}
	}

	// The responder prefers 3DES (its own order) and answers.
	ours := shared.Offer(proposals(t, config.ProtoIKE, "3des-md5-modp1024"), shared.ProtoIKE, nil, false)
	sel, ok := shared.Select(ours, Proposals1(offers), shared.ProtoIKE, false, 0)
	if !ok || sel.Number != 3 {
		t.Fatalf("selection %+v %v", sel, ok)
	}
	chosen := offers[sel.Number-1]
	answer, err := parsed.Answer(chosen.ProposalNumber, chosen.TransformNumber, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(answer.Proposals) != 1 || !reflect.DeepEqual(answer.Proposals[0].Transforms, []Transform{sa.Proposals[0].Transforms[2]}) {
		t.Fatalf("answer %+v", answer)
	}
	// The initiator checks the answer against what it sent.
	got, err := Phase1Answer(sa, answer)
	if err != nil || got.Proposal.Number != 3 || !reflect.DeepEqual(got.Proposal.Transforms, want[2].Transforms) || got.Life != life {
		t.Fatalf("answer check %+v %v", got, err)
	}
}

func TestPhase1AnswerRefused(t *testing.T) {
	sa, err := Phase1SA(proposals(t, config.ProtoIKE, "aes128-sha1-modp2048"), AuthPSK, Lifetime{})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := Phase1SA(proposals(t, config.ProtoIKE, "aes256-sha1-modp2048"), AuthPSK, Lifetime{})
	if _, err := Phase1Answer(sa, other); !errors.Is(err, ErrNoProposalChosen) {
		t.Fatalf("a transform we did not offer: %v", err)
	}
	if _, err := Phase1Answer(sa, sa); err != nil {
		t.Fatalf("our own single transform: %v", err)
	}
	two, _ := Phase1SA(proposals(t, config.ProtoIKE, "aes128-sha1-modp2048-modp1024"), AuthPSK, Lifetime{})
	if _, err := Phase1Answer(two, two); !errors.Is(err, ErrBadProposalSyntax) {
		t.Fatalf("an answer with two transforms: %v", err)
	}
	if _, err := Phase1SA(proposals(t, config.ProtoIKE, "aes128gcm16-prfsha256-modp2048"), AuthPSK, Lifetime{}); !errors.Is(err, ErrNoIKEv1Transforms) {
		t.Fatalf("AEAD-only phase 1: %v", err)
	}
}

// p1 builds a phase 1 SA with one transform of the given attributes.
func p1(id TransformID, attrs ...Attribute) SA {
	return SA{DOI: DOIIPsec, Situation: SitIdentityOnly, Proposals: []Proposal{{Number: 1, Protocol: ProtoISAKMP,
		Transforms: []Transform{{Number: 1, ID: id, Attrs: attrs}}}}}
}

func TestPhase1OffersAttributes(t *testing.T) {
	encr := func(e EncrAlg) Attribute { return BasicAttr(P1Encryption, uint16(e)) }
	hash := BasicAttr(P1Hash, uint16(HashSHA))
	grp := BasicAttr(P1Group, 14)
	psk := BasicAttr(P1AuthMethod, uint16(AuthPSK))
	aes := encr(EncrAESCBC)
	kl := func(n uint16) Attribute { return BasicAttr(P1KeyLength, n) }
	secs := BasicAttr(P1LifeType, uint16(LifeSeconds))
	kbs := BasicAttr(P1LifeType, uint16(LifeKilobytes))
	dur := func(v uint64) Attribute { return NumAttr(P1LifeDuration, v) }
	tests := []struct {
		name string
		sa   SA
		want error // nil: accepted
		text string
	}{
		{"AES-256 SHA-1 group 14 PSK", p1(KeyIKE, aes, kl(256), hash, grp, psk, secs, dur(86400)), nil, ""},
		{"AES without key length is AES-128", p1(KeyIKE, aes, hash, grp, psk), nil, ""},
		{"both lifetimes, TLV", p1(KeyIKE, aes, kl(128), hash, grp, psk, secs, NumAttr(P1LifeDuration, 1<<40), kbs, dur(1000)), nil, ""},
		{"curve25519", p1(KeyIKE, aes, kl(128), hash, BasicAttr(P1Group, 31), psk), nil, ""},
		{"AES key length 100", p1(KeyIKE, aes, kl(100), hash, grp, psk), ErrAttributesNotSupported, "key length"},
		{"single DES", p1(KeyIKE, encr(EncrDESCBC), hash, grp, psk), ErrAttributesNotSupported, "DES"},
		{"Blowfish", p1(KeyIKE, encr(EncrBlowfish), hash, grp, psk), ErrAttributesNotSupported, "encryption algorithm 3"},
		{"Tiger", p1(KeyIKE, aes, BasicAttr(P1Hash, uint16(HashTiger)), grp, psk), ErrAttributesNotSupported, "hash algorithm 3"},
		{"RSA signatures", p1(KeyIKE, aes, hash, grp, BasicAttr(P1AuthMethod, uint16(AuthRSASig))), ErrAttributesNotSupported, "RSA signatures"},
		{"XAUTH PSK", p1(KeyIKE, aes, hash, grp, BasicAttr(P1AuthMethod, uint16(AuthXAUTHInitPSK))), ErrAttributesNotSupported, "XAUTH"},
		{"brainpool group 28", p1(KeyIKE, aes, hash, BasicAttr(P1Group, 28), psk), ErrAttributesNotSupported, "group 28"},
		{"private group", p1(KeyIKE, aes, hash, BasicAttr(P1GroupType, 1), psk), ErrAttributesNotSupported, "private"},
		{"PRF attribute", p1(KeyIKE, aes, hash, grp, psk, BasicAttr(P1PRF, 1)), ErrAttributesNotSupported, "PRF"},
		{"unknown attribute", p1(KeyIKE, aes, hash, grp, psk, BasicAttr(17, 1)), ErrAttributesNotSupported, "attribute 17"},
		{"encryption in TLV form", p1(KeyIKE, Attribute{Type: P1Encryption, Data: []byte{0, 7}}, hash, grp, psk), ErrAttributesNotSupported, "variable-length"},
		{"two ciphers", p1(KeyIKE, aes, encr(Encr3DESCBC), hash, grp, psk), ErrBadProposalSyntax, "twice"},
		{"no group", p1(KeyIKE, aes, hash, psk), ErrBadProposalSyntax, "mandatory"},
		{"no auth method", p1(KeyIKE, aes, hash, grp), ErrBadProposalSyntax, "mandatory"},
		{"duration without type", p1(KeyIKE, aes, hash, grp, psk, dur(5)), ErrBadProposalSyntax, "life duration without"},
		{"type without duration", p1(KeyIKE, aes, hash, grp, psk, secs), ErrBadProposalSyntax, "life type without"},
		{"two types in a row", p1(KeyIKE, aes, hash, grp, psk, secs, kbs, dur(1)), ErrBadProposalSyntax, "two life types"},
		{"life type 3", p1(KeyIKE, aes, hash, grp, psk, BasicAttr(P1LifeType, 3), dur(1)), ErrAttributesNotSupported, "life type"},
		{"duration of 72 bits", p1(KeyIKE, aes, hash, grp, psk, secs, Attribute{Type: P1LifeDuration, Data: append([]byte{1}, make([]byte, 8)...)}),
			ErrAttributesNotSupported, "64 bits"},
		{"duration 0", p1(KeyIKE, aes, hash, grp, psk, secs, dur(0)), ErrAttributesNotSupported, "zero"},
		{"transform ID 2", p1(2, aes, hash, grp, psk), ErrInvalidTransformID, "KEY_IKE"},
	}
	for _, tt := range tests {
		offers, refused, err := Phase1Offers(tt.sa)
		if tt.want == nil {
			if err != nil || len(offers) != 1 {
				t.Errorf("%s: %v %+v", tt.name, err, refused)
			}
			continue
		}
		if !errors.Is(err, ErrNoProposalChosen) || len(refused) != 1 || !errors.Is(refused[0].Err, tt.want) ||
			!strings.Contains(refused[0].Err.Error(), tt.text) {
			t.Errorf("%s: err %v, refused %+v; want %v mentioning %q", tt.name, err, refused, tt.want, tt.text)
		}
	}
	// The accepted cases map as expected.
	o, _, _ := Phase1Offers(tests[1].sa)
	if e := o[0].Proposal.Of(transform.TypeENCR); e[0].KeyLen != 128 {
		t.Errorf("AES without key length: %+v", e)
	}
	o, _, _ = Phase1Offers(tests[2].sa)
	if o[0].Life != (Lifetime{Seconds: 1 << 40, Kilobytes: 1000}) {
		t.Errorf("lifetimes %+v", o[0].Life)
	}
	esp := p1(KeyIKE, aes, hash, grp, psk)
	esp.Proposals[0].Protocol = ProtoESP
	if _, refused, _ := Phase1Offers(esp); len(refused) != 1 || !errors.Is(refused[0].Err, ErrInvalidProtocolID) {
		t.Errorf("ESP proposal in phase 1: %+v", refused)
	}
}

func TestPhase2RoundTrip(t *testing.T) {
	ps := proposals(t, config.ProtoESP, "aes128gcm16-aes256gcm16-modp2048,aes256-sha256-sha1-modp2048-esn-noesn,aes128-sha1")
	life := Lifetime{Seconds: 3600, Kilobytes: 500000}
	sa, pfs, err := Phase2SA(ps, 0xc0010203, EncapUDPTunnel, life)
	if err != nil {
		t.Fatal(err)
	}
	// PFS group 14 comes from the first proposal; the third one has no
	// group and so is left out: 2 GCM + 2 integrity x 2 ESN = 6.
	if pfs != transform.KEMODP2048 || len(sa.Proposals) != 1 || len(sa.Proposals[0].Transforms) != 6 {
		t.Fatalf("pfs %v, SA %+v", pfs, sa)
	}
	parsed, _, err := ParseSA(sa.AppendTo(nil))
	if err != nil || !reflect.DeepEqual(parsed, sa) {
		t.Fatalf("SA does not round-trip: %v", err)
	}
	offers, refused, err := Phase2Offers(parsed)
	if err != nil || len(refused) != 0 || len(offers) != 6 {
		t.Fatalf("offers %+v refused %+v err %v", offers, refused, err)
	}
	spi := []byte{0xc0, 1, 2, 3}
	ke := tf(4, transform.KEMODP2048, 0)
	esnNo, esnYes := tf(5, transform.ESNNo, 0), tf(5, transform.ESNYes, 0)
	wantTs := [][]transform.Transform{
		{tf(1, transform.EncrAESGCM16, 128), ke, esnNo},
		{tf(1, transform.EncrAESGCM16, 256), ke, esnNo},
		{tf(1, transform.EncrAESCBC, 256), tf(3, transform.IntegHMACSHA2_256_128, 0), ke, esnYes},
		{tf(1, transform.EncrAESCBC, 256), tf(3, transform.IntegHMACSHA2_256_128, 0), ke, esnNo},
		{tf(1, transform.EncrAESCBC, 256), tf(3, transform.IntegHMACSHA1_96, 0), ke, esnYes},
		{tf(1, transform.EncrAESCBC, 256), tf(3, transform.IntegHMACSHA1_96, 0), ke, esnNo},
	}
	for i, o := range offers {
		if !reflect.DeepEqual(o.Proposal.Transforms, wantTs[i]) || o.Mode != EncapUDPTunnel || o.Life != life ||
			!reflect.DeepEqual(o.Proposal.SPI, spi) || o.Proposal.Number != uint8(i+1) {
			t.Errorf("offer %d: %+v", i, o)
		}
	}
	// A responder configured for aes256-sha1 with PFS picks offer 6.
	ours := shared.Offer(proposals(t, config.ProtoESP, "aes256-sha1-modp2048"), shared.ProtoESP, []byte{9, 9, 9, 9}, false)
	sel, ok := shared.Select(ours, Proposals2(offers), shared.ProtoESP, false, transform.KEMODP2048)
	if !ok || sel.Number != 6 {
		t.Fatalf("selection %+v %v", sel, ok)
	}
	o := offers[sel.Number-1]
	answer, err := parsed.Answer(o.ProposalNumber, o.TransformNumber, []byte{9, 9, 9, 9})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Phase2Answer(sa, answer)
	if err != nil || got.Proposal.Number != 6 || !reflect.DeepEqual(got.Proposal.SPI, []byte{9, 9, 9, 9}) {
		t.Fatalf("answer check %+v %v", got, err)
	}
	// A different mode in the answer is not ours.
	answer.Proposals[0].Transforms[0].Attrs = append([]Attribute(nil), answer.Proposals[0].Transforms[0].Attrs...)
	for i, a := range answer.Proposals[0].Transforms[0].Attrs {
		if a.Type == P2EncapMode {
			answer.Proposals[0].Transforms[0].Attrs[i] = BasicAttr(P2EncapMode, uint16(EncapTunnel))
		}
	}
	if _, err := Phase2Answer(sa, answer); !errors.Is(err, ErrNoProposalChosen) {
		t.Fatalf("answer with another mode: %v", err)
	}
}

func TestPhase2SAWithoutPFS(t *testing.T) {
	ps := proposals(t, config.ProtoESP, "aes128-sha256,aes256gcm16")
	sa, pfs, err := Phase2SA(ps, 1, EncapTransport, Lifetime{})
	if err != nil || pfs != transform.KENone || len(sa.Proposals[0].Transforms) != 2 {
		t.Fatalf("%v %v %+v", pfs, err, sa)
	}
	// As strongSwan, the first group configured anywhere is the PFS
	// group; proposals without it are not offered.
	mixed := proposals(t, config.ProtoESP, "aes128-sha256,aes256gcm16-modp2048")
	if m, g, err := Phase2SA(mixed, 1, EncapTransport, Lifetime{}); err != nil || g != transform.KEMODP2048 ||
		len(m.Proposals[0].Transforms) != 1 || m.Proposals[0].Transforms[0].ID != ESPAESGCM16 {
		t.Fatalf("mixed PFS: %v %v %+v", g, err, m)
	}
	for _, a := range sa.Proposals[0].Transforms[0].Attrs {
		if a.Type == P2Group || a.Type == P2LifeType {
			t.Errorf("unexpected attribute %v", a)
		}
	}
	if _, _, err := Phase2SA(proposals(t, config.ProtoESP, "chacha20poly1305"), 1, EncapTunnel, Lifetime{}); !errors.Is(err, ErrNoIKEv1Transforms) {
		t.Fatalf("ChaCha20-Poly1305 has no IKEv1 ESP transform ID: %v", err)
	}
}

// p2 builds a quick mode SA with one ESP transform.
func p2(id TransformID, attrs ...Attribute) SA {
	return SA{DOI: DOIIPsec, Situation: SitIdentityOnly, Proposals: []Proposal{{Number: 1, Protocol: ProtoESP,
		SPI: []byte{1, 2, 3, 4}, Transforms: []Transform{{Number: 1, ID: id, Attrs: attrs}}}}}
}

func TestPhase2OffersAttributes(t *testing.T) {
	sha1 := BasicAttr(P2AuthAlgorithm, uint16(AuthAlgHMACSHA1))
	kl := func(n uint16) Attribute { return BasicAttr(P2KeyLength, n) }
	tunnel := BasicAttr(P2EncapMode, uint16(EncapTunnel))
	bundle := p2(ESPAES, kl(128), sha1)
	bundle.Proposals = append([]Proposal{{Number: 1, Protocol: ProtoAH, SPI: []byte{5, 6, 7, 8}, Transforms: []Transform{{Number: 1, ID: 3}}}}, bundle.Proposals...)
	ah := p2(3, sha1)
	ah.Proposals[0].Protocol = ProtoAH
	ipcomp := p2(3)
	ipcomp.Proposals[0].Protocol = ProtoIPComp
	longSPI := p2(ESPAES, kl(128), sha1)
	longSPI.Proposals[0].SPI = make([]byte, 8)
	tests := []struct {
		name string
		sa   SA
		want error
		text string
	}{
		{"AES-128 SHA-1 tunnel", p2(ESPAES, kl(128), sha1, tunnel), nil, ""},
		{"AES without key length", p2(ESPAES, sha1), nil, ""},
		{"3DES MD5", p2(ESP3DES, BasicAttr(P2AuthAlgorithm, uint16(AuthAlgHMACMD5))), nil, ""},
		{"NULL SHA-512", p2(ESPNull, BasicAttr(P2AuthAlgorithm, uint16(AuthAlgHMACSHA2512))), nil, ""},
		{"GCM-12 256 draft UDP tunnel", p2(ESPAESGCM12, kl(256), BasicAttr(P2EncapMode, uint16(EncapUDPTunnelDraft))), nil, ""},
		{"AES-XCBC", p2(ESPAES, kl(128), BasicAttr(P2AuthAlgorithm, uint16(AuthAlgAESXCBC))), nil, ""},
		{"ESP_DES", p2(ESPDES, sha1), ErrInvalidTransformID, "DES"},
		{"CAST", p2(6, sha1), ErrInvalidTransformID, "ESP transform 6"},
		{"GCM without key length", p2(ESPAESGCM16), ErrAttributesNotSupported, "ESP cipher"},
		{"GCM with an authentication algorithm", p2(ESPAESGCM16, kl(128), sha1), ErrAttributesNotSupported, "AEAD"},
		{"DES-MAC", p2(ESPAES, kl(128), BasicAttr(P2AuthAlgorithm, uint16(AuthAlgDESMAC))), ErrAttributesNotSupported, "authentication algorithm 3"},
		{"ECN tunnel", p2(ESPAES, kl(128), sha1, BasicAttr(P2ECNTunnel, 1)), ErrAttributesNotSupported, "attribute 10"},
		{"key rounds", p2(ESPAES, kl(128), sha1, BasicAttr(P2KeyRounds, 10)), ErrAttributesNotSupported, "attribute 7"},
		{"encapsulation mode 5", p2(ESPAES, kl(128), sha1, BasicAttr(P2EncapMode, 5)), ErrAttributesNotSupported, "mode 5"},
		{"ESN 2", p2(ESPAES, kl(128), sha1, BasicAttr(P2ESN, 2)), ErrAttributesNotSupported, "extended sequence"},
		{"key length in TLV form", p2(ESPAES, Attribute{Type: P2KeyLength, Data: []byte{0, 128}}, sha1), ErrAttributesNotSupported, "variable-length"},
		{"two groups", p2(ESPAES, kl(128), sha1, BasicAttr(P2Group, 2), BasicAttr(P2Group, 14)), ErrBadProposalSyntax, "twice"},
		{"AH_SHA with HMAC-SHA1", ah, nil, ""},
		{"IPComp", ipcomp, ErrInvalidProtocolID, "only ESP and AH"},
		{"8-byte SPI", longSPI, ErrInvalidSPI, "8-byte"},
	}
	for _, tt := range tests {
		offers, refused, err := Phase2Offers(tt.sa)
		if tt.want == nil {
			if err != nil || len(offers) != 1 {
				t.Errorf("%s: %v %+v", tt.name, err, refused)
			}
			continue
		}
		if !errors.Is(err, ErrNoProposalChosen) || len(refused) != 1 || !errors.Is(refused[0].Err, tt.want) ||
			!strings.Contains(refused[0].Err.Error(), tt.text) {
			t.Errorf("%s: err %v, refused %+v; want %v mentioning %q", tt.name, err, refused, tt.want, tt.text)
		}
	}
	_, refused, err := Phase2Offers(bundle)
	if !errors.Is(err, ErrNoProposalChosen) || len(refused) != 2 || !strings.Contains(refused[1].Err.Error(), "bundle") {
		t.Errorf("AH+ESP bundle: %v %+v", err, refused)
	}
	if _, err := bundle.Answer(1, 1, nil); !errors.Is(err, ErrNoProposalChosen) {
		t.Errorf("answering a bundle: %v", err)
	}
	if _, err := p2(ESPAES).Answer(1, 2, nil); !errors.Is(err, ErrNoProposalChosen) {
		t.Errorf("answering a missing transform: %v", err)
	}
	if _, err := p2(ESPAES).Answer(3, 1, nil); !errors.Is(err, ErrNoProposalChosen) {
		t.Errorf("answering a missing proposal: %v", err)
	}
	o, _, _ := Phase2Offers(tests[4].sa)
	if o[0].Mode != EncapUDPTunnelDraft || !o[0].Mode.Tunnel() || !o[0].Mode.UDP() {
		t.Errorf("draft mode %+v", o[0])
	}
}

func TestResponderLifetimeRoundTrip(t *testing.T) {
	for _, proto := range []ProtocolID{ProtoESP, ProtoISAKMP} {
		life := Lifetime{Seconds: 1800, Kilobytes: 1 << 33}
		n := ResponderLifetime(proto, []byte{1, 2, 3, 4}, life)
		got, _, err := ParseNotify(n.AppendTo(nil))
		if err != nil {
			t.Fatal(err)
		}
		l, err := got.ResponderLifetime()
		if err != nil || l != life {
			t.Errorf("%v: %+v %v", proto, l, err)
		}
	}
	bad := Notify{Type: RESPONDER_LIFETIME, Protocol: ProtoESP, Data: BasicAttr(P2LifeType, 1).AppendTo(nil)}
	if _, err := bad.ResponderLifetime(); !errors.Is(err, ErrBadProposalSyntax) {
		t.Errorf("type without duration: %v", err)
	}
	if _, err := (Notify{Type: R_U_THERE}).ResponderLifetime(); err == nil {
		t.Error("R-U-THERE read as a lifetime")
	}
}

func TestEncapModeFor(t *testing.T) {
	tests := []struct {
		tunnel, udp bool
		v           NATTVersion
		want        EncapMode
	}{
		{true, false, NATTRFC3947, EncapTunnel},
		{false, false, NATTDraft02, EncapTransport},
		{true, true, NATTRFC3947, EncapUDPTunnel},
		{false, true, NATTRFC3947, EncapUDPTransport},
		{true, true, NATTDraft03, EncapUDPTunnelDraft},
		{false, true, NATTDraft02, EncapUDPTransportDraft},
	}
	for _, tt := range tests {
		if got := EncapModeFor(tt.tunnel, tt.udp, tt.v); got != tt.want || got.Tunnel() != tt.tunnel || got.UDP() != tt.udp {
			t.Errorf("%+v: %v", tt, got)
		}
	}
}
