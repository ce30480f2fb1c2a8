package config

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func tf(t TransformType, id, kl uint16) Transform { return Transform{Type: t, ID: id, KeyLen: kl} }

func TestParseProposalsExact(t *testing.T) {
	noesn := tf(TransformESN, ESNNo, 0)
	tests := []struct {
		proto  Protocol
		in     string
		strict bool
		want   [][]Transform
	}{
		{ProtoIKE, "aes128-sha256-modp2048", false, [][]Transform{{
			tf(TransformENCR, EncrAESCBC, 128), tf(TransformINTEG, IntegHMACSHA256128, 0), tf(TransformPRF, PRFHMACSHA2256, 0), tf(TransformKE, KEMODP2048, 0)}}},
		{ProtoIKE, "aes256gcm16-prfsha384-ecp384", false, [][]Transform{{
			tf(TransformENCR, EncrAESGCM16, 256), tf(TransformPRF, PRFHMACSHA2384, 0), tf(TransformKE, KEECP384, 0)}}},
		// Integrity with an AEAD cipher in IKE only yields the PRF.
		{ProtoIKE, "aes256gcm16-sha384-ecp384", false, [][]Transform{{
			tf(TransformENCR, EncrAESGCM16, 256), tf(TransformPRF, PRFHMACSHA2384, 0), tf(TransformKE, KEECP384, 0)}}},
		{ProtoIKE, "aes128-sha1-modp1024!", true, [][]Transform{{
			tf(TransformENCR, EncrAESCBC, 128), tf(TransformINTEG, IntegHMACSHA196, 0), tf(TransformPRF, PRFHMACSHA1, 0), tf(TransformKE, KEMODP1024, 0)}}},
		// Several algorithms per type, and two proposals.
		{ProtoIKE, "aes128-aes256-sha256-sha1-ecp256-modp2048,chacha20poly1305-prfsha256-x25519", false, [][]Transform{
			{tf(TransformENCR, EncrAESCBC, 128), tf(TransformENCR, EncrAESCBC, 256), tf(TransformINTEG, IntegHMACSHA256128, 0), tf(TransformINTEG, IntegHMACSHA196, 0),
				tf(TransformPRF, PRFHMACSHA2256, 0), tf(TransformPRF, PRFHMACSHA1, 0), tf(TransformKE, KEECP256, 0), tf(TransformKE, KEMODP2048, 0)},
			{tf(TransformENCR, EncrChaCha20Poly1305, 0), tf(TransformPRF, PRFHMACSHA2256, 0), tf(TransformKE, KECurve25519, 0)}}},
		{ProtoESP, "aes128-sha256", false, [][]Transform{{tf(TransformENCR, EncrAESCBC, 128), tf(TransformINTEG, IntegHMACSHA256128, 0), noesn}}},
		// ESP with a DH group means PFS; esn and noesn both offered.
		{ProtoESP, "aes128gcm16-modp2048-esn-noesn", false, [][]Transform{{tf(TransformENCR, EncrAESGCM16, 128), tf(TransformKE, KEMODP2048, 0), tf(TransformESN, ESNYes, 0), noesn}}},
		{ProtoAH, "sha256-sha1", false, [][]Transform{{tf(TransformINTEG, IntegHMACSHA256128, 0), tf(TransformINTEG, IntegHMACSHA196, 0), noesn}}},
		// Reserved for later: recognised as ADDKE1.
		{ProtoIKE, "aes256-sha384-ecp384-ke1_mlkem768", false, [][]Transform{{
			tf(TransformENCR, EncrAESCBC, 256), tf(TransformINTEG, IntegHMACSHA384192, 0), tf(TransformPRF, PRFHMACSHA2384, 0), tf(TransformKE, KEECP384, 0), tf(TransformADDKE, KEMLKEM768, 0)}}},
		// Libreswan grammar.
		{ProtoIKE, "aes128-sha1;modp1536", false, [][]Transform{{
			tf(TransformENCR, EncrAESCBC, 128), tf(TransformINTEG, IntegHMACSHA196, 0), tf(TransformPRF, PRFHMACSHA1, 0), tf(TransformKE, KEMODP1536, 0)}}},
		{ProtoIKE, "aes_gcm256-sha2_512;dh20", false, [][]Transform{{
			tf(TransformENCR, EncrAESGCM16, 256), tf(TransformPRF, PRFHMACSHA2512, 0), tf(TransformKE, KEECP384, 0)}}},
		{ProtoIKE, "aes-256-sha2;dh14", false, [][]Transform{{
			tf(TransformENCR, EncrAESCBC, 256), tf(TransformINTEG, IntegHMACSHA256128, 0), tf(TransformPRF, PRFHMACSHA2256, 0), tf(TransformKE, KEMODP2048, 0)}}},
		{ProtoIKE, "aes+3des-sha1+md5;modp1024", false, [][]Transform{{
			tf(TransformENCR, EncrAESCBC, 128), tf(TransformENCR, Encr3DES, 0), tf(TransformINTEG, IntegHMACSHA196, 0), tf(TransformINTEG, IntegHMACMD596, 0),
			tf(TransformPRF, PRFHMACSHA1, 0), tf(TransformPRF, PRFHMACMD5, 0), tf(TransformKE, KEMODP1024, 0)}}},
		{ProtoESP, "aes_gcm128-null", false, [][]Transform{{tf(TransformENCR, EncrAESGCM16, 128), noesn}}},
		{ProtoESP, "aes_gcm_a-128-null", false, [][]Transform{{tf(TransformENCR, EncrAESGCM8, 128), noesn}}},
		{ProtoESP, "aes_ctr256-aes_xcbc", false, [][]Transform{{tf(TransformENCR, EncrAESCTR, 256), tf(TransformINTEG, IntegAESXCBC96, 0), noesn}}},
	}
	for _, tt := range tests {
		ps, strict, err := ParseProposals(tt.proto, tt.in)
		if err != nil {
			t.Errorf("%s %q: %v", tt.proto, tt.in, err)
			continue
		}
		if strict != tt.strict {
			t.Errorf("%q: strict %v, want %v", tt.in, strict, tt.strict)
		}
		var got [][]Transform
		for _, p := range ps {
			if p.Protocol != tt.proto {
				t.Errorf("%q: protocol %v", tt.in, p.Protocol)
			}
			got = append(got, p.Transforms)
		}
		if !slices.EqualFunc(got, tt.want, slices.Equal) {
			t.Errorf("%s %q:\n got %v\nwant %v", tt.proto, tt.in, got, tt.want)
		}
	}
}

