package daemon

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"

	"github.com/ipsecgw/ipsecgw/control"
	"github.com/ipsecgw/ipsecgw/ike"
	"github.com/ipsecgw/ipsecgw/install"
	"github.com/ipsecgw/ipsecgw/transform"
)

// Key export for debugging (`ipsecgw export-keys`): the current SAs' keys
// in the two Wireshark tables that decrypt them, ESP (esp_sa, the ESP
// dissector's "ESP SAs" UAT) and IKEv2 (ikev2_decryption_table, the
// format strongSwan's save-keys plugin writes too). The names are
// Wireshark's value strings (packet-ipsec.c, packet-isakmp.c).

// wsESPEncr names ESP ciphers as Wireshark's esp_sa table does; the key
// length follows from the key.
var wsESPEncr = map[transform.ID]string{
	transform.EncrNull:     "NULL",
	transform.Encr3DES:     "TripleDES-CBC [RFC2451]",
	transform.EncrAESCBC:   "AES-CBC [RFC3602]",
	transform.EncrAESCTR:   "AES-CTR [RFC3686]",
	transform.EncrAESGCM8:  "AES-GCM with 8 octet ICV [RFC4106]",
	transform.EncrAESGCM12: "AES-GCM with 12 octet ICV [RFC4106]",
	transform.EncrAESGCM16: "AES-GCM with 16 octet ICV [RFC4106]",
}

var wsESPInteg = map[transform.ID]string{
	transform.IntegNone:             "NULL",
	transform.IntegHMACSHA1_96:      "HMAC-SHA-1-96 [RFC2404]",
	transform.IntegHMACMD5_96:       "HMAC-MD5-96 [RFC2403]",
	transform.IntegHMACSHA2_256_128: "HMAC-SHA-256-128 [RFC4868]",
	transform.IntegHMACSHA2_384_192: "HMAC-SHA-384-192 [RFC4868]",
	transform.IntegHMACSHA2_512_256: "HMAC-SHA-512-256 [RFC4868]",
}

// ahInteg names AH's integrity algorithms in the ah_sa table: Wireshark's
// names where its ESP table has them, and RFC 3566's for AES-XCBC.
var ahInteg = map[transform.ID]string{
	transform.IntegHMACMD5_96:       wsESPInteg[transform.IntegHMACMD5_96],
	transform.IntegHMACSHA1_96:      wsESPInteg[transform.IntegHMACSHA1_96],
	transform.IntegHMACSHA2_256_128: wsESPInteg[transform.IntegHMACSHA2_256_128],
	transform.IntegHMACSHA2_384_192: wsESPInteg[transform.IntegHMACSHA2_384_192],
	transform.IntegHMACSHA2_512_256: wsESPInteg[transform.IntegHMACSHA2_512_256],
	transform.IntegAESXCBC96:        "AES-XCBC-MAC-96 [RFC3566]",
}

// wsIKEEncr names IKEv2 ciphers as Wireshark's decryption table does: the
// key length is part of the name.
func wsIKEEncr(t transform.Transform) (string, bool) {
	bits := t.KeyLen
	switch t.ID {
	case transform.Encr3DES:
		return "3DES [RFC2451]", true
	case transform.EncrAESCBC:
		return fmt.Sprintf("AES-CBC-%d [RFC3602]", bits), bits != 0
	case transform.EncrAESCTR:
		return fmt.Sprintf("AES-CTR-%d [RFC5930]", bits), bits != 0
	case transform.EncrAESGCM8, transform.EncrAESGCM12, transform.EncrAESGCM16:
		icv := map[transform.ID]int{transform.EncrAESGCM8: 8, transform.EncrAESGCM12: 12, transform.EncrAESGCM16: 16}[t.ID]
		return fmt.Sprintf("AES-GCM-%d with %d octet ICV [RFC5282]", bits, icv), bits != 0
	}
	return "", false
}

