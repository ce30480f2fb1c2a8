package config

// This file is the one place where config knows IANA numbers. It mirrors the
// IKEv2 transform registries (RFC 7296 section 3.3.2, IANA "Internet Key
// Exchange Version 2 (IKEv2) Parameters") so that a proposal can be handed to
// the negotiation code as plain numbers. When package transform settles, the
// constants below can be replaced by its own without touching the parser.

import "fmt"

// TransformType is the IKEv2 transform type number.
type TransformType uint8

// IANA transform types. The additional key exchanges (RFC 9370) are types
// 6 to 12; they are parsed so that a ke1_ keyword is recognised, and reported
// as not supported yet.
const (
	TransformENCR  TransformType = 1
	TransformPRF   TransformType = 2
	TransformINTEG TransformType = 3
	TransformKE    TransformType = 4 // Diffie-Hellman group / key exchange method
	TransformESN   TransformType = 5
	TransformADDKE TransformType = 6 // ADDKE1; ADDKEn is TransformADDKE+n-1
)

func (t TransformType) String() string {
	switch {
	case t == TransformENCR:
		return "ENCR"
	case t == TransformPRF:
		return "PRF"
	case t == TransformINTEG:
		return "INTEG"
	case t == TransformKE:
		return "KE"
	case t == TransformESN:
		return "ESN"
	case t >= TransformADDKE && t < TransformADDKE+7:
		return fmt.Sprintf("ADDKE%d", t-TransformADDKE+1)
	}
	return fmt.Sprintf("TRANSFORM(%d)", uint8(t))
}

// IANA transform IDs used by ipsecgw. Names follow the IANA registry.
const (
	EncrDES              uint16 = 2
	Encr3DES             uint16 = 3
	EncrCAST             uint16 = 6
	EncrBlowfish         uint16 = 7
	EncrNULL             uint16 = 11
	EncrAESCBC           uint16 = 12
	EncrAESCTR           uint16 = 13
	EncrAESCCM8          uint16 = 14
	EncrAESCCM12         uint16 = 15
	EncrAESCCM16         uint16 = 16
	EncrAESGCM8          uint16 = 18
	EncrAESGCM12         uint16 = 19
	EncrAESGCM16         uint16 = 20
	EncrNullAuthAESGMAC  uint16 = 21
	EncrCamelliaCBC      uint16 = 23
	EncrCamelliaCTR      uint16 = 24
	EncrChaCha20Poly1305 uint16 = 28

	PRFHMACMD5     uint16 = 1
	PRFHMACSHA1    uint16 = 2
	PRFAES128XCBC  uint16 = 4
	PRFHMACSHA2256 uint16 = 5
	PRFHMACSHA2384 uint16 = 6
	PRFHMACSHA2512 uint16 = 7
	PRFAES128CMAC  uint16 = 8

	IntegNone          uint16 = 0
	IntegHMACMD596     uint16 = 1
	IntegHMACSHA196    uint16 = 2
	IntegAESXCBC96     uint16 = 5
	IntegHMACMD5128    uint16 = 6
	IntegHMACSHA1160   uint16 = 7
	IntegAESCMAC96     uint16 = 8
	IntegHMACSHA256128 uint16 = 12
	IntegHMACSHA384192 uint16 = 13
	IntegHMACSHA512256 uint16 = 14
	// IntegHMACSHA25696 is HMAC-SHA-256 truncated to 96 bits, the pre-RFC 4868
	// Linux behaviour some peers still use. It has no IANA number; strongSwan
	// uses 1026 from the private range, and so do we.
	IntegHMACSHA25696 uint16 = 1026

	KENone         uint16 = 0
	KEMODP768      uint16 = 1
	KEMODP1024     uint16 = 2
	KEMODP1536     uint16 = 5
	KEMODP2048     uint16 = 14
	KEMODP3072     uint16 = 15
	KEMODP4096     uint16 = 16
	KEMODP6144     uint16 = 17
	KEMODP8192     uint16 = 18
	KEECP256       uint16 = 19
	KEECP384       uint16 = 20
	KEECP521       uint16 = 21
	KEMODP1024S160 uint16 = 22
	KEMODP2048S224 uint16 = 23
	KEMODP2048S256 uint16 = 24
	KEECP192       uint16 = 25
	KEECP224       uint16 = 26
	KEECP224BP     uint16 = 27
	KEECP256BP     uint16 = 28
	KEECP384BP     uint16 = 29
	KEECP512BP     uint16 = 30
	KECurve25519   uint16 = 31
	KECurve448     uint16 = 32
	KEMLKEM512     uint16 = 35
	KEMLKEM768     uint16 = 36
	KEMLKEM1024    uint16 = 37

	ESNNo  uint16 = 0
	ESNYes uint16 = 1
)