// The two grammars must give the same typed value for the same algorithms.
func TestStrongSwanAndLibreswanAgree(t *testing.T) {
	pairs := []struct {
		proto         Protocol
		strong, libre string
	}{
		{ProtoIKE, "aes128-sha1-modp1536", "aes128-sha1;modp1536"},
		{ProtoIKE, "aes256-sha256-modp2048", "aes256-sha2_256;dh14"},
		{ProtoIKE, "aes256-sha256-modp2048", "aes_256-sha2;modp2048"},
		{ProtoIKE, "3des-md5-modp1024", "3des-md5;dh2"},
		{ProtoIKE, "aes256gcm16-prfsha384-ecp384", "aes_gcm256-sha2_384;dh20"},
		{ProtoIKE, "chacha20poly1305-prfsha256-x25519", "chacha20_poly1305-sha2;dh31"},
		{ProtoESP, "aes128-sha1-modp1536", "aes128-sha1;modp1536"},
		{ProtoESP, "aes256gcm16", "aes_gcm_c256-null"},
		{ProtoESP, "aes128gcm12", "aes_gcm_b-128"},
		{ProtoESP, "aes192ctr-sha384", "aes_ctr192-sha2_384"},
	}
	for _, p := range pairs {
		a, _, err1 := ParseProposals(p.proto, p.strong)
		b, _, err2 := ParseProposals(p.proto, p.libre)
		if err1 != nil || err2 != nil {
			t.Errorf("%q / %q: %v / %v", p.strong, p.libre, err1, err2)
			continue
		}
		if !proposalsEqual(a, b) {
			t.Errorf("%q gives %v but %q gives %v", p.strong, a, p.libre, b)
		}
		if IsLibreswanProposal(p.strong) {
			t.Errorf("%q taken for Libreswan syntax", p.strong)
		}
		if !IsLibreswanProposal(p.libre) && strings.ContainsAny(p.libre, ";_") {
			t.Errorf("%q not recognised as Libreswan syntax", p.libre)
		}
	}
}