var wsIKEInteg = map[transform.ID]string{
	transform.IntegNone:             "NONE [RFC4306]",
	transform.IntegHMACMD5_96:       "HMAC_MD5_96 [RFC2403]",
	transform.IntegHMACSHA1_96:      "HMAC_SHA1_96 [RFC2404]",
	transform.IntegHMACSHA2_256_128: "HMAC_SHA2_256_128 [RFC4868]",
	transform.IntegHMACSHA2_384_192: "HMAC_SHA2_384_192 [RFC4868]",
	transform.IntegHMACSHA2_512_256: "HMAC_SHA2_512_256 [RFC4868]",
}

// formatKeys renders the keys as Wireshark's tables; SAs whose algorithms
// Wireshark cannot decrypt are listed as unsupported instead.
func formatKeys(children []install.ChildKeys, ikes []ike.IKEKeys) control.KeyExport {
	var esp, ah, ikeTab strings.Builder
	out := control.KeyExport{Unsupported: []string{}}
	hexKey := func(k []byte) string { return "0x" + hex.EncodeToString(k) }
	for _, c := range children {
		if c.AH {
			in, ok := ahInteg[c.Integ.ID]
			if !ok {
				out.Unsupported = append(out.Unsupported, fmt.Sprintf("CHILD SA %s of %s: AH %v", control.FormatSPI(c.InSPI), c.Conn, c.Integ))
				continue
			}
			fam := "IPv4"
			if !c.Local.Addr().Unmap().Is4() {
				fam = "IPv6"
			}
			line := func(src, dst netip.AddrPort, spi uint32, ik []byte) {
				fmt.Fprintf(&ah, "\"%s\",\"%s\",\"%s\",\"0x%08x\",\"%s\",\"%s\"\n",
					fam, src.Addr().Unmap(), dst.Addr().Unmap(), spi, in, hexKey(ik))
			}
			line(c.Remote, c.Local, c.InSPI, c.InInteg)
			line(c.Local, c.Remote, c.OutSPI, c.OutInteg)
			out.ChildSAs++
			continue
		}
		en, ok1 := wsESPEncr[c.Encr.ID]
		in, ok2 := wsESPInteg[c.Integ.ID]
		if !ok1 || !ok2 {
			out.Unsupported = append(out.Unsupported, fmt.Sprintf("CHILD SA %s of %s: %v/%v", control.FormatSPI(c.InSPI), c.Conn, c.Encr, c.Integ))
			continue
		}
		fam := "IPv4"
		if !c.Local.Addr().Unmap().Is4() {
			fam = "IPv6"
		}
		line := func(src, dst netip.AddrPort, spi uint32, ek, ik []byte) {
			fmt.Fprintf(&esp, "\"%s\",\"%s\",\"%s\",\"0x%08x\",\"%s\",\"%s\",\"%s\",\"%s\"\n",
				fam, src.Addr().Unmap(), dst.Addr().Unmap(), spi, en, hexKey(ek), in, hexKey(ik))
		}
		line(c.Remote, c.Local, c.InSPI, c.InEncr, c.InInteg)
		line(c.Local, c.Remote, c.OutSPI, c.OutEncr, c.OutInteg)
		out.ChildSAs++
	}
	for _, k := range ikes {
		en, ok1 := wsIKEEncr(k.Encr)
		in, ok2 := wsIKEInteg[k.Integ.ID]
		if k.Version != 2 || !ok1 || !ok2 {
			out.Unsupported = append(out.Unsupported, fmt.Sprintf("IKE SA %s_i %s_r: IKEv%d %v/%v",
				control.FormatIKESPI(k.SPIi), control.FormatIKESPI(k.SPIr), k.Version, k.Encr, k.Integ))
			continue
		}
		fmt.Fprintf(&ikeTab, "%016x,%016x,%s,%s,\"%s\",%s,%s,\"%s\"\n", k.SPIi, k.SPIr,
			hex.EncodeToString(k.SKei), hex.EncodeToString(k.SKer), en,
			hex.EncodeToString(k.SKai), hex.EncodeToString(k.SKar), in)
		out.IKESAs++
	}
	out.ESPSA, out.AHSA, out.IKEv2DecryptionTable = esp.String(), ah.String(), ikeTab.String()
	return out
}
