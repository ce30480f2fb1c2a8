package export

import (
	"fmt"
	"strings"

	"github.com/ipsecgw/ipsecgw/config"
)

// vendorNames maps strongSwan's canonical algorithm keywords (Transform
// Name) to one product's keywords. A missing entry means the product
// cannot express the algorithm.
type vendorNames struct {
	product string
	names   map[string]string
}

func (v vendorNames) name(t config.Transform) (string, error) {
	n, ok := v.names[t.Name()]
	if !ok {
		return "", fmt.Errorf("%s has no equivalent of %s (%s); choose another algorithm for this peer", v.product, t.Name(), strings.ToLower(t.Type.String()))
	}
	return n, nil
}

// names maps every transform of one type in p.
func (v vendorNames) all(p config.Proposal, typ config.TransformType) ([]string, error) {
	var out []string
	for _, t := range p.Of(typ) {
		if typ == config.TransformKE && t.ID == config.KENone {
			continue
		}
		n, err := v.name(t)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	return out, nil
}

// Libreswan's names, from its ipsec.conf(5) "ike=" and "esp=" grammar.
var libreswanNames = vendorNames{product: "Libreswan", names: map[string]string{
	"3des": "3des", "aes128": "aes128", "aes192": "aes192", "aes256": "aes256",
	"aes128ctr": "aes_ctr128", "aes192ctr": "aes_ctr192", "aes256ctr": "aes_ctr256",
	"aes128gcm16": "aes_gcm128", "aes192gcm16": "aes_gcm192", "aes256gcm16": "aes_gcm256",
	"aes128gcm12": "aes_gcm_b128", "aes192gcm12": "aes_gcm_b192", "aes256gcm12": "aes_gcm_b256",
	"aes128gcm8": "aes_gcm_a128", "aes192gcm8": "aes_gcm_a192", "aes256gcm8": "aes_gcm_a256",
	"chacha20poly1305": "chacha20_poly1305",
	"md5":              "md5", "sha1": "sha1", "sha256": "sha2_256", "sha384": "sha2_384", "sha512": "sha2_512", "aesxcbc": "aes_xcbc",
	"prfmd5": "md5", "prfsha1": "sha1", "prfsha256": "sha2_256", "prfsha384": "sha2_384", "prfsha512": "sha2_512", "prfaesxcbc": "aes_xcbc",
	"modp768": "modp768", "modp1024": "modp1024", "modp1536": "modp1536", "modp2048": "modp2048", "modp3072": "modp3072",
	"modp4096": "modp4096", "modp6144": "modp6144", "modp8192": "modp8192",
	"modp1024s160": "dh22", "modp2048s224": "dh23", "modp2048s256": "dh24",
	"ecp256": "dh19", "ecp384": "dh20", "ecp521": "dh21", "x25519": "dh31",
}}

// Cisco IOS XE's keywords: "crypto ikev2 proposal" (encryption, integrity,
// prf, group) and "crypto ipsec transform-set" transforms.
var ciscoIKEv2Names = vendorNames{product: "Cisco IOS (IKEv2 proposal)", names: map[string]string{
	"3des": "3des", "aes128": "aes-cbc-128", "aes192": "aes-cbc-192", "aes256": "aes-cbc-256",
	"aes128gcm16": "aes-gcm-128", "aes256gcm16": "aes-gcm-256",
	"md5": "md5", "sha1": "sha1", "sha256": "sha256", "sha384": "sha384", "sha512": "sha512",
	"prfmd5": "md5", "prfsha1": "sha1", "prfsha256": "sha256", "prfsha384": "sha384", "prfsha512": "sha512",
	"modp768": "1", "modp1024": "2", "modp1536": "5", "modp2048": "14", "modp3072": "15", "modp4096": "16",
	"ecp256": "19", "ecp384": "20", "ecp521": "21", "modp2048s256": "24",
}}

// ciscoISAKMPNames: "crypto isakmp policy" (encryption, hash, group).
var ciscoISAKMPNames = vendorNames{product: "Cisco IOS (ISAKMP policy)", names: map[string]string{
	"3des": "3des", "aes128": "aes 128", "aes192": "aes 192", "aes256": "aes 256",
	"md5": "md5", "sha1": "sha", "sha256": "sha256", "sha384": "sha384", "sha512": "sha512",
	"modp768": "1", "modp1024": "2", "modp1536": "5", "modp2048": "14", "modp3072": "15", "modp4096": "16",
	"ecp256": "19", "ecp384": "20", "modp2048s256": "24",
}}

var ciscoESPNames = vendorNames{product: "Cisco IOS (transform-set)", names: map[string]string{
	"3des": "esp-3des", "aes128": "esp-aes", "aes192": "esp-aes 192", "aes256": "esp-aes 256",
	"aes128gcm16": "esp-gcm", "aes256gcm16": "esp-gcm 256",
	"md5": "esp-md5-hmac", "sha1": "esp-sha-hmac", "sha256": "esp-sha256-hmac", "sha384": "esp-sha384-hmac", "sha512": "esp-sha512-hmac",
}}

var ciscoAHNames = vendorNames{product: "Cisco IOS (transform-set)", names: map[string]string{
	"md5": "ah-md5-hmac", "sha1": "ah-sha-hmac", "sha256": "ah-sha256-hmac", "sha384": "ah-sha384-hmac", "sha512": "ah-sha512-hmac",
}}

// Junos "security ike proposal" / "security ipsec proposal" values.
var juniperIKENames = vendorNames{product: "Junos (IKE proposal)", names: map[string]string{
	"3des": "3des-cbc", "aes128": "aes-128-cbc", "aes192": "aes-192-cbc", "aes256": "aes-256-cbc",
	"aes128gcm16": "aes-128-gcm", "aes256gcm16": "aes-256-gcm",
	"md5": "md5", "sha1": "sha1", "sha256": "sha-256", "sha384": "sha-384", "sha512": "sha-512",
	"modp768": "group1", "modp1024": "group2", "modp1536": "group5", "modp2048": "group14", "modp3072": "group15", "modp4096": "group16",
	"ecp256": "group19", "ecp384": "group20", "ecp521": "group21", "modp2048s256": "group24",
}}

var juniperIPsecNames = vendorNames{product: "Junos (IPsec proposal)", names: map[string]string{
	"3des": "3des-cbc", "aes128": "aes-128-cbc", "aes192": "aes-192-cbc", "aes256": "aes-256-cbc",
	"aes128gcm16": "aes-128-gcm", "aes192gcm16": "aes-192-gcm", "aes256gcm16": "aes-256-gcm",
	"md5": "hmac-md5-96", "sha1": "hmac-sha1-96", "sha256": "hmac-sha-256-128", "sha384": "hmac-sha-384", "sha512": "hmac-sha-512",
	"modp768": "group1", "modp1024": "group2", "modp1536": "group5", "modp2048": "group14", "modp3072": "group15", "modp4096": "group16",
	"ecp256": "group19", "ecp384": "group20", "ecp521": "group21", "modp2048s256": "group24",
}}

// combos expands lists of alternatives into every combination, in order
// of preference (the first list varies slowest), for products whose
// proposals hold one algorithm of each kind.
func combos(lists ...[]string) [][]string {
	out := [][]string{{}}
	for _, l := range lists {
		if len(l) == 0 {
			continue
		}
		var next [][]string
		for _, prefix := range out {
			for _, x := range l {
				next = append(next, append(append([]string(nil), prefix...), x))
			}
		}
		out = next
	}
	return out
}

// singlePFS returns the one PFS group of the CHILD proposals (products
// with a per-policy PFS setting), "" for none.
func singlePFS(ps []config.Proposal, v vendorNames) (string, error) {
	group := ""
	for i, p := range ps {
		gs, err := v.all(p, config.TransformKE)
		if err != nil {
			return "", err
		}
		g := ""
		if len(gs) > 0 {
			g = gs[0]
		}
		if len(gs) > 1 || (i > 0 && g != group) {
			return "", fmt.Errorf("%s takes one PFS group per policy; the CHILD proposals name several", v.product)
		}
		group = g
	}
	return group, nil
}