// Every algorithm keyword of the mission parses to the expected IANA ID and
// is supported.
func TestMissionAlgorithmKeywords(t *testing.T) {
	want := map[string]Transform{
		"aes128": tf(TransformENCR, EncrAESCBC, 128), "aes192": tf(TransformENCR, EncrAESCBC, 192), "aes256": tf(TransformENCR, EncrAESCBC, 256),
		"aes128ctr": tf(TransformENCR, EncrAESCTR, 128), "aes192ctr": tf(TransformENCR, EncrAESCTR, 192), "aes256ctr": tf(TransformENCR, EncrAESCTR, 256),
		"aes128gcm8": tf(TransformENCR, EncrAESGCM8, 128), "aes128gcm12": tf(TransformENCR, EncrAESGCM12, 128), "aes128gcm16": tf(TransformENCR, EncrAESGCM16, 128),
		"aes192gcm8": tf(TransformENCR, EncrAESGCM8, 192), "aes192gcm12": tf(TransformENCR, EncrAESGCM12, 192), "aes192gcm16": tf(TransformENCR, EncrAESGCM16, 192),
		"aes256gcm8": tf(TransformENCR, EncrAESGCM8, 256), "aes256gcm12": tf(TransformENCR, EncrAESGCM12, 256), "aes256gcm16": tf(TransformENCR, EncrAESGCM16, 256),
		"chacha20poly1305": tf(TransformENCR, EncrChaCha20Poly1305, 0), "3des": tf(TransformENCR, Encr3DES, 0),
		"md5": tf(TransformINTEG, IntegHMACMD596, 0), "sha1": tf(TransformINTEG, IntegHMACSHA196, 0), "sha256": tf(TransformINTEG, IntegHMACSHA256128, 0),
		"sha384": tf(TransformINTEG, IntegHMACSHA384192, 0), "sha512": tf(TransformINTEG, IntegHMACSHA512256, 0), "sha256_96": tf(TransformINTEG, IntegHMACSHA25696, 0),
		"aesxcbc": tf(TransformINTEG, IntegAESXCBC96, 0),
		"prfmd5":  tf(TransformPRF, PRFHMACMD5, 0), "prfsha1": tf(TransformPRF, PRFHMACSHA1, 0), "prfsha256": tf(TransformPRF, PRFHMACSHA2256, 0),
		"prfsha384": tf(TransformPRF, PRFHMACSHA2384, 0), "prfsha512": tf(TransformPRF, PRFHMACSHA2512, 0), "prfaesxcbc": tf(TransformPRF, PRFAES128XCBC, 0),
		"modp768": tf(TransformKE, KEMODP768, 0), "modp1024": tf(TransformKE, KEMODP1024, 0), "modp1536": tf(TransformKE, KEMODP1536, 0),
		"modp2048": tf(TransformKE, KEMODP2048, 0), "modp3072": tf(TransformKE, KEMODP3072, 0), "modp4096": tf(TransformKE, KEMODP4096, 0),
		"modp6144": tf(TransformKE, KEMODP6144, 0), "modp8192": tf(TransformKE, KEMODP8192, 0), "modp1024s160": tf(TransformKE, KEMODP1024S160, 0),
		"modp2048s224": tf(TransformKE, KEMODP2048S224, 0), "modp2048s256": tf(TransformKE, KEMODP2048S256, 0), "ecp256": tf(TransformKE, KEECP256, 0),
		"ecp384": tf(TransformKE, KEECP384, 0), "ecp521": tf(TransformKE, KEECP521, 0), "x25519": tf(TransformKE, KECurve25519, 0), "x448": tf(TransformKE, KECurve448, 0),
		"esn": tf(TransformESN, ESNYes, 0), "noesn": tf(TransformESN, ESNNo, 0),
	}
	for kw, w := range want {
		a, ok := strongSwanAlgorithms[kw]
		if !ok {
			t.Errorf("%s: missing from the table", kw)
			continue
		}
		if got := (Transform{Type: a.typ, ID: a.id, KeyLen: a.keyLen}); got != w || !a.supported {
			t.Errorf("%s: %v supported=%v, want %v", kw, got, a.supported, w)
		}
		if w.Name() != kw {
			t.Errorf("%v is displayed as %q, want %q", w, w.Name(), kw)
		}
		// And each keyword is accepted in a proposal where it belongs.
		var proto Protocol
		var s string
		switch w.Type {
		case TransformENCR:
			proto, s = ProtoIKE, kw+"-prfsha256-sha256-modp2048"
		case TransformINTEG:
			proto, s = ProtoESP, "aes128-"+kw
		case TransformPRF:
			proto, s = ProtoIKE, "aes128-sha256-"+kw+"-modp2048"
		case TransformKE:
			proto, s = ProtoIKE, "aes128-sha256-"+kw
		case TransformESN:
			proto, s = ProtoESP, "aes128-sha256-"+kw
		}
		ps, _, err := ParseProposals(proto, s)
		if err != nil || !slices.Contains(ps[0].Transforms, w) || len(unsupportedTransforms(ps)) != 0 {
			t.Errorf("%q: %v %v", s, ps, err)
		}
	}
}