// algorithm describes one keyword of the proposal grammar.
type algorithm struct {
	name      string // canonical strongSwan keyword, used for display
	typ       TransformType
	id        uint16
	keyLen    uint16 // bits; 0 when the algorithm has a fixed key size
	aead      bool
	supported bool   // ipsecgw can negotiate and run it
	prf       uint16 // for integrity keywords: the PRF strongSwan derives in IKE proposals
}

func enc(name string, id, keyLen uint16, aead, supported bool) algorithm {
	return algorithm{name: name, typ: TransformENCR, id: id, keyLen: keyLen, aead: aead, supported: supported}
}

func integ(name string, id, prf uint16, supported bool) algorithm {
	return algorithm{name: name, typ: TransformINTEG, id: id, prf: prf, supported: supported}
}

func prf(name string, id uint16, supported bool) algorithm {
	return algorithm{name: name, typ: TransformPRF, id: id, supported: supported}
}

func ke(name string, id uint16, supported bool) algorithm {
	return algorithm{name: name, typ: TransformKE, id: id, supported: supported}
}

// strongSwanAlgorithms is the keyword table of strongSwan's proposal grammar
// (proposal_keywords_static.txt), limited to algorithms that are still seen
// in real configurations. Keywords ipsecgw recognises but cannot run are kept
// so that the error says "not supported" rather than "unknown".
var strongSwanAlgorithms = func() map[string]algorithm {
	m := map[string]algorithm{}
	add := func(aliases []string, a algorithm) {
		for _, n := range aliases {
			m[n] = a
		}
	}
	add([]string{"null"}, enc("null", EncrNULL, 0, false, false))
	add([]string{"des"}, enc("des", EncrDES, 0, false, false))
	add([]string{"3des"}, enc("3des", Encr3DES, 0, false, true))
	add([]string{"cast128"}, enc("cast128", EncrCAST, 128, false, false))
	for _, kl := range []uint16{128, 192, 256} {
		s := fmt.Sprint(kl)
		cbc := []string{"aes" + s}
		if kl == 128 {
			cbc = append(cbc, "aes")
		}
		add(cbc, enc("aes"+s, EncrAESCBC, kl, false, true))
		add([]string{"aes" + s + "ctr"}, enc("aes"+s+"ctr", EncrAESCTR, kl, false, true))
		add([]string{"aes" + s + "gcm8", "aes" + s + "gcm64"}, enc("aes"+s+"gcm8", EncrAESGCM8, kl, true, true))
		add([]string{"aes" + s + "gcm12", "aes" + s + "gcm96"}, enc("aes"+s+"gcm12", EncrAESGCM12, kl, true, true))
		add([]string{"aes" + s + "gcm16", "aes" + s + "gcm128", "aes" + s + "gcm"}, enc("aes"+s+"gcm16", EncrAESGCM16, kl, true, true))
		add([]string{"aes" + s + "ccm8", "aes" + s + "ccm64"}, enc("aes"+s+"ccm8", EncrAESCCM8, kl, true, false))
		add([]string{"aes" + s + "ccm12", "aes" + s + "ccm96"}, enc("aes"+s+"ccm12", EncrAESCCM12, kl, true, false))
		add([]string{"aes" + s + "ccm16", "aes" + s + "ccm128", "aes" + s + "ccm"}, enc("aes"+s+"ccm16", EncrAESCCM16, kl, true, false))
		add([]string{"aes" + s + "gmac"}, enc("aes"+s+"gmac", EncrNullAuthAESGMAC, kl, true, false))
		cam := []string{"camellia" + s}
		if kl == 128 {
			cam = append(cam, "camellia")
		}
		add(cam, enc("camellia"+s, EncrCamelliaCBC, kl, false, false))
		add([]string{"camellia" + s + "ctr"}, enc("camellia"+s+"ctr", EncrCamelliaCTR, kl, false, false))
		bf := []string{"blowfish" + s}
		if kl == 128 {
			bf = append(bf, "blowfish")
		}
		add(bf, enc("blowfish"+s, EncrBlowfish, kl, false, false))
	}
	add([]string{"chacha20poly1305"}, enc("chacha20poly1305", EncrChaCha20Poly1305, 0, true, true))

	add([]string{"md5"}, integ("md5", IntegHMACMD596, PRFHMACMD5, true))
	add([]string{"md5_128"}, integ("md5_128", IntegHMACMD5128, PRFHMACMD5, false))
	add([]string{"sha1", "sha"}, integ("sha1", IntegHMACSHA196, PRFHMACSHA1, true))
	add([]string{"sha1_160"}, integ("sha1_160", IntegHMACSHA1160, PRFHMACSHA1, false))
	add([]string{"sha256", "sha2_256"}, integ("sha256", IntegHMACSHA256128, PRFHMACSHA2256, true))
	add([]string{"sha256_96", "sha2_256_96"}, integ("sha256_96", IntegHMACSHA25696, PRFHMACSHA2256, true))
	add([]string{"sha384", "sha2_384"}, integ("sha384", IntegHMACSHA384192, PRFHMACSHA2384, true))
	add([]string{"sha512", "sha2_512"}, integ("sha512", IntegHMACSHA512256, PRFHMACSHA2512, true))
	add([]string{"aesxcbc"}, integ("aesxcbc", IntegAESXCBC96, PRFAES128XCBC, true))
	add([]string{"aescmac"}, integ("aescmac", IntegAESCMAC96, PRFAES128CMAC, true))

	add([]string{"prfmd5"}, prf("prfmd5", PRFHMACMD5, true))
	add([]string{"prfsha1"}, prf("prfsha1", PRFHMACSHA1, true))
	add([]string{"prfsha256"}, prf("prfsha256", PRFHMACSHA2256, true))
	add([]string{"prfsha384"}, prf("prfsha384", PRFHMACSHA2384, true))
	add([]string{"prfsha512"}, prf("prfsha512", PRFHMACSHA2512, true))
	add([]string{"prfaesxcbc"}, prf("prfaesxcbc", PRFAES128XCBC, true))
	add([]string{"prfaescmac"}, prf("prfaescmac", PRFAES128CMAC, false))

	add([]string{"none", "modpnone"}, ke("none", KENone, true))
	add([]string{"modp768"}, ke("modp768", KEMODP768, true))
	add([]string{"modp1024"}, ke("modp1024", KEMODP1024, true))
	add([]string{"modp1536"}, ke("modp1536", KEMODP1536, true))
	add([]string{"modp2048"}, ke("modp2048", KEMODP2048, true))
	add([]string{"modp3072"}, ke("modp3072", KEMODP3072, true))
	add([]string{"modp4096"}, ke("modp4096", KEMODP4096, true))
	add([]string{"modp6144"}, ke("modp6144", KEMODP6144, true))
	add([]string{"modp8192"}, ke("modp8192", KEMODP8192, true))
	add([]string{"modp1024s160"}, ke("modp1024s160", KEMODP1024S160, true))
	add([]string{"modp2048s224"}, ke("modp2048s224", KEMODP2048S224, true))
	add([]string{"modp2048s256"}, ke("modp2048s256", KEMODP2048S256, true))
	add([]string{"ecp192"}, ke("ecp192", KEECP192, false))
	add([]string{"ecp224"}, ke("ecp224", KEECP224, false))
	add([]string{"ecp256"}, ke("ecp256", KEECP256, true))
	add([]string{"ecp384"}, ke("ecp384", KEECP384, true))
	add([]string{"ecp521"}, ke("ecp521", KEECP521, true))
	add([]string{"ecp224bp"}, ke("ecp224bp", KEECP224BP, false))
	add([]string{"ecp256bp"}, ke("ecp256bp", KEECP256BP, false))
	add([]string{"ecp384bp"}, ke("ecp384bp", KEECP384BP, false))
	add([]string{"ecp512bp"}, ke("ecp512bp", KEECP512BP, false))
	add([]string{"x25519", "curve25519"}, ke("x25519", KECurve25519, true))
	add([]string{"x448", "curve448"}, ke("x448", KECurve448, true))
	// ML-KEM (FIPS 203): an additional key exchange of IKE SAs only
	// (ke1_mlkem768 ...; RFC 9370, strongSwan 6), not the first one.
	add([]string{"mlkem512"}, ke("mlkem512", KEMLKEM512, false))
	add([]string{"mlkem768"}, ke("mlkem768", KEMLKEM768, false))
	add([]string{"mlkem1024"}, ke("mlkem1024", KEMLKEM1024, false))

	add([]string{"noesn"}, algorithm{name: "noesn", typ: TransformESN, id: ESNNo, supported: true})
	add([]string{"esn"}, algorithm{name: "esn", typ: TransformESN, id: ESNYes, supported: true})
	return m
}()