func TestProposalErrors(t *testing.T) {
	tests := []struct {
		proto Protocol
		in    string
		msg   string
	}{
		{ProtoIKE, "aes128-sha256", "key exchange method (DH group) is mandatory"},
		{ProtoIKE, "aes128-modp2048", "integrity algorithm is mandatory"},
		{ProtoIKE, "aes128gcm16-modp2048", "PRF is mandatory"},
		{ProtoIKE, "sha256-modp2048", "encryption algorithm is mandatory"},
		{ProtoIKE, "aes128-sha256-modp2048-esn", "esn/noesn apply to ESP and AH"},
		{ProtoIKE, "aes128gcm16-aes128-sha256-modp2048", "AEAD and classic ciphers cannot be combined"},
		{ProtoIKE, "aes128-sha265-modp2048", `did you mean "sha256"`},
		{ProtoIKE, "aes128--sha256-modp2048", "empty algorithm name"},
		{ProtoIKE, "", "empty proposal list"},
		{ProtoIKE, "aes128-sha256-modp2048,", "empty proposal"},
		{ProtoIKE, "128-sha256-modp2048", "key length without a preceding cipher"},
		{ProtoIKE, "3des-512-sha1-modp2048", "invalid key length"},
		{ProtoIKE, "aes128-sha256-ke1_sha256", "additional key exchanges take a key exchange method"},
		{ProtoESP, "aes128", "integrity algorithm is mandatory in ESP"},
		{ProtoESP, "sha1", "encryption algorithm is mandatory in ESP"},
		{ProtoESP, "aes128-sha1-prfsha1", "PRF algorithms apply to IKE proposals only"},
		{ProtoAH, "aes128-sha1", "AH proposals take no encryption"},
		{ProtoAH, "modp2048", "integrity algorithm is mandatory in AH"},
	}
	for _, tt := range tests {
		_, _, err := ParseProposals(tt.proto, tt.in)
		var pe *ProposalError
		if !errors.As(err, &pe) || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("%s %q: error %v, want one containing %q", tt.proto, tt.in, err, tt.msg)
		}
	}
	if u := unsupportedTransforms(mustParse(t, ProtoIKE, "camellia256-aescmac-ecp192-ecp256bp")); !slices.Equal(u, []string{"camellia256", "prfaescmac", "ecp192", "ecp256bp"}) {
		t.Errorf("unsupported: %v", u)
	}
}

func mustParse(t *testing.T, proto Protocol, s string) []Proposal {
	t.Helper()
	ps, _, err := ParseProposals(proto, s)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

func TestDefaultsAppendedUnlessStrict(t *testing.T) {
	const base = "conn c\n\tleft=198.51.100.1\n\tright=203.0.113.1\n\tauthby=secret\n\tauto=add\n"
	secrets := ": PSK \"k\"\n"
	c := mustConn(t, base, secrets, "c")
	if got := c.IKE[0].String(); got != "aes128-sha256-prfsha256-modp3072" {
		t.Errorf("default IKE proposal %s", got)
	}
	if got := c.ESP[0].String(); got != "aes128-sha256-noesn" {
		t.Errorf("default ESP proposal %s", got)
	}
	if c.IKEStrict || len(c.IKE) != 1+len(daemonDefaults(ProtoIKE)) || len(c.ESP) != 1+len(daemonDefaults(ProtoESP)) {
		t.Errorf("daemon defaults not appended: %d IKE, %d ESP", len(c.IKE), len(c.ESP))
	}
	c = mustConn(t, base+"\tike=aes128-sha1-modp1024!\n\tesp=aes128-sha1-modp1024!\n", secrets, "c")
	if !c.IKEStrict || !c.ChildStrict || len(c.IKE) != 1 || len(c.ESP) != 1 {
		t.Errorf("strict proposals got defaults: %v %v", c.IKE, c.ESP)
	}
	// A proposal equal to a default one is not listed twice.
	c = mustConn(t, base+"\tesp=aes128gcm16-aes192gcm16-aes256gcm16-chacha20poly1305\n", secrets, "c")
	if len(c.ESP) != len(daemonDefaults(ProtoESP)) {
		t.Errorf("duplicate default: %v", c.ESP)
	}
}