// libreswanAlgorithms adds the names of the Libreswan/Openswan grammar
// (ipsec.conf(5) of Libreswan: "aes_gcm", "sha2_256", "dh14" ...). Key
// lengths are handled by the parser ("aes_gcm256", "aes_gcm_256", "aes-256").
var libreswanAlgorithms = func() map[string]algorithm {
	m := map[string]algorithm{}
	base := func(n string) algorithm { return strongSwanAlgorithms[n] }
	m["aes"] = base("aes128")
	m["aes_cbc"] = base("aes128")
	m["aes_ctr"] = base("aes128ctr")
	m["aesctr"] = base("aes128ctr")
	m["aes_gcm"] = base("aes128gcm16")
	m["aes_gcm_c"] = base("aes128gcm16")
	m["aes_gcm16"] = base("aes128gcm16")
	m["aes_gcm_16"] = base("aes128gcm16")
	m["aes_gcm_b"] = base("aes128gcm12")
	m["aes_gcm12"] = base("aes128gcm12")
	m["aes_gcm_12"] = base("aes128gcm12")
	m["aes_gcm_a"] = base("aes128gcm8")
	m["aes_gcm8"] = base("aes128gcm8")
	m["aes_gcm_8"] = base("aes128gcm8")
	m["aes_ccm"] = base("aes128ccm16")
	m["3des"] = base("3des")
	m["3des_cbc"] = base("3des")
	m["chacha20_poly1305"] = base("chacha20poly1305")
	m["chacha20poly1305"] = base("chacha20poly1305")
	m["camellia"] = base("camellia128")
	m["camellia_cbc"] = base("camellia128")
	m["null"] = base("null")
	m["md5"] = base("md5")
	m["sha"] = base("sha1")
	m["sha1"] = base("sha1")
	m["sha2"] = base("sha256")
	m["sha256"] = base("sha256")
	m["sha2_256"] = base("sha256")
	m["sha384"] = base("sha384")
	m["sha2_384"] = base("sha384")
	m["sha512"] = base("sha512")
	m["sha2_512"] = base("sha512")
	m["aes_xcbc"] = base("aesxcbc")
	m["aesxcbc"] = base("aesxcbc")
	m["aes_cmac"] = base("aescmac")
	for _, n := range []string{"modp768", "modp1024", "modp1536", "modp2048", "modp3072", "modp4096", "modp6144", "modp8192",
		"ecp256", "ecp384", "ecp521", "modp1024s160", "modp2048s224", "modp2048s256", "x25519", "curve25519", "x448", "none"} {
		m[n] = base(n)
	}
	m["ecp_256"] = base("ecp256")
	m["ecp_384"] = base("ecp384")
	m["ecp_521"] = base("ecp521")
	m["dh19"] = base("ecp256")
	m["dh20"] = base("ecp384")
	m["dh21"] = base("ecp521")
	m["dh31"] = base("x25519")
	m["dh1"] = base("modp768")
	m["dh2"] = base("modp1024")
	m["dh5"] = base("modp1536")
	m["dh14"] = base("modp2048")
	m["dh15"] = base("modp3072")
	m["dh16"] = base("modp4096")
	m["dh17"] = base("modp6144")
	m["dh18"] = base("modp8192")
	m["dh22"] = base("modp1024s160")
	m["dh23"] = base("modp2048s224")
	m["dh24"] = base("modp2048s256")
	return m
}()

type algKey struct {
	typ    TransformType
	id     uint16
	keyLen uint16
}

// canonicalAlgorithms maps a transform back to its canonical keyword.
var canonicalAlgorithms = func() map[algKey]algorithm {
	m := map[algKey]algorithm{}
	for _, a := range strongSwanAlgorithms {
		m[algKey{a.typ, a.id, a.keyLen}] = a
	}
	return m
}()

// algorithmName returns the canonical keyword for a transform, for display.
func algorithmName(t Transform) string {
	if t.Type >= TransformADDKE {
		if a, ok := canonicalAlgorithms[algKey{TransformKE, t.ID, 0}]; ok {
			return fmt.Sprintf("ke%d_%s", t.Type-TransformADDKE+1, a.name)
		}
	} else if a, ok := canonicalAlgorithms[algKey{t.Type, t.ID, t.KeyLen}]; ok {
		return a.name
	}
	if t.KeyLen != 0 {
		return fmt.Sprintf("%s-%d-%d", t.Type, t.ID, t.KeyLen)
	}
	return fmt.Sprintf("%s-%d", t.Type, t.ID)
}

// lookupAlgorithm finds the table entry of a transform.
func isMLKEM(id uint16) bool { return id >= KEMLKEM512 && id <= KEMLKEM1024 }

func lookupAlgorithm(t Transform) (algorithm, bool) {
	typ := t.Type
	if typ >= TransformADDKE {
		typ = TransformKE
	}
	a, ok := canonicalAlgorithms[algKey{typ, t.ID, t.KeyLen}]
	return a, ok
}
